//! A simulcast publisher's encodings (a browser's `rid`s) as the layers of
//! its path: which rid feeds which layer. Sans-IO, driven by the packets'
//! sizes and an explicit clock.
//!
//! Layers are ranked by what each rid delivers, largest first: the offer
//! does not say which encoding is the full-size one, and a browser turns
//! its top layers off while its own estimate is low, so the ranking is
//! redone once a second. A layer that changes rid keeps its old one
//! until the new rid's next keyframe (asked for at once): its viewers
//! never see a picture start without one. Hysteresis (`SWITCH_OVER`) keeps
//! two rids of similar rates from trading places.

use std::time::{Duration, Instant};

use str0m::media::Rid;

use crate::vocab::Layer;

/// A rid that sent nothing for this long is off (the browser paused it).
const QUIET: Duration = Duration::from_millis(1500);
/// A layer moves to another rid only when that one delivers this much
/// more (or its own has gone quiet).
const SWITCH_OVER: f64 = 1.3;

struct Encoding {
    rid: Rid,
    /// Bytes since the last ranking.
    bytes: u64,
    /// Smoothed rate, bit/s.
    rate: f64,
    last: Option<Instant>,
    /// To the path's clock: each encoding has its own random RTP time base.
    time_offset: Option<i64>,
}

pub struct Simulcast {
    encodings: Vec<Encoding>,
    /// Per layer (main first): the encoding feeding it.
    feeds: Vec<Option<usize>>,
    /// Per layer: the encoding it will take at that one's next keyframe.
    pending: Vec<Option<usize>>,
    ranked_at: Instant,
    /// The first video packet of any encoding: (its RTP time, arrival).
    clock: Option<(u64, Instant)>,
}

/// Video RTP clock (H.264 and VP8).
const VIDEO_HZ: f64 = 90_000.0;

/// Where one packet goes: a layer, and whether this packet begins that
/// layer's new encoding (its numbering must continue the old one's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route {
    pub layer: Layer,
    pub switched: bool,
}

impl Simulcast {
    /// The rids the publisher's offer declared, in its order.
    pub fn new(rids: Vec<Rid>, now: Instant) -> Simulcast {
        let n = rids.len();
        Simulcast {
            encodings: rids
                .into_iter()
                .map(|rid| Encoding {
                    rid,
                    bytes: 0,
                    rate: 0.0,
                    last: None,
                    time_offset: None,
                })
                .collect(),
            feeds: vec![None; n],
            pending: vec![None; n],
            ranked_at: now,
            clock: None,
        }
    }

    /// A packet's RTP time on the path's clock: the first encoding seen
    /// sets it, the others join it by arrival time at their first packet
    /// (a few ms off at most), so a viewer moved between layers, or a
    /// layer that changes encoding, keeps a continuous timeline.
    pub fn time(&mut self, rid: Rid, time: u64, arrived: Instant) -> u64 {
        let Some(e) = self.encodings.iter_mut().find(|e| e.rid == rid) else {
            return time;
        };
        let &mut (t0, at0) = self.clock.get_or_insert((time, arrived));
        let offset = *e.time_offset.get_or_insert_with(|| {
            let since = arrived.saturating_duration_since(at0).as_secs_f64();
            (t0 as f64 + since * VIDEO_HZ) as i64 - time as i64
        });
        (time as i64 + offset).max(0) as u64
    }

    /// The rid feeding `layer` (or about to), to ask a keyframe of.
    pub fn rid_of(&self, layer: Layer) -> Option<Rid> {
        let i = layer.0 as usize;
        let e = self.pending.get(i).copied().flatten();
        let e = e.or(self.feeds.get(i).copied().flatten())?;
        Some(self.encodings[e].rid)
    }

    /// Per layer: the rid and its rate (bit/s), None where nothing feeds it.
    pub fn rates(&self) -> Vec<Option<(Rid, u32)>> {
        self.feeds
            .iter()
            .map(|f| f.map(|e| (self.encodings[e].rid, self.encodings[e].rate as u32)))
            .collect()
    }

