//! `make bench` (forwarding, issue 18): the box in `dev` forwards cam0 to an
//! r58 relay in `vps`; guests in `guest` reach only the relay. Printed,
//! never asserted.
//!
//! - Time from starting the box's r58 to the first frame decoded by a
//!   Chromium guest that keeps asking the relay until the path is there.
//! - The box's uplink (bytes out of its veth) with 1 and with 10 guests
//!   (pion, `../shared/tools/whepbench`) viewing through the relay, next to
//!   what the relay sends them: the box's figure should not move.
//!
//! Needs root (network namespaces); skipped with a line saying so otherwise.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::netns::{Topo, VPS_DEVICE_SIDE, VPS_GUEST_SIDE};
use support::{Daemon, Setup};

const WINDOW: Duration = Duration::from_secs(10);

fn main() {
    if unsafe { libc::geteuid() } != 0 {
        println!("forward bench skipped: needs root for network namespaces");
        return;
    }
    let t = Topo::up("fwdbench");
    let relay = Daemon::start_with(Setup {
        paths: "[paths.relay]\nsource = \"publisher\"\n".into(),
        netns: Some(t.vps.clone()),
        ..Setup::default()
    });
    let base = format!("http://{VPS_GUEST_SIDE}:{}", relay.http);
    let whep = format!("{base}/relay/whep");
    println!("r58 forward bench: box (dev) -> r58 relay (vps) -> guests (guest)");
    println!(
        "test source (snow, so the encoder fills its rate) 1280x720@30, x264enc, 2 Mbit/s, GOP 30; WHIP over UDP"
    );
    println!();

    // The guest's Chromium is up and asking before the box starts.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let mut guest = Command::new("ip")
        .args([
            "netns",
            "exec",
            &t.guest,
            "node",
            "whep.mjs",
            &format!("{base}/"),
            &whep,
            "2",
        ])
        .current_dir(&dir)
        .env("WHEP_RETRY_SECS", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("running node");
    let mut lines = BufReader::new(guest.stdout.take().unwrap()).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    if ready != "ready" {
        println!("forward bench skipped: Chromium did not start ({ready})");
        let _ = guest.kill();
        let _ = guest.wait();
        return;
    }
    let started = unix_ms();
    let bx = Daemon::start_with(Setup {
        paths: format!(
            "[paths.cam0]\nsource = \"test\"\npattern = \"snow\"\nencoder = \"x264enc\"\naudio = \"off\"\n\
             [[forward]]\npath = \"cam0\"\nurl = \"http://{VPS_DEVICE_SIDE}:{}/relay/whip\"\n",
            relay.http
        ),
        netns: Some(t.device.clone()),
        ..Setup::default()
    });
    let result: serde_json::Value = lines
        .map_while(Result::ok)
        .last()
        .and_then(|l| serde_json::from_str(&l).ok())
        .unwrap_or_default();
    let _ = guest.wait();
    match result["firstFrameAt"].as_u64() {
        Some(at) => println!(
            "r58 start -> first frame at the guest through the relay: {} ms ({} WHEP tries)",
            at.saturating_sub(started),
            result["tries"]
        ),
        None => println!("no frame at the guest: {result}"),
    }
    println!();

    let Some(bench) = support::whepbench() else {
        println!("guest load skipped: no whepbench (../shared/tools/whepbench or WHEPBENCH)");
        return;
    };
    println!(
        "uplink over {} s once the guests have joined (box: its veth out; relay: out to guests)",
        WINDOW.as_secs()
    );
    for n in [1, 10, 1, 10] {
        let (up, fan) = uplink(&t, &bench, &whep, n);
        println!(
            "  {n:>2} guest(s): box {:>6.0} kbit/s   relay to guests {:>6.0} kbit/s",
            up * 8.0 / 1000.0,
            fan * 8.0 / 1000.0
        );
    }
    drop(bx);
}

/// Bytes per second out of the box's and the relay's guest-side links
/// while `n` whepbench guests view through the relay.
fn uplink(t: &Topo, bench: &std::path::Path, whep: &str, n: usize) -> (f64, f64) {
    let secs = WINDOW.as_secs() + 6;
    let mut wb = support::whepbench_command(bench, Some(&t.guest), n, secs, 20, whep)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("running whepbench");
    std::thread::sleep(Duration::from_secs(4));
    let (b0, r0) = (tx_bytes(&t.device, "d0"), tx_bytes(&t.vps, "v0"));
    std::thread::sleep(WINDOW);
    let (b1, r1) = (tx_bytes(&t.device, "d0"), tx_bytes(&t.vps, "v0"));
    let _ = wb.wait();
    std::thread::sleep(Duration::from_secs(2)); // the relay drops the sessions
    let s = WINDOW.as_secs_f64();
    ((b1 - b0) as f64 / s, (r1 - r0) as f64 / s)
}

/// Bytes sent by `iface` in `ns` (`ip -s -j link`).
fn tx_bytes(ns: &str, iface: &str) -> u64 {
    let out = Command::new("ip")
        .args(["-n", ns, "-s", "-j", "link", "show", iface])
        .output()
        .expect("ip link");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v[0]["stats64"]["tx"]["bytes"].as_u64().unwrap_or(0)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
