//! A path's layers in the engine: the main stream and its renditions, each
//! its own hub feed, and viewers moving between them.
//!
//! A viewer reads one feed. When its `Quality` says move, it also joins
//! the other layer's feed, waiting for that layer's next keyframe (forced
//! at once, and the rendition's encoder started if it was idle), and keeps
//! reading the old one meanwhile, so the picture never stops. The first
//! unit of the new feed completes the move. Its sequence numbers continue
//! (local units carry none of their own), its RTP time is the same capture
//! clock, and the unit is an IDR with SPS/PPS: the browser sees one stream
//! that changes size. A rendition nobody reads is stopped after `LINGER`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::stats::MediaEgressStats;

use super::engine::Engine;
use super::quality::{Quality, Sample, Step};
use super::session::Session;
use super::transport::Transports;
use crate::config::PathConfig;
use crate::config::rendition::Rendition;
use crate::hub::Hub;
use crate::media::Control;
use crate::shapes::ViewerFacts;
use crate::vocab::Layer;

/// An idle rendition's encoder keeps running this long, for a viewer
/// that comes straight back.
pub const LINGER: Duration = Duration::from_secs(10);
/// How often str0m reports each viewer's stats (the quality's clock).
pub const REPORT_EVERY: Duration = Duration::from_millis(500);
/// Probe filler: packet size, and a first byte no WebRTC protocol uses
/// (RFC 7983: 0-3 STUN, 16-19 ZRTP, 20-63 DTLS, 64-79 TURN, 128-191 RTP).
const FILLER: usize = 1100;
const FILLER_FIRST_BYTE: u8 = 0xFF;

pub(super) struct LayerEntry {
    /// The hub feed: the path's name for the main stream.
    pub feed: Arc<str>,
    pub bitrate: u32,
    /// "640x360 500 kbit/s", for logs and status.
    pub label: String,
    running: bool,
    idle_since: Option<Instant>,
}

/// The layers of a path, main first.
pub(super) fn layers_of(name: &Arc<str>, p: &PathConfig) -> Vec<LayerEntry> {
    let full = Rendition {
        width: p.width,
        height: p.height,
        bitrate: p.bitrate,
    };
    let main = LayerEntry {
        feed: name.clone(),
        bitrate: p.bitrate,
        label: full.label(),
        running: true,
        idle_since: None,
    };
    let renditions = p.renditions.iter().enumerate().map(|(i, r)| LayerEntry {
        feed: layer_feed(name, i + 1),
        bitrate: r.bitrate,
        label: r.label(),
        running: false,
        idle_since: None,
    });
    std::iter::once(main).chain(renditions).collect()
}

/// The hub feed of a path's layer past the main one. '#' cannot be in a
/// path name, so this never meets a real path.
fn layer_feed(name: &str, i: usize) -> Arc<str> {
    format!("{name}#{i}").into()
}

/// A simulcast publisher's layers: feeds like renditions', figures
/// filled in as its encodings are measured (`simulcast_rate`).
pub(super) fn simulcast_layers(name: &Arc<str>, n: usize) -> Vec<LayerEntry> {
    (1..n)
        .map(|i| LayerEntry {
            feed: layer_feed(name, i),
            bitrate: 0,
            label: String::new(),
            running: true,
            idle_since: None,
        })
        .collect()
}

impl LayerEntry {
    /// What a simulcast encoding feeding this layer delivers.
    pub(super) fn simulcast_rate(&mut self, r: Option<(str0m::media::Rid, u32)>) {
        let Some((rid, bps)) = r else {
            self.label = "no encoding".into();
            return;
        };
        self.bitrate = bps;
        self.label = format!("simulcast '{rid}' {} kbit/s", bps / 1000);
    }
}

/// One viewer's side of layers: what it reads and how its link is doing.
pub struct View {
    pub feed: Arc<str>,
    pub layer: Layer,
    /// A move under way: the layer and feed joined, waiting for a keyframe.
    pub moving: Option<(Layer, Arc<str>)>,
    /// When the move began, for the log.
    moving_since: Option<Instant>,
    /// Only for paths with renditions.
    pub quality: Option<Quality>,
    /// The last report of the video stream, for the API.
    pub report: Option<MediaEgressStats>,
    /// Frames held back since the last report (transport full).
    pub fell_behind: bool,
    /// The hub's drop count for this viewer at the last report.
    pub hub_dropped: u64,
    /// A probe's filler is owed from this instant on.
    pub filler_at: Option<Instant>,
    /// str0m's TWCC estimate while it can probe, bit/s.
    pub twcc: Option<u64>,
}

impl View {
    pub fn new(path: &Arc<str>) -> View {
        View {
            feed: path.clone(),
            layer: Layer::MAIN,
            moving: None,
            moving_since: None,
            quality: None,
            report: None,
            fell_behind: false,
            hub_dropped: 0,
            filler_at: None,
            twcc: None,
        }
    }
}

