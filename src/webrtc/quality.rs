//! Per-viewer quality: which layer of a path (main stream or a rendition)
//! this viewer's link can carry. A sans-IO state machine with explicit
//! time: the engine feeds it what str0m reports twice a second (its
//! transport-wide CC estimate, receiver report loss and RTT, NACKs) plus
//! what the engine saw itself (frames it could not hand to an ICE-TCP
//! connection, frames the hub dropped), and it answers with the layer to
//! move to, if any. The move itself happens at the new layer's next
//! keyframe (`layers.rs`).
//!
//! Policy:
//! - congested: loss ≥ 5 %, NACKs for ≥ 5 % of packets, RTT ≥ twice the
//!   lowest seen plus 100 ms, or a transport that fell behind. str0m's
//!   TWCC estimate (GCC) is not a trigger on its own: on this kind of box
//!   it dipped with nothing lost (CPU-bound keyframe bursts) and its
//!   probes overstate a token-bucket link; it ends probes early instead;
//! - down: after `DOWN_AFTER` of congestion (at once when it is severe:
//!   a quarter lost, or the transport behind), straight to the largest
//!   layer that fits what the link can carry (the smallest if none does);
//! - up: after `hold` without congestion, first a probe, while the
//!   picture stays where it is: the engine sends filler (packets the
//!   browser drops unread, RFC 7983) that starts within what the link is
//!   known to carry and grows by `PROBE_SLOPE` until it is worth the
//!   difference to the layer above, holds that for `PROBE_HOLD`, and the
//!   move happens if nothing suffered. The slow growth matters: GCC and
//!   the RTT see a queue about a second after it starts, and a steeper
//!   ramp overflows a token bucket (and freezes the picture) first. A probe
//!   that meets congestion (with TWCC: the moment GCC's estimate falls)
//!   ends at once and doubles `hold` (up to `HOLD_MAX`), so a link at its
//!   limit neither flaps nor freezes. Congestion within `PROBE` after a
//!   move up sends the viewer straight back down.

use std::time::{Duration, Instant};

use crate::vocab::Layer;

/// Loss this heavy (or a transport that fell behind) moves a viewer down
/// on one report: the link has plainly become too narrow.
pub const SEVERE_LOSS: f32 = 0.25;
/// Congestion this long (two reports in a row) moves a viewer down.
pub const DOWN_AFTER: Duration = Duration::from_millis(500);
/// Quiet this long before the first try up. A failed try costs the
/// viewer a short freeze, so tries are rare: 15 s, then 30, 60, 120.
pub const HOLD: Duration = Duration::from_secs(15);
pub const HOLD_MAX: Duration = Duration::from_secs(120);
/// A move up is judged over this long.
pub const PROBE: Duration = Duration::from_secs(5);
/// Above what the link is known to carry, probe filler grows this fast,
/// bit/s per second: a queue it builds in the second GCC takes to see it
/// stays under ~150 ms on a link of a few hundred kbit/s.
pub const PROBE_SLOPE: f64 = 250_000.0;
/// The filler's full rate is held this long before a move up (three
/// reports' worth).
pub const PROBE_HOLD: Duration = Duration::from_millis(1500);
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
    /// Media bytes handed to this viewer's stream (before any pacing).
    pub bytes: u64,
    /// The engine held frames back (ICE-TCP queue full) or the hub dropped
    /// frames for this viewer since the last sample.
    pub fell_behind: bool,
    /// str0m's latest transport-wide CC estimate, bit/s, while it can
    /// probe (the peer sends TWCC feedback).
    pub twcc: Option<u64>,
}

/// A move and why, for the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub to: Layer,
    pub reason: String,
}

/// What a report led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Move(Move),
    /// Start sending `extra` bit/s of filler (a probe towards `to`).
    Probe {
        to: Layer,
        start: u64,
        extra: u64,
        length: Duration,
    },
    /// The probe met congestion: filler stops, the layer stays.
    ProbeFailed(String),
}

/// A probe under way.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub since: Instant,
    pub to: Layer,
    /// Filler, bit/s, at the end of the ramp.
    pub extra: u64,
    /// Filler, bit/s, at the start: what the link already carried.
    pub start: u64,
    /// The TWCC estimate when it began, if there is one.
    estimate: Option<u64>,
}

impl Probe {
    /// How long the ramp takes.
    fn ramp(&self) -> Duration {
        Duration::from_secs_f64(self.extra.saturating_sub(self.start) as f64 / PROBE_SLOPE)
    }

    /// The whole probe: the ramp, then the full rate held.
    pub fn length(&self) -> Duration {
        self.ramp() + PROBE_HOLD
    }

