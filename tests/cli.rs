//! The command line as a technician meets it.

mod support;

fn r58(args: &[&str]) -> (i32, String, String) {
    let o = support::r58_command().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("r58-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn version_and_usage() {
    let (code, out, _) = r58(&["version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("r58 "), "{out}");
    let (code, _, err) = r58(&["frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown command 'frobnicate'"), "{err}");
    // Bare r58 is a usage mistake; asking for help is not.
    let (code, out, err) = r58(&[]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("RUST_LOG"), "{err}");
    for cmd in [
        "run",
        "status",
        "doctor",
        "board",
        "support-bundle",
        "config",
        "version",
    ] {
        for flag in ["--help", "-h"] {
            let (code, out, err) = r58(&[cmd, flag]);
            assert_eq!(code, 0, "{cmd} {flag}: {err}");
            assert!(
                out.starts_with(&format!("usage:\n  {cmd}")),
                "{cmd} {flag}: {out}"
            );
        }
    }
}

#[test]
fn a_missing_config_named_on_the_command_line_is_one_clear_error() {
    let (code, out, err) = r58(&["run", "--config", "/nonexistent/r58.toml"]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "error: /nonexistent/r58.toml: no such file (without --config, r58 runs on \
         /etc/r58/r58.toml or built-in defaults)\n"
    );
}

#[test]
fn a_port_in_use_hints_at_another_r58() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = write(
        "inuse.toml",
        &format!(
            "[http]\nlisten = \"127.0.0.1:{}\"\n[api]\nlisten = \"127.0.0.1:{port}\"\n\
             [paths.cam0]\nsource = \"publisher\"\n",
            support::free_port()
        ),
    );
    let (code, _, err) = r58(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("binding api on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(
        err.contains("is another r58 running? (systemctl status r58"),
        "{err}"
    );
    std::fs::remove_file(cfg).unwrap();
}

#[test]
fn config_check_reports_file_and_line() {
    let good = write(
        "good.toml",
        "[paths.cam0]\nsource = \"test\"\n\n[paths.cam1]\nsource = \"hdmi\"\nbitrate = 4000000\n",
    );
    let (code, out, err) = r58(&["config", "check", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cam1") && out.contains("4000 kbit/s"), "{out}");
    assert!(
        out.lines().all(|l| l.chars().count() <= 80),
        "80 columns:\n{out}"
    );

    let bad = write("bad.toml", "[paths.cam0]\nsource = \"test\"\nfps = 500\n");
    let (code, _, err) = r58(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: ") && err.contains("bad.toml:3: ") && err.contains("fps 500"),
        "{err}"
    );

    let (code, _, err) = r58(&["config", "check", "/nonexistent/r58.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/r58.toml: no such file"), "{err}");
    for f in [good, bad] {
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn run_with_a_broken_config_fails_fast() {
    let bad = write("broken.toml", "[http]\nlisten = \"not-an-address\"\n");
    let (code, _, err) = r58(&["run", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("broken.toml:2: "), "{err}");
    std::fs::remove_file(bad).unwrap();
}

#[test]
fn forced_encoder_missing_on_this_host_is_a_startup_error() {
    // This test runs on x86 hosts, which have no Rockchip MPP.
    let cfg = write(
        "mpp.toml",
        "[http]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
        [webrtc]\nudp_port = 1\n[paths.cam0]\nencoder = \"mpph264enc\"\n",
    );
    let (code, _, err) = r58(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "path 'cam0': encoder \"mpph264enc\" is forced by the config but not installed"
        ),
        "{err}"
    );
    std::fs::remove_file(cfg).unwrap();
}

#[test]
fn status_reads_the_running_daemon_in_80_columns() {
    let d = support::Daemon::start(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\n[paths.cam1]\nsource = \"hdmi\"\n",
    );
    d.wait_state("cam0", "streaming", std::time::Duration::from_secs(20));
    let cfg = d.dir.join("r58.toml");
    let (code, out, err) = r58(&["status", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().all(|l| l.chars().count() <= 80),
        "80 columns:\n{out}"
    );
    let cam0 = out
        .lines()
        .find(|l| l.starts_with("cam0 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        cam0.contains("streaming") && cam0.contains("1280x720 ") && cam0.contains("x264enc"),
        "{cam0}"
    );
    assert!(out.contains("cam1: no HDMI-RX device"), "{out}");
    let cam1 = out
        .lines()
        .find(|l| l.starts_with("cam1 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        cam1.contains("hdmi") && cam1.contains(" none ") && cam1.contains("no_signal"),
        "source known while not ready: {cam1}"
    );
    assert!(
        out.contains(&format!(
            "webrtc udp {}   tcp {}   0 viewers, 0 publishers",
            d.udp, d.tcp
        )),
        "{out}"
    );
    assert!(out.contains("  hosts  "), "{out}");
    assert!(
        !out.contains("last warnings and errors"),
        "nothing went wrong: {out}"
    );
    let (code, out, _) = r58(&["status", "--json", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["paths"][0]["name"], "cam0");
    assert_eq!(v["info"]["r58"]["webrtc"]["udpPort"], d.udp);
}

#[test]
fn status_shows_what_clients_are_told_and_the_last_warnings() {
    // No usable interface: a viewer's offer logs a warning the technician
    // should see without reading the journal.
    let d = support::Daemon::start_with(support::Setup {
        paths: "[paths.guest1]\nsource = \"publisher\"\n".into(),
        webrtc: "interfaces = [\"nosuch0\"]".into(),
        ..Default::default()
    });
    let offer = support::whep_client::offer(&std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).2;
    let sdp = ("Content-Type", "application/sdp");
    let r = support::request(d.http, "POST", "/guest1/whep", &[sdp], offer.as_bytes()).unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    let cfg = d.dir.join("r58.toml");
    let (code, out, err) = r58(&["status", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
    assert!(out.contains("  hosts  none (no interface is up)"), "{out}");
    assert!(out.contains("last warnings and errors (UTC)"), "{out}");
    let warn = out
        .lines()
        .find(|l| l.contains(" WARN  webrtc: no candidate is usable by 127.0.0.1"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        warn.starts_with("  ") && warn.as_bytes()[4] == b':',
        "{warn}"
    );
}

#[test]
fn status_says_when_the_daemon_is_down() {
    let port = support::free_port();
    let cfg = write(
        "down.toml",
        &format!("[api]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let (code, _, err) = r58(&["status", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("r58 is not running") && err.contains(&port.to_string()),
        "{err}"
    );
    std::fs::remove_file(cfg).unwrap();
}

#[test]
fn config_check_resolves_public_addresses_and_names_the_one_that_does_not() {
    let good = write(
        "public.toml",
        "[webrtc]\ntcp_port = 8190\nadditional_hosts = [{ host = \"65.109.32.111\", udp_port = 18189, tcp_port = 18190 }]\n",
    );
    let (code, out, err) = r58(&["config", "check", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("media udp/8189 tcp/8190"), "{out}");
    assert!(
        out.contains("public 65.109.32.111 = 65.109.32.111 udp 18189 tcp 18190"),
        "{out}"
    );
    let bad = write(
        "unresolvable.toml",
        "[webrtc]\nadditional_hosts = [{ host = \"vps.r58-test.invalid\" }]\n",
    );
    // Not a config error: the box may boot before DNS works, and r58
    // starts anyway (tests/edges.rs); the summary says so.
    let (code, out, err) = r58(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("public vps.r58-test.invalid = does not resolve now"),
        "{out}"
    );
    for f in [good, bad] {
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn config_import_turns_mediamtx_yml_into_a_config_that_checks() {
    let yml = write(
        "mediamtx.yml",
        "webrtcICEServers2:\n  - url: stun:stun.l.google.com:19302\n\
         webrtcICEHostNAT1To1IPs: [\"65.109.32.111\"]\nwebrtcLocalTCPAddress: :8190\n\
         rtspAddress: :8554\npaths:\n  cam0:\n    source: publisher\n",
    );
    let (code, out, err) = r58(&["config", "import", yml.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("not imported (1):") && err.contains("rtspAddress (line 5)"),
        "{err}"
    );
    let toml = write("imported.toml", &out);
    let (code, summary, err) = r58(&["config", "check", toml.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(summary.contains("public 65.109.32.111"), "{summary}");
    let (code, _, err) = r58(&["config", "import", "/nonexistent/mediamtx.yml"]);
    assert_eq!(code, 1);
    assert!(err.contains("reading /nonexistent/mediamtx.yml"), "{err}");
    for f in [yml, toml] {
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn doctor_checks_a_running_daemon_and_its_boot_check_passes() {
    let mut d = support::Daemon::start_with(support::Setup {
        paths:
            "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\nwidth = 640\nheight = 360\n\
                [paths.cam1]\nsource = \"hdmi\"\n"
                .into(),
        // An IP literal: the doctor resolves ICE server names, tests stay off DNS.
        webrtc: "ice_servers = [{ urls = \"stun:127.0.0.1:3478\" }]".into(),
        ..Default::default()
    });
    d.wait_state("cam0", "streaming", std::time::Duration::from_secs(20));
    // Kept apart: stop() removes the daemon's directory.
    let cfg = write(
        "doctor.toml",
        &std::fs::read_to_string(d.dir.join("r58.toml")).unwrap(),
    );
    let cfg_file = cfg.clone();
    let cfg = cfg.to_str().unwrap();
    let (code, out, err) = r58(&["doctor", "--ascii", "--config", cfg]);
    assert_eq!(code, 0, "no failed checks expected:\n{out}{err}");
    assert!(out.starts_with("r58 doctor: no problems found\n"), "{out}");
    assert!(
        out.contains("ok whep    local viewer on cam0: answer in"),
        "a real offer/answer round trip:\n{out}"
    );
    assert!(out.contains("!! path    cam1: no signal"), "{out}");
    assert!(out.contains("ok path    cam0: streaming 640x360@30 x264enc"));
    assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
    // The self-test ended the session it made.
    let sessions = d.api_json("/v3/webrtcsessions/list");
    assert_eq!(sessions["itemCount"], 0, "{sessions}");

    let (code, out, _) = r58(&["doctor", "--boot-check", "--ascii", "--config", cfg]);
    assert_eq!(code, 0, "a missing HDMI cable must not roll back:\n{out}");
    assert!(
        out.ends_with("boot check: healthy, keep this slot\n"),
        "{out}"
    );

    d.stop();
    let (code, out, _) = r58(&["doctor", "--ascii", "--config", cfg]);
    assert_eq!(code, 1, "one problem: the daemon\n{out}");
    assert!(out.contains("XX daemon  not running: connecting to 127.0.0.1:"));
    assert!(out.contains("hint: systemctl status r58"), "{out}");
    let (code, out, _) = r58(&["doctor", "--boot-check", "--timeout", "1", "--config", cfg]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.ends_with("boot check: still not settled after 1 s\n"),
        "{out}"
    );
    let (code, _, err) = r58(&["doctor", "--timeout", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("--timeout needs whole SECONDS"), "{err}");
    std::fs::remove_file(cfg_file).unwrap();
}

#[test]
fn support_bundle_holds_the_facts_and_no_secrets() {
    let secret = "s3cr3t-turn-key-do-not-leak";
    let d = support::Daemon::start_with(support::Setup {
        paths:
            "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\nwidth = 640\nheight = 360\n"
                .into(),
        webrtc: format!(
            "ice_servers = [{{ urls = \"turn:127.0.0.1:3478\", secret = \"{secret}\" }}]"
        ),
        ..Default::default()
    });
    d.wait_state("cam0", "streaming", std::time::Duration::from_secs(20));
    let cfg = d.dir.join("r58.toml");
    let out_dir = std::env::temp_dir().join(format!("r58-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let bundle = out_dir.join("box.tar.gz");
    let (code, out, err) = r58(&[
        "support-bundle",
        bundle.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("wrote {}", bundle.display())),
        "{out}"
    );
    let x = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&bundle)
        .arg("-C")
        .arg(&out_dir)
        .status()
        .unwrap();
    assert!(x.success());
    let read = |f: &str| std::fs::read_to_string(out_dir.join(f)).unwrap();
    for f in [
        "config.toml",
        "status.json",
        "doctor.txt",
        "journal.txt",
        "versions.txt",
        "v4l2.txt",
        "board.txt",
    ] {
        let text = read(f);
        assert!(!text.contains(secret), "{f} leaks the secret:\n{text}");
    }
    assert!(read("config.toml").contains("secret = \"<redacted>\""));
    assert!(read("config.toml").contains("[paths.cam0]"));
    assert!(
        read("status.json").contains("\"name\":\"cam0\""),
        "{}",
        read("status.json")
    );
    assert!(read("doctor.txt").contains("ok whep    local viewer on cam0"));
    assert!(read("versions.txt").starts_with("r58 "));
    std::fs::remove_dir_all(out_dir).unwrap();
}
