//! Draining a session's str0m output: its packets go out (by its pair's
//! socket or a forward's TURN task), and what happened is kept for the
//! engine to act on after driving it (connected, keyframe asked for,
//! closed, a publisher's packets, a viewer's report and estimate).

use str0m::bwe::BweKind;
use str0m::net::Protocol;
use str0m::rtp::RtpPacket;
use str0m::stats::MediaEgressStats;
use str0m::{Event, IceConnectionState, Output};

use super::session::Session;
use super::transport::Transports;

/// What draining a session saw happen (engine.rs). What a drain in the
/// middle of pumping frames sees waits in `Session::seen` for `drive`.
#[derive(Default)]
pub struct Drained {
    pub connected: bool,
    pub keyframe: bool,
    pub close: bool,
    /// A publisher's incoming packets (RTP mode hands them over as events).
    pub packets: Vec<RtpPacket>,
    /// The latest report of a viewer's video stream.
    pub report: Option<MediaEgressStats>,
    /// The latest TWCC estimate (None inside: it cannot probe now).
    pub estimate: Option<Option<u64>>,
}

impl Drained {
    /// Fold in what an earlier drain saw (the older facts give way).
    pub fn merge(&mut self, earlier: Drained) {
        self.connected |= earlier.connected;
        self.keyframe |= earlier.keyframe;
        self.close |= earlier.close;
        if !earlier.packets.is_empty() {
            let mut p = earlier.packets;
            p.append(&mut self.packets);
            self.packets = p;
        }
        self.report = self.report.take().or(earlier.report);
        self.estimate = self.estimate.take().or(earlier.estimate);
    }
}

/// Send one packet str0m produced: by its pair's socket, or, from a
/// forward's relayed candidate, through the TURN task (dropped, like a
/// full socket buffer's, if it is behind).
pub(super) fn transmit(s: &Session, net: &mut Transports, t: str0m::net::Transmit) {
    match s.forward.as_ref().and_then(|l| l.turn_for(t.source)) {
        Some(turn) => {
            let _ = turn.tx.try_send((t.destination, t.contents.into()));
        }
        None => net.send(t.proto, t.destination, t.contents.into()),
    }
}

/// Poll a session until it waits: send its packets, note its events.
pub(super) fn drain(s: &mut Session, net: &mut Transports) -> Drained {
    let mut d = Drained::default();
    loop {
        match s.rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                s.next_timeout = t;
                break;
            }
            Ok(Output::Transmit(t)) => {
                // The last pair used is the selected one once DTLS is up.
                // A forward's own ICE checks go out on every pair: only
                // what is not STUN tells which one carries media.
                if s.forward.is_none() || t.contents.first().is_some_and(|b| *b > 3) {
                    s.note_pair(t.proto, t.source, t.destination);
                }
                if s.forward.is_some() && t.proto == Protocol::Tcp {
                    net.dial(t.destination, s.id);
                }
                transmit(s, net, t);
            }
            Ok(Output::Event(e)) => match e {
                Event::Connected => {
                    s.connected = true;
                    d.connected = true;
                }
                Event::KeyframeRequest(_) => d.keyframe = true,
                Event::RtpPacket(p) => d.packets.push(p),
                Event::MediaEgressStats(m) if Some(m.mid) == s.video_mid() => d.report = Some(m),
                Event::EgressBitrateEstimate(BweKind::Twcc {
                    estimate,
                    can_probe,
                }) => d.estimate = Some(can_probe.then(|| estimate.as_u64())),
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                    log::info!(
                        "{} {}: ICE disconnected: no checks from the peer",
                        s.kind(),
                        s.id
                    );
                    d.close = true;
                }
                _ => {}
            },
            Err(e) => {
                log::info!("whep {}: session error: {e}", s.id);
                d.close = true;
                break;
            }
        }
    }
    d
}