impl Engine {
    /// The hub feed of a path's layer (the path itself for the main one).
    pub(super) fn feed(&self, path: &Arc<str>, layer: Layer) -> Arc<str> {
        if layer.is_main() {
            return path.clone();
        }
        self.paths
            .get(path)
            .and_then(|p| p.layers.get(layer.0 as usize))
            .map(|l| l.feed.clone())
            .unwrap_or_else(|| path.clone())
    }

    /// A new viewer of a path with renditions gets a quality state.
    pub(super) fn start_quality(&mut self, id: u64, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let Some(p) = self.paths.get(&s.path).filter(|p| p.layered()) else {
            return;
        };
        // A layer's viewer also gets the path's sound: it takes its share
        // of the link whatever the layer.
        let sound = if p.handle.status.lock().unwrap().sends_audio {
            p.audio_bitrate
        } else {
            0
        };
        let rates = p.layers.iter().map(|l| l.bitrate + sound).collect();
        s.view.quality = Some(Quality::new(rates, now));
    }

    /// str0m's periodic report of a viewer's video stream.
    pub(super) fn on_report(&mut self, id: u64, r: MediaEgressStats, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let dropped = self.hub.dropped(&s.view.feed, id);
        let sample = Sample {
            loss: r.loss,
            rtt: r.rtt,
            nacks: r.nacks,
            packets: r.packets,
            bytes: s.bytes_sent,
            fell_behind: std::mem::take(&mut s.view.fell_behind) || dropped > s.view.hub_dropped,
            twcc: s.view.twcc,
        };
        s.view.hub_dropped = dropped;
        s.view.report = Some(r);
        let Some(step) = s
            .view
            .quality
            .as_mut()
            .and_then(|q| q.on_sample(sample, now))
        else {
            return;
        };
        self.act(id, step, now);
    }

    /// Carry out what a viewer's `Quality` decided, and log it.
    fn act(&mut self, id: u64, step: Step, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let path = s.path.clone();
        let from = s.view.layer;
        let label = |l: Layer| {
            self.paths
                .get(&path)
                .and_then(|p| p.layers.get(l.0 as usize))
                .map(|x| x.label.clone())
                .unwrap_or_default()
        };
        match step {
            Step::Move(mv) => {
                log::info!(
                    "whep {id}: {path} {from} -> {} ({}): {}",
                    mv.to,
                    label(mv.to),
                    mv.reason
                );
                self.begin_move(id, mv.to, now);
                if let Some(s) = self.sessions.get_mut(&id)
                    && mv.to > from
                {
                    // The old layer's packets are not worth resending now.
                    s.forget_resends();
                }
            }
            Step::Probe {
                to,
                start,
                extra,
                length,
            } => {
                log::info!(
                    "whep {id}: {path} probing for {to}: {} to {} kbit/s of filler over {:.1} s",
                    start / 1000,
                    extra / 1000,
                    length.as_secs_f64()
                );
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.view.filler_at = Some(now);
                }
            }
            Step::ProbeFailed(why) => {
                log::info!("whep {id}: {path} stays on {from}: probe up failed ({why})");
            }
        }
    }

    /// A new TWCC estimate: kept for the next report, and a running probe
    /// is stopped the moment it falls.
    pub(super) fn on_estimate(&mut self, id: u64, e: Option<u64>, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.view.twcc = e;
        if let Some(step) = e.and_then(|e| s.view.quality.as_mut()?.on_estimate(e, now)) {
            self.act(id, step, now);
        }
    }

    /// Join `to`'s feed, waiting for its next keyframe.
    fn begin_move(&mut self, id: u64, to: Layer, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let path = s.path.clone();
        // A move that is overtaken leaves the feed it was waiting on.
        if let Some((_, feed)) = s.view.moving.take() {
            self.hub.remove_reader(&feed, id);
        }
        if to == s.view.layer {
            return;
        }
        let feed = self.feed(&path, to);
        if let Some(s) = self.sessions.get_mut(&id) {
            s.view.moving = Some((to, feed.clone()));
            s.view.moving_since = Some(now);
        }
        self.run_layer(&path, to);
        if self.hub.add_reader_at_keyframe(&feed, id, now) {
            self.ask_keyframe_of(&path, to);
        }
    }

    /// Start a rendition's encoder if it is idle.
    fn run_layer(&mut self, path: &Arc<str>, layer: Layer) {
        let Some(p) = self.paths.get_mut(path) else {
            return;
        };
        let Some(l) = p.layers.get_mut(layer.0 as usize) else {
            return;
        };
        l.idle_since = None;
        if !l.running {
            l.running = true;
            p.handle.send(Control::Run(layer, true));
        }
    }

    /// Once a second: stop renditions no viewer has read for `LINGER`.
    pub(super) fn idle_renditions(&mut self, now: Instant) {
        // A simulcast publisher's layers have no encoder here to stop.
        for p in self.paths.values_mut().filter(|p| p.simulcast.is_none()) {
            for (i, l) in p.layers.iter_mut().enumerate().skip(1) {
                if !l.running || self.hub.readers(&l.feed) > 0 {
                    l.idle_since = None;
                    continue;
                }
                let since = *l.idle_since.get_or_insert(now);
                if now.saturating_duration_since(since) >= LINGER {
                    l.running = false;
                    l.idle_since = None;
                    p.handle.send(Control::Run(Layer(i as u8), false));
                }
            }
        }
    }

    /// A viewer's layer and link, for the session list.
    pub(super) fn view_facts(&self, s: &Session) -> Option<ViewerFacts> {
        if s.is_publisher() {
            return None;
        }
        let v = &s.view;
        let format = self
            .paths
            .get(&s.path)
            .and_then(|p| p.layers.get(v.layer.0 as usize))
            .map(|l| l.label.clone())
            .unwrap_or_default();
        let r = v.report.as_ref();
        let q = v.quality.as_ref();
        Some(ViewerFacts {
            layer: v.layer.0,
            rendition: v.layer.to_string(),
            format,
            estimate_bps: q.and_then(|q| q.estimate).or(v.twcc),
            rtt_ms: r
                .and_then(|r| r.rtt)
                .map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0),
            loss: r.and_then(|r| r.loss),
            nacks: r.map_or(0, |r| r.nacks),
            plis: r.map_or(0, |r| r.plis),
            firs: r.map_or(0, |r| r.firs),
            moves: q.map_or(0, |q| q.moves),
            frames_discarded: self.hub.dropped(&v.feed, s.id),
        })
    }

    /// Leave every feed a closing viewer read or was moving to.
    pub(super) fn leave_feeds(&mut self, view: &View, id: u64) {
        self.hub.remove_reader(&view.feed, id);
        if let Some((_, f)) = &view.moving {
            self.hub.remove_reader(f, id);
        }
    }
}

