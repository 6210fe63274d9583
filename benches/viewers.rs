//! `make bench` (per-viewer cost): what one more viewer costs r58, as CPU
//! time per RTP packet sent, measured as a slope so the source's own cost
//! cancels. Printed, never asserted.
//!
//! The load generator is pion (`../shared/tools/whepbench`, or WHEPBENCH),
//! the WebRTC stack MediaMTX uses. The stream is a WHIP publisher path fed
//! by GStreamer (`tests/interop/gst_peer.py`, a noisy pattern at 3 Mbit/s,
//! about 330 packets/s) so there are packets to measure; the test pattern
//! compresses to ~36 packets/s, too few for a slope.
//!
//! For N in 15 and 50: r58's CPU (utime+stime from /proc) over 8 s with N
//! viewers, then with 3N; the packets are r58's own count
//! (`/v3/info` r58.webrtc.send). µs per packet = (cpu(3N) - cpu(N)) /
//! (packets(3N) - packets(N)); memory per viewer likewise from RSS. Two
//! runs each. Then 200 viewers at once: loss reported by whepbench.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use support::whep_client::{Decode, Viewer};
use support::{Daemon, Setup, request};

const WINDOW: Duration = Duration::from_secs(8);

fn main() {
    let Some(bench) = support::whepbench() else {
        println!(
            "viewer-cost bench skipped: no whepbench (../shared/tools/whepbench or WHEPBENCH)"
        );
        return;
    };
    let d = Daemon::start_with(Setup {
        paths: "[paths.pub1]\nsource = \"publisher\"\nmax_viewers = 250\n".into(),
        ..Setup::default()
    });
    let mut publisher = publish(&d);
    d.wait_state("pub1", "streaming", Duration::from_secs(20));
    println!(
        "r58 per-viewer cost: WHIP publisher (GStreamer, 640x480 snow, 3 Mbit/s) -> r58 -> N pion viewers (whepbench)"
    );
    println!();
    println!(
        "{:>5} {:>4} {:>8} {:>8} {:>12} {:>10} {:>6} {:>8} {:>7} {:>10} {:>10}",
        "N",
        "run",
        "cpu% N",
        "cpu% 3N",
        "pkt/s/viewer",
        "µs/packet",
        "lost",
        "upstream",
        "rcvbuf",
        "pkts/call",
        "KiB/viewer"
    );
    // R58_BENCH=tcp skips to the ICE-TCP part (for profiling it alone).
    // R58_BENCH=200 runs only the 200-viewer part.
    let only = std::env::var("R58_BENCH").unwrap_or_default();
    let only_tcp = only == "tcp";
    for n in [15usize, 50].into_iter().filter(|_| only.is_empty()) {
        for run in 1..=2 {
            let a = measure(&d, &bench, n);
            let b = measure(&d, &bench, 3 * n);
            let us = (b.cpu_s - a.cpu_s) / (b.packets - a.packets) as f64 * 1e6;
            let per_viewer = a.packets as f64 / WINDOW.as_secs_f64() / n as f64;
            let kib = (b.rss_kib as f64 - a.rss_kib as f64) / (2 * n) as f64;
            println!(
                "{n:>5} {run:>4} {:>8.1} {:>8.1} {per_viewer:>12.0} {us:>10.2} {:>6} {:>8} {:>7} {:>10.1} {kib:>10.0}",
                a.cpu_s / WINDOW.as_secs_f64() * 100.0,
                b.cpu_s / WINDOW.as_secs_f64() * 100.0,
                a.lost + b.lost,
                a.upstream_lost * n as u64 + b.upstream_lost * 3 * n as u64,
                a.rcvbuf + b.rcvbuf,
                b.packets as f64 / b.calls.max(1) as f64,
            );
        }
    }
    println!();
    println!(
        "ICE-TCP (str0m load client, one RFC 4571 connection per viewer; it counts SRTP without decrypting once a frame has come):"
    );
    println!(
        "{:>5} {:>4} {:>8} {:>8} {:>12} {:>10} {:>9}",
        "N", "run", "cpu% N", "cpu% 3N", "pkt/s/viewer", "µs/packet", "received"
    );
    for (n, run) in [(15, 1), (15, 2), (50, 1), (50, 2)]
        .into_iter()
        .filter(|_| only.is_empty() || only_tcp)
    {
        let (a, b) = (measure_tcp(&d, n), measure_tcp(&d, 3 * n));
        let us = (b.cpu_s - a.cpu_s) / (b.packets - a.packets) as f64 * 1e6;
        println!(
            "{n:>5} {run:>4} {:>8.1} {:>8.1} {:>12.0} {us:>10.2} {:>8.1}%",
            a.cpu_s / WINDOW.as_secs_f64() * 100.0,
            b.cpu_s / WINDOW.as_secs_f64() * 100.0,
            a.packets as f64 / WINDOW.as_secs_f64() / n as f64,
            b.received as f64 / b.packets.max(1) as f64 * 100.0,
        );
    }
    println!();
    if only_tcp {
        let _ = publisher.kill();
        let _ = publisher.wait();
        return;
    }
    // pion does not size its sockets' receive buffers: with r58, GStreamer
    // and whepbench on two cores, whepbench falls behind and the kernel
    // drops at its sockets. The second run gives new sockets 2 MiB (the
    // host's default is put back) to show what r58 itself delivers.
    for big in [false, true] {
        let restore = big.then(|| set_rmem_default(2 << 20)).flatten();
        if big && restore.is_none() {
            println!(
                "(200 viewers with 2 MiB receive buffers skipped: net.core.rmem_default not writable)"
            );
            continue;
        }
        let m = measure(&d, &bench, 200);
        if let Some(old) = restore {
            set_rmem_default(old);
        }
        println!(
            "200 viewers ({} receive buffers): cpu {:.1}% of a core, {:.0} packets/s per viewer, \
             {} lost (whepbench), of which {} upstream; {} refused by r58's socket, {} dropped by full receive buffers",
            if big { "2 MiB" } else { "default" },
            m.cpu_s / WINDOW.as_secs_f64() * 100.0,
            m.packets as f64 / WINDOW.as_secs_f64() / 200.0,
            m.lost,
            m.upstream_lost * 200,
            m.dropped,
            m.rcvbuf,
        );
    }
    println!();
    println!("µs/packet: r58's extra CPU time from N to 3N viewers over the extra packets it sent");
    println!(
        "upstream: of those, what the publisher's leg lost (r58's inboundRTPPacketsLost, times the viewers who then miss it)"
    );
    println!(
        "rcvbuf: UDP datagrams this host dropped at a full receive buffer over the whole run (/proc/net/snmp RcvbufErrors): the load generator's sockets"
    );
    println!("pkts/call: UDP packets per sendmmsg call (batching and GSO)");
    println!("KiB/viewer: r58's RSS growth from N to 3N viewers, per extra viewer");
    let _ = publisher.kill();
    let _ = publisher.wait();
}

