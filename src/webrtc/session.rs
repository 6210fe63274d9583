//! One WebRTC peer: a str0m `Rtc` in ICE-lite, RTP mode, plus the little
//! state the engine needs around it. A viewer (WHEP) is sent a path's units
//! under its own sequence numbers; a publisher (WHIP) is the source of a
//! path's relayed packets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use str0m::change::SdpOffer;
use str0m::format::{Codec, CodecConfig};
use str0m::media::Pt;
use str0m::media::{MediaKind, Mid};
use str0m::net::Protocol;
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, CandidateKind, Rtc};

pub use super::drained::Drained;
pub use super::inbound::Inbound;
use super::layers::{REPORT_EVERY, View};
use super::liveness::Liveness;
use super::relay::{self, Carried};
use super::{Pair, RtpCounts, SessionInfo};
use crate::hub::{Frame, Track};
use crate::vocab::SessionId;

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
    /// 406: no codec in common; the text names what the path carries.
    Codec(String),
    /// 409: the path takes no (further) publisher; the text says why.
    Conflict(String),
}

/// What a viewer is sent: the path's own encoder output (H.264 with the
/// profile read from its SPS), or what a publisher sends.
pub enum Plan<'a> {
    /// `audio`: the path sends Opus too.
    Encoder {
        profile: Option<u32>,
        audio: bool,
    },
    Relay(&'a Carried),
}

pub enum Role {
    Viewer(Outbound),
    Publisher(Inbound),
}

pub struct Outbound {
    pub(super) video: (Mid, Pt),
    pub(super) audio: Option<(Mid, Pt)>,
    /// Next sequence number per track (video, audio). Extended numbers
    /// start low, so no ROC signalling is needed.
    seq: [u64; 2],
    /// Relayed units: the offset from the path's numbering to this viewer's.
    base: [Option<i64>; 2],
}

pub struct Session {
    pub id: u64,
    pub secret: String,
    pub path: Arc<str>,
    pub rtc: Rtc,
    pub ufrag: String,
    pub role: Role,
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
    pub rtp: RtpCounts,
    /// Stand-in consent checks for peers that send none.
    pub liveness: Liveness,
    /// Viewers: the layer read and how the link is doing.
    pub view: View,
    pub user_agent: Option<String>,
    /// Events seen while pumping frames, for the next `drive`.
    pub seen: Drained,
    /// A forward to a WHIP relay (r58 made the offer): `forward.rs`.
    pub forward: Option<super::forward::Leg>,
}

/// What every new session starts from.
pub struct Ticket<'a> {
    pub id: u64,
    /// The unguessable part of the session URL.
    pub secret: String,
    pub path: Arc<str>,
    pub offer: &'a str,
    /// What the client is told about, in SDP order.
    pub candidates: Vec<Candidate>,
    pub cert: str0m::config::DtlsCert,
    /// Estimate this viewer's bandwidth (TWCC), starting from this many
    /// bit/s: viewers of paths with renditions.
    pub bwe: Option<u32>,
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

/// The offer's `a=ice-ufrag` (precheck made sure there is one; with
/// BUNDLE every m-line carries the same).
fn remote_ufrag(sdp: &str) -> &str {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .unwrap_or("")
}

/// Does the offer list `codec` (an `a=rtpmap` name such as "H264")?
pub(super) fn offers(sdp: &str, codec: &str) -> bool {
    let want = format!(" {}/", codec.to_ascii_uppercase());
    sdp.lines()
        .any(|l| l.starts_with("a=rtpmap:") && l.to_ascii_uppercase().contains(&want))
}

/// What both kinds of session share: parse, negotiate, remember candidates.
pub(super) struct Negotiated {
    pub rtc: Rtc,
    /// The SDP for the peer: our answer (or, for a forward, our offer).
    pub answer: String,
    pub mids: Vec<Mid>,
}

pub(super) fn negotiate(
    t: &Ticket,
    codecs: impl FnOnce(&mut CodecConfig),
    now: Instant,
) -> Result<Negotiated, OfferError> {
    let parsed = SdpOffer::from_sdp_string(t.offer)
        .map_err(|e| OfferError::BadSdp(format!("unparsable SDP: {e}")))?;
    let mut cfg = Rtc::builder()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .set_stats_interval(Some(REPORT_EVERY))
        .set_dtls_cert(t.cert.clone())
        .clear_codecs();
    codecs(cfg.codec_config());
    if let Some(b) = t.bwe {
        cfg = cfg.enable_bwe(Some(str0m::bwe::Bitrate::bps(u64::from(b))));
    }
    let mut rtc = cfg.build(now);
    for c in &t.candidates {
        rtc.add_local_candidate(c.clone());
    }
    let answer = rtc
        .sdp_api()
        .accept_offer(parsed)
        .map_err(|e| OfferError::BadSdp(format!("offer not acceptable: {e}")))?;
    let mids = t
        .offer
        .lines()
        .filter_map(|l| l.strip_prefix("a=mid:"))
        .map(|m| Mid::from(m.trim()))
        .collect();
    Ok(Negotiated {
        rtc,
        answer: super::msid::one_stream(&answer.to_sdp_string()),
        mids,
    })
}

