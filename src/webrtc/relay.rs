//! WHIP → WHEP relay without transcoding, the sans-IO part: which codecs a
//! publisher may send and a path then carries, where a keyframe starts in
//! an RTP payload, and how a publisher's packets become hub units whose
//! sequence numbers and timestamps stay continuous when a publisher is
//! replaced. Also the relay-latency samples `make bench` reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::format::{Codec, CodecConfig, CodecSpec};

use crate::hub::{Frame, Track};
use crate::vocab::Layer;

/// What a published path carries, learned from its publisher.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    pub video: CodecSpec,
    pub audio: Option<CodecSpec>,
}

impl Carried {
    /// "H264" or "VP8+Opus": for errors, status and `/v3/paths/list`.
    pub fn names(&self) -> Vec<&'static str> {
        std::iter::once(codec_name(self.video.codec))
            .chain(self.audio.map(|a| codec_name(a.codec)))
            .collect()
    }
}

pub fn codec_name(c: Codec) -> &'static str {
    match c {
        Codec::H264 => "H264",
        Codec::Vp8 => "VP8",
        Codec::Opus => "Opus",
        _ => "other",
    }
}

/// Codecs a publisher may send: H.264 and VP8 video, Opus audio. str0m
/// answers in this order, so the publisher's own first choice goes first
/// (a browser's publisher page may pick VP8); otherwise H.264, what the
/// box's own paths carry.
pub fn publisher_codecs(c: &mut CodecConfig, offer: &str) {
    let vp8 = |c: &mut CodecConfig| {
        c.add_config(
            96.into(),
            Some(97.into()),
            Codec::Vp8,
            vp8_clock(),
            None,
            Default::default(),
        )
    };
    let vp8_first = first_video_codec(offer).is_some_and(|n| n.eq_ignore_ascii_case("VP8"));
    if vp8_first {
        vp8(c);
    }
    c.add_h264(102.into(), Some(103.into()), true, 0x42e01f);
    c.add_h264(104.into(), Some(105.into()), true, 0x42001f);
    c.add_h264(106.into(), Some(107.into()), true, 0x4d001f);
    if !vp8_first {
        vp8(c);
    }
    c.enable_opus(true, false);
}

/// The codec name of the first payload type on the offer's video m-line.
pub fn first_video_codec(sdp: &str) -> Option<&str> {
    let mut lines = sdp.lines().skip_while(|l| !l.starts_with("m=video"));
    let pt = lines.next()?.split_whitespace().nth(3)?;
    let prefix = format!("a=rtpmap:{pt} ");
    lines
        .take_while(|l| !l.starts_with("m="))
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split('/').next())
}

fn vp8_clock() -> str0m::media::Frequency {
    str0m::media::Frequency::NINETY_KHZ
}

/// A viewer of a published path is offered exactly what the path carries.
pub fn viewer_codecs(c: &mut CodecConfig, carried: &Carried) {
    let v = carried.video;
    c.add_config(
        98.into(),
        Some(99.into()),
        v.codec,
        v.clock_rate,
        v.channels,
        v.format,
    );
    if let Some(a) = carried.audio {
        c.add_config(
            111.into(),
            None,
            a.codec,
            a.clock_rate,
            a.channels,
            a.format,
        );
    }
}

/// Does this RTP payload hold the start of a picture a decoder can begin
/// with? H.264: an SPS or IDR slice (single NAL, in a STAP-A, or the first
/// FU-A fragment). VP8: the first partition of a key frame (RFC 7741).
pub fn starts_keyframe(codec: Codec, p: &[u8]) -> bool {
    match codec {
        Codec::H264 => h264_key(p),
        Codec::Vp8 => vp8_key(p),
        _ => false,
    }
}

fn h264_key(p: &[u8]) -> bool {
    let key = |t: u8| t == 5 || t == 7;
    match p.first().map(|b| b & 0x1f) {
        Some(24) => {
            let mut at = 1;
            while at + 2 < p.len() {
                let size = u16::from_be_bytes([p[at], p[at + 1]]) as usize;
                if key(p[at + 2] & 0x1f) {
                    return true;
                }
                at += 2 + size;
            }
            false
        }
        Some(28) => p.len() > 1 && p[1] & 0x80 != 0 && key(p[1] & 0x1f),
        Some(t) => key(t),
        None => false,
    }
}

fn vp8_key(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    // S (start of partition) and PID 0: the frame's first packet.
    if b0 & 0x10 == 0 || b0 & 0x07 != 0 {
        return false;
    }
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = p.get(1) else { return false };
        at = 2;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            at += if p.get(at).is_some_and(|b| b & 0x80 != 0) {
                2
            } else {
                1
            };
        }
        at += (x & 0x40 != 0) as usize; // TL0PICIDX
        at += (x & 0x30 != 0) as usize; // TID/KEYIDX
    }
    // VP8 payload header: P bit 0 = key frame.
    p.get(at).is_some_and(|h| h & 0x01 == 0)
}