/// The new layer's keyframe has arrived: read from it alone.
pub(super) fn finish_move(hub: &mut Hub, s: &mut Session) {
    let Some((to, feed)) = s.view.moving.as_ref() else {
        return;
    };
    if !hub.ready(feed, s.id) {
        return;
    }
    let old = std::mem::replace(&mut s.view.feed, feed.clone());
    s.view.layer = *to;
    // A relayed layer has its own numbering: continue the viewer's.
    s.restart_numbering();
    s.view.moving = None;
    if let Some(t) = s.view.moving_since.take() {
        log::info!(
            "whep {}: on {} from its keyframe, {} ms after the decision",
            s.id,
            s.view.layer,
            t.elapsed().as_millis()
        );
    }
    s.view.hub_dropped = hub.dropped(&s.view.feed, s.id);
    hub.remove_reader(&old, s.id);
}

/// While a probe runs, send the viewer filler at the probe's rate, as
/// far as its transport has room: packets whose first byte is outside
/// every range RFC 7983 demultiplexes (STUN, DTLS, RTP/RTCP...), which
/// the browser drops unread. They load the link like the layer above
/// would, without touching the picture.
pub(super) fn send_filler(net: &mut Transports, s: &mut Session, now: Instant) {
    let (Some(probe), Some(at), Some(pair)) = (
        s.view.quality.as_ref().and_then(|q| q.probe),
        s.view.filler_at,
        s.pair.as_ref(),
    ) else {
        s.view.filler_at = None;
        return;
    };
    // The rate ramps up slowly (quality.rs says why), so a link near its
    // limit first queues (GCC and the RTT see it, the probe ends) before
    // it drops anything; a probe that holds at the full rate has shown
    // the link carries the layer above.
    let owed = probe.rate_at(now) / 8.0 * now.saturating_duration_since(at).as_secs_f64();
    let (proto, to) = (pair.proto, pair.remote);
    let mut packets = (owed / FILLER as f64) as usize;
    if packets == 0 {
        return;
    }
    s.view.filler_at = Some(now);
    // Never a burst of more than ~100 ms worth after a quiet spell.
    packets = packets.min((probe.extra / 8 / 10 / FILLER as u64).max(1) as usize);
    let proto = if proto == "tcp" {
        str0m::net::Protocol::Tcp
    } else {
        str0m::net::Protocol::Udp
    };
    for _ in 0..packets {
        if !net.has_room(s.pair.as_ref()) {
            break;
        }
        let mut p = vec![0u8; FILLER];
        p[0] = FILLER_FIRST_BYTE;
        net.send(proto, to, p);
    }
}