impl Outbound {
    pub(super) fn new(id: u64, video: (Mid, Pt), audio: Option<(Mid, Pt)>) -> Outbound {
        Outbound {
            video,
            audio,
            seq: [1 + (id * 7919) % 20_000, 1 + (id * 4099) % 20_000],
            base: [None, None],
        }
    }
}

impl Session {
    /// Build the answer for a viewer's offer.
    pub fn accept(t: Ticket, plan: Plan, now: Instant) -> Result<(Session, String), OfferError> {
        let (offer, path) = (t.offer, &t.path);
        precheck(offer)?;
        let n = match plan {
            Plan::Encoder { profile, audio } => {
                if !offers(offer, "H264") {
                    return Err(OfferError::BadSdp(
                        "offer has no H264 codec; this path is H.264".into(),
                    ));
                }
                negotiate(&t, |c| encoder_codecs(c, profile, audio), now)?
            }
            Plan::Relay(carried) => {
                let name = relay::codec_name(carried.video.codec);
                if !offers(offer, name) {
                    return Err(OfferError::Codec(format!(
                        "path '{path}' carries {}; the offer has no {name} video",
                        carried.names().join(" + ")
                    )));
                }
                negotiate(&t, |c| relay::viewer_codecs(c, carried), now)?
            }
        };
        let video = negotiated(&n.rtc, &n.mids, MediaKind::Video).ok_or_else(|| {
            OfferError::BadSdp(
                "offer has no receivable video with a codec this path carries \
                 (H264 needs packetization-mode=1)"
                    .into(),
            )
        })?;
        let audio = negotiated(&n.rtc, &n.mids, MediaKind::Audio);
        let mut n = n;
        if t.bwe.is_some()
            && let Some(tx) = n.rtc.direct_api().stream_tx_by_mid(video.0, None)
        {
            // BWE is on for its estimate, not its pacer: frames the link
            // cannot take must wait in the hub (where a move to a smaller
            // layer drops them), not in a pacer queue that plays them
            // out seconds late.
            tx.set_unpaced(true);
        }
        let role = Role::Viewer(Outbound::new(t.id, video, audio));
        Ok(Session::new(t, n, role, now))
    }

    pub(super) fn new(t: Ticket, mut n: Negotiated, role: Role, now: Instant) -> (Session, String) {
        let ufrag = n.rtc.direct_api().local_ice_credentials().ufrag;
        let offered = t
            .offer
            .lines()
            .filter_map(|l| l.trim().strip_prefix("a="))
            .filter_map(|l| Candidate::from_sdp_string(l).ok())
            .map(|c| (c.addr(), kind_name(c.kind())))
            .collect();
        let s = Session {
            id: t.id,
            secret: t.secret,
            path: t.path.clone(),
            rtc: n.rtc,
            ufrag,
            role,
            connected: false,
            reading: false,
            created: now,
            next_timeout: now,
            created_at: SystemTime::now(),
            client: None,
            candidates: t.candidates,
            offered,
            pair: None,
            bytes_sent: 0,
            bytes_received: 0,
            rtp: RtpCounts::default(),
            liveness: Liveness::new(remote_ufrag(t.offer)),
            view: View::new(&t.path),
            user_agent: None,
            seen: Drained::default(),
            forward: None,
        };
        (s, n.answer)
    }

    pub fn is_publisher(&self) -> bool {
        matches!(self.role, Role::Publisher(_))
    }

    /// A WHEP viewer: not a publisher, not a forward (those have their
    /// own lines in status and `/v3/forwards`, and no viewer slot).
    pub fn is_viewer(&self) -> bool {
        !self.is_publisher() && self.forward.is_none()
    }

    /// Drop the video's resend cache: after a move down, NACKs for the old
    /// layer's packets would only take the smaller layer's room.
    pub fn forget_resends(&mut self) {
        let tcp = self.pair.as_ref().is_some_and(|p| p.proto == "tcp");
        self.keep_resends(!tcp);
    }

    /// A resend cache for the video, or none: over ICE-TCP nothing is lost
    /// on the way (a batch the engine cannot queue is dropped whole and
    /// the viewer skips to a keyframe), and keeping 3 s of sent packets
    /// costs an insert per packet and about a megabyte per viewer.
    fn keep_resends(&mut self, keep: bool) {
        let Some(mid) = self.video_mid() else {
            return;
        };
        if let Some(tx) = self.rtc.direct_api().stream_tx_by_mid(mid, None) {
            if keep {
                // str0m's defaults: 1024 packets, 3 s, resends capped at 15 %.
                tx.set_rtx_cache(1024, Duration::from_secs(3), Some(0.15));
            } else {
                tx.set_rtx_cache(0, Duration::ZERO, None);
            }
        }
    }

