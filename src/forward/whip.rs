//! The WHIP client's side of RFC 9725, without I/O: what a reply to the
//! POST means (created, redirected, refused and why), the `Link` ICE
//! servers it lists, and the backoff between tries. The HTTP exchange
//! itself is in `http.rs`, the loop around it in `mod.rs`.

use std::time::Duration;

use crate::config::forward::Url;

/// Redirects followed for one POST before giving up (a loop).
pub const MAX_REDIRECTS: usize = 5;
/// Server text kept for status, so a chatty error page stays one line.
const TEXT_MAX: usize = 160;

/// What came back for an offer.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// 201: the session's resource (for PATCH and DELETE) and the answer.
    Created {
        resource: Url,
        answer: String,
        ice_servers: Vec<LinkServer>,
    },
    /// 307/308 (and 301/302, which some servers send): POST again there.
    Redirect(Url),
    /// Anything else: the status and the server's own words, for status.
    Refused { status: u16, text: String },
}

/// One `Link: <url>; rel="ice-server"` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkServer {
    pub url: String,
    pub username: Option<String>,
    /// Kept for TURN; `Debug` never prints it.
    pub credential: Option<crate::config::auth::Secret>,
}

/// Read a reply to a POST to `sent_to`.
pub fn read_reply(
    sent_to: &Url,
    status: u16,
    location: Option<&str>,
    links: &[&str],
    body: &[u8],
) -> Reply {
    let text = || one_line(&String::from_utf8_lossy(body));
    let located = |l: Option<&str>| l.map(|l| sent_to.join(l.trim()));
    match status {
        201 => match located(location) {
            Some(Ok(resource)) if body.starts_with(b"v=0") => Reply::Created {
                resource,
                answer: String::from_utf8_lossy(body).into_owned(),
                ice_servers: links.iter().flat_map(|l| parse_links(l)).collect(),
            },
            Some(Ok(_)) => Reply::Refused {
                status,
                text: "201 without an SDP answer".into(),
            },
            _ => Reply::Refused {
                status,
                text: "201 without a usable Location header".into(),
            },
        },
        301 | 302 | 307 | 308 => match located(location) {
            Some(Ok(u)) => Reply::Redirect(u),
            _ => Reply::Refused {
                status,
                text: "redirect without a usable Location header".into(),
            },
        },
        _ => Reply::Refused {
            status,
            text: text(),
        },
    }
}

/// A refusal as a person reads it: the status's meaning for WHIP, then
/// the server's own words.
pub fn refusal_text(status: u16, text: &str) -> String {
    let meaning = match status {
        400 => "the relay refused the offer",
        401 | 403 => "wrong or missing token",
        404 => "unknown path on the relay",
        406 | 415 | 488 => "the relay takes no codec this path carries",
        409 => "the relay's path is busy (another publisher)",
        429 | 503 => "the relay is busy",
        _ => "the relay refused",
    };
    if text.is_empty() {
        format!("HTTP {status}: {meaning}")
    } else {
        format!("HTTP {status}: {meaning}: {text}")
    }
}

fn one_line(s: &str) -> String {
    let mut t: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.len() > TEXT_MAX {
        let mut cut = TEXT_MAX;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
        t.push('…');
    }
    t
}

/// A trickle fragment (RFC 8840, `application/trickle-ice-sdpfrag`) with
/// one more candidate for the session `offer` began: the offer's ICE
/// credentials, its first media section and mid, and the candidate.
pub fn trickle_frag(offer: &str, candidate: &str) -> Option<String> {
    let attr = |name: &str| {
        offer
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(str::to_string))
    };
    let (ufrag, pwd) = (attr("a=ice-ufrag:")?, attr("a=ice-pwd:")?);
    let m = offer.lines().map(str::trim).find(|l| l.starts_with("m="))?;
    let mid = attr("a=mid:")?;
    Some(format!(
        "a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n{m}\r\na=mid:{mid}\r\na={candidate}\r\n"
    ))
}

/// The ICE servers in one `Link` header value (several may be joined by
/// commas); other relations are skipped.
pub fn parse_links(value: &str) -> Vec<LinkServer> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let url = rest[open + 1..open + close].trim().to_string();
        rest = &rest[open + close + 1..];
        // Parameters run to the next entry's '<' (commas inside quotes are
        // not expected in these values).
        let end = rest.find('<').unwrap_or(rest.len());
        let params = &rest[..end];
        let param = |name: &str| {
            params.split(';').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                (k.trim().eq_ignore_ascii_case(name)).then(|| {
                    v.trim()
                        .trim_end_matches(',')
                        .trim()
                        .trim_matches('"')
                        .to_string()
                })
            })
        };
        if param("rel").is_some_and(|r| r.eq_ignore_ascii_case("ice-server")) {
            out.push(LinkServer {
                url,
                username: param("username"),
                credential: param("credential").map(crate::config::auth::Secret::new),
            });
        }
    }
    out
}

