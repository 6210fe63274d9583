//! Hard edges, each a failure measured before it was fixed: a box that
//! boots before DNS works, a hostile client holding the internet-facing
//! HTTP port, and a stop that used to leave browsers hanging.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use support::netns::Topo;
use support::whep_client::offer;
use support::{Daemon, Setup, request_from};

const SDP: (&str, &str) = ("Content-Type", "application/sdp");

fn valid_offer() -> String {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    offer(&sock).2
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if f() {
            return t0.elapsed();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not happen within {within:?}");
}

/// The tunnel's server (adopted as a public address) and an extra public
/// name do not resolve: r58 used to exit 1 at start ("cannot resolve") and
/// under systemd loop until DNS worked. The daemon runs in a namespace with
/// no route to any resolver, so the lookups fail there and then, and no
/// query leaves the machine.
#[test]
fn names_that_do_not_resolve_never_stop_start_up() {
    let t = Topo::up("dns");
    let dir = std::env::temp_dir().join(format!("r58-dns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = Daemon::start_with(Setup {
        paths: format!(
            "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\nwidth = 320\nheight = 180\n\
             [tunnel]\nserver_addr = \"frps.r58-test.invalid\"\nserver_port = 7000\n\
             token = \"dns-test-token\"\nrun_id_file = \"{}/run-id\"\n",
            dir.display()
        ),
        webrtc: "additional_hosts = [{ host = \"10.213.2.9\", tcp_port = 18190 }, \
                 { host = \"cdn.r58-test.invalid\" }]\n"
            .into(),
        netns: Some(t.device.clone()),
        ..Setup::default()
    });
    // It started (Daemon waits for the API and the WHEP port). The literal
    // address is advertised at once; both names are reported, not fatal.
    let mut info = serde_json::Value::Null;
    wait_for("both names reported", Duration::from_secs(15), || {
        info = d.api_json("/v3/info")["r58"]["webrtc"].clone();
        info["unresolved"].as_array().map_or(0, Vec::len) == 2
    });
    let hosts: Vec<&str> = info["unresolved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["host"].as_str().unwrap())
        .collect();
    assert!(hosts.contains(&"frps.r58-test.invalid"), "{info}");
    assert!(hosts.contains(&"cdn.r58-test.invalid"), "{info}");
    assert_eq!(info["public"][0]["ip"], "10.213.2.9", "{info}");
    // LAN viewers are served meanwhile.
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let http = d.http;
    let body = valid_offer();
    let r = support::netns::run_in(&t.device, move || {
        support::request(http, "POST", "/cam0/whep", &[SDP], body.as_bytes()).unwrap()
    });
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.text();
    assert!(
        answer.contains(" 10.213.2.9 18190 typ host tcptype passive"),
        "{answer}"
    );
    // `r58 status` shows which name does not resolve.
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &t.device])
        .arg(support::bin())
        .args(["status", "--config"])
        .arg(d.dir.join("r58.toml"))
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("public frps.r58-test.invalid does not resolve"),
        "{screen}"
    );
    let log = d.log();
    assert!(log.contains("does not resolve"), "{log}");
    assert!(
        !log.contains("dns-test-token"),
        "the token stays out of the log"
    );
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}

fn raise_own_fd_limit(n: u64) {
    let lim = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: setrlimit reads the struct we own.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "raising the test's own file limit");
}

