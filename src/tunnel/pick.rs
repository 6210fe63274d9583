//! Which frp wire protocol to speak to the server. `auto` tries v2 (frps
//! ≥ 0.69; frp plans to drop v1) and, when the server hangs up at v2's
//! magic as older frps does, falls back to v1 and remembers that, in a
//! file beside the run id, for a day: then v2 is tried again, in case
//! frps was updated. Sans-IO: the caller reads and writes the file.

use super::msg::Wire;
use crate::config::tunnel::WireChoice;

/// How long a server that refused v2 is spoken to in v1 only.
pub const RETRY_V2_AFTER: i64 = 24 * 3600;

pub struct Pick {
    choice: WireChoice,
    server: String,
    /// When this server last refused v2 (unix seconds).
    refused_v2: Option<i64>,
}

impl Pick {
    /// `remembered`: the file's text from an earlier run, if any.
    pub fn new(choice: WireChoice, server: &str, remembered: Option<&str>) -> Pick {
        // "v1 <server> <unix>": only for the same server.
        let refused_v2 = remembered.and_then(|t| {
            let mut w = t.split_whitespace();
            match (w.next(), w.next(), w.next()) {
                (Some("v1"), Some(s), Some(at)) if s == server => at.parse().ok(),
                _ => None,
            }
        });
        Pick {
            choice,
            server: server.into(),
            refused_v2,
        }
    }

    /// The protocol for the next connection.
    pub fn wire(&self, now: i64) -> Wire {
        match self.choice {
            WireChoice::V1 => Wire::V1,
            WireChoice::V2 => Wire::V2,
            WireChoice::Auto => match self.refused_v2 {
                Some(at) if now.saturating_sub(at) < RETRY_V2_AFTER => Wire::V1,
                _ => Wire::V2,
            },
        }
    }

    /// The server closed the connection at v2's magic. With `auto`, v1
    /// from now on: the text to save (None: nothing changes).
    pub fn v2_refused(&mut self, now: i64) -> Option<String> {
        if self.choice != WireChoice::Auto {
            return None;
        }
        self.refused_v2 = Some(now);
        Some(format!("v1 {} {now}\n", self.server))
    }

    /// The server hung up on a v1 Login without a word, as an frps that
    /// has dropped v1 would. With `auto`, v2 again: the text to save.
    /// (So a hang-up that was only a restart of frps during a v2 login
    /// costs one more attempt, not a day in the wrong protocol.)
    pub fn v1_refused(&mut self) -> Option<String> {
        if self.choice != WireChoice::Auto {
            return None;
        }
        self.refused_v2.take()?;
        Some(format!("v2 {}\n", self.server))
    }

    /// A login with `wire` worked: the text to save if that is news.
    pub fn logged_in(&mut self, wire: Wire) -> Option<String> {
        if self.choice != WireChoice::Auto || wire != Wire::V2 {
            return None;
        }
        self.refused_v2.take()?;
        Some(format!("v2 {}\n", self.server))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_796_000_000;

    #[test]
    fn auto_tries_v2_then_keeps_to_v1_for_a_day() {
        let mut p = Pick::new(WireChoice::Auto, "vps:7000", None);
        assert_eq!(p.wire(T), Wire::V2);
        let saved = p.v2_refused(T).unwrap();
        assert_eq!(saved, format!("v1 vps:7000 {T}\n"));
        assert_eq!(p.wire(T + 60), Wire::V1);
        assert_eq!(p.logged_in(Wire::V1), None, "nothing new to save");
        // A restart reads the file back.
        let p = Pick::new(WireChoice::Auto, "vps:7000", Some(&saved));
        assert_eq!(p.wire(T + 3600), Wire::V1);
        assert_eq!(p.wire(T + RETRY_V2_AFTER), Wire::V2, "a day later");
    }

    #[test]
    fn a_server_that_now_speaks_v2_is_remembered_as_such() {
        let mut p = Pick::new(
            WireChoice::Auto,
            "vps:7000",
            Some(&format!("v1 vps:7000 {T}")),
        );
        assert_eq!(p.wire(T + RETRY_V2_AFTER + 1), Wire::V2);
        assert_eq!(p.logged_in(Wire::V2), Some("v2 vps:7000\n".into()));
        assert_eq!(p.wire(T + RETRY_V2_AFTER + 2), Wire::V2);
        assert_eq!(p.logged_in(Wire::V2), None);
    }

    #[test]
    fn a_server_that_hangs_up_on_v1_gets_v2_again_at_once() {
        let mut p = Pick::new(WireChoice::Auto, "vps:7000", None);
        p.v2_refused(T);
        assert_eq!(p.wire(T + 1), Wire::V1);
        assert_eq!(p.v1_refused(), Some("v2 vps:7000\n".into()));
        assert_eq!(p.wire(T + 2), Wire::V2);
        assert_eq!(p.v1_refused(), None, "nothing remembered: nothing to undo");
        let mut v1 = Pick::new(WireChoice::V1, "vps:7000", None);
        assert_eq!(v1.v1_refused(), None);
        assert_eq!(v1.wire(T), Wire::V1, "v1 as configured stays v1");
    }

    #[test]
    fn another_servers_memory_and_explicit_choices_are_left_alone() {
        let other = format!("v1 old-vps:7000 {T}");
        assert_eq!(
            Pick::new(WireChoice::Auto, "vps:7000", Some(&other)).wire(T),
            Wire::V2
        );
        let mut v2 = Pick::new(WireChoice::V2, "vps:7000", None);
        assert_eq!(v2.v2_refused(T), None);
        assert_eq!(v2.wire(T), Wire::V2, "v2 as configured, refused or not");
        let v1 = Pick::new(WireChoice::V1, "vps:7000", None);
        assert_eq!(v1.wire(T), Wire::V1);
        assert_eq!(
            Pick::new(WireChoice::Auto, "vps:7000", Some("garbage")).wire(T),
            Wire::V2
        );
    }
}
