//! `make bench`: figures for the WHEP path, printed, never asserted.
//!
//! - Time from WHEP POST to first decoded frame in headless Chromium
//!   (p50/p95 over 20 joins), test source at 2 Mbit/s with a 2 s GOP.
//! - r58's CPU (% of one core) and RSS with 1, 10 and 25 viewers, using the
//!   str0m-based load client in `tests/support/whep_client.rs` (one thread
//!   per viewer, full depacketization, so each viewer is a real receiver).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::browser;
use support::whep_client::Viewer;
use support::{Daemon, request};

const WINDOW: Duration = Duration::from_secs(10);

fn main() {
    let d = Daemon::start(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\nbitrate = 2000000\ngop = 60\nmax_viewers = 64\n",
    );
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let pid = d.child.id();
    println!("r58 WHEP bench: test source 1280x720@30, x264enc, 2 Mbit/s, GOP 60 (2 s)");
    println!("host: {} cores, {}", num_cpus(), cpu_model());
    println!();

    let ttff = browser::time_to_first_frame(&d.base(), "cam0", 20, None);
    println!(
        "time from WHEP POST to first decoded frame (Chromium, {} joins)",
        ttff.len()
    );
    println!("  {}", browser::summary(&ttff));
    println!();

    println!(
        "{:>8} {:>12} {:>10} {:>14} {:>12}",
        "viewers", "cpu % core", "rss MiB", "frames/s each", "first frame"
    );
    let (cpu, rss) = measure(pid, WINDOW);
    println!(
        "{:>8} {:>12.1} {:>10.1} {:>14} {:>12}",
        0, cpu, rss, "-", "-"
    );
    for n in [1usize, 10, 25] {
        let viewers: Vec<Viewer> = (0..n)
            .map(|_| Viewer::connect(d.http, "cam0").expect("viewer accepted"))
            .collect();
        let t0 = Instant::now();
        while viewers.iter().any(|v| v.frames() == 0) && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let first: Vec<u128> = viewers
            .iter()
            .filter_map(|v| v.first_frame.lock().unwrap().map(|d| d.as_millis()))
            .collect();
        let f0: u64 = viewers.iter().map(|v| v.frames()).sum();
        let (cpu, rss) = measure(pid, WINDOW);
        let f1: u64 = viewers.iter().map(|v| v.frames()).sum();
        let fps = (f1 - f0) as f64 / n as f64 / WINDOW.as_secs_f64();
        let mut first_sorted = first.clone();
        first_sorted.sort();
        let first_med = first_sorted
            .get(first_sorted.len() / 2)
            .map(|m| format!("{m} ms"))
            .unwrap_or("-".into());
        println!("{n:>8} {cpu:>12.1} {rss:>10.1} {fps:>14.1} {first_med:>12}");
        for v in &viewers {
            let _ = request(d.http, "DELETE", &v.location, &[], b"");
        }
        drop(viewers);
        std::thread::sleep(Duration::from_secs(1));
    }
    println!();
    println!(
        "cpu: r58's utime+stime over {} s / wall time; rss: VmRSS at the end of the window",
        WINDOW.as_secs()
    );
    println!("first frame (load client): POST to first complete frame received, median");
}

/// (CPU % of one core over `window`, RSS MiB at the end).
fn measure(pid: u32, window: Duration) -> (f64, f64) {
    let ticks = || -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the ")" of the command name: utime is 14th, stime 15th overall.
        let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
    };
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let (t0, c0) = (Instant::now(), ticks());
    std::thread::sleep(window);
    let (c1, dt) = (ticks(), t0.elapsed().as_secs_f64());
    ((c1 - c0) as f64 / hz / dt * 100.0, support::rss_mib(pid))
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|x| x.1.trim().to_string())
        })
        .unwrap_or_default()
}
