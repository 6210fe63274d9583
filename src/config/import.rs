//! `r58 config import mediamtx.yml`: the fleet's MediaMTX settings as an
//! r58.toml, plus the list of every key that has no r58 equivalent, so a
//! migration never silently drops a setting.

use std::fmt::Write;

use super::yaml::{self, Yaml};
use crate::error::{Error, Result};

/// The r58.toml text, and the keys not mapped (`key (line N): why`).
pub fn mediamtx(src: &str) -> Result<(String, Vec<String>)> {
    let y = yaml::parse(src).map_err(Error::new)?;
    let Yaml::Map(top) = &y else {
        return Err(Error::new("the file is not a YAML mapping of settings"));
    };
    let mut skipped = Vec::new();
    let mut http = String::new();
    let mut api = String::new();
    let mut webrtc = String::new();
    let mut paths = String::new();
    let (mut udp_port, mut tcp_port) = (8189u16, 8190u16);
    let mut hosts: Vec<String> = Vec::new();
    let mut ice: Vec<String> = Vec::new();
    for (key, line, v) in top {
        let skip = |why: &str| format!("{key} (line {line}): {why}");
        match key.as_str() {
            "webrtc" | "api" | "webrtcIPsFromInterfaces" | "webrtcSTUNGatherTimeout" => {
                // r58 always serves both, uses interfaces, and never gathers.
            }
            "webrtcAddress" | "apiAddress" => match listen_addr(v) {
                Some(a) if key == "webrtcAddress" => writeln!(http, "listen = \"{a}\"").unwrap(),
                Some(a) => writeln!(api, "listen = \"{a}\"").unwrap(),
                None => skipped.push(skip("not an address")),
            },
            "webrtcAllowOrigins" | "webrtcAllowOrigin" => {
                let origins: Vec<String> = strings(v).iter().flat_map(|o| origin(o)).collect();
                writeln!(http, "allow_origins = {}", toml_list(&origins)).unwrap();
            }
            "webrtcLocalUDPAddress" | "webrtcICEUDPMuxAddress" => match port_of(v) {
                Some(p) => udp_port = p,
                None => skipped.push(skip("r58 needs its UDP port")),
            },
            "webrtcLocalTCPAddress" | "webrtcICETCPMuxAddress" => {
                tcp_port = port_of(v).unwrap_or(0)
            }
            "webrtcIPsFromInterfacesList" => {
                let names = strings(v);
                if !names.is_empty() {
                    writeln!(webrtc, "interfaces = {}", toml_list(&names)).unwrap();
                }
            }
            "webrtcAdditionalHosts" | "webrtcICEHostNAT1To1IPs" => {
                hosts.extend(strings(v));
            }
            "webrtcICEServers2" | "webrtcICEServers" => {
                ice.extend(v.as_list().iter().map(ice_server));
            }
            "paths" => {
                let Yaml::Map(ps) = v else { continue };
                for (name, pline, p) in ps {
                    path(name, *pline, p, &mut paths, &mut skipped);
                }
            }
            _ => skipped.push(skip("no r58 equivalent")),
        }
    }
    if !ice.is_empty() {
        writeln!(webrtc, "ice_servers = [\n  {},\n]", ice.join(",\n  ")).unwrap();
    }
    writeln!(webrtc, "udp_port = {udp_port}").unwrap();
    writeln!(webrtc, "tcp_port = {tcp_port}").unwrap();
    if !hosts.is_empty() {
        // MediaMTX advertises these with the local port numbers. r58 can
        // carry the forwarder's own ports, which makes UDP over FRP work.
        webrtc.push_str(
            "# MediaMTX advertised these with the local ports. Put the ports your forwarder\n\
             # really listens on (the fleet's frpc: udp 8189 -> 18189, tcp 8190 -> 8190).\n",
        );
        let items: Vec<String> = hosts
            .iter()
            .map(|h| {
                format!(
                    "  {{ host = {}, udp_port = {udp_port}, tcp_port = {tcp_port} }},",
                    quote(h)
                )
            })
            .collect();
        writeln!(webrtc, "additional_hosts = [\n{}\n]", items.join("\n")).unwrap();
    }
    let mut out =
        String::from("# r58.toml imported from a MediaMTX configuration by `r58 config import`.\n");
    for (name, body) in [("http", &http), ("api", &api), ("webrtc", &webrtc)] {
        if !body.is_empty() {
            write!(out, "\n[{name}]\n{body}").unwrap();
        }
    }
    if !paths.is_empty() {
        out.push_str(
            "\n# MediaMTX only relays; r58 captures. Paths r58 should capture itself\n\
             # (cam0..cam3) want source = \"hdmi\" or \"v4l2\" instead of \"publisher\".\n",
        );
    }
    out.push_str(&paths);
    if !skipped.is_empty() {
        out.push_str("\n# Not imported:\n");
        for s in &skipped {
            writeln!(out, "#   {s}").unwrap();
        }
    }
    Ok((out, skipped))
}

