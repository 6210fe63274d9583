//! `make bench` (part 2): the remote path through a TCP forwarder, the way
//! guests reach the box over FRP. Printed, never asserted.
//!
//! - Time from WHEP POST to first decoded frame in Chromium over ICE-TCP,
//!   in a guest namespace with UDP dropped, through socat in a VPS namespace.
//! - One 60 s view on the same path: frames decoded against frames sent,
//!   frames dropped, packets lost, NACKs, freezes and jitter-buffer delay.
//!
//! Needs root (network namespaces); skipped with a line saying so otherwise.

#[path = "../tests/support/mod.rs"]
mod support;

use support::browser;
use support::netns::{HTTP_PUBLIC, VPS_GUEST_SIDE, tcp_only_world, view_from_guest};

const VIEW_SECS: u32 = 60;

fn main() {
    if unsafe { libc::geteuid() } != 0 {
        println!("remote bench skipped: needs root for network namespaces");
        return;
    }
    let (t, d) = tcp_only_world("bench", true);
    println!("r58 remote-path bench: guest (UDP dropped) -> socat on a VPS namespace -> r58");
    println!("test source 1280x720@30, x264enc, 2 Mbit/s, GOP 30 (1 s); ICE-TCP only");
    println!();

    let base = format!("http://{VPS_GUEST_SIDE}:{HTTP_PUBLIC}");
    let ms = browser::time_to_first_frame(&base, "cam0", 10, Some(&t.guest));
    println!(
        "time from WHEP POST to first decoded frame over ICE-TCP ({} joins)",
        ms.len()
    );
    println!("  {}", browser::summary(&ms));
    println!();

    let v = view_from_guest(&t, &d, VIEW_SECS, "");
    let decoded = support::browser::decoded(&v);
    // view.mjs measures secs + ~1 s (its stats refresh once a second).
    let expected = 30 * (VIEW_SECS as u64 + 1);
    println!(
        "one {VIEW_SECS} s view over {} ({} -> {})",
        v["protocol"], v["remote"], v["candidate"]
    );
    println!(
        "  frames decoded {decoded} of ~{expected} sent ({:.1}%), dropped {}, packets lost {}, NACKs {}",
        100.0 * decoded as f64 / expected as f64,
        v["framesDropped"],
        v["packetsLost"],
        v["nackCount"]
    );
    println!(
        "  freezes {} ({} ms in total), jitter buffer {} ms on average",
        v["freezeCount"], v["freezeMs"], v["jitterBufferMs"]
    );
}
