//! Golden screens for the doctor: what a technician reads on an 80-column
//! serial console, for a healthy box, a broken one and a box still booting.

use super::checks::*;
use crate::config::Config;
use serde_json::json;

fn facts() -> Facts {
    let cfg = Config::parse(
        "[webrtc]\nadditional_hosts = [{ host = \"192.168.1.20\" }]\n\
         ice_servers = [{ urls = \"turn:turn.r58-test.invalid:3478\" }]\n",
    )
    .unwrap();
    Facts {
        config_file: "/etc/r58/r58.toml".into(),
        config: Ok(cfg),
        config_present: true,
        api: "127.0.0.1:9997".parse().unwrap(),
        info: Ok(json!({"version": "0.1.0", "uptimeSeconds": 4000,
            "r58": {"health": {"checked": true, "healthy": true, "status": "cam0 streaming 1 viewer"}}})),
        paths: vec![
            json!({"name": "cam0", "ready": true, "r58": {"state": "streaming",
            "format": "1920x1080@30", "encoder": "mpph264enc", "bitrate": 4_000_000, "frames": 1234}}),
        ],
        self_test: SelfTest::Passed {
            path: "cam0".into(),
            ms: 9,
            candidates: 2,
        },
        interfaces: vec!["192.168.1.20".parse().unwrap()],
        unresolved: vec!["turn.r58-test.invalid".into()],
        now_unix: CLOCK_FLOOR_UNIX + 86_400 * 327 + 3600,
        disk: Some(Disk {
            path: "/var/lib/r58".into(),
            avail: 900 << 20,
            total: 7000 << 20,
        }),
    }
}

fn fits(screen: &str) {
    for l in screen.lines() {
        assert!(l.chars().count() <= 80, "over 80 columns: {l:?}");
    }
}

#[test]
fn a_healthy_box_with_config_smells() {
    let list = evaluate(&facts());
    let screen = render(&list, true);
    let want = "\
r58 doctor: no problems found
ok config  /etc/r58/r58.toml: 1 path (cam0)
ok daemon  r58 0.1.0 running for 1h06m, API 127.0.0.1:9997
ok health  healthy: cam0 streaming 1 viewer
ok path    cam0: streaming 1920x1080@30 mpph264enc 4000 kbit/s, 1234 frames
ok whep    local viewer on cam0: answer in 9 ms, 2 candidates
!! ice     additional host 192.168.1.20 is also an interface address
           hint: it is advertised once; remove it from webrtc.additional_hosts
!! ice     ICE server turn.r58-test.invalid does not resolve
           hint: viewers outside the LAN may fail to connect; check DNS and the
                 name
ok clock   2026-11-24 01:00 UTC
!! disk    900 MiB free of 7000 MiB (12%) on /var/lib/r58
           hint: du -xsh /var/log/journal /data; journalctl --vacuum-size=50M
";
    assert_eq!(screen, want);
    fits(&screen);
    assert_eq!(boot_verdict(&list), Some(true));
}

#[test]
fn a_broken_box_counts_its_problems_and_fails_the_boot_check() {
    let mut f = facts();
    f.paths = vec![json!({"name": "cam0", "r58": {"state": "error",
        "detail": "pipeline failed: no element \"mpph264enc\" (is gstreamer1.0-rockchip installed?)"}})];
    f.self_test = SelfTest::Skipped("no path is streaming, nothing to view".into());
    f.now_unix = 86_400;
    let list = evaluate(&f);
    let screen = render(&list, false);
    assert!(screen.starts_with("r58 doctor: 2 problems\n"), "{screen}");
    assert!(
        screen.contains("✗  path    cam0: error: pipeline failed"),
        "{screen}"
    );
    assert!(
        screen.contains("-  whep    no path is streaming"),
        "{screen}"
    );
    assert!(screen.contains("✗  clock   reads 1970-01-02 00:00 UTC, before 2026"));
    fits(&screen);
    // The clock alone would not roll back an update; the encoder does.
    assert_eq!(boot_verdict(&list), Some(false));
    f.paths.clear();
    assert_eq!(boot_verdict(&evaluate(&f)), Some(true));
}