    /// A packet of `rid` arrived; `out` gets the layers it feeds. A rid
    /// seen for the first time is ranked at once, so a path starts on its
    /// first keyframe rather than a second later.
    pub fn route(
        &mut self,
        rid: Rid,
        len: usize,
        keyframe: bool,
        now: Instant,
        out: &mut Vec<Route>,
        asks: &mut Vec<Layer>,
    ) {
        out.clear();
        let Some(e) = self.encodings.iter().position(|x| x.rid == rid) else {
            return;
        };
        let enc = &mut self.encodings[e];
        enc.bytes += len as u64;
        let first = enc.last.is_none();
        enc.last = Some(now);
        if first {
            self.rank(now, asks);
        }
        for layer in 0..self.feeds.len() {
            let mut switched = false;
            if keyframe && self.pending[layer] == Some(e) {
                self.feeds[layer] = self.pending[layer].take();
                switched = true;
            }
            if self.feeds[layer] == Some(e) {
                out.push(Route {
                    layer: Layer(layer as u8),
                    switched,
                });
            }
        }
    }

    /// Re-rank the encodings; `asks` gets the layers whose new encoding
    /// needs a keyframe now. Call about once a second.
    pub fn rank(&mut self, now: Instant, asks: &mut Vec<Layer>) {
        let secs = now.saturating_duration_since(self.ranked_at).as_secs_f64();
        self.ranked_at = now;
        for e in &mut self.encodings {
            if secs > 0.0 {
                let r = e.bytes as f64 * 8.0 / secs;
                // The first second counts in full, later ones half.
                e.rate = if e.rate == 0.0 { r } else { (e.rate + r) / 2.0 };
            }
            e.bytes = 0;
            if e.last
                .is_none_or(|t| now.saturating_duration_since(t) >= QUIET)
            {
                e.rate = 0.0;
            }
        }
        let live = |e: &Encoding| e.rate > 0.0 || e.last.is_some_and(|t| t == now);
        let mut order: Vec<usize> = (0..self.encodings.len())
            .filter(|&i| live(&self.encodings[i]))
            .collect();
        order.sort_by(|&a, &b| self.encodings[b].rate.total_cmp(&self.encodings[a].rate));
        for layer in 0..self.feeds.len() {
            let Some(w) = order.get(layer).copied() else {
                // Fewer encodings live than layers: nothing to wait for.
                self.pending[layer] = None;
                continue;
            };
            let cur = self.pending[layer].or(self.feeds[layer]);
            if cur == Some(w) {
                continue;
            }
            let wrong = match cur {
                None => true,
                Some(c) => {
                    let (rc, rw) = (self.encodings[c].rate, self.encodings[w].rate);
                    !live(&self.encodings[c]) || rw > rc * SWITCH_OVER || rw * SWITCH_OVER < rc
                }
            };
            if wrong {
                self.pending[layer] = Some(w);
                asks.push(Layer(layer as u8));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid(s: &str) -> Rid {
        s.into()
    }

    /// One second of packets: (rid, bytes), keyframes on `key`.
    fn second(
        s: &mut Simulcast,
        t: &mut Instant,
        rates: &[(&str, usize)],
        key: bool,
    ) -> Vec<(String, Vec<Route>)> {
        let mut got = vec![];
        let (mut out, mut asks) = (vec![], vec![]);
        for step in 0..10 {
            *t += Duration::from_millis(100);
            for &(r, bytes) in rates {
                s.route(
                    rid(r),
                    bytes / 10,
                    key && step == 0,
                    *t,
                    &mut out,
                    &mut asks,
                );
                got.push((r.to_string(), out.clone()));
            }
        }
        s.rank(*t, &mut asks);
        got
    }

    fn feeding(s: &Simulcast) -> Vec<Option<String>> {
        s.rates()
            .into_iter()
            .map(|r| r.map(|(rid, _)| rid.to_string()))
            .collect()
    }

    #[test]
    fn the_largest_encoding_becomes_main_at_its_keyframe() {
        let mut t = Instant::now();
        let mut s = Simulcast::new(vec![rid("q"), rid("h"), rid("f")], t);
        let full = [("q", 20_000), ("h", 80_000), ("f", 300_000)];
        // Each rid starts a layer on its first keyframe, in arrival order;
        // the ranking then moves each to its place at its next keyframe.
        second(&mut s, &mut t, &full, true);
        assert_eq!(
            feeding(&s),
            [Some("q".into()), Some("h".into()), Some("f".into())]
        );
        let got = second(&mut s, &mut t, &full, true);
        assert_eq!(
            feeding(&s),
            [Some("f".into()), Some("h".into()), Some("q".into())]
        );
        let f = got.iter().find(|(r, _)| r == "f").unwrap();
        assert!(f.1.contains(&Route {
            layer: Layer::MAIN,
            switched: true
        }));
        // Later seconds route each rid to its one layer, without switching.
        let got = second(&mut s, &mut t, &full, false);
        assert!(got.iter().all(|(_, r)| r.len() == 1 && !r[0].switched));
        let main = s.rates()[0].unwrap().1 as f64;
        assert!((main - 2.4e6).abs() < 2.4e4, "{main}");
    }

    #[test]
    fn a_top_layer_that_starts_late_takes_over_main_only_at_its_keyframe() {
        let mut t = Instant::now();
        let mut s = Simulcast::new(vec![rid("f"), rid("h"), rid("q")], t);
        // The browser's estimate is low: only q and h at first.
        let low = [("q", 20_000), ("h", 80_000)];
        second(&mut s, &mut t, &low, true);
        second(&mut s, &mut t, &low, true);
        assert_eq!(feeding(&s), [Some("h".into()), Some("q".into()), None]);
        // f starts mid-GOP: main keeps h until f's keyframe.
        let all = [("q", 20_000), ("h", 80_000), ("f", 300_000)];
        second(&mut s, &mut t, &all, false);
        assert_eq!(
            s.rid_of(Layer::MAIN),
            Some(rid("f")),
            "the keyframe is asked of f"
        );
        assert_eq!(feeding(&s)[0], Some("h".into()));
        let got = second(&mut s, &mut t, &all, true);
        assert_eq!(
            feeding(&s),
            [Some("f".into()), Some("h".into()), Some("q".into())]
        );
        let f = got.iter().find(|(r, _)| r == "f").unwrap();
        assert_eq!(
            f.1,
            [Route {
                layer: Layer::MAIN,
                switched: true
            }]
        );
    }

    #[test]
    fn similar_rates_do_not_trade_places_and_a_quiet_rid_gives_way() {
        let mut t = Instant::now();
        let mut s = Simulcast::new(vec![rid("a"), rid("b")], t);
        second(&mut s, &mut t, &[("a", 100_000), ("b", 90_000)], true);
        assert_eq!(feeding(&s), [Some("a".into()), Some("b".into())]);
        for _ in 0..5 {
            second(&mut s, &mut t, &[("a", 95_000), ("b", 110_000)], true);
        }
        assert_eq!(
            feeding(&s),
            [Some("a".into()), Some("b".into())],
            "within 30 %"
        );
        // a stops (the browser paused it): b takes main at its keyframe.
        second(&mut s, &mut t, &[("b", 110_000)], false);
        second(&mut s, &mut t, &[("b", 110_000)], true);
        assert_eq!(feeding(&s)[0], Some("b".into()));
        // Once a is quiet, nothing waits for it.
        second(&mut s, &mut t, &[("b", 110_000)], false);
        assert_eq!(s.rid_of(Layer(1)), Some(rid("b")));
    }

    #[test]
    fn every_encoding_is_put_on_the_first_ones_clock() {
        let t = Instant::now();
        let mut s = Simulcast::new(vec![rid("a"), rid("b")], t);
        assert_eq!(s.time(rid("a"), 1_000, t), 1_000);
        assert_eq!(
            s.time(rid("a"), 4_000, t + Duration::from_millis(33)),
            4_000
        );
        // b's base is elsewhere; it starts 2 s later.
        let b = s.time(rid("b"), 777_777, t + Duration::from_secs(2));
        assert_eq!(b, 1_000 + 180_000);
        assert_eq!(s.time(rid("b"), 777_777 + 3_000, t), b + 3_000);
    }

    #[test]
    fn an_unknown_rid_goes_nowhere() {
        let mut t = Instant::now();
        let mut s = Simulcast::new(vec![rid("a")], t);
        let (mut out, mut asks) = (vec![], vec![]);
        t += Duration::from_millis(10);
        s.route(rid("zz"), 1000, true, t, &mut out, &mut asks);
        assert!(out.is_empty());
    }
}
