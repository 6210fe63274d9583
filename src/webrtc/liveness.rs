//! Keeping ICE-lite sessions alive for peers that send media but no
//! consent checks.
//!
//! str0m's ICE-lite agent drops a pair 15 s after the peer's last STUN
//! binding request. Browsers send one every ~5 s (RFC 7675 consent), but
//! RFC 5245-era agents keep the path warm with binding *indications*, which
//! str0m rightly ignores: GStreamer 1.22's webrtcbin (libnice 0.1.21) viewed
//! and published for exactly 15 s and was then cut off with media flowing.
//! A peer that still sends us media from the selected address is present,
//! so for such a peer r58 hands str0m a binding request in its name,
//! authenticated with our own ICE password as a real check would be. A
//! peer that goes quiet gets no stand-in and times out as before.

use std::time::{Duration, Instant};

use str0m::IceCreds;
use str0m::ice::{StunMessage, TransId};

/// A stand-in is made when the peer's last real check is this old...
const CHECK_AGE: Duration = Duration::from_secs(5);
/// ...and its last media packet this recent.
const MEDIA_AGE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Liveness {
    remote_ufrag: String,
    last_check: Option<Instant>,
    last_media: Option<Instant>,
}

impl Liveness {
    pub fn new(remote_ufrag: &str) -> Liveness {
        Liveness {
            remote_ufrag: remote_ufrag.to_string(),
            last_check: None,
            last_media: None,
        }
    }

    /// Note a datagram from the session's peer (RFC 7983 demultiplexing:
    /// 0–3 STUN, the rest DTLS or SRTP/SRTCP).
    pub fn saw(&mut self, data: &[u8], now: Instant) {
        match data {
            // A binding request: message type 0x0001.
            [0x00, 0x01, ..] => self.last_check = Some(now),
            [0..=3, ..] => {}
            [_, ..] => self.last_media = Some(now),
            [] => {}
        }
    }

    /// Should str0m be handed a stand-in check now?
    pub fn due(&self, now: Instant) -> bool {
        let quiet = self
            .last_check
            .is_none_or(|t| now.duration_since(t) >= CHECK_AGE);
        let sending = self
            .last_media
            .is_some_and(|t| now.duration_since(t) < MEDIA_AGE);
        quiet && sending
    }

    /// The binding request the peer did not send: `local` is our side's
    /// ICE credentials (the USERNAME starts with our ufrag and the
    /// MESSAGE-INTEGRITY key is our password, RFC 8445 §7.2.2).
    pub fn stand_in(&mut self, local: &IceCreds, now: Instant) -> Option<Vec<u8>> {
        self.last_check = Some(now);
        let username = format!("{}:{}", local.ufrag, self.remote_ufrag);
        // The peer offered, so it is the controlling agent; a zero
        // priority and tie-breaker: the pair exists, nothing is decided.
        let msg = StunMessage::binding_request(&username, TransId::new(), true, 0, 0, false);
        let mut buf = vec![0u8; 256];
        let n = msg
            .to_bytes(Some(local.pass.as_bytes()), &mut buf, hmac_sha1)
            .ok()?;
        buf.truncate(n);
        Some(buf)
    }
}

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 20];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTCP: &[u8] = &[0x81, 0xc9, 0, 7];
    const CHECK: &[u8] = &[0x00, 0x01, 0, 0];
    const INDICATION: &[u8] = &[0x00, 0x11, 0, 0];

    #[test]
    fn media_without_checks_is_due_only_after_five_seconds() {
        let t0 = Instant::now();
        let mut l = Liveness::new("remote");
        assert!(!l.due(t0), "nothing seen yet");
        l.saw(CHECK, t0);
        l.saw(RTCP, t0 + Duration::from_secs(4));
        assert!(!l.due(t0 + Duration::from_secs(4)), "a check 4 s ago");
        // Indications keep NATs open but are not checks.
        l.saw(INDICATION, t0 + Duration::from_secs(5));
        assert!(l.due(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn a_quiet_peer_gets_no_stand_in() {
        let t0 = Instant::now();
        let mut l = Liveness::new("remote");
        l.saw(RTCP, t0);
        assert!(!l.due(t0 + Duration::from_secs(6)), "no media for 6 s");
    }

    #[test]
    fn the_stand_in_is_a_check_str0m_accepts() {
        // A real ICE-lite str0m agent must take it as the peer's check and
        // answer it from the right credentials.
        let local = IceCreds {
            ufrag: "loc1".into(),
            pass: "local-password-long-enough".into(),
        };
        let t0 = Instant::now();
        let mut l = Liveness::new("rem1");
        let pkt = l.stand_in(&local, t0).expect("encodes");
        assert!(!l.due(t0), "a stand-in counts as the latest check");
        let parsed = StunMessage::parse(&pkt).expect("parses as STUN");
        assert_eq!(parsed.username(), Some("loc1:rem1"));
        assert!(parsed.verify(local.pass.as_bytes(), hmac_sha1));
        assert!(!parsed.verify(b"another-password", hmac_sha1));
    }
}
