//! WHIP publishers inside the engine: who may publish where, turning a
//! publisher's packets into the path's units, and what happens when a
//! publisher is replaced or leaves (its viewers are told, the path shows
//! it is waiting again).

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::rtp::RtpPacket;

use super::engine::Engine;
use super::layers::simulcast_layers;
use super::relay;
use super::session::{OfferError, Role, Session, Ticket};
use super::simulcast::Simulcast;
use crate::config::Source;
use crate::hub::Track;
use crate::media::{PathState, source_name};
use crate::vocab::Layer;

/// A connected publisher that sends nothing for this long is gone.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(10);
/// What a `publisher` path says while nobody publishes.
pub const WAITING: &str = "waiting for a WHIP publisher";

/// Why a publisher session should be closed now, if it should.
pub fn idle(s: &Session, now: Instant) -> Option<&'static str> {
    let Role::Publisher(inb) = &s.role else {
        return None;
    };
    let last = inb.last_media.unwrap_or(s.created);
    (s.connected && now.duration_since(last) > MEDIA_TIMEOUT)
        .then_some("no media from the publisher for 10 s")
}

impl Engine {
    /// May this offer publish into its path? Then answer it, closing the
    /// publisher it replaces (`override_publisher`).
    pub(super) fn admit_publisher(
        &mut self,
        t: Ticket,
        now: Instant,
    ) -> Result<(Session, String), OfferError> {
        let name = t.path.clone();
        let entry = &self.paths[&name];
        if entry.source != Source::Publisher {
            return Err(OfferError::Conflict(format!(
                "path '{name}' is fed by its {} source; only paths with \
                 source = \"publisher\" take WHIP",
                source_name(entry.source)
            )));
        }
        let old = entry.publisher;
        if old.is_some() && !entry.override_publisher {
            return Err(OfferError::Conflict(format!(
                "path '{name}' already has a publisher; set override_publisher = true \
                 to let a new one take over"
            )));
        }
        // Negotiate before touching the current publisher: a bad offer
        // must not cost the path its source.
        let (s, answer) = Session::accept_publisher(t, now)?;
        let entry = self.paths.get_mut(&name).expect("looked up above");
        entry.publisher = Some(s.id);
        entry.ingest.new_publisher();
        // Simulcast: each encoding one of the path's layers (simulcast.rs).
        let rids = match &s.role {
            Role::Publisher(inb) => inb.rids.clone(),
            Role::Viewer(_) => vec![],
        };
        entry.layers.truncate(1);
        if rids.len() > 1 {
            log::info!(
                "whip {}: {name} is simulcast: {}",
                s.id,
                rids.iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            entry.layers.extend(simulcast_layers(&name, rids.len()));
        }
        entry.simulcast = (rids.len() > 1).then(|| Simulcast::new(rids, now));
        if let Some(old) = old {
            // Viewers stay: the new publisher's packets continue their streams.
            log::info!("whip {old}: replaced by a new publisher of {name}");
            self.close(old);
        }
        Ok((s, answer))
    }

    /// A publisher's packets: into its path's hub feed, out to viewers.
    pub(super) fn on_published(&mut self, id: u64, packets: Vec<RtpPacket>, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let Some(entry) = self.paths.get_mut(&s.path) else {
            return;
        };
        if entry.publisher != Some(id) {
            return;
        }
        let path = s.path.clone();
        let packets: Vec<_> = packets.into_iter().filter_map(|p| s.inbound(p)).collect();
        // What the publisher sends is learned once, from its first video packet.
        let learned = match &s.role {
            Role::Publisher(inb) => inb.carried.as_ref(),
            Role::Viewer(_) => None,
        };
        if let Some(new) = learned.filter(|&n| entry.carried.as_ref() != Some(n)) {
            let switched = entry.carried.replace(new.clone()).is_some();
            let names = new.names().join("+");
            log::info!("whip {id}: {path} now carries {names}");
            {
                let mut st = entry.handle.status.lock().unwrap();
                st.set(PathState::Streaming, None);
                st.format = names;
            }
            if switched {
                // A replacing publisher with another codec: viewers must renegotiate.
                self.end_viewers(&path, "the publisher changed codec");
                self.hub.reset(&path);
            }
        }
        let (mut routes, mut asks, mut units) = (vec![], vec![], vec![]);
        for mut p in packets {
            let Some(entry) = self.paths.get_mut(&path) else {
                return;
            };
            let layers = entry.layers.len();
            match (entry.simulcast.as_mut(), p.rid, p.track) {
                (Some(sc), Some(rid), Track::Video) => {
                    // One encoding: to the layers it feeds, on the path's clock.
                    p.time = sc.time(rid, p.time, p.arrived);
                    let key = relay::starts_keyframe(p.codec, &p.payload);
                    sc.route(rid, p.payload.len(), key, now, &mut routes, &mut asks);
                    for r in &routes {
                        if r.switched {
                            entry.ingest.switch(r.layer);
                        }
                        units.push((r.layer, Arc::new(entry.ingest.unit(p.clone(), r.layer))));
                    }
                }
                (Some(_), None, Track::Video) => {} // no rid yet: nowhere to go
                (Some(_), _, Track::Audio) => {
                    // Every layer's viewers hear the one audio track.
                    let unit = Arc::new(entry.ingest.unit(p, Layer::MAIN));
                    units.extend((0..layers).map(|l| (Layer(l as u8), unit.clone())));
                }
                (None, ..) => {
                    units.push((Layer::MAIN, Arc::new(entry.ingest.unit(p, Layer::MAIN))))
                }
            }
            if units
                .iter()
                .any(|(l, u)| l.is_main() && u.track == Track::Video && u.marker)
            {
                // Counted like an encoder's frames: the health check calls a
                // streaming path whose count stands still wedged.
                entry.handle.status.lock().unwrap().frames += 1;
            }
            for (layer, unit) in units.drain(..) {
                self.fan_out(&path, layer, unit, now);
            }
            for layer in asks.drain(..) {
                self.ask_keyframe_of(&path, layer);
            }
        }
    }

    /// Once a second: rank each simulcast publisher's encodings again,
    /// and give the layers and their viewers' quality the measured rates.
    pub(super) fn rank_simulcast(&mut self, now: Instant) {
        let (mut asks, mut due) = (vec![], vec![]);
        for (name, p) in &mut self.paths {
            let Some(sc) = p.simulcast.as_mut() else {
                continue;
            };
            sc.rank(now, &mut asks);
            due.extend(asks.drain(..).map(|l| (name.clone(), l)));
            let rates = sc.rates();
            for (l, r) in p.layers.iter_mut().zip(&rates) {
                l.simulcast_rate(*r);
            }
            // The quality policy sees the layers that have an encoding of
            // their own, largest first.
            let mut bitrates = vec![];
            let mut seen = vec![];
            for (rid, b) in rates.iter().map_while(|r| *r) {
                if seen.contains(&rid) {
                    break;
                }
                seen.push(rid);
                bitrates.push(b);
            }
            for s in self.sessions.values_mut().filter(|s| s.path == *name) {
                if let Some(q) = s.view.quality.as_mut() {
                    q.set_bitrates(bitrates.clone());
                }
            }
        }
        // The usual way, so the PLI goes out on this turn.
        for (path, layer) in due {
            self.ask_keyframe_of(&path, layer);
        }
    }

    /// The publisher left or timed out: the path waits again, and its
    /// viewers' sessions end cleanly (RTCP BYE, DTLS close).
    pub(super) fn publisher_gone(&mut self, path: &Arc<str>) {
        let Some(entry) = self.paths.get_mut(path) else {
            return;
        };
        entry.publisher = None;
        entry.carried = None;
        entry.simulcast = None;
        let extra: Vec<Arc<str>> = entry.layers.drain(1..).map(|l| l.feed).collect();
        for feed in &extra {
            self.hub.reset(feed);
        }
        let Some(entry) = self.paths.get_mut(path) else {
            return;
        };
        {
            let mut st = entry.handle.status.lock().unwrap();
            st.set(PathState::Idle, Some(WAITING.into()));
            st.format = String::new();
        }
        self.hub.reset(path);
        self.end_viewers(path, "the publisher left");
    }

    fn end_viewers(&mut self, path: &Arc<str>, why: &str) {
        let viewers: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| s.path == *path && !s.is_publisher())
            .map(|s| s.id)
            .collect();
        for v in viewers {
            log::info!("whep {v}: ending, {why}");
            self.close(v);
        }
    }
}