fn publish(d: &Daemon) -> Child {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/gst_peer.py");
    Command::new("/usr/bin/python3")
        .arg(script)
        .args(["whip", &format!("{}/pub1/whip", d.base()), "900"])
        .env("GST_PEER_PATTERN", "snow")
        .env("GST_PEER_BITRATE", "3000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the GStreamer publisher (make interop installs its packages)")
}

struct Sample {
    cpu_s: f64,
    packets: u64,
    calls: u64,
    dropped: u64,
    lost: u64,
    /// Datagrams dropped at full receive buffers on this host.
    rcvbuf: u64,
    /// Gaps in what the publisher sent r58 over the whole whepbench run.
    upstream_lost: u64,
    /// r58's resident memory at the end of the window.
    rss_kib: u64,
    /// Packets the ICE-TCP clients counted over the window.
    received: u64,
}

/// N whepbench viewers; r58's CPU seconds and packets over WINDOW once
/// they have joined.
fn measure(d: &Daemon, bench: &std::path::Path, n: usize) -> Sample {
    let secs = WINDOW.as_secs() + 8;
    let url = format!("{}/pub1/whep", d.base());
    let wb = support::whepbench_command(bench, None, n, secs, 10, &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("running whepbench");
    let (up0, rcv0) = (upstream_lost(d), rcvbuf_errors());
    std::thread::sleep(Duration::from_secs(5));
    let (c0, s0, t0) = (cpu(d.child.id()), send(d), Instant::now());
    std::thread::sleep(WINDOW);
    let (c1, s1) = (cpu(d.child.id()), send(d));
    let rss_kib = (support::rss_mib(d.child.id()) * 1024.0) as u64;
    let scale = WINDOW.as_secs_f64() / t0.elapsed().as_secs_f64();
    let out = wb.wait_with_output().expect("whepbench output");
    let text = String::from_utf8_lossy(&out.stdout);
    let lost = text
        .split("lost=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let upstream_lost = upstream_lost(d) - up0;
    let rcvbuf = rcvbuf_errors() - rcv0;
    wait_gone(d);
    Sample {
        cpu_s: (c1 - c0) * scale,
        packets: ((s1.0 - s0.0) as f64 * scale) as u64,
        calls: s1.1 - s0.1,
        dropped: s1.2,
        lost,
        rcvbuf,
        upstream_lost,
        rss_kib,
        received: 0,
    }
}

/// (UDP packets, sendmmsg calls, packets dropped, TCP packets) from r58's
/// own counters.
fn send(d: &Daemon) -> (u64, u64, u64, u64) {
    let info = d.api_json("/v3/info");
    let s = &info["r58"]["webrtc"]["send"];
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    (
        n("udpPackets"),
        n("udpCalls"),
        n("udpDropped"),
        n("tcpPackets"),
    )
}

/// N str0m viewers over ICE-TCP; r58's CPU seconds and TCP packets.
fn measure_tcp(d: &Daemon, n: usize) -> Sample {
    let viewers: Vec<Viewer> = (0..n)
        .filter_map(|_| Viewer::connect_tcp_with(d.http, "pub1", Decode::UntilFirstFrame).ok())
        .collect();
    let received = || -> u64 { viewers.iter().map(|v| v.packets.load(Relaxed)).sum() };
    let t = Instant::now();
    while viewers.iter().any(|v| v.frames() == 0) && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (c0, s0, r0, t0) = (cpu(d.child.id()), send(d), received(), Instant::now());
    std::thread::sleep(WINDOW);
    let (c1, s1, r1) = (cpu(d.child.id()), send(d), received());
    let scale = WINDOW.as_secs_f64() / t0.elapsed().as_secs_f64();
    for v in &viewers {
        let _ = request(d.http, "DELETE", &v.location, &[], b"");
    }
    drop(viewers);
    wait_gone(d);
    Sample {
        cpu_s: (c1 - c0) * scale,
        packets: ((s1.3 - s0.3) as f64 * scale) as u64,
        calls: 0,
        dropped: 0,
        lost: 0,
        rcvbuf: 0,
        upstream_lost: 0,
        rss_kib: 0,
        received: ((r1 - r0) as f64 * scale) as u64,
    }
}

/// Set net.core.rmem_default; returns the old value (None: not allowed).
fn set_rmem_default(bytes: u64) -> Option<u64> {
    let f = "/proc/sys/net/core/rmem_default";
    let old = std::fs::read_to_string(f).ok()?.trim().parse().ok()?;
    std::fs::write(f, bytes.to_string()).ok()?;
    Some(old)
}

/// The host's UDP RcvbufErrors counter.
fn rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Packets the publisher's link to r58 lost, by r58's count.
fn upstream_lost(d: &Daemon) -> u64 {
    let list = d.api_json("/v3/webrtcsessions/list");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["state"] == "publish")
        .filter_map(|s| s["inboundRTPPacketsLost"].as_u64())
        .sum()
}

/// Wait until only the publisher's session is left, so that viewers of
/// one phase (whepbench does not DELETE; its sessions end when r58 sees
/// them go quiet) do not cost CPU in the next.
fn wait_gone(d: &Daemon) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(40) {
        let list = d.api_json("/v3/webrtcsessions/list");
        if list["items"].as_array().is_some_and(|a| a.len() <= 1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    if std::env::var_os("R58_BENCH_VERBOSE").is_some() {
        eprintln!("viewers gone after {:.1} s", t.elapsed().as_secs_f64());
    }
}

/// CPU seconds (user + system) the process has used.
fn cpu(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) as f64 / hz
}