/// Capped exponential backoff with jitter (1 s → 30 s): relays that come
/// back after an outage are not hit by every box at the same instant.
#[derive(Debug)]
pub struct Retry {
    next: Duration,
}

pub const RETRY_FIRST: Duration = Duration::from_secs(1);
pub const RETRY_CAP: Duration = Duration::from_secs(30);

impl Default for Retry {
    fn default() -> Self {
        Retry { next: RETRY_FIRST }
    }
}

impl Retry {
    /// The wait before the next try, given a random value in 0..1: between
    /// half and all of the current step, which then doubles.
    pub fn delay(&mut self, random: f64) -> Duration {
        let d = self.next.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0));
        self.next = (self.next * 2).min(RETRY_CAP);
        d
    }

    /// Forwarding worked for a while: the next failure starts small.
    pub fn reset(&mut self) {
        self.next = RETRY_FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("https://vps.example.no/cam0/whip").unwrap()
    }

    #[test]
    fn a_trickle_fragment_carries_the_offers_credentials_and_first_section() {
        let offer = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:secretpwd\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\n";
        let c = "candidate:1 1 udp 16777215 198.51.100.1 49160 typ relay raddr 0.0.0.0 rport 0";
        let f = trickle_frag(offer, c).unwrap();
        assert_eq!(
            f,
            format!(
                "a=ice-ufrag:abcd\r\na=ice-pwd:secretpwd\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na={c}\r\n"
            )
        );
        assert_eq!(trickle_frag("v=0\r\n", c), None);
    }

    #[test]
    fn created_gives_the_resource_the_answer_and_the_ice_servers() {
        let links = [
            "<stun:stun.example.net>; rel=\"ice-server\"",
            "<turn:turn.example.net?transport=udp>; rel=\"ice-server\"; username=\"u\"; \
             credential=\"p\"; credential-type=\"password\", <https://x/y>; rel=\"help\"",
        ];
        let r = read_reply(&url(), 201, Some("/cam0/whip/abc"), &links, b"v=0\r\n");
        let Reply::Created {
            resource,
            answer,
            ice_servers,
        } = r
        else {
            panic!("{r:?}");
        };
        assert_eq!(resource.to_string(), "https://vps.example.no/cam0/whip/abc");
        assert_eq!(answer, "v=0\r\n");
        assert_eq!(ice_servers.len(), 2);
        assert_eq!(ice_servers[0].url, "stun:stun.example.net");
        assert_eq!(ice_servers[1].username.as_deref(), Some("u"));
        assert_eq!(ice_servers[1].credential.as_ref().unwrap().expose(), "p");
        assert!(!format!("{ice_servers:?}").contains("\"p\""));
    }

    #[test]
    fn redirects_and_refusals_say_where_and_why() {
        let r = read_reply(&url(), 307, Some("https://other/whip"), &[], b"");
        assert_eq!(
            r,
            Reply::Redirect(Url::parse("https://other/whip").unwrap())
        );
        let r = read_reply(&url(), 401, None, &[], b"bad\n token\n");
        assert_eq!(
            r,
            Reply::Refused {
                status: 401,
                text: "bad token".into()
            }
        );
        assert_eq!(
            refusal_text(401, "bad token"),
            "HTTP 401: wrong or missing token: bad token"
        );
        assert!(refusal_text(404, "").contains("unknown path"));
        assert!(refusal_text(409, "").contains("busy"));
        // A 201 that cannot be used is a refusal with a reason.
        let r = read_reply(&url(), 201, None, &[], b"v=0");
        assert!(matches!(r, Reply::Refused { status: 201, text } if text.contains("Location")));
        let long = "x ".repeat(500);
        let Reply::Refused { text, .. } = read_reply(&url(), 500, None, &[], long.as_bytes())
        else {
            panic!()
        };
        assert!(text.len() <= TEXT_MAX + 3, "{}", text.len());
    }

    #[test]
    fn retries_back_off_from_one_to_thirty_seconds_with_jitter() {
        let mut r = Retry::default();
        let top: Vec<u64> = (0..7).map(|_| r.delay(1.0).as_secs()).collect();
        assert_eq!(top, [1, 2, 4, 8, 16, 30, 30]);
        r.reset();
        assert_eq!(r.delay(0.0), Duration::from_millis(500));
        assert_eq!(r.delay(0.5), Duration::from_millis(1500));
    }
}
