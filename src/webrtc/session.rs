//! One WHEP viewer: a str0m `Rtc` in ICE-lite, RTP mode, plus the little
//! state the engine needs around it (which path, which payload type, its own
//! RTP sequence numbers over the path's shared payloads).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::Pt;
use str0m::media::{MediaKind, Mid};
use str0m::net::Protocol;
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, CandidateKind, Rtc};

use super::{Pair, SessionInfo};
use crate::hub::Frame;

/// Why an offer was refused; the HTTP layer maps these to status codes.
#[derive(Debug, PartialEq)]
pub enum OfferError {
    /// 400: the SDP is unusable; the text says what is missing.
    BadSdp(String),
    /// 404
    NoPath,
    /// 503 + Retry-After
    NotReady(String),
    /// 503: viewer limit
    Full(usize),
}

pub struct Session {
    pub id: u64,
    pub secret: String,
    pub path: Arc<str>,
    pub rtc: Rtc,
    pub ufrag: String,
    video: (Mid, Pt),
    /// Extended sequence number; starts low so no ROC signalling is needed.
    seq: u64,
    pub connected: bool,
    pub reading: bool,
    pub created: Instant,
    pub next_timeout: Instant,
    pub created_at: SystemTime,
    /// The HTTP client that made the offer.
    pub client: Option<SocketAddr>,
    /// What this session was offered, in SDP order.
    pub candidates: Vec<Candidate>,
    /// The client's own candidates (SDP and trickle), with their types.
    pub offered: Vec<(SocketAddr, &'static str)>,
    pub pair: Option<Pair>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// Text-level checks that give a person a useful 400 before str0m parses.
pub fn precheck(sdp: &str) -> Result<(), OfferError> {
    if !sdp.starts_with("v=0") {
        return Err(OfferError::BadSdp(
            "not an SDP offer (must start with v=0)".into(),
        ));
    }
    if !sdp.lines().any(|l| l.starts_with("m=video")) {
        return Err(OfferError::BadSdp("offer has no video m-line".into()));
    }
    let h264 = sdp
        .lines()
        .any(|l| l.starts_with("a=rtpmap:") && l.to_ascii_uppercase().contains(" H264/90000"));
    if !h264 {
        return Err(OfferError::BadSdp(
            "offer has no H264 codec; this path is H.264".into(),
        ));
    }
    if !sdp.lines().any(|l| l.starts_with("a=ice-ufrag:")) {
        return Err(OfferError::BadSdp("offer has no a=ice-ufrag".into()));
    }
    if !sdp.lines().any(|l| l.starts_with("a=fingerprint:")) {
        return Err(OfferError::BadSdp(
            "offer has no a=fingerprint (DTLS is required)".into(),
        ));
    }
    Ok(())
}

impl Session {
    /// Build the answer for a viewer's offer. `profile` is the path's
    /// profile-level-id as read from its SPS, preferred when offered.
    pub fn accept(
        id: u64,
        secret: String,
        path: Arc<str>,
        offer: &str,
        candidates: Vec<Candidate>,
        cert: &str0m::config::DtlsCert,
        profile: Option<u32>,
        now: Instant,
    ) -> Result<(Session, String), OfferError> {
        precheck(offer)?;
        let parsed = SdpOffer::from_sdp_string(offer)
            .map_err(|e| OfferError::BadSdp(format!("unparsable SDP: {e}")))?;
        let mut cfg = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .set_dtls_cert(cert.clone())
            .clear_codecs();
        // Constrained baseline first (what x264 and MPP baseline emit), then
        // baseline. Level 3.1 with asymmetry allowed covers 720p and 1080p.
        let mut profiles = [0x42e01f, 0x42001f];
        if profile.is_some_and(|p| p >> 16 == 0x42 && (p >> 8) & 0x40 == 0) {
            profiles.reverse();
        }
        let codecs = cfg.codec_config();
        codecs.add_h264(108.into(), Some(109.into()), true, profiles[0]);
        codecs.add_h264(127.into(), Some(121.into()), true, profiles[1]);
        let mut rtc = cfg.build(now);
        for c in &candidates {
            rtc.add_local_candidate(c.clone());
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(parsed)
            .map_err(|e| OfferError::BadSdp(format!("offer not acceptable: {e}")))?;
        let mids: Vec<Mid> = offer
            .lines()
            .filter_map(|l| l.strip_prefix("a=mid:"))
            .map(|m| Mid::from(m.trim()))
            .collect();
        let video = negotiated_video(&rtc, &mids).ok_or_else(|| {
            OfferError::BadSdp(
                "offer has no receivable video with H264 packetization-mode=1".into(),
            )
        })?;
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        let offered = offer
            .lines()
            .filter_map(|l| l.trim().strip_prefix("a="))
            .filter_map(|l| Candidate::from_sdp_string(l).ok())
            .map(|c| (c.addr(), kind_name(c.kind())))
            .collect();
        let s = Session {
            id,
            secret,
            path,
            rtc,
            ufrag,
            video,
            seq: 1 + (id * 7919) % 20_000,
            connected: false,
            reading: false,
            created: now,
            next_timeout: now,
            created_at: SystemTime::now(),
            client: None,
            candidates,
            offered,
            pair: None,
            bytes_sent: 0,
            bytes_received: 0,
        };
        Ok((s, answer.to_sdp_string()))
    }

    /// Queue one frame's shared payloads on this viewer's stream.
    pub fn write_frame(&mut self, f: &Frame, now: Instant) {
        let (mid, pt) = self.video;
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else {
            return;
        };
        let last = f.payloads.len().saturating_sub(1);
        for (i, p) in f.payloads.iter().enumerate() {
            let seq: SeqNo = self.seq.into();
            self.seq += 1;
            tx.write_rtp(
                RtpWrite::new(pt, seq, f.rtp_time, now, p.clone())
                    .marker(i == last)
                    .nackable(true),
            );
        }
        self.bytes_sent += f.bytes as u64;
    }

    /// A trickled candidate from PATCH.
    pub fn add_remote_candidate(&mut self, c: Candidate) {
        self.offered.push((c.addr(), kind_name(c.kind())));
        self.rtc.add_remote_candidate(c);
    }

    /// Record the pair a packet went out on; log when media moves.
    pub fn note_pair(&mut self, proto: Protocol, local: SocketAddr, remote: SocketAddr) {
        if self
            .pair
            .as_ref()
            .is_some_and(|p| p.local == local && p.remote == remote)
        {
            return;
        }
        let remote_kind = self
            .offered
            .iter()
            .find(|(a, _)| *a == remote)
            .map(|(_, k)| *k)
            .unwrap_or("prflx");
        let proto = if proto == Protocol::Udp { "udp" } else { "tcp" };
        self.pair = Some(Pair {
            proto,
            local,
            remote_kind,
            remote,
        });
        if self.reading {
            log::info!("whep {}: media moved, {}", self.id, self.pair_text());
        }
    }

    /// "via tcp 1.2.3.4:18190 (host) <-> 10.0.0.2:41234 (prflx)"
    pub fn pair_text(&self) -> String {
        match &self.pair {
            Some(p) => format!(
                "via {} {} (host) <-> {} ({})",
                p.proto, p.local, p.remote, p.remote_kind
            ),
            None => "no candidate pair".into(),
        }
    }

    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            id: format!("{:016x}", self.id),
            path: self.path.clone(),
            created: self.created_at,
            client: self.client.unwrap_or_else(|| ([0, 0, 0, 0], 0).into()),
            connected: self.connected,
            pair: self.pair.clone(),
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
        }
    }
}

fn kind_name(k: CandidateKind) -> &'static str {
    match k {
        CandidateKind::Host => "host",
        CandidateKind::PeerReflexive => "prflx",
        CandidateKind::ServerReflexive => "srflx",
        CandidateKind::Relayed => "relay",
    }
}

/// The video m-line we send on and the H.264 pt the browser accepted.
fn negotiated_video(rtc: &Rtc, mids: &[Mid]) -> Option<(Mid, Pt)> {
    let params = rtc.codec_config().params();
    for p in params {
        let spec = p.spec();
        if spec.codec != Codec::H264 || spec.format.packetization_mode != Some(1) {
            continue;
        }
        // Find a video media that lists this pt.
        for &mid in mids {
            let Some(m) = rtc.media(mid) else { continue };
            if m.kind() == MediaKind::Video
                && m.direction().is_sending()
                && m.remote_pts().contains(&p.pt())
            {
                return Some((mid, p.pt()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precheck_says_what_is_missing() {
        let e = |s: &str| match precheck(s) {
            Err(OfferError::BadSdp(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(e("hello").contains("v=0"));
        assert!(e("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n").contains("no video"));
        assert!(
            e("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n")
                .contains("no H264")
        );
        let no_fp = "v=0\r\nm=video 9 X 96\r\na=rtpmap:96 H264/90000\r\na=ice-ufrag:x\r\n";
        assert!(e(no_fp).contains("fingerprint"));
    }
}