#[test]
fn a_booting_box_is_pending_not_broken() {
    let mut f = facts();
    f.info = Err("connecting to 127.0.0.1:9997: Connection refused".into());
    f.paths.clear();
    f.self_test = SelfTest::Skipped("daemon not running".into());
    let list = evaluate(&f);
    assert_eq!(boot_verdict(&list), None, "wait for the daemon");
    assert_eq!(list.iter().filter(|c| c.mark == Mark::Fail).count(), 1);

    f = facts();
    f.info =
        Ok(json!({"version": "0.1.0", "uptimeSeconds": 1, "r58": {"health": {"checked": false}}}));
    f.paths = vec![json!({"name": "cam0", "r58": {"state": "starting"}})];
    assert_eq!(boot_verdict(&evaluate(&f)), None);
}

#[test]
fn a_bad_config_is_a_critical_failure() {
    let mut f = facts();
    f.config = Err("/etc/r58/r58.toml:3: unknown field `sorce`".into());
    let list = evaluate(&f);
    let screen = render(&list, true);
    assert!(screen.contains("XX config  /etc/r58/r58.toml:3: unknown field `sorce`"));
    assert!(screen.contains("hint: r58 config check /etc/r58/r58.toml shows the line"));
    assert_eq!(boot_verdict(&list), Some(false));
}

#[test]
fn long_words_are_cut_not_lost_and_lines_fit() {
    let mut out = String::new();
    let long = "x".repeat(150);
    wrap_into_for_test(&mut out, &long);
    fits(&out);
    assert_eq!(out.matches('x').count(), 150);
}

fn wrap_into_for_test(out: &mut String, text: &str) {
    let list = [Check {
        mark: Mark::Warn,
        name: "path",
        detail: text.into(),
        hint: None,
        critical: false,
        pending: false,
    }];
    out.push_str(&render(&list, true));
}

/// The tunnel's lines: logged in with one proxy refused by frps, then down
/// with a wrong token; a config that stops forwarding ICE-TCP is flagged.
#[test]
fn tunnel_login_and_proxies_are_checked() {
    let mut f = facts();
    f.config = Ok(Config::parse(
        "[tunnel]\nserver_addr = \"203.0.113.9\"\ntoken = \"s3cret-token\"\n\
         [[tunnel.proxies]]\nname = \"ssh\"\nlocal_port = 22\nremote_port = 10022\n",
    )
    .unwrap());
    let tunnel = json!({"enabled": true, "server": "203.0.113.9:7000", "tls": "unverified",
        "connected": true, "since": f.now_unix - 7200, "rttMs": 23, "reconnects": 2,
        "proxies": [
            {"name": "ssh", "remotePort": 10022, "state": "running"},
            {"name": "r58-whep", "remotePort": 18889, "state": "running"},
            {"name": "r58-ice-tcp", "remotePort": 18190, "state": "rejected",
             "error": "port already used"}]});
    f.info.as_mut().unwrap()["r58"]["tunnel"] = tunnel.clone();
    let list = evaluate(&f);
    let screen = render(&list, true);
    let want = "\
ok tunnel  logged in to 203.0.113.9:7000 for 2h00m, ping 23 ms, 2 reconnects
!! tunnel  frps's TLS certificate is not verified
           hint: set tunnel.tls_cert_sha256 (openssl x509 -noout -fingerprint
                 -sha256)
ok proxy   registered: ssh :10022, r58-whep :18889
XX proxy   r58-ice-tcp (remote port 18190): port already used
           hint: another client holds the port, or frps's allowPorts excludes
                 it; retried every 30 s
";
    assert!(screen.contains(want), "{screen}");
    fits(&screen);
    // A tunnel problem is a degraded box, not a reason to roll back.
    assert_eq!(boot_verdict(&list), Some(true));

    let mut down = tunnel;
    down["connected"] = json!(false);
    down["tls"] = json!("pinned");
    down["lastError"] =
        json!("frps refused the login: token in login doesn't match token from configuration");
    f.info.as_mut().unwrap()["r58"]["tunnel"] = down;
    let screen = render(&evaluate(&f), true);
    assert!(
        screen.contains("XX tunnel  not logged in to 203.0.113.9:7000: frps refused"),
        "{screen}"
    );
    assert!(
        screen.contains("hint: the token differs from frps's auth.token"),
        "{screen}"
    );
    assert!(!screen.contains("s3cret"), "{screen}");
    assert!(!screen.contains("proxy   registered"), "{screen}");

    f.config = Ok(Config::parse(
        "[tunnel]\nserver_addr = \"203.0.113.9\"\ntoken = \"t\"\nauto_proxies = false\n",
    )
    .unwrap());
    let screen = render(&evaluate(&f), true);
    assert!(
        screen.contains("!! ice     the tunnel does not forward ICE-TCP (webrtc.tcp_port 8190)"),
        "{screen}"
    );
}
