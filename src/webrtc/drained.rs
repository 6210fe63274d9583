//! What one drain of a session's str0m output saw happen: the events the
//! engine acts on after driving it (connected, keyframe asked for, closed,
//! a publisher's packets, a viewer's report and estimate).

use str0m::rtp::RtpPacket;
use str0m::stats::MediaEgressStats;

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