/// One ICE server as an inline table.
fn ice_server(s: &Yaml) -> String {
    // webrtcICEServers (old) is a list of URLs; webrtcICEServers2 of maps.
    let url = s.as_str().or_else(|| s.get("url")?.as_str()).unwrap_or("");
    let field = |k: &str| s.get(k).and_then(Yaml::as_str);
    let auth = match (field("username"), field("password")) {
        // MediaMTX's marker for coturn REST credentials minted per session.
        (Some("AUTH_SECRET"), Some(p)) => format!(", secret = {}", quote(p)),
        (Some(u), Some(p)) => format!(", username = {}, credential = {}", quote(u), quote(p)),
        _ => String::new(),
    };
    format!("{{ urls = {}{auth} }}", quote(url))
}

fn path(name: &str, line: usize, p: &Yaml, out: &mut String, skipped: &mut Vec<String>) {
    if name == "all_others" || name.starts_with('~') || !super::valid_path_name(name) {
        skipped.push(format!(
            "paths.{name} (line {line}): r58 serves only named paths"
        ));
        return;
    }
    // MediaMTX's default source is "publisher".
    let source = p
        .get("source")
        .and_then(Yaml::as_str)
        .unwrap_or("publisher");
    if source != "publisher" {
        skipped.push(format!(
            "paths.{name} (line {line}): source \"{source}\" has no r58 equivalent"
        ));
        return;
    }
    write!(out, "\n[paths.{name}]\nsource = \"publisher\"\n").unwrap();
    if let Yaml::Map(keys) = p {
        for (k, kline, _) in keys.iter().filter(|(k, _, _)| k != "source") {
            skipped.push(format!(
                "paths.{name}.{k} (line {kline}): no r58 equivalent"
            ));
        }
    }
}

/// A list of strings, or one string as a list of one.
fn strings(v: &Yaml) -> Vec<String> {
    match v {
        Yaml::Str(s) => vec![s.clone()],
        _ => v
            .as_list()
            .iter()
            .filter_map(Yaml::as_str)
            .map(String::from)
            .collect(),
    }
}

/// `:8889` → `0.0.0.0:8889`, `127.0.0.1:9997` as it is.
fn listen_addr(v: &Yaml) -> Option<String> {
    let s = v.as_str()?;
    let a = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    a.parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.to_string())
}

fn port_of(v: &Yaml) -> Option<u16> {
    v.as_str()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// MediaMTX allows bare `*.example.no`; r58 wants the scheme.
fn origin(o: &str) -> Vec<String> {
    if o == "*" || o.starts_with("http://") || o.starts_with("https://") {
        vec![o.to_string()]
    } else {
        vec![format!("https://{o}"), format!("http://{o}")]
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn toml_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| quote(s))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Source};

    const DESIGN_NOTE: &str = r#"
webrtcICEServers2:
  - url: stun:stun.l.google.com:19302
  - url: turn:vps.example.no:3478
    username: AUTH_SECRET
    password: s3cret
webrtcICEHostNAT1To1IPs: ["65.109.32.111"]
webrtcLocalUDPAddress: :8189
webrtcLocalTCPAddress: :8190
webrtcAllowOrigins: ['*.preke.no', 'http://localhost:*']
webrtcEncryption: no
hlsAlwaysRemux: yes
paths:
  cam0:
    source: publisher
  mixer_program:
    sourceOnDemand: no
  all_others:
"#;

    #[test]
    fn design_note_config_becomes_a_valid_r58_toml() {
        let (toml, skipped) = mediamtx(DESIGN_NOTE).unwrap();
        let c = Config::parse(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        let w = &c.webrtc;
        assert_eq!((w.udp_port, w.tcp_port), (8189, 8190));
        assert_eq!(w.additional_hosts[0].host, "65.109.32.111");
        assert_eq!(w.additional_hosts[0].tcp_port, Some(8190));
        assert_eq!(w.ice_servers.len(), 2);
        assert_eq!(w.ice_servers[0].urls, "stun:stun.l.google.com:19302");
        assert_eq!(w.ice_servers[1].secret.as_ref().unwrap().expose(), "s3cret");
        assert!(
            c.http
                .allow_origins
                .contains(&"https://*.preke.no".to_string())
        );
        assert!(
            c.http
                .allow_origins
                .contains(&"http://localhost:*".to_string())
        );
        assert_eq!(c.paths.len(), 2);
        assert_eq!(c.paths["mixer_program"].source, Source::Publisher);
        let keys: Vec<&str> = skipped
            .iter()
            .map(|s| s.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "webrtcEncryption",
                "hlsAlwaysRemux",
                "paths.mixer_program.sourceOnDemand",
                "paths.all_others"
            ]
        );
        assert!(skipped[0].contains("(line 11)"), "{skipped:?}");
        assert!(toml.contains("#   hlsAlwaysRemux (line 12)"), "{toml}");
    }

    #[test]
    fn unreadable_yaml_says_where() {
        let e = mediamtx("paths:\n  cam0: &a\n").unwrap_err().to_string();
        assert!(e.starts_with("line 2:"), "{e}");
    }
}