    /// A viewer's video stream.
    pub fn video_mid(&self) -> Option<Mid> {
        match &self.role {
            Role::Viewer(o) => Some(o.video.0),
            Role::Publisher(_) => None,
        }
    }

    /// "whep", "whip" or "forward", for log lines.
    pub fn kind(&self) -> &'static str {
        if self.is_publisher() {
            "whip"
        } else if self.forward.is_some() {
            "forward"
        } else {
            "whep"
        }
    }

    /// The next relayed video unit comes from another numbering (a
    /// simulcast layer): this viewer's sequence numbers carry on from
    /// where they are.
    pub fn restart_numbering(&mut self) {
        if let Role::Viewer(o) = &mut self.role {
            o.base[0] = None;
        }
    }

    /// Queue one unit's shared payloads on this viewer's stream.
    pub fn write_frame(&mut self, f: &Frame, now: Instant) {
        let Role::Viewer(o) = &mut self.role else {
            return;
        };
        let (t, (mid, pt)) = match (f.track, o.audio) {
            (Track::Video, _) => (0, o.video),
            (Track::Audio, Some(a)) => (1, a),
            (Track::Audio, None) => return,
        };
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else {
            return;
        };
        let last = f.payloads.len().saturating_sub(1);
        for (i, p) in f.payloads.iter().enumerate() {
            let n = match f.seq {
                Some(s) => {
                    let base = *o.base[t].get_or_insert(o.seq[t] as i64 - s as i64);
                    (s as i64 + base).max(0) as u64
                }
                None => o.seq[t],
            };
            o.seq[t] = o.seq[t].max(n + 1);
            let seq: SeqNo = n.into();
            tx.write_rtp(
                RtpWrite::new(pt, seq, f.rtp_time, f.captured.unwrap_or(now), p.clone())
                    .marker(i == last && f.marker)
                    .nackable(f.track == Track::Video),
            );
        }
        self.bytes_sent += f.bytes as u64;
        self.rtp.sent += f.payloads.len() as u64;
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
        let was = self.pair.as_ref().map(|p| p.proto);
        if was != Some(proto) && (proto == "tcp" || was == Some("tcp")) {
            self.keep_resends(proto == "udp");
        }
        self.pair = Some(Pair {
            proto,
            local,
            remote_kind,
            remote,
        });
        if self.reading {
            log::info!(
                "{} {}: media moved, {}",
                self.kind(),
                self.id,
                self.pair_text()
            );
        }
    }

    /// "via tcp 1.2.3.4:18190 (host) <-> 10.0.0.2:41234 (prflx)"
    pub fn pair_text(&self) -> String {
        match &self.pair {
            Some(p) => {
                // A forward's media may leave from its TURN allocation.
                let relayed = self.forward.as_ref().and_then(|f| f.turn_for(p.local));
                let local_kind = if relayed.is_some() { "relay" } else { "host" };
                format!(
                    "via {} {} ({local_kind}) <-> {} ({})",
                    p.proto, p.local, p.remote, p.remote_kind
                )
            }
            None => "no candidate pair".into(),
        }
    }

    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            id: SessionId(self.id),
            path: self.path.clone(),
            created: self.created_at,
            client: self.client.unwrap_or_else(|| ([0, 0, 0, 0], 0).into()),
            connected: self.connected,
            pair: self.pair.clone(),
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            rtp: self.rtp,
            publishing: self.is_publisher(),
            user_agent: self.user_agent.clone(),
            view: None,
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

/// A viewer's codecs for a path fed by the local encoder: constrained
/// baseline first (what x264 and MPP baseline emit), then baseline; the
/// path's own profile, read from its SPS, goes first. Level 3.1 with
/// asymmetry allowed covers 720p and 1080p.
pub(super) fn encoder_codecs(c: &mut CodecConfig, profile: Option<u32>, audio: bool) {
    let mut profiles = [0x42e01f, 0x42001f];
    if profile.is_some_and(|p| p >> 16 == 0x42 && (p >> 8) & 0x40 == 0) {
        profiles.reverse();
    }
    c.add_h264(108.into(), Some(109.into()), true, profiles[0]);
    c.add_h264(127.into(), Some(121.into()), true, profiles[1]);
    if audio {
        c.enable_opus(true, false);
    }
}

/// The m-line of `kind` we send on and the pt the viewer accepted for it
/// (H.264 only with packetization-mode 1).
pub(super) fn negotiated(rtc: &Rtc, mids: &[Mid], kind: MediaKind) -> Option<(Mid, Pt)> {
    for p in rtc.codec_config().params() {
        let spec = p.spec();
        if spec.codec == Codec::H264 && spec.format.packetization_mode != Some(1) {
            continue;
        }
        for &mid in mids {
            let Some(m) = rtc.media(mid) else { continue };
            if m.kind() == kind && m.direction().is_sending() && m.remote_pts().contains(&p.pt()) {
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
        let no_fp = "v=0\r\nm=video 9 X 96\r\na=rtpmap:96 H264/90000\r\na=ice-ufrag:x\r\n";
        assert!(e(no_fp).contains("fingerprint"));
    }
}
