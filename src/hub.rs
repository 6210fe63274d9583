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

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One access unit as RTP payloads (marker on the last one).
#[derive(Debug)]
pub struct Frame {
    pub rtp_time: u32,
    pub keyframe: bool,
    pub payloads: Vec<Arc<[u8]>>,
    pub bytes: usize,
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
    waiting_keyframe: bool,
    dropped: u64,
}

#[derive(Default)]
struct Feed {
    gop: Vec<Arc<Frame>>,
    readers: HashMap<ReaderId, Reader>,
    last_keyframe_request: Option<Instant>,
}

#[derive(Default)]
pub struct Hub {
    feeds: HashMap<Arc<str>, Feed>,
}

impl Hub {
    /// A new frame for `path`. Returns true when a keyframe should be forced
    /// now (a reader overflowed and the rate limit allows it).
    pub fn push(&mut self, path: &Arc<str>, frame: Arc<Frame>, now: Instant) -> bool {
        let feed = self.feeds.entry(path.clone()).or_default();
        if frame.keyframe {
            feed.gop.clear();
        }
        if feed.gop.len() < GOP_CACHE_MAX && (frame.keyframe || !feed.gop.is_empty()) {
            feed.gop.push(frame.clone());
        }
        let mut want_key = false;
        for r in feed.readers.values_mut() {
            if r.waiting_keyframe {
                if !frame.keyframe {
                    r.dropped += 1;
                    continue;
                }
                r.waiting_keyframe = false;
            }
            if r.queue.len() >= READER_QUEUE {
                // Too slow: drop whole frames up to the next keyframe.
                r.dropped += r.queue.len() as u64 + 1;
                r.queue.clear();
                r.waiting_keyframe = !frame.keyframe;
                want_key |= r.waiting_keyframe;
                if frame.keyframe {
                    r.queue.push_back(frame.clone());
                }
                continue;
            }
            r.queue.push_back(frame.clone());
        }
        want_key && feed.allow_keyframe(now)
    }

    /// Register a reader. Returns true when a keyframe should be forced.
    pub fn add_reader(&mut self, path: &Arc<str>, id: ReaderId, now: Instant) -> bool {
        let feed = self.feeds.entry(path.clone()).or_default();
        let mut r = Reader::default();
        let replay = !feed.gop.is_empty() && feed.gop.len() <= REPLAY_MAX;
        if replay {
            r.queue.extend(feed.gop.iter().cloned());
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
        self.feeds
            .get_mut(path)?
            .readers
            .get_mut(&id)?
            .queue
            .pop_front()
    }

    /// A viewer asked for a keyframe (PLI/FIR) or is about to join.
    pub fn keyframe_request(&mut self, path: &Arc<str>, now: Instant) -> bool {
        self.feeds
            .entry(path.clone())
            .or_default()
            .allow_keyframe(now)
    }

    #[cfg(test)]
    pub fn readers(&self, path: &str) -> usize {
        self.feeds.get(path).map(|f| f.readers.len()).unwrap_or(0)
    }

    #[cfg(test)]
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
        Arc::new(Frame {
            rtp_time: n,
            keyframe: key,
            payloads: vec![],
            bytes: 0,
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
        h.remove_reader("cam0", 1);
        h.push(&p, frame(0, true), t);
        assert_eq!(h.readers("cam0"), 0);
        assert!(h.pop("cam0", 1).is_none());
    }
}