/// 1,100 connections that never finish their headers, against a daemon
/// limited to 1,024 files (systemd's default): r58 used to accept them all,
/// run out of descriptors and leave WHEP unreachable while they were held.
#[test]
fn a_flood_of_half_requests_leaves_room_for_a_real_viewer() {
    raise_own_fd_limit(4096);
    let mut d = Daemon::start(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\nwidth = 320\nheight = 180\n",
    );
    let pid = d.child.id().to_string();
    let lim = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=1024:1024"])
        .status()
        .unwrap();
    assert!(lim.success());
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let mut held = Vec::new();
    for _ in 0..1100 {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", d.http)) else {
            continue;
        };
        let _ = s.write_all(b"POST /cam0/whep HTTP/1.1\r\nHost: box\r\nContent-Type: app");
        held.push(s);
    }
    // A viewer elsewhere gets in while the flood is held.
    let t0 = Instant::now();
    let r = request_from(
        Ipv4Addr::new(127, 0, 0, 2),
        d.http,
        "POST",
        "/cam0/whep",
        &[SDP],
        valid_offer().as_bytes(),
    )
    .expect("a real viewer's request");
    assert_eq!(r.status, 201, "{}\nlog:\n{}", r.text(), d.log());
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // The API still answers, and r58 has file descriptors to spare.
    let fds = d.api_json("/v3/info")["r58"]["process"]["openFds"]
        .as_u64()
        .unwrap();
    assert!(fds < 512, "r58 holds {fds} descriptors");
    // Connections that never finish their headers are closed after ~10 s
    // (the first ones were let in; the rest were closed at once).
    let mut s = held.swap_remove(0);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 256];
    let _ = s.read(&mut buf); // 0 (closed), an error, or a 408: all end it
    let waited = t0.elapsed();
    assert!(
        waited > Duration::from_secs(3) && waited < Duration::from_secs(15),
        "a half request was held {waited:?} more"
    );
    let log = d.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(
        log.matches("too many connections").count() <= 2,
        "refusals are logged once a minute:\n{log}"
    );
    drop(held);
    d.stop();
}

/// A browser watching when r58 is stopped used to show "connected, 0 fps"
/// for ~16 s and then a raw fetch error.
#[test]
fn stopping_r58_tells_a_watching_browser_at_once() {
    let mut d = Daemon::start(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\nwidth = 320\nheight = 180\n",
    );
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let pid = d.child.id().to_string();
    let v = support::browser::script("goodbye.mjs", &[&d.base(), "cam0", &pid], &[], None)
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", d.log()));
    assert!(v["firstFrameMs"].as_u64().is_some(), "{v}");
    assert_eq!(v["stateBefore"], "connected", "{v}");
    let told = v["toldMs"]
        .as_u64()
        .unwrap_or_else(|| panic!("never told: {v}\n{}", d.log()));
    assert!(told < 2000, "the page learned after {told} ms: {v}");
    assert!(
        v["viewer"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("the server ended the session"),
        "{v}"
    );
    let status = d.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let log = d.log();
    assert!(log.contains("told 1 WebRTC session(s) goodbye"), "{log}");
    assert!(log.trim_end().ends_with("stopped"), "{log}");
    d.stop();
}

/// The fleet forwards the API port to the VPS; through the tunnel anyone
/// could read sessions and client addresses or change bitrates.
#[test]
fn the_api_answers_the_box_itself_and_others_only_with_its_token() {
    let tunnel = Ipv4Addr::new(127, 0, 0, 58); // where tunnel traffic comes from
    let open = Daemon::start_with(Setup {
        paths: "[paths.cam0]\nsource = \"publisher\"\n".into(),
        ..Setup::default()
    });
    assert_eq!(
        open.api_request("GET", "/v3/paths/list").unwrap().status,
        200
    );
    let r = request_from(tunnel, open.api, "GET", "/v3/webrtcsessions/list", &[], b"").unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert!(
        r.text().contains("only when [api] token is set"),
        "{}",
        r.text()
    );
    drop(open);

    let locked = Daemon::start_with(Setup {
        paths: "[paths.cam0]\nsource = \"publisher\"\n".into(),
        api: "token = \"api-secret-42\"".into(),
        ..Setup::default()
    });
    let get = |auth: &[(&str, &str)]| {
        request_from(tunnel, locked.api, "GET", "/v3/paths/list", auth, b"").unwrap()
    };
    assert_eq!(get(&[]).status, 401);
    assert!(
        get(&[("Authorization", "Bearer wrong-token")])
            .text()
            .contains("a wrong token")
    );
    assert_eq!(
        get(&[("Authorization", "Bearer api-secret-42")]).status,
        200
    );
    // r58 status on the box needs no token.
    let out = support::r58_command()
        .args(["status", "--config"])
        .arg(locked.dir.join("r58.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!locked.log().contains("api-secret-42"));
}
