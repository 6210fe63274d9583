//! `make bench` (part 4): WHIP → WHEP relay. Printed, never asserted.
//!
//! - Relay latency added by r58: from a publisher's RTP packet reaching
//!   the engine to its SRTP copy leaving for the last viewer (p50/p99 over
//!   the last 8192 packets, read from `/v3/info`), with 1 and 10 viewers.
//! - Time from WHEP POST to first decoded frame in Chromium for a viewer
//!   joining a published path (each join asks the publisher for a keyframe).
//!
//! The publisher is headless Chromium's fake camera (640x480, H.264 + Opus).

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::whep_client::Viewer;
use support::{Daemon, browser};

fn main() {
    let d = Daemon::start("[paths.guest1]\nsource = \"publisher\"\nmax_viewers = 64\n");
    let mut publisher = publish(&d, 120);
    let t0 = Instant::now();
    while d.path_info("guest1")["ready"] != true && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("r58 WHIP relay bench: Chromium fake camera 640x480 H.264 + Opus -> guest1");
    println!();
    if d.path_info("guest1")["ready"] != true {
        println!("publisher never became ready (is Chromium installed? run `make bench`)");
        let _ = support::terminate(&mut publisher);
        return;
    }
    let ttff = browser::time_to_first_frame(&d.base(), "guest1", 10, None);
    println!(
        "time from WHEP POST to first decoded frame, published path ({} joins)",
        ttff.len()
    );
    println!("  {}", browser::summary(&ttff));
    println!();
    println!("relay latency inside r58 (RTP in -> SRTP copy to the last viewer out)");
    for n in [1usize, 10] {
        let viewers: Vec<Viewer> = (0..n)
            .map(|_| Viewer::connect(d.http, "guest1").expect("viewer accepted"))
            .collect();
        std::thread::sleep(Duration::from_secs(8));
        let r = &d.api_json("/v3/info")["r58"]["relay"];
        let frames: u64 = viewers.iter().map(|v| v.frames()).sum();
        println!(
            "  {n:>2} viewer(s): p50 {} us   p99 {} us   ({} packets so far, {} frames per viewer)",
            r["p50Us"],
            r["p99Us"],
            r["packets"],
            frames / n as u64
        );
    }
    let _ = support::terminate(&mut publisher);
}

fn publish(d: &Daemon, secs: u32) -> Child {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    Command::new("node")
        .current_dir(dir)
        .args(["publish.mjs", &d.base(), "guest1", &secs.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starting node")
}
