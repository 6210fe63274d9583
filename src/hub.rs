//! The stream hub: per path, the packetized frames of the current GOP and a
//! bounded queue per reader. Plain data structure, no I/O, time passed in.
//!
//! Policy:
//! - A frame is packetized once (`Frame`) and shared by every reader.
//! - A new reader starts on a keyframe: the cached GOP when it is short
//!   (instant first picture), otherwise the next keyframe, which it asks for.
//! - A reader whose queue overflows drops its whole backlog and every frame
//!   up to the next keyframe, and asks for one. Others never wait for it.
//! - Keyframe requests are rate-limited per path.
//! - A unit is a whole encoded frame (local encoder) or one relayed RTP
//!   packet (WHIP publisher, forwarded as it arrives). Limits count
//!   pictures (video units with the marker bit), so both behave alike.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Video,
    Audio,
}

/// One unit as RTP payloads: an access unit, or one relayed packet.
#[derive(Debug)]
pub struct Frame {
    pub rtp_time: u32,
    /// Starts a picture a decoder can begin with (for audio: always).
    pub keyframe: bool,
    pub payloads: Vec<Arc<[u8]>>,
    pub bytes: usize,
    pub track: Track,
    /// The last payload ends a picture (RTP marker bit).
    pub marker: bool,
    /// Relayed packets: the path's extended sequence number, so a loss
    /// upstream stays a visible gap (and a NACK) downstream.
    pub seq: Option<u64>,
    /// Relayed packets: when the RTP packet reached r58.
    pub arrived: Option<Instant>,
    /// Local media: when it was captured (the RTP time's wall clock, for
    /// sender reports; relayed units use the time they are sent).
    pub captured: Option<Instant>,
}

impl Frame {
    /// A whole encoded picture from a local encoder.
    pub fn picture(rtp_time: u32, keyframe: bool, payloads: Vec<Arc<[u8]>>) -> Frame {
        Frame {
            rtp_time,
            keyframe,
            bytes: payloads.iter().map(|p| p.len()).sum(),
            payloads,
            track: Track::Video,
            marker: true,
            seq: None,
            arrived: None,
            captured: None,
        }
    }

    /// One Opus packet from a local encoder.
    pub fn sound(rtp_time: u32, packet: Vec<u8>, captured: Instant) -> Frame {
        Frame {
            rtp_time,
            keyframe: true,
            bytes: packet.len(),
            payloads: vec![packet.into()],
            track: Track::Audio,
            marker: false,
            seq: None,
            arrived: None,
            captured: Some(captured),
        }
    }

    pub fn captured_at(mut self, t: Instant) -> Frame {
        self.captured = Some(t);
        self
    }

    fn ends_picture(&self) -> bool {
        self.track == Track::Video && self.marker
    }
}

pub type ReaderId = u64;

/// Frames queued per reader before it counts as too slow.
pub const READER_QUEUE: usize = 60;
/// A cached GOP longer than this is not replayed to a new reader (a burst of
/// stale frames would add latency); it waits for a fresh keyframe instead.
pub const REPLAY_MAX: usize = 15;
/// Longest GOP kept in memory.
const GOP_CACHE_MAX: usize = 300;
/// At most one keyframe request per path in this interval.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Reader {
    queue: VecDeque<Arc<Frame>>,
    /// Pictures in `queue`.
    pictures: usize,
    waiting_keyframe: bool,
    dropped: u64,
}

impl Reader {
    fn push(&mut self, f: &Arc<Frame>) {
        self.pictures += f.ends_picture() as usize;
        self.queue.push_back(f.clone());
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.pictures = 0;
    }
}

#[derive(Default)]
struct Feed {
    gop: Vec<Arc<Frame>>,
    /// Pictures in `gop`.
    gop_pictures: usize,
    readers: HashMap<ReaderId, Reader>,
    last_keyframe_request: Option<Instant>,
}

#[derive(Default)]
pub struct Hub {
    feeds: HashMap<Arc<str>, Feed>,
}

