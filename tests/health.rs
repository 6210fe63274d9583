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
    // The health tick measures what each path delivers: cam0 has a rate,
    // cam1 (no signal) none.
    let fps = |name: &str| {
        let r = support::request(d.api, "GET", &format!("/v3/paths/get/{name}"), &[], b"").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["r58"]["fps"].as_f64().unwrap()
    };
    assert!(
        poll(Duration::from_secs(10), || fps("cam0") > 5.0),
        "cam0 fps {}",
        fps("cam0")
    );
    assert_eq!(fps("cam1"), 0.0);
    // A clean stop, well within systemd's 10 s, with a pipeline running.
    let ended = d.stop().expect("r58 still running 5 s after SIGTERM");
    assert!(ended.success(), "{ended}");
    recv_until(&sock, Duration::from_secs(5), |m| m.contains("STOPPING=1"));
}

fn poll(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn status_led_follows_the_paths_and_a_bad_watchdog_never_stops_video() {
    // A fake /sys/class/leds with the R58X's work-led, and a "watchdog"
    // that is a plain file (every ioctl fails), without systemd.
    let root = std::env::temp_dir().join(format!("r58-health-leds-{}", std::process::id()));
    let led = root.join("work-led");
    std::fs::create_dir_all(&led).unwrap();
    std::fs::write(led.join("max_brightness"), "255\n").unwrap();
    std::fs::write(led.join("brightness"), "0").unwrap();
    std::fs::write(led.join("trigger"), "[none] timer").unwrap();
    let wdt = root.join("watchdog0");
    std::fs::write(&wdt, "").unwrap();
    let mut d = Daemon::start(&format!(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\nwidth = 640\nheight = 360\n\
         [leds]\nstatus = \"work-led\"\nsysfs = \"{}\"\n\
         [watchdog]\ndevice = \"{}\"\n",
        root.display(),
        wdt.display()
    ));
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let read = |f: &str| std::fs::read_to_string(led.join(f)).unwrap();
    assert!(
        poll(Duration::from_secs(15), || read("trigger") == "none"
            && read("brightness") == "255"),
        "steady once every path is live: trigger {:?} brightness {:?}",
        read("trigger"),
        read("brightness")
    );
    let info = d.api_json("/v3/info");
    let wd = info["r58"]["health"]["watchdog"].as_str().unwrap_or("");
    assert!(wd.ends_with("watchdog0 failed"), "{info}");
    assert!(info["r58"]["health"]["healthy"] == true, "{info}");
    assert!(
        d.log().contains("watchdog: setting the timeout of"),
        "{}",
        d.log()
    );
    let _ = d.stop();
    assert_eq!(read("brightness"), "0", "off when r58 is not running");
    assert_eq!(read("trigger"), "none");
    std::fs::remove_dir_all(root).unwrap();
}
