//! `make bench` (adaptive quality): one Chromium viewer of a 720p30
//! 2.5 Mbit/s path with a 640x360 500 kbit/s rendition, on a link capped
//! with `tc tbf` at the box's side (unlimited, 2 Mbit/s, 700 kbit/s), over
//! UDP; 30 s each. Printed per link: fps and freezes over the last 20 s,
//! time frozen, the layer the viewer ends on and when it got there.
//! Printed, never asserted. Needs root (network namespaces), Chromium and
//! playwright-core (`make test` installs both).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::adapt::{PATHS, Timeline};
use support::netns::{SHAPED_DEV_IP, Shaped};
use support::{Daemon, Setup, browser};

const SECS: u64 = 30;

fn main() {
    if unsafe { libc::geteuid() } != 0 {
        println!("adaptive-quality bench skipped: needs root for network namespaces");
        return;
    }
    println!(
        "r58 adaptive quality: 720p30 2.5 Mbit/s + 640x360 500 kbit/s rendition, one Chromium viewer, UDP, {SECS} s"
    );
    println!();
    println!(
        "{:>10} {:>6} {:>8} {:>10} {:>6} {:>10} {:>6}",
        "link", "fps", "freezes", "frozen ms", "layer", "settled s", "moves"
    );
    // R58_BENCH_LINK=2000 runs one link (kbit/s) and prints r58's moves.
    let only: Option<u32> = std::env::var("R58_BENCH_LINK")
        .ok()
        .and_then(|v| v.parse().ok());
    for (name, kbit) in [
        ("unlimited", None),
        ("2 Mbit/s", Some(2000)),
        ("700 kbit/s", Some(700)),
    ] {
        if only.is_some() && only != kbit {
            continue;
        }
        let link = Shaped::up("adbench");
        let d = Daemon::start_with(Setup {
            paths: PATHS.into(),
            netns: Some(link.dev.clone()),
            ..Setup::default()
        });
        d.wait_state("cam0", "streaming", Duration::from_secs(20));
        link.limit(kbit);
        let base = format!("http://{SHAPED_DEV_IP}:{}", d.http);
        let out = match browser::script(
            "adapt.mjs",
            &[&base, "cam0", &SECS.to_string()],
            &[],
            Some(&link.guest),
        ) {
            Ok(o) => o,
            Err(e) => {
                println!("{name:>10} failed: {e}");
                continue;
            }
        };
        let tl = Timeline::of(&out["viewers"][0]);
        let last = tl.0.len() as u64;
        let height = tl.at(last, "height");
        let moves = d.log().lines().filter(|l| l.contains(" -> ")).count();
        if only.is_some() {
            for l in d
                .log()
                .lines()
                .filter(|l| l.contains(" -> ") || l.contains("prob"))
            {
                println!("{l}");
            }
            println!("{:?}", tl.frames());
        }
        println!(
            "{name:>10} {:>6.1} {:>8} {:>10} {:>6} {:>10} {:>6}",
            tl.fps(last - 20, last),
            tl.freezes(last - 20, last),
            tl.at(last, "freezeMs"),
            if height >= 720 { "main" } else { "r1" },
            tl.settled(),
            moves
        );
    }
    println!();
    println!(
        "fps, freezes: over the last 20 s; frozen ms: over the whole view (Chromium's totalFreezesDuration)"
    );
    println!(
        "settled s: the second of the view from which the picture kept its final size; moves: layer moves r58 logged"
    );
}