impl Hub {
    /// A new unit for `path`. Returns true when a keyframe should be asked
    /// for now: a reader waits for one (joined a long GOP, or overflowed)
    /// and the rate limit allows it.
    pub fn push(&mut self, path: &Arc<str>, frame: Arc<Frame>, now: Instant) -> bool {
        let feed = self.feeds.entry(path.clone()).or_default();
        if frame.keyframe && frame.track == Track::Video {
            feed.gop.clear();
            feed.gop_pictures = 0;
        }
        // A GOP starts at a video keyframe (audio alone never starts one).
        let in_gop = !feed.gop.is_empty() || (frame.keyframe && frame.track == Track::Video);
        if feed.gop_pictures < GOP_CACHE_MAX && in_gop {
            feed.gop_pictures += frame.ends_picture() as usize;
            feed.gop.push(frame.clone());
        }
        // Only video waits for a keyframe; audio decodes from any packet.
        let video_key = frame.keyframe && frame.track == Track::Video;
        for r in feed.readers.values_mut() {
            if r.waiting_keyframe && frame.track == Track::Video {
                if !video_key {
                    r.dropped += 1;
                    continue;
                }
                r.waiting_keyframe = false;
            }
            if r.pictures >= READER_QUEUE {
                // Too slow: drop whole frames up to the next keyframe.
                r.dropped += r.queue.len() as u64 + 1;
                r.clear();
                r.waiting_keyframe = !video_key;
                if video_key {
                    r.push(&frame);
                }
                continue;
            }
            r.push(&frame);
        }
        // Ask again (rate-limited) for as long as anyone waits: one lost
        // PLI must not leave a viewer black until the publisher's next IDR.
        feed.readers.values().any(|r| r.waiting_keyframe) && feed.allow_keyframe(now)
    }

    /// Register a reader. Returns true when a keyframe should be forced.
    pub fn add_reader(&mut self, path: &Arc<str>, id: ReaderId, now: Instant) -> bool {
        self.join(path, id, now, true)
    }

    /// Register a reader that already has a picture from elsewhere (moving
    /// between a path's layers): it starts at the next keyframe, never with
    /// a replay that would step back in time. True: force a keyframe.
    pub fn add_reader_at_keyframe(&mut self, path: &Arc<str>, id: ReaderId, now: Instant) -> bool {
        self.join(path, id, now, false)
    }

    fn join(&mut self, path: &Arc<str>, id: ReaderId, now: Instant, may_replay: bool) -> bool {
        let feed = self.feeds.entry(path.clone()).or_default();
        let mut r = Reader::default();
        let replay = may_replay && !feed.gop.is_empty() && feed.gop_pictures <= REPLAY_MAX;
        if replay {
            feed.gop.iter().for_each(|f| r.push(f));
        } else {
            r.waiting_keyframe = true;
        }
        feed.readers.insert(id, r);
        !replay && feed.allow_keyframe(now)
    }

    pub fn remove_reader(&mut self, path: &str, id: ReaderId) {
        if let Some(f) = self.feeds.get_mut(path) {
            f.readers.remove(&id);
        }
    }

    pub fn pop(&mut self, path: &str, id: ReaderId) -> Option<Arc<Frame>> {
        let r = self.feeds.get_mut(path)?.readers.get_mut(&id)?;
        let f = r.queue.pop_front()?;
        r.pictures -= f.ends_picture() as usize;
        Some(f)
    }

    /// The readers of `path`, into `out` (cleared first).
    pub fn reader_ids(&self, path: &str, out: &mut Vec<ReaderId>) {
        out.clear();
        if let Some(f) = self.feeds.get(path) {
            out.extend(f.readers.keys().copied());
        }
    }

    /// The source changed (a new publisher): what is cached is of no use.
    pub fn reset(&mut self, path: &str) {
        if let Some(f) = self.feeds.get_mut(path) {
            f.gop.clear();
            f.gop_pictures = 0;
        }
    }

    /// A viewer asked for a keyframe (PLI/FIR) or is about to join.
    pub fn keyframe_request(&mut self, path: &Arc<str>, now: Instant) -> bool {
        self.feeds
            .entry(path.clone())
            .or_default()
            .allow_keyframe(now)
    }

    pub fn readers(&self, path: &str) -> usize {
        self.feeds.get(path).map(|f| f.readers.len()).unwrap_or(0)
    }

    /// Has this reader a unit waiting?
    pub fn ready(&self, path: &str, id: ReaderId) -> bool {
        self.feeds
            .get(path)
            .and_then(|f| f.readers.get(&id))
            .is_some_and(|r| !r.queue.is_empty())
    }