    /// Filler owed at `now`, bit/s.
    pub fn rate_at(&self, now: Instant) -> f64 {
        let t = now.saturating_duration_since(self.since).as_secs_f64();
        (self.start as f64 + PROBE_SLOPE * t).min(self.extra as f64)
    }
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
    /// Filler under way before a move up.
    pub probe: Option<Probe>,
    /// Until then, congestion is the last move down still settling.
    settle_until: Option<Instant>,
    min_rtt: Option<Duration>,
    /// For the API: the last period's figures.
    pub rtt: Option<Duration>,
    pub loss: f32,
    /// What the link can carry, bit/s: the TWCC estimate, else what it
    /// delivered in the last congested period.
    pub estimate: Option<u64>,
    /// The TWCC estimate was seen: probes are str0m's.
    twcc: bool,
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
            probe: None,
            settle_until: None,
            min_rtt: None,
            rtt: None,
            loss: 0.0,
            estimate: None,
            twcc: false,
            moves: 0,
        }
    }

    /// One report period. Returns what to do, if anything.
    pub fn on_sample(&mut self, s: Sample, now: Instant) -> Option<Step> {
        let (t0, prev) = self.last.replace((now, s))?;
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
        if let Some(e) = s.twcc {
            self.twcc = true;
            self.estimate = Some(e);
        }
        // What the viewer was offered this period.
        let offered = s.bytes.saturating_sub(prev.bytes) as f64 * 8.0 / dt;
        let mut severe = false;
        // A probe stops at the first sign of trouble: it is optional.
        let rtt_up = match (self.rtt, self.min_rtt) {
            (Some(r), Some(m)) => r >= m + Duration::from_millis(50),
            _ => false,
        };
        let probe_trouble = self.probe.is_some() && (nacked > 0 || self.loss > 0.01 || rtt_up);
        let why = if s.fell_behind {
            severe = true;
            Some("transport fell behind".to_string())
        } else if self.loss >= 0.05 {
            severe = self.loss >= SEVERE_LOSS;
            Some(format!("{:.0} % loss", self.loss * 100.0))
        } else if sent > 20 && nacked * 20 >= sent {
            Some(format!("NACKs for {nacked} of {sent} packets"))
        } else if queueing {
            Some(format!(
                "RTT {} ms (lowest {} ms)",
                self.rtt.unwrap_or_default().as_millis(),
                self.min_rtt.unwrap_or_default().as_millis()
            ))
        } else if probe_trouble {
            Some(format!(
                "{nacked} NACKs, {:.0} % loss, RTT {} ms",
                self.loss * 100.0,
                self.rtt.unwrap_or_default().as_millis()
            ))
        } else {
            None
        };
        let Some(why) = why else {
            self.congested_since = None;
            return self.maybe_up(now);
        };
        if self.probe.take().is_some() {
            // Our own filler did it: the picture was never touched.
            self.hold = (self.hold * 2).min(HOLD_MAX);
            self.quiet_since = now;
            self.settle_until = Some(now + SETTLE);
            return Some(Step::ProbeFailed(format!(
                "{why}; next try in {} s",
                self.hold.as_secs()
            )));
        }
        if self.settle_until.is_some_and(|t| now < t) {
            return None;
        }
        self.quiet_since = now;
        let delivered = (offered * (1.0 - f64::from(self.loss))) as u64;
        // GCC's estimate can overshoot (a token bucket lets its probe
        // bursts through) or collapse (busy CPU): what got through bounds it.
        self.estimate = Some(s.twcc.map_or(delivered, |e| e.min(delivered)));
        let since = *self.congested_since.get_or_insert(now);
        // A failed probe goes back at once; otherwise congestion must last.
        let failed_probe = self
            .probing
            .is_some_and(|p| now.saturating_duration_since(p) <= PROBE);
        let wait = if severe { Duration::ZERO } else { DOWN_AFTER };
        if !failed_probe && now.saturating_duration_since(since) < wait {
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
        self.go(to, format!("down: {why}")).map(Step::Move)
    }

    fn maybe_up(&mut self, now: Instant) -> Option<Step> {
        if let Some(p) = self.probing
            && now.saturating_duration_since(p) > PROBE
        {
            self.probing = None;
        }
        if now.saturating_duration_since(self.quiet_since) >= HOLD * 4 {
            // A long good spell forgives earlier failed probes.
            self.hold = HOLD;
        }
        if let Some(p) = self.probe {
            if now.saturating_duration_since(p.since) < p.length() {
                return None;
            }
            self.probe = None;
            self.probing = Some(now);
            self.quiet_since = now;
            let reason = format!(
                "up: {} kbit/s more held for {:.1} s",
                p.extra / 1000,
                PROBE_HOLD.as_secs_f64()
            );
            return self.go(p.to, reason).map(Step::Move);
        }
        if self.layer.is_main() || now.saturating_duration_since(self.quiet_since) < self.hold {
            return None;
        }
        let to = Layer(self.layer.0 - 1);
        let (above, here) = (
            self.bitrates[to.0 as usize],
            self.bitrates[self.layer.0 as usize],
        );
        // A little over the difference: the layer above must fit with room.
        let extra = u64::from(above.saturating_sub(here)) * 11 / 10;
        // What the link carried, with headroom, is safe to start from.
        let known = self.estimate.map_or(0.0, |e| e as f64 * FIT) as u64;
        let start = known.saturating_sub(u64::from(here)).min(extra);
        let probe = Probe {
            since: now,
            to,
            extra,
            start,
            estimate: self.estimate.filter(|_| self.twcc),
        };
        self.probe = Some(probe);
        Some(Step::Probe {
            to,
            start,
            extra,
            length: probe.length(),
        })
    }

    /// A new TWCC estimate from str0m (several a second). During a probe,
    /// one that falls means GCC saw the queue the filler builds: stop at
    /// once, before anything is lost. (The filler itself carries no
    /// transport sequence numbers; the media around it does.)
    pub fn on_estimate(&mut self, e: u64, now: Instant) -> Option<Step> {
        let p = self.probe?;
        let before = p.estimate?;
        if (e as f64) >= before as f64 * 0.9 {
            return None;
        }
        self.probe = None;
        self.hold = (self.hold * 2).min(HOLD_MAX);
        self.quiet_since = now;
        Some(Step::ProbeFailed(format!(
            "estimate fell to {} kbit/s; next try in {} s",
            e / 1000,
            self.hold.as_secs()
        )))
    }

    /// New figures for the layers (a simulcast publisher's, measured as
    /// they go). A layer past the end keeps the smallest figure.
    pub fn set_bitrates(&mut self, mut b: Vec<u32>) {
        let Some(&min) = b.last() else {
            return;
        };
        b.resize(b.len().max(self.layer.0 as usize + 1), min);
        self.bitrates = b;
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
