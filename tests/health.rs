//! systemd integration seen from systemd's side: a notify socket receives
//! READY=1 once r58 serves, STATUS= and WATCHDOG=1 while healthy, and
//! STOPPING=1 on SIGTERM.

mod support;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use support::Daemon;

fn recv_until(sock: &UnixDatagram, within: Duration, want: impl Fn(&str) -> bool) -> Vec<String> {
    let mut seen = Vec::new();
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    while t0.elapsed() < within {
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = want(&m);
            seen.push(m);
            if done {
                return seen;
            }
        }
    }
    panic!("wanted message not seen; got {seen:?}");
}

#[test]
fn ready_status_watchdog_and_stopping() {
    let name = format!("r58-test-notify-{}", std::process::id());
    let sock =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let target = format!("@{name}");
    let mut d = Daemon::start_env(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\n[paths.cam1]\nsource = \"hdmi\"\n",
        &[("NOTIFY_SOCKET", &target), ("WATCHDOG_USEC", "2000000")],
    );
    let first = recv_until(&sock, Duration::from_secs(20), |m| m.contains("READY=1"));
    assert!(
        first.iter().all(|m| !m.contains("WATCHDOG=1")),
        "no keep-alive before READY: {first:?}"
    );
    // Interval is half of WATCHDOG_USEC: keep-alives come about every second.
    let seen = recv_until(&sock, Duration::from_secs(10), |m| {
        m.contains("WATCHDOG=1") && m.contains("cam0 streaming")
    });
    let last = seen.last().unwrap();
    assert!(
        last.contains("STATUS=cam0 streaming; cam1 no_signal"),
        "{last}"
    );
    d.stop();
    recv_until(&sock, Duration::from_secs(5), |m| m.contains("STOPPING=1"));
}