/// One relayed packet as str0m hands it over.
#[derive(Clone)]
pub struct Packet {
    pub track: Track,
    pub codec: Codec,
    /// A simulcast publisher's encoding.
    pub rid: Option<str0m::media::Rid>,
    /// Extended sequence number and RTP time (no wrap to handle).
    pub seq: u64,
    pub time: u64,
    pub marker: bool,
    pub payload: Arc<[u8]>,
    pub arrived: Instant,
}

#[derive(Default)]
struct Line {
    seq_offset: i64,
    time_offset: i64,
    last: Option<(u64, u64)>,
    newest_time: Option<u64>,
    /// A new publisher's first packet re-bases this track.
    rebase: bool,
    /// ...its sequence numbers only (the time is on the same clock).
    keep_time: bool,
}

/// Per path: publisher packets → hub units, continuous across publishers.
/// Video has a line per layer (a simulcast publisher's encodings).
#[derive(Default)]
pub struct Ingest {
    video: Vec<Line>,
    audio: Line,
}

impl Line {
    fn rebase(&mut self, keep_time: bool) {
        self.rebase = self.last.is_some();
        self.keep_time = keep_time;
        self.newest_time = None;
    }
}

impl Ingest {
    /// A new publisher took over: its numbering starts where the last ended.
    pub fn new_publisher(&mut self) {
        self.video.iter_mut().for_each(|l| l.rebase(false));
        self.audio.rebase(false);
    }

    /// A layer's video now comes from another encoding of the same
    /// publisher, already on the path's clock (`Simulcast::time`): its
    /// numbering continues the old one's.
    pub fn switch(&mut self, layer: Layer) {
        if let Some(l) = self.video.get_mut(layer.0 as usize) {
            l.rebase(true);
        }
    }

    pub fn unit(&mut self, p: Packet, layer: Layer) -> Frame {
        let l = match p.track {
            Track::Video => {
                let i = layer.0 as usize;
                if self.video.len() <= i {
                    self.video.resize_with(i + 1, Line::default);
                }
                &mut self.video[i]
            }
            Track::Audio => &mut self.audio,
        };
        if std::mem::take(&mut l.rebase)
            && let Some((seq, time)) = l.last
        {
            // A gap of 100 ms in media time keeps jitter buffers sane.
            let gap = if p.track == Track::Video { 9000 } else { 4800 };
            l.seq_offset = seq as i64 + 1 - p.seq as i64;
            if !l.keep_time {
                l.time_offset = (time + gap) as i64 - p.time as i64;
            }
        }
        let seq = (p.seq as i64 + l.seq_offset).max(0) as u64;
        let time = (p.time as i64 + l.time_offset).max(0) as u64;
        let newer = l.newest_time.is_none_or(|n| p.time > n);
        if newer {
            l.newest_time = Some(p.time);
        }
        if l.last.is_none_or(|(s, _)| seq > s) {
            l.last = Some((seq, time));
        }
        let keyframe = match p.track {
            Track::Audio => true,
            // Only a picture's first packet starts it (not a late SPS resend).
            Track::Video => newer && starts_keyframe(p.codec, &p.payload),
        };
        Frame {
            rtp_time: time as u32,
            keyframe,
            bytes: p.payload.len(),
            payloads: vec![p.payload],
            track: p.track,
            marker: p.marker,
            seq: Some(seq),
            arrived: Some(p.arrived),
            captured: None,
        }
    }
}

/// The last few thousand relay latencies (a publisher's RTP packet in →
/// its SRTP copy to the last viewer out), in µs.
#[derive(Default)]
pub struct Latency {
    ring: Vec<u32>,
    next: usize,
    pub count: u64,
}

const LATENCY_SAMPLES: usize = 8192;

impl Latency {
    pub fn add(&mut self, d: Duration) {
        let us = d.as_micros().min(u32::MAX as u128) as u32;
        if self.ring.len() < LATENCY_SAMPLES {
            self.ring.push(us);
        } else {
            self.ring[self.next] = us;
        }
        self.next = (self.next + 1) % LATENCY_SAMPLES;
        self.count += 1;
    }

