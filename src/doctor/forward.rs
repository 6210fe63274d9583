//! The doctor's forward checks (`[[forward]]`), pure like the rest: is each
//! path reaching its WHIP relay, and if not, what to do about it. The
//! facts come from the running daemon's `/v3/info` (`r58.forwards`).

use super::checks::{Check, Facts, Mark};
use crate::shapes::{self, ForwardFacts};
use crate::status::duration;
use crate::vocab::ForwardState;

pub fn checks(f: &Facts) -> Vec<Check> {
    let Ok(info) = &f.info else {
        return Vec::new(); // the daemon check already says it is down
    };
    let list: Vec<ForwardFacts> = shapes::read(&info["r58"]["forwards"]);
    list.iter().map(check).collect()
}

fn check(f: &ForwardFacts) -> Check {
    let to = format!("{} -> {}", f.path, relay_of(&f.url));
    let why = f.last_error.as_deref().unwrap_or("");
    match f.state {
        ForwardState::Forwarding => {
            let mut detail = format!(
                "{to} for {}, {:.1} Mbit/s",
                duration(f.since_seconds),
                f.bitrate_bps as f64 / 1e6
            );
            if let Some(ms) = f.rtt_ms {
                detail += &format!(", rtt {ms} ms");
            }
            Check::new(Mark::Ok, "forward", detail)
        }
        ForwardState::Waiting => Check::new(
            Mark::Warn,
            "forward",
            match why {
                "" => format!("{to}: waiting for the path"),
                w => format!("{to}: waiting: {w}"),
            },
        )
        .hint(format!(
            "forwarding starts by itself once {} streams; r58 status shows the path",
            f.path
        )),
        // A first try under way is not a fault yet.
        ForwardState::Connecting if f.attempts <= 1 => {
            Check::new(Mark::Warn, "forward", format!("{to}: connecting"))
        }
        ForwardState::Connecting | ForwardState::Retrying => Check::new(
            Mark::Fail,
            "forward",
            match why {
                "" => format!("{to}: not forwarding ({} tries)", f.attempts),
                w => format!("{to}: {w} ({} tries)", f.attempts),
            },
        )
        .hint(hint_for(why, &f.url)),
    }
}

/// "vps.example.no/cam0/whip": the scheme adds nothing on 80 columns.
fn relay_of(url: &str) -> &str {
    url.trim_start_matches("https://")
        .trim_start_matches("http://")
}

/// What a technician can do about each kind of failure. The texts are
/// the ones `forward::whip::refusal_text` and `forward::http` produce.
fn hint_for(why: &str, url: &str) -> String {
    let host = host_of(url);
    let has = |s: &str| why.contains(s);
    if has("HTTP 401") || has("HTTP 403") {
        "the relay refused the token: check forward.token against the relay's".into()
    } else if has("HTTP 404") {
        "the relay has no such path: check the url's path against the relay's config".into()
    } else if has("HTTP 409") {
        "another publisher holds that path on the relay; stop it or use another path".into()
    } else if has("codec") {
        "the relay does not take this path's codec: use H.264 (codec = \"h264\")".into()
    } else if has("TURN") {
        "media needs the relay's TURN server and it failed: check the credentials \
         the relay hands out (its ice_servers) and that the TURN port is open from the box \
         (UDP, or TCP for turn:…?transport=tcp and turns:)"
            .into()
    } else if has("ICE") || has("nothing from the relay") || has("stopped answering") {
        format!(
            "HTTP works but media does not: does {host}'s firewall let UDP through, \
             and does the relay's answer name an address the box can reach?"
        )
    } else if has("TLS") || has("certificate") || has("CA ") {
        format!(
            "check {host}'s certificate and the clock (timedatectl); the box trusts {}",
            crate::forward::http::CA_BUNDLE
        )
    } else if has("HTTP ") {
        format!("the relay refused the offer: see its log on {host}")
    } else {
        format!("is the relay up? curl -sI {url} from the box; is its server running?")
    }
}

fn host_of(url: &str) -> &str {
    let rest = relay_of(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.starts_with('[') {
        // An IPv6 literal keeps its brackets; its colons are not a port.
        return authority.find(']').map_or(authority, |e| &authority[..=e]);
    }
    authority.split(':').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(state: ForwardState, error: Option<&str>, attempts: u64) -> ForwardFacts {
        ForwardFacts {
            path: "cam0".into(),
            url: "https://vps.example.no:8889/cam0/whip".into(),
            state,
            since_seconds: 7260,
            bitrate_bps: 2_100_000,
            rtt_ms: Some(23),
            last_error: error.map(str::to_string),
            attempts,
            ..Default::default()
        }
    }

    #[test]
    fn a_live_forward_is_ok_with_its_rate_and_rtt() {
        let c = check(&facts(ForwardState::Forwarding, None, 1));
        assert!(matches!(c.mark, Mark::Ok));
        assert_eq!(
            c.detail,
            "cam0 -> vps.example.no:8889/cam0/whip for 2h01m, 2.1 Mbit/s, rtt 23 ms"
        );
        assert!(c.hint.is_none());
    }

    #[test]
    fn each_failure_gets_its_own_hint() {
        let cases = [
            ("HTTP 401: wrong or missing token", "forward.token"),
            ("HTTP 404: unknown path on the relay", "no such path"),
            ("HTTP 409: the relay's path is busy", "another publisher"),
            (
                "TLS with vps.example.no:8889: invalid peer certificate",
                "timedatectl",
            ),
            ("nothing from the relay for 6 s", "UDP"),
            ("ICE/DTLS with the relay did not complete", "UDP"),
            (
                "ICE/DTLS with the relay did not complete; TURN: wrong TURN username or credential",
                "TURN port",
            ),
            (
                "connecting to vps.example.no:8889: Connection refused",
                "curl -sI https://vps.example.no:8889/cam0/whip",
            ),
        ];
        for (why, hint) in cases {
            let c = check(&facts(ForwardState::Retrying, Some(why), 4));
            assert!(matches!(c.mark, Mark::Fail), "{why}");
            assert!(c.detail.contains(why) && c.detail.ends_with("(4 tries)"));
            let h = c.hint.unwrap();
            assert!(h.contains(hint), "{why}: {h}");
            assert!(h.contains("vps.example.no") || !hint.contains("vps"), "{h}");
        }
    }

    #[test]
    fn waiting_and_a_first_connect_are_warnings_not_failures() {
        let w = check(&facts(ForwardState::Waiting, Some("no publisher"), 0));
        assert!(matches!(w.mark, Mark::Warn));
        assert_eq!(
            w.detail,
            "cam0 -> vps.example.no:8889/cam0/whip: waiting: no publisher"
        );
        let c = check(&facts(ForwardState::Connecting, None, 1));
        assert!(matches!(c.mark, Mark::Warn));
        let again = check(&facts(ForwardState::Connecting, Some("HTTP 401: x"), 3));
        assert!(matches!(again.mark, Mark::Fail));
    }

    #[test]
    fn the_host_is_found_with_and_without_a_port() {
        assert_eq!(
            host_of("https://vps.example.no/cam0/whip"),
            "vps.example.no"
        );
        assert_eq!(host_of("http://10.0.0.2:8889/a/whip"), "10.0.0.2");
        assert_eq!(host_of("http://[fd00::2]:8889/a/whip"), "[fd00::2]");
        assert_eq!(host_of("http://[fd00::2]/a/whip"), "[fd00::2]");
    }
}
