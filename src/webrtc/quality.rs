//! Per-viewer quality: which layer of a path (main stream or a rendition)
//! this viewer's link can carry. A sans-IO state machine with explicit
//! time: the engine feeds it what str0m reports twice a second (receiver
//! report loss and RTT, NACKs) plus what the engine saw itself (frames it
//! could not hand to an ICE-TCP connection, frames the hub dropped), and
//! it answers with the layer to move to, if any. The move itself happens
//! at the new layer's next keyframe (`layers.rs`).
//!
//! Policy:
//! - congested: loss ≥ 5 %, NACKs for ≥ 5 % of packets, RTT ≥ twice the
//!   lowest seen plus 100 ms (a queue building up), or a transport that
//!   fell behind;
//! - down: after `DOWN_AFTER` of congestion, straight to the largest layer
//!   that fits what the link delivered (the smallest if none does);
//! - up: one layer, after `hold` without congestion; a move up that meets
//!   congestion within `PROBE` was a failed probe: down again and double
//!   `hold` (up to `HOLD_MAX`), so a link at its limit does not flap.

use std::time::{Duration, Instant};

use crate::vocab::Layer;

/// Congestion this long moves a viewer down.
pub const DOWN_AFTER: Duration = Duration::from_millis(1000);
/// Quiet this long before the first try up. A failed try costs the
/// viewer a short freeze, so tries are rare: 15 s, then 30, 60, 120.
pub const HOLD: Duration = Duration::from_secs(15);
pub const HOLD_MAX: Duration = Duration::from_secs(120);
/// A move up is judged over this long.
pub const PROBE: Duration = Duration::from_secs(5);
/// After a move down, reports still describe the old layer (and the
/// link's queue drains) for about this long: not counted.
pub const SETTLE: Duration = Duration::from_secs(2);
/// Headroom: a layer fits when its bitrate is below this share of what
/// the link delivered.
const FIT: f64 = 0.8;

/// What one report period showed. Totals are since the session began.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Fraction lost, from the receiver reports of the period.
    pub loss: Option<f32>,
    pub rtt: Option<Duration>,
    pub nacks: u64,
    pub packets: u64,
    pub bytes: u64,
    /// The engine held frames back (ICE-TCP queue full) or the hub dropped
    /// frames for this viewer since the last sample.
    pub fell_behind: bool,
}

/// A move and why, for the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub to: Layer,
    pub reason: String,
}

#[derive(Debug)]
pub struct Quality {
    /// Bitrate of each layer, main first, each smaller than the one before.
    bitrates: Vec<u32>,
    /// The layer being sent (or being moved to).
    pub layer: Layer,
    last: Option<(Instant, Sample)>,
    congested_since: Option<Instant>,
    quiet_since: Instant,
    hold: Duration,
    /// When the last move up happened.
    probing: Option<Instant>,
    /// Until then, congestion is the last move down still settling.
    settle_until: Option<Instant>,
    min_rtt: Option<Duration>,
    /// For the API: the last period's figures.
    pub rtt: Option<Duration>,
    pub loss: f32,
    /// What the link delivered in the last congested period, bit/s.
    pub estimate: Option<u64>,
    pub moves: u32,
}

impl Quality {
    pub fn new(bitrates: Vec<u32>, now: Instant) -> Quality {
        Quality {
            bitrates,
            layer: Layer::MAIN,
            last: None,
            congested_since: None,
            quiet_since: now,
            hold: HOLD,
            probing: None,
            settle_until: None,
            min_rtt: None,
            rtt: None,
            loss: 0.0,
            estimate: None,
            moves: 0,
        }
    }

    /// One report period. Returns the layer to move to, if any.
    pub fn on_sample(&mut self, s: Sample, now: Instant) -> Option<Move> {
        let Some((t0, prev)) = self.last.replace((now, s)) else {
            return None;
        };
        let dt = now.saturating_duration_since(t0).as_secs_f64().max(0.05);
        let sent = s.packets.saturating_sub(prev.packets);
        let nacked = s.nacks.saturating_sub(prev.nacks);
        self.loss = s.loss.unwrap_or(0.0);
        if let Some(rtt) = s.rtt {
            self.rtt = Some(rtt);
            self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        }
        let queueing = match (self.rtt, self.min_rtt) {
            (Some(r), Some(m)) => r >= m * 2 + Duration::from_millis(100),
            _ => false,
        };
        let why = if s.fell_behind {
            Some("transport fell behind".to_string())
        } else if self.loss >= 0.05 {
            Some(format!("{:.0} % loss", self.loss * 100.0))
        } else if sent > 20 && nacked * 20 >= sent {
            Some(format!("NACKs for {nacked} of {sent} packets"))
        } else if queueing {
            Some(format!(
                "RTT {} ms (lowest {} ms)",
                self.rtt.unwrap_or_default().as_millis(),
                self.min_rtt.unwrap_or_default().as_millis()
            ))
        } else {
            None
        };
        let Some(why) = why else {
            self.congested_since = None;
            return self.maybe_up(now);
        };
        if self.settle_until.is_some_and(|t| now < t) {
            return None;
        }
        self.quiet_since = now;
        let delivered = s.bytes.saturating_sub(prev.bytes) as f64 * 8.0 / dt;
        self.estimate = Some((delivered * (1.0 - f64::from(self.loss))) as u64);
        let since = *self.congested_since.get_or_insert(t0);
        // A failed probe goes back at once; otherwise congestion must last.
        let failed_probe = self
            .probing
            .is_some_and(|p| now.saturating_duration_since(p) <= PROBE);
        if !failed_probe && now.saturating_duration_since(since) < DOWN_AFTER {
            return None;
        }
        if failed_probe {
            self.hold = (self.hold * 2).min(HOLD_MAX);
        }
        self.probing = None;
        self.congested_since = None;
        // At least one step: congestion that lasts is real even when the
        // figures say the current layer should fit.
        let lowest = Layer(self.bitrates.len() as u8 - 1);
        let to = self
            .fitting(self.estimate.unwrap_or(0))
            .max(Layer(self.layer.0 + 1))
            .min(lowest);
        if to <= self.layer {
            return None; // already the lowest there is
        }
        self.settle_until = Some(now + SETTLE);
        self.go(to, format!("down: {why}"))
    }

    fn maybe_up(&mut self, now: Instant) -> Option<Move> {
        if let Some(p) = self.probing
            && now.saturating_duration_since(p) > PROBE
        {
            self.probing = None;
        }
        if now.saturating_duration_since(self.quiet_since) >= HOLD * 4 {
            // A long good spell forgives earlier failed probes.
            self.hold = HOLD;
        }
        if self.layer.is_main() || now.saturating_duration_since(self.quiet_since) < self.hold {
            return None;
        }
        self.probing = Some(now);
        self.quiet_since = now;
        let up = Layer(self.layer.0 - 1);
        self.go(up, format!("up: quiet for {} s", self.hold.as_secs()))
    }

    /// The largest layer whose bitrate fits `bps` with headroom; the
    /// smallest when none does.
    fn fitting(&self, bps: u64) -> Layer {
        let i = self
            .bitrates
            .iter()
            .position(|&b| (b as f64) <= bps as f64 * FIT)
            .unwrap_or(self.bitrates.len() - 1);
        Layer(i as u8)
    }

    fn go(&mut self, to: Layer, reason: String) -> Option<Move> {
        self.layer = to;
        self.moves += 1;
        Some(Move { to, reason })
    }
}

#[cfg(test)]
#[path = "quality_tests.rs"]
mod tests;
