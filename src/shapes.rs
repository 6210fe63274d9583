//! r58's own parts of the API's JSON, as types: `api` serializes them and
//! `status`, `doctor` and `metrics` read them back, so a renamed field
//! breaks the build instead of the technician's screen. MediaMTX-shaped
//! envelopes (`items`, `readers`, …) stay where MediaMTX defines them.
//! Every field has a default, so a screen still renders against an older
//! daemon that lacks a newer field.

use serde::{Deserialize, Serialize};

use crate::vocab::PathState;

/// `r58` in each `/v3/paths/list` item.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct PathFacts {
    pub state: PathState,
    /// Why it is not streaming, or the last error.
    pub detail: Option<String>,
    pub encoder: Option<String>,
    pub frames: u64,
    pub restarts: u64,
    /// `test`, `hdmi`, `v4l2` or `publisher`.
    pub source: String,
    /// Encoder target, bit/s (0 for published paths).
    pub bitrate: u32,
    pub keyframes_forced: u64,
    /// What viewers get: "1280x720@30", "H264+Opus".
    pub format: String,
    /// HDMI inputs: the mode, or why there is none.
    pub signal: Option<String>,
    /// Measured over the last seconds, one decimal.
    pub fps: f64,
    pub since_seconds: u64,
    /// "Opus 48 kHz stereo, test tone", "no audio: ..." or none.
    pub audio: Option<String>,
    pub audio_missing: bool,
}

/// `r58.webrtc` in `/v3/info`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct NetworkFacts {
    pub udp_port: u16,
    /// 0: ICE-TCP off.
    pub tcp_port: u16,
    pub hosts: Vec<String>,
    pub public: Vec<PublicFacts>,
    /// Public names that do not resolve (yet).
    pub unresolved: Vec<UnresolvedFacts>,
    pub viewers: usize,
    pub publishers: usize,
    /// Media packets out, and what it cost in system calls.
    pub send: SendFacts,
}

/// A viewer's layer and link, under `r58` in `/v3/webrtcsessions/list`
/// (engine → API → `r58 status`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct ViewerFacts {
    /// 0 for the main stream, 1.. for the renditions.
    pub layer: u8,
    /// "main" or "r1", …
    pub rendition: String,
    /// "640x360 500 kbit/s": what that layer is.
    pub format: String,
    /// What the link can carry, bit/s, when known (TWCC, or what got
    /// through while it was congested).
    pub estimate_bps: Option<u64>,
    pub rtt_ms: Option<f64>,
    /// Fraction lost, from the last receiver report.
    pub loss: Option<f32>,
    pub nacks: u64,
    pub plis: u64,
    pub firs: u64,
    /// Moves between layers so far.
    pub moves: u32,
    /// Frames skipped for this viewer (too slow, waiting for a keyframe).
    pub frames_discarded: u64,
}

/// `r58.webrtc.send`: packets sent since start, per transport. UDP packets
/// leave in batches (sendmmsg, GSO), so calls are fewer than packets.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct SendFacts {
    pub udp_packets: u64,
    pub udp_calls: u64,
    /// Refused by a full socket buffer.
    pub udp_dropped: u64,
    pub tcp_packets: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct PublicFacts {
    pub ip: String,
    /// 0: not forwarded.
    pub udp_port: u16,
    pub tcp_port: u16,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct UnresolvedFacts {
    pub host: String,
    pub error: String,
}

/// `r58.process` in `/v3/info`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct ProcessFacts {
    pub tasks: usize,
    pub open_fds: usize,
    #[serde(rename = "rssKiB")]
    pub rss_kib: u64,
}

/// `r58.relay` in `/v3/info`: WHIP → WHEP latency inside r58.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct RelayFacts {
    pub p50_us: u32,
    pub p99_us: u32,
    pub packets: u64,
}

/// `/v3/tunnel` and `r58.tunnel` in `/v3/info`: the tunnel's own status,
/// with whether one is configured at all.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TunnelFacts {
    pub enabled: bool,
    #[serde(flatten)]
    pub status: crate::tunnel::status::Status,
}

/// One `[[forward]]` entry: `/v3/forwards` items, for `r58 status` and
/// the doctor.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct ForwardFacts {
    pub path: String,
    /// The WHIP endpoint (a token is never part of it).
    pub url: String,
    pub state: crate::vocab::ForwardState,
    pub since_seconds: u64,
    /// Media sent to the relay over the last seconds.
    pub bitrate_bps: u64,
    pub rtt_ms: Option<u32>,
    /// "udp 192.168.1.20:8189 <-> 65.109.32.111:8189"
    pub pair: Option<String>,
    /// Why the last try failed, in the relay's words where it gave some.
    pub last_error: Option<String>,
    pub attempts: u64,
    /// While retrying: seconds until the next try.
    pub retry_in_seconds: Option<u64>,
}

/// Read one of these from a JSON value; absent or unreadable is the default.
pub fn read<T: serde::de::DeserializeOwned + Default>(v: &serde_json::Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_round_trip_under_the_api_names() {
        let p = PathFacts {
            state: PathState::Streaming,
            encoder: Some("x264enc".into()),
            keyframes_forced: 3,
            since_seconds: 9,
            format: "1280x720@30".into(),
            ..Default::default()
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["state"], "streaming");
        assert_eq!(v["keyframesForced"], 3);
        assert_eq!(v["sinceSeconds"], 9);
        assert_eq!(read::<PathFacts>(&v), p);
        let proc_ = serde_json::to_value(ProcessFacts {
            tasks: 1,
            open_fds: 2,
            rss_kib: 3,
        })
        .unwrap();
        assert_eq!(
            proc_,
            serde_json::json!({"tasks": 1, "openFds": 2, "rssKiB": 3})
        );
        // Missing fields (an older daemon) read as defaults, not an error.
        let n: NetworkFacts = read(&serde_json::json!({"udpPort": 8189}));
        assert_eq!((n.udp_port, n.tcp_port, n.hosts.len()), (8189, 0, 0));
        assert_eq!(
            read::<PathFacts>(&serde_json::Value::Null),
            PathFacts::default()
        );
    }
}