    /// Units dropped for this reader (too slow, or waiting for a keyframe).
    pub fn dropped(&self, path: &str, id: ReaderId) -> u64 {
        self.feeds
            .get(path)
            .and_then(|f| f.readers.get(&id))
            .map(|r| r.dropped)
            .unwrap_or(0)
    }
}

impl Feed {
    fn allow_keyframe(&mut self, now: Instant) -> bool {
        let ok = self
            .last_keyframe_request
            .is_none_or(|t| now.duration_since(t) >= KEYFRAME_INTERVAL);
        if ok {
            self.last_keyframe_request = Some(now);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u32, key: bool) -> Arc<Frame> {
        Arc::new(Frame::picture(n, key, vec![]))
    }

    /// A relayed packet: `end` sets the marker bit.
    fn packet(n: u32, track: Track, key: bool, end: bool) -> Arc<Frame> {
        Arc::new(Frame {
            track,
            marker: end,
            seq: Some(n as u64),
            ..Frame::picture(n, key, vec![])
        })
    }

    fn drain(h: &mut Hub, p: &str, id: ReaderId) -> Vec<u32> {
        std::iter::from_fn(|| h.pop(p, id))
            .map(|f| f.rtp_time)
            .collect()
    }

    #[test]
    fn frames_are_shared_not_copied() {
        let (mut h, p, t) = (Hub::default(), Arc::<str>::from("cam0"), Instant::now());
        h.push(&p, frame(0, true), t);
        h.add_reader(&p, 1, t);
        h.add_reader(&p, 2, t);
        let f = frame(1, false);
        h.push(&p, f.clone(), t);
        // The cached GOP (key 0) is replayed, then the new frame; one allocation for all.
        assert_eq!(drain(&mut h, "cam0", 1), [0, 1]);
        assert_eq!(
            Arc::strong_count(&f),
            3,
            "f, reader 2's queue and the GOP cache"
        );
    }

    #[test]
    fn a_reader_moving_in_from_another_layer_waits_for_the_next_keyframe() {
        let (mut h, p, t) = (Hub::default(), Arc::<str>::from("cam0#1"), Instant::now());
        h.push(&p, frame(0, true), t);
        h.push(&p, frame(1, false), t);
        // A short GOP would be replayed to a new viewer; not to a moving one.
        assert!(h.add_reader_at_keyframe(&p, 1, t), "asks for a keyframe");
        assert!(!h.ready("cam0#1", 1));
        h.push(&p, frame(2, false), t);
        assert!(!h.ready("cam0#1", 1));
        h.push(&p, frame(3, true), t);
        assert!(h.ready("cam0#1", 1));
        assert_eq!(drain(&mut h, "cam0#1", 1), [3]);
        assert_eq!(h.dropped("cam0#1", 1), 1, "the P-frame before it");
    }

    #[test]
    fn new_reader_waits_for_keyframe_when_gop_is_long_and_asks_once() {
        let (mut h, p, t) = (Hub::default(), Arc::<str>::from("cam0"), Instant::now());
        h.push(&p, frame(0, true), t);
        for i in 1..=REPLAY_MAX as u32 + 1 {
            h.push(&p, frame(i, false), t);
        }
        assert!(h.add_reader(&p, 1, t), "join asks for a keyframe");
        assert!(
            !h.add_reader(&p, 2, t),
            "second join within the interval is rate-limited"
        );
        h.push(&p, frame(100, false), t);
        assert!(
            drain(&mut h, "cam0", 1).is_empty(),
            "no P-frames before a keyframe"
        );
        h.push(&p, frame(101, true), t);
        h.push(&p, frame(102, false), t);
        assert_eq!(drain(&mut h, "cam0", 1), [101, 102]);
        assert!(h.keyframe_request(&p, t + KEYFRAME_INTERVAL));
    }

    #[test]
    fn slow_reader_drops_to_next_keyframe_without_stalling_others() {
        let (mut h, p, t) = (Hub::default(), Arc::<str>::from("cam0"), Instant::now());
        h.push(&p, frame(0, true), t);
        h.add_reader(&p, 1, t); // slow: never drained
        h.add_reader(&p, 2, t); // fast
        let mut asked = 0;
        let mut fast = vec![];
        for i in 1..=READER_QUEUE as u32 + 5 {
            asked += h.push(&p, frame(i, false), t) as u32;
            fast.extend(drain(&mut h, "cam0", 2));
        }
        assert_eq!(
            fast.len(),
            READER_QUEUE + 5 + 1,
            "fast reader got every frame"
        );
        assert_eq!(asked, 1, "overflow asks for one keyframe");
        assert!(drain(&mut h, "cam0", 1).is_empty(), "backlog dropped whole");
        assert!(h.dropped("cam0", 1) >= READER_QUEUE as u64);
        h.push(&p, frame(500, false), t);
        h.push(&p, frame(501, true), t);
        h.push(&p, frame(502, false), t);
        assert_eq!(
            drain(&mut h, "cam0", 1),
            [501, 502],
            "resumes on the keyframe"
        );
    }

    #[test]
    fn removed_reader_gets_nothing() {
        let (mut h, p, t) = (Hub::default(), Arc::<str>::from("cam0"), Instant::now());
        h.add_reader(&p, 1, t);
        assert_eq!(h.readers("cam0"), 1);
        let mut ids = vec![7];
        h.reader_ids("cam0", &mut ids);
        assert_eq!(ids, [1]);
        h.remove_reader("cam0", 1);
        h.push(&p, frame(0, true), t);
        assert_eq!(h.readers("cam0"), 0);
        assert!(h.pop("cam0", 1).is_none());
    }

    #[test]
    fn a_waiting_reader_keeps_asking_and_audio_does_not_end_the_wait() {
        let (mut h, p, t) = (Hub::default(), Arc::<str>::from("guest1"), Instant::now());
        h.push(&p, frame(0, true), t);
        for i in 1..=REPLAY_MAX as u32 + 1 {
            h.push(&p, frame(i, false), t);
        }
        assert!(h.add_reader(&p, 1, t), "join asks");
        assert!(!h.push(&p, frame(50, false), t), "rate-limited");
        // The request was lost: the next unit after the interval asks again.
        let later = t + KEYFRAME_INTERVAL;
        assert!(h.push(&p, packet(51, Track::Audio, true, true), later));
        assert!(!h.push(&p, frame(52, false), later));
        // The audio went out; the P-frame did not.
        assert_eq!(drain(&mut h, "guest1", 1), [51]);
        assert!(
            !h.push(&p, frame(53, true), later + KEYFRAME_INTERVAL),
            "satisfied"
        );
        assert!(!h.push(&p, frame(54, false), later + 2 * KEYFRAME_INTERVAL));
        assert_eq!(drain(&mut h, "guest1", 1), [53, 54]);
    }

    #[test]
    fn relayed_packets_count_as_pictures_and_audio_never_waits() {
        let (mut h, p, t) = (Hub::default(), Arc::<str>::from("guest1"), Instant::now());
        // A keyframe in three packets, then audio, then a P-frame in two.
        h.push(&p, packet(1, Track::Video, true, false), t);
        h.push(&p, packet(2, Track::Video, false, false), t);
        h.push(&p, packet(3, Track::Video, false, true), t);
        h.push(&p, packet(4, Track::Audio, true, true), t);
        h.push(&p, packet(5, Track::Video, false, false), t);
        assert!(
            !h.add_reader(&p, 1, t),
            "a short GOP is replayed, no request"
        );
        assert_eq!(drain(&mut h, "guest1", 1), [1, 2, 3, 4, 5]);
        // Audio that arrives before any keyframe is not a GOP start.
        let q = Arc::<str>::from("guest2");
        h.push(&q, packet(1, Track::Audio, true, true), t);
        assert!(
            h.add_reader(&q, 2, t),
            "nothing to replay: ask for a keyframe"
        );
        // A reader overflows on pictures, not on packets.
        let r = Arc::<str>::from("guest3");
        h.push(&r, packet(0, Track::Video, true, true), t);
        h.add_reader(&r, 3, t);
        for i in 1..=(READER_QUEUE as u32 - 1) * 3 {
            h.push(&r, packet(i, Track::Video, false, i % 3 == 0), t);
        }
        assert_eq!(h.dropped("guest3", 3), 0, "{READER_QUEUE} pictures fit");
        h.push(&r, packet(1000, Track::Video, false, true), t);
        assert!(h.dropped("guest3", 3) > 0);
    }
}
