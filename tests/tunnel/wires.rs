//! Which frp wire protocol the tunnel speaks: `auto` against an frps that
//! predates v2, and v2 as configured against one.

use std::time::Duration;

use super::frps::{Frps, Opts};
use super::support::free_port;
use super::tunnel::msg;
use super::{TOKEN, daemon, echo_server, echo_through, running, scratch, tunnel_section, wait_for};

/// `auto` (the default) against an frps from before 0.69, which hangs up
/// at v2's magic: v1 at once, remembered beside the run id, so a restart
/// goes straight to v1.
#[test]
fn auto_falls_back_to_v1_for_an_old_frps_and_remembers_it() {
    let dir = scratch();
    let frps = Frps::start(Opts {
        v1_only: true,
        ..Opts::new(TOKEN)
    });
    let (echo, remote) = (echo_server(), free_port());
    let sec = tunnel_section(
        &dir.display().to_string(),
        frps.port,
        "tls = false",
        &[("echo", &echo.to_string(), remote, "")],
    );
    let d = daemon(&sec);
    running(&d, "echo");
    echo_through(remote, 10_000);
    assert_eq!(d.api_json("/v3/tunnel")["wire"], "v1");
    assert!(
        d.log()
            .contains("closed the connection at frp wire v2's magic"),
        "{}",
        d.log()
    );
    let memory = std::fs::read_to_string(dir.join("frp-wire")).unwrap();
    assert!(
        memory.starts_with(&format!("v1 127.0.0.1:{} ", frps.port)),
        "{memory}"
    );
    drop(d);
    let d = daemon(&sec);
    running(&d, "echo");
    let seen = frps.seen.lock().unwrap();
    assert_eq!(seen.hung_up_v2, 1, "the restart went straight to v1");
    assert_eq!(seen.wires, [msg::Wire::V1, msg::Wire::V1]);
    drop(seen);
    let _ = std::fs::remove_dir_all(&dir);
}

/// v2 as configured against an old frps: the reason is in the status.
#[test]
fn v2_as_configured_names_an_old_frps() {
    let dir = scratch();
    let frps = Frps::start(Opts {
        v1_only: true,
        ..Opts::new(TOKEN)
    });
    let sec = tunnel_section(
        &dir.display().to_string(),
        frps.port,
        "tls = false\nwire_protocol = \"v2\"",
        &[("echo", &echo_server().to_string(), free_port(), "")],
    );
    let d = daemon(&sec);
    wait_for("the wire error", Duration::from_secs(10), || {
        d.api_json("/v3/tunnel")["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("frps older than 0.69"))
    });
    assert!(frps.seen.lock().unwrap().wires.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A box that remembered v1 meets an frps that has since dropped v1: the
/// unanswered v1 login sends it straight back to v2, and that is kept.
#[test]
fn a_remembered_v1_gives_way_when_frps_drops_v1() {
    let dir = scratch();
    let frps = Frps::start(Opts {
        v2_only: true,
        ..Opts::new(TOKEN)
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let memory = dir.join("frp-wire");
    std::fs::write(&memory, format!("v1 127.0.0.1:{} {now}\n", frps.port)).unwrap();
    let (echo, remote) = (echo_server(), free_port());
    let sec = tunnel_section(
        &dir.display().to_string(),
        frps.port,
        "tls = false",
        &[("echo", &echo.to_string(), remote, "")],
    );
    let d = daemon(&sec);
    running(&d, "echo");
    echo_through(remote, 10_000);
    assert_eq!(d.api_json("/v3/tunnel")["wire"], "v2");
    assert!(
        d.log().contains("closed the connection on a wire v1 login"),
        "{}",
        d.log()
    );
    let kept = std::fs::read_to_string(&memory).unwrap();
    assert_eq!(kept, format!("v2 127.0.0.1:{}\n", frps.port));
    let _ = std::fs::remove_dir_all(&dir);
}
