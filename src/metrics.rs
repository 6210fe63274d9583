//! Prometheus text format for `GET /metrics` on the API port. MediaMTX's
//! metric names where it has them (`paths`, `paths_readers`,
//! `paths_outbound_bytes`, `webrtc_sessions*`), so existing dashboards keep
//! working; r58's own under `r58_`. Pure: it renders the same facts the API
//! serves as JSON, so the two cannot disagree.

use std::fmt::Write;

use serde_json::Value;

use crate::shapes::{self, PathFacts, ProcessFacts, RelayFacts, SendFacts, TunnelFacts};

/// One metric family: a HELP and TYPE line, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn new<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Label values escape backslash, quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// `paths` and `sessions` are `/v3/paths/list` and `/v3/webrtcsessions/list`
/// items; `info` is `/v3/info`.
pub fn render(paths: &[Value], sessions: &[Value], info: &Value) -> String {
    let mut out = String::new();
    let path_state = |p: &Value| {
        if p["ready"] == true {
            "ready"
        } else {
            "notReady"
        }
    };
    // r58's facts of each path, read once for all the families below.
    let facts: Vec<PathFacts> = paths.iter().map(|p| shapes::read(&p["r58"])).collect();
    type Of<'a> = &'a dyn Fn(&Value, &PathFacts) -> f64;
    let per_path = |out: &mut String, name: &str, kind: &str, help: &str, f: Of| {
        let mut fam = Family::new(out, name, kind, help);
        for (p, r) in paths.iter().zip(&facts) {
            let labels = [
                ("name", p["name"].as_str().unwrap_or("")),
                ("state", path_state(p)),
            ];
            fam.sample(name, &labels, f(p, r));
        }
    };
    per_path(
        &mut out,
        "paths",
        "gauge",
        "Configured paths (1 each).",
        &|_, _| 1.0,
    );
    {
        let mut fam = Family::new(&mut out, "paths_readers", "gauge", "Readers of each path.");
        for p in paths {
            let labels = [
                ("name", p["name"].as_str().unwrap_or("")),
                ("readerType", "webRTCSession"),
                ("state", path_state(p)),
            ];
            fam.sample(
                "paths_readers",
                &labels,
                p["readers"].as_array().map_or(0, Vec::len) as f64,
            );
        }
    }
    per_path(
        &mut out,
        "paths_inbound_bytes",
        "counter",
        "Bytes received by each path.",
        &|p, _| num(&p["inboundBytes"]),
    );
    per_path(
        &mut out,
        "paths_outbound_bytes",
        "counter",
        "Bytes sent to each path's readers.",
        &|p, _| num(&p["outboundBytes"]),
    );
    per_path(
        &mut out,
        "r58_path_fps",
        "gauge",
        "Frames per second each path's source delivers now.",
        &|_, r| r.fps,
    );
    per_path(
        &mut out,
        "r58_path_frames",
        "counter",
        "Frames each path has delivered.",
        &|_, r| r.frames as f64,
    );
    per_path(
        &mut out,
        "r58_path_restarts",
        "counter",
        "Pipeline (encoder) restarts per path.",
        &|_, r| r.restarts as f64,
    );
    per_path(
        &mut out,
        "r58_path_bitrate",
        "gauge",
        "Each path's encoder bitrate, bit/s.",
        &|_, r| f64::from(r.bitrate),
    );

    let s_labels = |s: &Value| -> [(&'static str, String); 4] {
        [
            ("id", s["id"].as_str().unwrap_or("").to_string()),
            ("path", s["path"].as_str().unwrap_or("").to_string()),
            (
                "remoteAddr",
                s["remoteAddr"].as_str().unwrap_or("").to_string(),
            ),
            ("state", s["state"].as_str().unwrap_or("").to_string()),
        ]
    };
    for (name, kind, help, key) in [
        (
            "webrtc_sessions",
            "gauge",
            "WebRTC sessions (1 each).",
            None,
        ),
        (
            "webrtc_sessions_inbound_bytes",
            "counter",
            "Bytes received per session.",
            Some("inboundBytes"),
        ),
        (
            "webrtc_sessions_outbound_bytes",
            "counter",
            "Bytes sent per session.",
            Some("outboundBytes"),
        ),
    ] {
        let mut fam = Family::new(&mut out, name, kind, help);
        for s in sessions {
            let l = s_labels(s);
            let labels: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
            fam.sample(name, &labels, key.map_or(1.0, |k| num(&s[k])));
        }
    }
    {
        let mut fam = Family::new(
            &mut out,
            "r58_sessions",
            "gauge",
            "Sessions by state and transport.",
        );
        let mut counts: std::collections::BTreeMap<(String, String), usize> = Default::default();
        for s in sessions {
            // "host/udp/192.168.1.2/8189"; absent until connected.
            let transport = s["localCandidate"]
                .as_str()
                .and_then(|c| c.split('/').nth(1))
                .unwrap_or("none")
                .to_string();
            let state = s["state"].as_str().unwrap_or("").to_string();
            *counts.entry((state, transport)).or_default() += 1;
        }
        for ((state, transport), n) in counts {
            fam.sample(
                "r58_sessions",
                &[("state", &state), ("transport", &transport)],
                n as f64,
            );
        }
    }

    let r = &info["r58"];
    let process: ProcessFacts = shapes::read(&r["process"]);
    let relay: RelayFacts = shapes::read(&r["relay"]);
    let health: crate::health::Snapshot = shapes::read(&r["health"]);
    let mut one = |name: &str, kind: &str, help: &str, v: f64| {
        Family::new(&mut out, name, kind, help).sample(name, &[], v);
    };
    one(
        "r58_healthy",
        "gauge",
        "1 while the health check passes (it gates the watchdog).",
        f64::from(health.healthy),
    );
    one(
        "r58_engine_responding",
        "gauge",
        "1 while the WebRTC engine answers within 1 s.",
        f64::from(health.engine_ok),
    );
    one(
        "r58_watchdog_pings_total",
        "counter",
        "WATCHDOG=1 or /dev/watchdog keep-alives sent.",
        health.watchdog_pings as f64,
    );
    one(
        "r58_relay_latency_p50_seconds",
        "gauge",
        "WHIP to WHEP relay latency inside r58, median.",
        f64::from(relay.p50_us) / 1e6,
    );
    one(
        "r58_relay_latency_p99_seconds",
        "gauge",
        "WHIP to WHEP relay latency inside r58, 99th percentile.",
        f64::from(relay.p99_us) / 1e6,
    );
    let send: SendFacts = shapes::read(&r["webrtc"]["send"]);
    {
        let name = "r58_webrtc_packets_sent_total";
        let mut fam = Family::new(
            &mut out,
            name,
            "counter",
            "Media packets sent, by transport.",
        );
        fam.sample(name, &[("transport", "udp")], send.udp_packets as f64);
        fam.sample(name, &[("transport", "tcp")], send.tcp_packets as f64);
    }
    let mut one = |name: &str, kind: &str, help: &str, v: f64| {
        Family::new(&mut out, name, kind, help).sample(name, &[], v);
    };
    one(
        "r58_webrtc_udp_send_calls_total",
        "counter",
        "sendmmsg calls that carried those UDP packets (batched, GSO).",
        send.udp_calls as f64,
    );
    one(
        "r58_webrtc_udp_packets_dropped_total",
        "counter",
        "UDP packets refused by a full socket buffer.",
        send.udp_dropped as f64,
    );
    let tunnel: TunnelFacts = shapes::read(&r["tunnel"]);
    let t = &tunnel.status;
    one(
        "r58_tunnel_up",
        "gauge",
        "1 while logged in to frps.",
        f64::from(t.connected),
    );
    one(
        "r58_tunnel_rtt_seconds",
        "gauge",
        "Round trip of the tunnel's last Ping.",
        t.rtt_ms.unwrap_or(0.0) / 1e3,
    );
    one(
        "r58_tunnel_reconnects_total",
        "counter",
        "Tunnel sessions re-established.",
        t.reconnects as f64,
    );
    one(
        "r58_process_open_fds",
        "gauge",
        "Open file descriptors.",
        process.open_fds as f64,
    );
    one(
        "r58_process_resident_memory_bytes",
        "gauge",
        "Resident memory.",
        process.rss_kib as f64 * 1024.0,
    );
    one(
        "r58_uptime_seconds",
        "gauge",
        "Seconds since r58 started.",
        num(&info["uptimeSeconds"]),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_mediamtx_names_and_r58_facts_in_prometheus_text() {
        let paths = [
            json!({"name": "cam0", "ready": true, "readers": [{"id": "a"}, {"id": "b"}],
            "inboundBytes": 0, "outboundBytes": 123456,
            "r58": {"fps": 29.9, "frames": 900, "restarts": 1, "bitrate": 4000000}}),
        ];
        let sessions = [
            json!({"id": "7", "path": "cam0", "remoteAddr": "192.168.1.5:50000",
            "state": "read", "inboundBytes": 10, "outboundBytes": 99,
            "localCandidate": "host/tcp/192.168.1.2/8190"}),
        ];
        let info = json!({"uptimeSeconds": 60, "r58": {
            "health": {"healthy": true, "engineResponding": true, "watchdogPings": 4},
            "relay": null, "tunnel": {"enabled": true, "connected": true, "rttMs": 12.5, "reconnects": 2},
            "process": {"openFds": 40, "rssKiB": 2048},
            "webrtc": {"send": {"udpPackets": 700, "udpCalls": 30, "tcpPackets": 5}}}});
        let text = render(&paths, &sessions, &info);
        for line in [
            "# TYPE paths gauge",
            "paths{name=\"cam0\",state=\"ready\"} 1",
            "paths_readers{name=\"cam0\",readerType=\"webRTCSession\",state=\"ready\"} 2",
            "paths_outbound_bytes{name=\"cam0\",state=\"ready\"} 123456",
            "r58_path_fps{name=\"cam0\",state=\"ready\"} 29.9",
            "webrtc_sessions_outbound_bytes{id=\"7\",path=\"cam0\",remoteAddr=\"192.168.1.5:50000\",state=\"read\"} 99",
            "r58_sessions{state=\"read\",transport=\"tcp\"} 1",
            "r58_healthy 1",
            "r58_watchdog_pings_total 4",
            "r58_tunnel_rtt_seconds 0.0125",
            "r58_tunnel_reconnects_total 2",
            "r58_process_resident_memory_bytes 2097152",
            "r58_webrtc_packets_sent_total{transport=\"udp\"} 700",
            "r58_webrtc_packets_sent_total{transport=\"tcp\"} 5",
            "r58_webrtc_udp_send_calls_total 30",
            "r58_webrtc_udp_packets_dropped_total 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line is NAME{labels} VALUE or NAME VALUE.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let value = l.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
        assert!(escape("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
    }
}
