//! Which frp wire protocol the tunnel speaks: every tunnel test once per
//! protocol (`each_wire!`), `auto` against an frps that predates v2 or
//! one that has dropped v1, and v2 as configured against an old one.

use std::time::Duration;

use super::frps::{Frps, Opts};
use super::support::Daemon;
use super::support::free_port;
use super::tunnel::msg;
use super::{TOKEN, daemon, echo_server, echo_through, running, scratch, tunnel_section, wait_for};

thread_local! {
    /// The frp wire protocol the running test asks for ("v1", "v2").
    static WIRE: std::cell::Cell<&'static str> = const { std::cell::Cell::new("") };
}

/// Every tunnel test runs once per frp wire protocol: v1 as configured,
/// v2 as `auto` (the default) finds it against a server that speaks it.
/// `tunnel_section` sets it and `running` checks the login used it.
macro_rules! each_wire {
    ($($name:ident),* $(,)?) => {
        mod v1 {
            $( #[test] fn $name() { crate::with_wire("v1", super::$name) } )*
        }
        mod v2 {
            $( #[test] fn $name() { crate::with_wire("v2", super::$name) } )*
        }
    };
}

pub fn with_wire(w: &'static str, test: fn()) {
    WIRE.with(|c| c.set(w));
    test();
}

pub fn wire() -> &'static str {
    WIRE.with(|c| c.get())
}

/// An frps with `opts`, an echo service behind proxy `echo` on a new
/// public port, and the `[tunnel]` section for it with `extra`.
struct World {
    dir: std::path::PathBuf,
    frps: Frps,
    sec: String,
    remote: u16,
}

fn world(opts: Opts, extra: &str) -> World {
    let dir = scratch();
    let frps = Frps::start(opts);
    let (echo, remote) = (echo_server(), free_port());
    let sec = tunnel_section(
        &dir.display().to_string(),
        frps.port,
        &format!("tls = false\n{extra}"),
        &[("echo", &echo.to_string(), remote, "")],
    );
    World {
        dir,
        frps,
        sec,
        remote,
    }
}

impl World {
    /// r58 on this world, its proxy running and carrying bytes.
    fn tunnelled(&self) -> Daemon {
        let d = daemon(&self.sec);
        running(&d, "echo");
        echo_through(self.remote, 10_000);
        d
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `auto` (the default) against an frps from before 0.69, which hangs up
/// at v2's magic: v1 at once, remembered beside the run id, so a restart
/// goes straight to v1.
#[test]
fn auto_falls_back_to_v1_for_an_old_frps_and_remembers_it() {
    let w = world(
        Opts {
            v1_only: true,
            ..Opts::new(TOKEN)
        },
        "",
    );
    let d = w.tunnelled();
    assert_eq!(d.api_json("/v3/tunnel")["wire"], "v1");
    assert!(
        d.log()
            .contains("closed the connection at frp wire v2's magic"),
        "{}",
        d.log()
    );
    let memory = std::fs::read_to_string(w.dir.join("frp-wire")).unwrap();
    assert!(
        memory.starts_with(&format!("v1 127.0.0.1:{} ", w.frps.port)),
        "{memory}"
    );
    drop(d);
    let _d = w.tunnelled();
    let seen = w.frps.seen.lock().unwrap();
    assert_eq!(seen.hung_up_v2, 1, "the restart went straight to v1");
    assert_eq!(seen.wires, [msg::Wire::V1, msg::Wire::V1]);
}

/// v2 as configured against an old frps: the reason is in the status.
#[test]
fn v2_as_configured_names_an_old_frps() {
    let w = world(
        Opts {
            v1_only: true,
            ..Opts::new(TOKEN)
        },
        "wire_protocol = \"v2\"",
    );
    let d = daemon(&w.sec);
    wait_for("the wire error", Duration::from_secs(10), || {
        d.api_json("/v3/tunnel")["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("frps older than 0.69"))
    });
    assert!(w.frps.seen.lock().unwrap().wires.is_empty());
}

/// A box that remembered v1 meets an frps that has since dropped v1: the
/// unanswered v1 login sends it straight back to v2, and that is kept.
#[test]
fn a_remembered_v1_gives_way_when_frps_drops_v1() {
    let w = world(
        Opts {
            v2_only: true,
            ..Opts::new(TOKEN)
        },
        "",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let memory = w.dir.join("frp-wire");
    std::fs::write(&memory, format!("v1 127.0.0.1:{} {now}\n", w.frps.port)).unwrap();
    let d = w.tunnelled();
    assert_eq!(d.api_json("/v3/tunnel")["wire"], "v2");
    assert!(
        d.log().contains("closed the connection on a wire v1 login"),
        "{}",
        d.log()
    );
    let kept = std::fs::read_to_string(&memory).unwrap();
    assert_eq!(kept, format!("v2 127.0.0.1:{}\n", w.frps.port));
}
