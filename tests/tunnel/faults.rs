//! The tunnel when the path to the VPS fails, in network namespaces:
//! r58 runs in `device`, the test frps and the public users in `vps`, and
//! nftables on the VPS's device-side interface cuts the link (every packet
//! silently dropped, or TCP answered by resets).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::frps::{Frps, Opts};
use super::support::netns::{Topo, VPS_DEVICE_SIDE, run_in, spawn_in};
use super::support::{Daemon, Setup, free_port};
use super::{TOKEN, echo_server, echo_through, proxy_state, scratch, tunnel_section, wait_for};

/// The VPS's interface toward the device (see `Topo`).
const VPS_UPLINK: &str = "v1";

struct World {
    topo: Topo,
    frps: Frps,
    d: Daemon,
    remote: u16,
    dir: std::path::PathBuf,
}

/// frps in `vps`, an echo service and r58 in `device`, one proxy.
fn world(tag: &str, extra: &str) -> World {
    // Both wires' variants run at once: their namespaces differ by name.
    let topo = Topo::up(&format!("{tag}{}", crate::wire()));
    let frps = run_in(&topo.vps, || {
        Frps::start(Opts {
            bind: Some([0, 0, 0, 0].into()),
            ..Opts::new(TOKEN)
        })
    });
    let echo = run_in(&topo.device, echo_server);
    let (dir, remote) = (scratch(), free_port());
    let section = tunnel_section(
        &dir.display().to_string(),
        frps.port,
        &format!("tls = false\n{extra}"),
        &[("echo", &echo.to_string(), remote, "")],
    )
    .replace("127.0.0.1", VPS_DEVICE_SIDE);
    let d = Daemon::start_with(Setup {
        netns: Some(topo.device.clone()),
        ..super::setup(&section)
    });
    super::running(&d, "echo");
    World {
        topo,
        frps,
        d,
        remote,
        dir,
    }
}

impl World {
    fn connected(&self) -> bool {
        self.d.api_json("/v3/tunnel")["connected"] == true
    }

    /// Data both ways through the public port, from the VPS side.
    fn echo(&self, size: usize) {
        let remote = self.remote;
        run_in(&self.topo.vps, move || echo_through(remote, size));
    }

    /// `wait_for`, showing the end of r58's log when it times out.
    fn wait(&self, what: &str, within: Duration, f: impl FnMut() -> bool) -> Duration {
        super::poll(within, f).unwrap_or_else(|| {
            let log = self.d.log();
            let tail: Vec<_> = log.lines().rev().take(30).collect();
            let tail: Vec<_> = tail.into_iter().rev().collect();
            panic!(
                "timed out waiting for {what}; r58 log ends:\n{}",
                tail.join("\n")
            )
        })
    }

    /// (open fds, live tokio tasks) of the daemon.
    fn resources(&self) -> (u64, u64) {
        let p = &self.d.api_json("/v3/info")["r58"]["process"];
        (p["openFds"].as_u64().unwrap(), p["tasks"].as_u64().unwrap())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A 30 s outage in the middle of a transfer: noticed within 10 s (the
/// default `dead_after_secs`), back within 3 s of the link returning, the
/// interrupted transfer ends instead of hanging, and the proxy works again.
fn a_30_s_outage_is_noticed_and_healed() {
    let w = world("cut30", "");
    // A user streaming through the tunnel when the link dies.
    let (moved, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let remote = w.remote;
    let transfer = {
        let (moved, stop) = (moved.clone(), stop.clone());
        spawn_in(&w.topo.vps, move || {
            let mut c = TcpStream::connect(("127.0.0.1", remote)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let chunk = vec![7u8; 16 * 1024];
            let mut back = vec![0u8; chunk.len()];
            while !stop.load(Ordering::Relaxed) {
                if c.write_all(&chunk).is_err() || c.read_exact(&mut back).is_err() {
                    return "ended";
                }
                moved.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            "stopped"
        })
    };
    wait_for("the transfer to flow", Duration::from_secs(5), || {
        moved.load(Ordering::Relaxed) > 1 << 20
    });

    w.topo.cut(&w.topo.vps, VPS_UPLINK, false);
    let cut = Instant::now();
    let noticed = wait_for("r58 to notice the outage", Duration::from_secs(20), || {
        !w.connected()
    });
    // 10 s of silence at most, plus this loop's 50 ms poll and one API call.
    assert!(
        noticed < Duration::from_millis(10_500),
        "noticed after {noticed:?}"
    );
    let t = w.d.api_json("/v3/tunnel");
    assert!(
        t["lastError"]
            .as_str()
            .unwrap()
            .contains("no answer from frps"),
        "{t}"
    );
    std::thread::sleep(Duration::from_secs(30).saturating_sub(cut.elapsed()));

    w.topo.restore(&w.topo.vps);
    let back = wait_for("the tunnel to return", Duration::from_secs(15), || {
        w.connected()
    });
    assert!(
        back <= Duration::from_secs(3),
        "reconnected {back:?} after the link returned"
    );
    super::running(&w.d, "echo");
    w.echo(100_000);
    // frps dropped the old session's user connection: the transfer ended.
    stop.store(true, Ordering::Relaxed);
    assert_eq!(transfer.join().unwrap(), "ended");
    assert_eq!(w.d.api_json("/v3/tunnel")["reconnects"], 1);
    // One login after the outage, with the run id frps handed out first.
    let run_id = std::fs::read_to_string(w.dir.join("run-id")).unwrap();
    assert_eq!(w.frps.seen.lock().unwrap().logins, ["".to_string(), run_id]);
    eprintln!("outage noticed after {noticed:?}, tunnel back {back:?} after the link");
}

/// 50 short outages, alternating silent drops and resets, with quicker
/// liveness settings: each is noticed and healed, and r58 ends up holding
/// the same number of file descriptors and tasks as after the first.
fn fifty_outages_leak_nothing() {
    let w = world("cut50", "heartbeat_secs = 1\ndead_after_secs = 2");
    let mut baseline = None;
    let t0 = Instant::now();
    for i in 0..50 {
        w.topo.cut(&w.topo.vps, VPS_UPLINK, i % 2 == 1);
        wait_for(
            &format!("outage {i} noticed"),
            Duration::from_secs(10),
            || !w.connected(),
        );
        w.topo.restore(&w.topo.vps);
        w.wait(&format!("recovery {i}"), Duration::from_secs(10), || {
            proxy_state(&w.d, "echo")["state"] == "running"
        });
        w.echo(1000);
        if i == 0 {
            baseline = Some(w.resources());
        }
    }
    let (fds, tasks) = baseline.unwrap();
    // Closing sockets and ending tasks may lag the proxy coming back a little.
    wait_for(
        "fds and tasks back to the first cycle's",
        Duration::from_secs(10),
        || {
            let (f, t) = w.resources();
            f <= fds && t <= tasks
        },
    );
    assert_eq!(w.d.api_json("/v3/tunnel")["reconnects"], 50);
    eprintln!(
        "50 outages in {:?}; {fds} fds and {tasks} tasks after the first and the last",
        t0.elapsed()
    );
}

each_wire!(
    a_30_s_outage_is_noticed_and_healed,
    fifty_outages_leak_nothing,
);
