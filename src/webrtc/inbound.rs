//! A WHIP publisher's side of a session: answering its offer, and turning
//! what it sends into packets for its path (which simulcast encoding each
//! came from, what its link lost), and asking it for keyframes.

use std::time::Instant;

use str0m::format::Codec;
use str0m::media::{MediaKind, Mid, Rid, Rids};
use str0m::rtp::{RtpPacket, Ssrc};

use super::relay::{self, Carried};
use super::session::{OfferError, Role, Session, Ticket, negotiate, offers, precheck};
use crate::hub::Track;

#[derive(Default)]
pub struct Inbound {
    pub video_mid: Option<Mid>,
    pub audio_mid: Option<Mid>,
    /// Set by the first video packet: the codec the publisher really sends.
    pub carried: Option<Carried>,
    pub last_media: Option<Instant>,
    /// A simulcast publisher's encodings, in its offer's order.
    pub rids: Vec<Rid>,
    /// The newest extended sequence number per stream, to count what the
    /// publisher's link lost on the way in.
    last_seq: Vec<(Ssrc, u64)>,
}

impl Session {
    /// Build the answer for a WHIP publisher's offer.
    pub fn accept_publisher(t: Ticket, now: Instant) -> Result<(Session, String), OfferError> {
        let offer = t.offer;
        precheck(offer)?;
        let count = |kind: &str| offer.lines().filter(|l| l.starts_with(kind)).count();
        if count("m=video") > 1 || count("m=audio") > 1 {
            return Err(OfferError::Codec(
                "a publisher sends one video and at most one audio track".into(),
            ));
        }
        if !offers(offer, "H264") && !offers(offer, "VP8") {
            return Err(OfferError::Codec(
                "r58 relays H264 or VP8 video (and Opus audio); the offer has neither".into(),
            ));
        }
        let n = negotiate(&t, |c| relay::publisher_codecs(c, offer), now)?;
        let received = |kind: MediaKind| {
            n.mids.iter().copied().find(|&m| {
                n.rtc
                    .media(m)
                    .is_some_and(|m| m.kind() == kind && m.direction().is_receiving())
            })
        };
        let (video_mid, audio_mid) = (received(MediaKind::Video), received(MediaKind::Audio));
        if video_mid.is_none() {
            return Err(OfferError::BadSdp(
                "offer sends no video (the video m-line must be sendonly or sendrecv)".into(),
            ));
        }
        // Simulcast: the rids str0m accepted for the video (two or more).
        let rids = video_mid
            .and_then(|m| n.rtc.media(m))
            .map(|m| match m.rids_rx() {
                Rids::Specific(r) if r.len() > 1 => r.clone(),
                _ => vec![],
            })
            .unwrap_or_default();
        let role = Role::Publisher(Inbound {
            video_mid,
            audio_mid,
            rids,
            ..Default::default()
        });
        Ok(Session::new(t, n, role, now))
    }

    /// A publisher's packet, ready for the path's `Ingest`; None for what
    /// is not relayed (an unknown payload type, a viewer's session).
    pub fn inbound(&mut self, p: RtpPacket) -> Option<relay::Packet> {
        let Role::Publisher(inb) = &mut self.role else {
            return None;
        };
        let pt = p.header.payload_type;
        let params = self.rtc.codec_config().params();
        let spec = params.iter().find(|x| x.pt() == pt)?.spec();
        let track = if spec.codec.is_video() {
            Track::Video
        } else {
            Track::Audio
        };
        if inb.carried.is_none() && track == Track::Video {
            let audio = params
                .iter()
                .map(|x| x.spec())
                .find(|s| s.codec == Codec::Opus);
            inb.carried = Some(Carried {
                video: spec,
                audio: audio.filter(|_| inb.audio_mid.is_some()),
            });
        }
        inb.last_media = Some(p.timestamp);
        let (seq, ssrc) = (*p.seq_no, p.header.ssrc);
        self.rtp.received += 1;
        match inb.last_seq.iter_mut().find(|(s, _)| *s == ssrc) {
            Some((_, last)) if seq > *last => {
                self.rtp.lost += seq - *last - 1;
                *last = seq;
            }
            // Late (reordered or retransmitted) packets fill nothing here.
            Some(_) => {}
            None => inb.last_seq.push((ssrc, seq)),
        }
        // The encoding: str0m knows it by SSRC once a packet has named it.
        let rid = if inb.rids.is_empty() {
            None
        } else {
            let mut api = self.rtc.direct_api();
            p.header
                .ext_vals
                .rid
                .or_else(|| api.stream_rx(&ssrc)?.rid())
        };
        Some(relay::Packet {
            track,
            codec: spec.codec,
            rid,
            seq: *p.seq_no,
            time: p.time.numer(),
            marker: p.header.marker,
            payload: p.payload,
            arrived: p.timestamp,
        })
    }

    /// Ask a publisher for a keyframe (PLI), of one encoding if it sends
    /// several; it goes out on the next poll.
    pub fn request_keyframe(&mut self, rid: Option<Rid>) {
        let Role::Publisher(Inbound {
            video_mid: Some(mid),
            ..
        }) = self.role
        else {
            return;
        };
        if let Some(rx) = self.rtc.direct_api().stream_rx_by_mid(mid, rid) {
            rx.request_keyframe(str0m::media::KeyframeRequestKind::Pli);
        }
    }
}
