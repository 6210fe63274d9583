//! `[[forward]]`: push a path once to a WHIP endpoint (a media server
//! next to frps on the VPS) that fans it out, instead of one stream per
//! remote guest through the box's uplink (issue 18).
//!
//! ```toml
//! [[forward]]
//! path = "cam0"
//! url = "https://vps.example.no/cam0/whip"
//! token = "…"     # Authorization: Bearer …, optional; never logged
//! ```

use serde::Deserialize;

use super::auth::Secret;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    pub path: String,
    pub url: String,
    pub token: Option<Secret>,
}

/// The parts of an `http(s)://host[:port]/path` URL a WHIP client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// As written: a name or an address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// From the first `/`, with any query; "/" when absent.
    pub target: String,
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("\"{s}\" must start with http:// or https://"));
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(format!("\"{s}\": put credentials in token, not in the URL"));
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, after) = r
                .split_once(']')
                .ok_or_else(|| format!("\"{s}\": unclosed [ in the host"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace()) {
            return Err(format!("\"{s}\" has no host"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("\"{s}\": port \"{p}\" is not 1..65535"))?,
            None if https => 443,
            None => 80,
        };
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_string()
        };
        Ok(Url {
            https,
            host: host.to_string(),
            port,
            target,
        })
    }

    /// `Location` (absolute, or relative to this URL), RFC 3986 §5 for the
    /// forms WHIP servers use: absolute, `/absolute-path`, `relative`.
    pub fn join(&self, location: &str) -> Result<Url, String> {
        if location.starts_with("http://") || location.starts_with("https://") {
            return Url::parse(location);
        }
        let mut u = self.clone();
        if location.starts_with('/') {
            u.target = location.to_string();
        } else {
            let path = self.target.split('?').next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            u.target = format!("{dir}{location}");
        }
        Ok(u)
    }

    /// `Host:` header value.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.https { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.target)
    }
}

/// Each entry names a configured path and a usable URL; one path goes to
/// one URL once. Errors say which entry (1-based) and what is wrong.
pub fn check(entries: &[Forward], paths: &[&str]) -> Result<(), (usize, &'static str, String)> {
    for (i, f) in entries.iter().enumerate() {
        let n = i + 1;
        if !paths.contains(&f.path.as_str()) {
            return Err((
                n,
                "path",
                format!(
                    "forward {n}: no path '{}' (paths: {})",
                    f.path,
                    paths.join(", ")
                ),
            ));
        }
        Url::parse(&f.url).map_err(|e| (n, "url", format!("forward {n}: url {e}")))?;
        if let Some(Err(e)) = f.token.as_ref().map(super::auth::check_token) {
            return Err((n, "token", format!("forward {n}: token {e}")));
        }
        if entries[..i]
            .iter()
            .any(|o| o.path == f.path && o.url == f.url)
        {
            return Err((
                n,
                "url",
                format!("forward {n}: '{}' goes to {} already", f.path, f.url),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports_and_targets() {
        let u = Url::parse("https://vps.example.no/cam0/whip").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.target.as_str()),
            (true, "vps.example.no", 443, "/cam0/whip")
        );
        let u = Url::parse("http://10.0.0.1:8889").unwrap();
        assert_eq!((u.port, u.target.as_str()), (8889, "/"));
        let u = Url::parse("http://[fd00::1]:80/x?a=b").unwrap();
        assert_eq!((u.host.as_str(), u.target.as_str()), ("fd00::1", "/x?a=b"));
        assert_eq!(u.to_string(), "http://[fd00::1]/x?a=b");
        for bad in [
            "ftp://x/y",
            "vps/whip",
            "http:///whip",
            "http://h:0/",
            "http://h:99999/",
            "https://user:pw@h/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn locations_resolve_against_the_endpoint() {
        let u = Url::parse("https://vps.example.no:8443/live/cam0/whip").unwrap();
        assert_eq!(
            u.join("/resource/abc").unwrap().to_string(),
            "https://vps.example.no:8443/resource/abc"
        );
        assert_eq!(
            u.join("whip/abc").unwrap().to_string(),
            "https://vps.example.no:8443/live/cam0/whip/abc"
        );
        assert_eq!(
            u.join("http://other:80/r/1").unwrap().to_string(),
            "http://other/r/1"
        );
    }

    #[test]
    fn the_file_takes_forward_entries_and_errors_name_their_line() {
        let c = crate::config::Config::parse(
            "[[forward]]\npath = \"cam0\"\nurl = \"https://vps/cam0/whip\"\ntoken = \"abcdefgh1\"\n",
        )
        .unwrap();
        assert_eq!(c.forward.len(), 1);
        assert_eq!(c.forward[0].token.as_ref().unwrap().expose(), "abcdefgh1");
        let text = "[[forward]]\npath = \"cam0\"\nurl = \"http://a/w\"\n\n[[forward]]\npath = \"cam0\"\nurl = \"vps/w\"\n";
        let e = crate::config::Config::parse(text).unwrap_err().to_string();
        assert!(e.starts_with("7: forward 2: url"), "{e}");
    }

    #[test]
    fn entries_name_a_path_and_a_url_once() {
        let f = |path: &str, url: &str| Forward {
            path: path.into(),
            url: url.into(),
            token: None,
        };
        let paths = ["cam0", "cam1"];
        assert!(check(&[f("cam0", "http://v/cam0/whip")], &paths).is_ok());
        let e = check(&[f("cam9", "http://v/w")], &paths).unwrap_err();
        assert_eq!((e.0, e.1), (1, "path"));
        assert!(
            e.2.contains("cam9") && e.2.contains("cam0, cam1"),
            "{}",
            e.2
        );
        let e = check(&[f("cam0", "v/w")], &paths).unwrap_err();
        assert!(e.2.contains("http://"), "{}", e.2);
        let two = [f("cam0", "http://v/w"), f("cam0", "http://v/w")];
        assert_eq!(check(&two, &paths).unwrap_err().0, 2);
        let mut t = f("cam0", "http://v/w");
        t.token = Some(Secret::new("short"));
        let e = check(&[t], &paths).unwrap_err();
        assert_eq!(e.1, "token");
        assert!(!e.2.contains("short"), "the token itself is never shown");
    }
}