    /// (p50, p99) in µs over the kept samples.
    pub fn percentiles(&self) -> Option<(u32, u32)> {
        let mut v = self.ring.clone();
        v.sort_unstable();
        let at = |p: usize| v[(v.len() * p / 100).min(v.len() - 1)];
        (!v.is_empty()).then(|| (at(50), at(99)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_keyframe_starts() {
        assert!(h264_key(&[0x65, 1, 2]), "IDR slice");
        assert!(h264_key(&[0x67, 1]), "SPS");
        assert!(!h264_key(&[0x41, 1]), "P slice");
        // STAP-A: SEI (6) then SPS (7).
        assert!(h264_key(&[0x78, 0, 1, 0x06, 0, 2, 0x67, 0x42]));
        assert!(!h264_key(&[0x78, 0, 1, 0x06, 0, 1, 0x68]));
        assert!(!h264_key(&[0x78, 0, 9, 0x06]), "truncated STAP-A");
        // FU-A of an IDR: only the start fragment.
        assert!(h264_key(&[0x7c, 0x85, 0]));
        assert!(!h264_key(&[0x7c, 0x05, 0]));
        assert!(!h264_key(&[0x7c, 0x81, 0]), "FU-A start of a P slice");
        assert!(!h264_key(&[]));
    }

    #[test]
    fn the_publishers_first_video_codec() {
        let sdp = "v=0\r\nm=audio 9 X 111\r\na=rtpmap:111 opus/48000/2\r\n\
                   m=video 9 X 96 102\r\na=rtpmap:102 H264/90000\r\na=rtpmap:96 VP8/90000\r\n";
        assert_eq!(first_video_codec(sdp), Some("VP8"));
        assert_eq!(first_video_codec("v=0\r\nm=audio 9 X 111\r\n"), None);
        let mut c = CodecConfig::new_from_payload_params(vec![]);
        publisher_codecs(&mut c, sdp);
        assert_eq!(c.params()[0].spec().codec, Codec::Vp8);
        let mut c = CodecConfig::new_from_payload_params(vec![]);
        publisher_codecs(&mut c, &sdp.replace("96 102", "102 96"));
        assert_eq!(c.params()[0].spec().codec, Codec::H264);
    }

    #[test]
    fn vp8_keyframe_starts() {
        // X=1, I=1 with a 15-bit picture id, then the payload header.
        assert!(vp8_key(&[0x90, 0x80, 0x81, 0x23, 0x10]));
        assert!(!vp8_key(&[0x90, 0x80, 0x81, 0x23, 0x11]), "inter frame");
        assert!(
            !vp8_key(&[0x80, 0x80, 0x81, 0x23, 0x10]),
            "not a partition start"
        );
        assert!(vp8_key(&[0x10, 0x9c]), "no extensions");
        assert!(!vp8_key(&[0x11, 0x9c]), "partition 1");
        assert!(!vp8_key(&[0x90]), "truncated");
    }

    fn pkt(track: Track, seq: u64, time: u64, payload: &[u8]) -> Packet {
        Packet {
            track,
            codec: Codec::H264,
            rid: None,
            seq,
            time,
            marker: true,
            payload: payload.into(),
            arrived: Instant::now(),
        }
    }

    const M: Layer = Layer::MAIN;

    #[test]
    fn a_layer_that_changes_encoding_continues_its_numbering_on_the_same_clock() {
        let mut i = Ingest::default();
        let r1 = Layer(1);
        i.unit(pkt(Track::Video, 40, 90_000, &[0x65]), r1);
        i.unit(pkt(Track::Video, 41, 93_000, &[0x41]), r1);
        i.switch(r1);
        let c = i.unit(pkt(Track::Video, 9_000, 96_000, &[0x65]), r1);
        assert_eq!((c.seq, c.rtp_time), (Some(42), 96_000));
        // The main layer's line is its own.
        assert_eq!(
            i.unit(pkt(Track::Video, 7, 96_000, &[0x65]), M).seq,
            Some(7)
        );
    }

    #[test]
    fn a_new_publisher_continues_the_numbering() {
        let mut i = Ingest::default();
        let a = i.unit(pkt(Track::Video, 500, 90_000, &[0x65]), M);
        assert_eq!((a.seq, a.rtp_time, a.keyframe), (Some(500), 90_000, true));
        let b = i.unit(pkt(Track::Video, 501, 93_000, &[0x41]), M);
        assert_eq!((b.seq, b.keyframe), (Some(501), false));
        // A repeated SPS with an old timestamp does not start a GOP.
        assert!(!i.unit(pkt(Track::Video, 499, 90_000, &[0x67]), M).keyframe);
        i.new_publisher();
        let c = i.unit(pkt(Track::Video, 7, 1_000, &[0x65]), M);
        assert_eq!(c.seq, Some(502), "continues after 501");
        assert_eq!(c.rtp_time, 93_000 + 9_000);
        let d = i.unit(pkt(Track::Video, 9, 4_000, &[0x41]), M);
        assert_eq!(d.seq, Some(504), "an upstream gap stays a gap");
        assert!(i.unit(pkt(Track::Audio, 1, 960, &[1]), M).keyframe);
    }

    #[test]
    fn latency_percentiles() {
        let mut l = Latency::default();
        assert_eq!(l.percentiles(), None);
        for us in 1..=100 {
            l.add(Duration::from_micros(us));
        }
        assert_eq!(l.percentiles(), Some((51, 100)));
    }
}
