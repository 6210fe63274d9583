//! Forwarding a path to a WHIP relay (`[[forward]]`): r58 as a WHIP
//! client. On loopback the relay is a second r58 with a publisher path;
//! the `#[ignore]`d tests at the end (root: network namespaces, Chromium,
//! aiortc; run by `make interop`) put a guest where only the relay can
//! reach it, with an r58 relay and with aiortc as a WHIP server.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::whep_client::Viewer;
use support::{Daemon, free_port};

const TOKEN: &str = "relay-token-1234";

fn relay_paths() -> String {
    format!(
        "[paths.relay]\nsource = \"publisher\"\npublish_token = \"{TOKEN}\"\noverride_publisher = true\n"
    )
}

fn box_paths(relay_http: u16, token: &str) -> String {
    format!(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\naudio = \"off\"\n\
         [[forward]]\npath = \"cam0\"\nurl = \"http://127.0.0.1:{relay_http}/relay/whip\"\ntoken = \"{token}\"\n"
    )
}

/// The box's one forward, as `/v3/forwards` shows it.
fn forward(d: &Daemon) -> Value {
    d.api_json("/v3/forwards")["items"][0].clone()
}

/// Wait until the forward reports `state`; its last facts.
fn wait_forward(d: &Daemon, state: &str, within: Duration) -> Value {
    let t0 = Instant::now();
    loop {
        let f = forward(d);
        if f["state"] == state {
            return f;
        }
        assert!(
            t0.elapsed() < within,
            "forward stayed {f}, wanted '{state}'; log:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_path_is_forwarded_to_a_relay_that_a_guest_views_and_it_comes_back_after_a_relay_restart() {
    let mut relay = Daemon::start(&relay_paths());
    let bx = Daemon::start(&box_paths(relay.http, TOKEN));
    bx.wait_state("cam0", "streaming", Duration::from_secs(20));
    let f = wait_forward(&bx, "forwarding", Duration::from_secs(15));
    assert!(f["pair"].as_str().unwrap_or("").starts_with("udp"), "{f}");
    relay.wait_state("relay", "streaming", Duration::from_secs(10));
    let tracks = &relay.path_info("relay")["tracks"];
    assert_eq!(tracks, &serde_json::json!(["H264"]), "{}", relay.log());

    // A guest views the path from the relay.
    let v = Viewer::connect(relay.http, "relay").unwrap();
    let got = v.wait_frames(60, Duration::from_secs(5));
    assert!(
        got >= 60,
        "{got} frames in 5 s; relay log:\n{}",
        relay.log()
    );
    drop(v);
    let f = forward(&bx);
    assert!(f["bitrateBps"].as_u64().unwrap_or(0) > 100_000, "{f}");

    // The relay restarts on the same ports: forwarding is back within 5 s
    // of it returning.
    let http = relay.http;
    relay.stop();
    let f = wait_forward(&bx, "retrying", Duration::from_secs(12));
    assert!(f["lastError"].as_str().is_some(), "{f}");
    let mut relay = Daemon::start_on(&relay_paths(), http);
    let back = Instant::now();
    wait_forward(&bx, "forwarding", Duration::from_secs(5));
    relay.wait_state("relay", "streaming", Duration::from_secs(10));
    eprintln!(
        "forwarding again {:.1} s after the relay returned",
        back.elapsed().as_secs_f64()
    );
    let v = Viewer::connect(relay.http, "relay").unwrap();
    assert!(
        v.wait_frames(30, Duration::from_secs(5)) >= 30,
        "{}",
        relay.log()
    );
    drop(v);

    // A relay that vanishes without a goodbye is noticed within 10 s.
    relay.kill();
    let gone = Instant::now();
    let f = wait_forward(&bx, "retrying", Duration::from_secs(10));
    eprintln!(
        "a silent relay noticed after {:.1} s: {}",
        gone.elapsed().as_secs_f64(),
        f["lastError"]
    );
}

#[test]
fn a_wrong_token_shows_the_relays_401_and_retries_with_backoff() {
    let relay = Daemon::start(&relay_paths());
    let bx = Daemon::start(&box_paths(relay.http, "not-the-token-99"));
    let f = wait_forward(&bx, "retrying", Duration::from_secs(30));
    let err = f["lastError"].as_str().unwrap_or("");
    assert!(err.starts_with("HTTP 401: wrong or missing token"), "{f}");
    // Tries space out: after ~8 s at most 4 tries (1, 2, 4 s apart).
    std::thread::sleep(Duration::from_secs(8));
    let f = forward(&bx);
    let tries = f["attempts"].as_u64().unwrap();
    assert!((2..=5).contains(&tries), "{tries} tries; {f}");
    assert!(
        !bx.log().contains("not-the-token-99"),
        "the token was logged"
    );
    assert!(
        !serde_json::to_string(&f)
            .unwrap()
            .contains("not-the-token-99")
    );
    let _ = free_port;
}

#[test]
fn a_relay_that_is_not_there_is_retried_and_the_path_waits_for_media() {
    let port = free_port();
    // A publisher path with nobody publishing: nothing to forward yet.
    let bx = Daemon::start(&format!(
        "[paths.guest]\nsource = \"publisher\"\n\
         [[forward]]\npath = \"guest\"\nurl = \"http://127.0.0.1:{port}/x/whip\"\n"
    ));
    let f = wait_forward(&bx, "waiting", Duration::from_secs(5));
    assert!(
        f["lastError"]
            .as_str()
            .unwrap_or("")
            .contains("no publisher"),
        "{f}"
    );
}

// ---- Guests in network namespaces (root; `make interop`) -----------------
//
// The fleet's layout: the box in `dev`, the relay in `vps`, a headless
// Chromium guest in `guest` with no route to `dev`. Whatever the guest sees
// came through the relay.

use support::netns::{DEVICE_IP, GUEST_IP, Topo, VPS_DEVICE_SIDE, VPS_GUEST_SIDE};
use support::{Setup, browser};

/// The box in `dev`, forwarding cam0 (640x360, so aiortc's re-encode keeps
/// up) to `url` on the relay's device-side address.
fn box_in(t: &Topo, url: &str, token: &str) -> Daemon {
    let d = Daemon::start_with(Setup {
        paths: format!(
            "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\naudio = \"off\"\n\
             width = 640\nheight = 360\nbitrate = 1000000\n\
             [[forward]]\npath = \"cam0\"\nurl = \"{url}\"\ntoken = \"{token}\"\n"
        ),
        netns: Some(t.device.clone()),
        ..Setup::default()
    });
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    d
}

fn relay_in(t: &Topo, http: Option<u16>) -> Daemon {
    Daemon::start_with(Setup {
        paths: relay_paths(),
        netns: Some(t.vps.clone()),
        http_port: http,
        ..Setup::default()
    })
}

/// Frames the guest's Chromium decoded from the r58 relay in `secs`.
fn guest_views_r58(t: &Topo, relay: &Daemon, secs: u32) -> u64 {
    let base = format!("http://{VPS_GUEST_SIDE}:{}", relay.http);
    let v = browser::view(&base, "relay", 1, secs, &[], Some(&t.guest))
        .unwrap_or_else(|e| panic!("{e}\nrelay log:\n{}", relay.log()));
    browser::decoded(&v["viewers"][0])
}

#[test]
#[ignore = "network namespaces and Chromium: make interop"]
fn a_guest_with_no_route_to_the_box_views_it_through_an_r58_relay() {
    let t = Topo::up("fwd");
    let mut relay = relay_in(&t, None);
    let url = format!("http://{VPS_DEVICE_SIDE}:{}/relay/whip", relay.http);
    let bx = box_in(&t, &url, TOKEN);
    let f = wait_forward(&bx, "forwarding", Duration::from_secs(15));
    assert!(f["pair"].as_str().unwrap_or("").contains(DEVICE_IP), "{f}");
    let got = guest_views_r58(&t, &relay, 5);
    assert!(got >= 60, "{got} frames in 5 s at {GUEST_IP}");

    // The relay restarts on its port: forwarding and the guest are back.
    let http = relay.http;
    relay.stop();
    wait_forward(&bx, "retrying", Duration::from_secs(12));
    let relay = relay_in(&t, Some(http));
    let back = Instant::now();
    wait_forward(&bx, "forwarding", Duration::from_secs(5));
    eprintln!(
        "forwarding again {:.1} s after the relay returned",
        back.elapsed().as_secs_f64()
    );
    let got = guest_views_r58(&t, &relay, 5);
    assert!(got >= 60, "{got} frames in 5 s after the restart");
}

#[test]
#[ignore = "network namespaces and Chromium: make interop"]
fn a_relay_that_only_tcp_reaches_gets_the_forward_over_ice_tcp() {
    let t = Topo::up("fwd-tcp");
    // Every UDP packet in and out of the box is dropped: only the relay's
    // passive ICE-TCP candidate is left, and r58 connects to it.
    t.block_udp(&t.device);
    let relay = relay_in(&t, None);
    let url = format!("http://{VPS_DEVICE_SIDE}:{}/relay/whip", relay.http);
    let bx = box_in(&t, &url, TOKEN);
    let f = wait_forward(&bx, "forwarding", Duration::from_secs(20));
    let pair = f["pair"].as_str().unwrap_or("");
    assert!(
        pair.starts_with("tcp") && pair.ends_with(&format!(":{}", relay.tcp)),
        "{f}"
    );
    assert!(t.udp_dropped(&t.device) > 0, "UDP was not even tried");
    let got = guest_views_r58(&t, &relay, 5);
    assert!(got >= 60, "{got} frames in 5 s through a TCP-only forward");
}

/// How the box reaches coturn in the TURN tests.
#[derive(Clone, Copy, PartialEq, Debug)]
enum TurnWay {
    /// Only TURN's UDP port gets out.
    Udp,
    /// No UDP at all: TURN over TCP, then over TLS.
    Tcp,
    Tls,
}

#[test]
#[ignore = "network namespaces, coturn and Chromium: make interop"]
fn a_relay_that_only_turn_reaches_gets_the_forward_through_the_turn_server_it_names() {
    forwards_through_turn("fwd-turn", TurnWay::Udp);
}

#[test]
#[ignore = "network namespaces, coturn and Chromium: make interop"]
fn with_no_udp_out_the_forward_goes_through_turn_over_tcp() {
    forwards_through_turn("fwd-turnt", TurnWay::Tcp);
}

#[test]
#[ignore = "network namespaces, coturn, openssl and Chromium: make interop"]
fn with_no_udp_out_the_forward_goes_through_turn_over_tls() {
    forwards_through_turn("fwd-turns", TurnWay::Tls);
}

/// The relay names coturn (in `vps`) in its Link headers, with minted
/// credentials, and has no ICE-TCP; the box can reach coturn only `way`.
fn forwards_through_turn(name: &str, way: TurnWay) {
    let mut t = Topo::up(name);
    let secret = "fwd-turn-secret";
    let (url, ca) = match way {
        TurnWay::Udp => (format!("turn:{VPS_DEVICE_SIDE}:3478?transport=udp"), None),
        TurnWay::Tcp => (format!("turn:{VPS_DEVICE_SIDE}:3478?transport=tcp"), None),
        TurnWay::Tls => (
            format!("turns:{VPS_DEVICE_SIDE}:5349"),
            Some(TrustedIn::new(&t.device)),
        ),
    };
    let dir = match &ca {
        Some(ca) => t.start_coturn_with(secret, Some((&ca.cert, &ca.key))),
        None => t.start_coturn(secret),
    };
    let relay = Daemon::start_with(Setup {
        paths: relay_paths(),
        webrtc: format!(
            "ice_servers = [{{ urls = \"{url}\", secret = \"{secret}\", user = \"box\" }}]\n"
        ),
        netns: Some(t.vps.clone()),
        no_ice_tcp: true,
        ..Setup::default()
    });
    match way {
        TurnWay::Udp => t.block_udp_except(&t.device, 3478),
        _ => t.block_udp(&t.device),
    }
    let url = format!("http://{VPS_DEVICE_SIDE}:{}/relay/whip", relay.http);
    let bx = box_in(&t, &url, TOKEN);
    // The answer names the TURN server: r58 allocates there and trickles
    // the relayed candidate, so the first try already forwards.
    let f = wait_forward(&bx, "forwarding", Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&dir);
    for l in bx.log().lines().filter(|l| l.contains("forward")) {
        eprintln!("box ({way:?}): {l}");
    }
    assert_eq!(f["attempts"], 1, "{f}");
    let pair = f["pair"].as_str().unwrap_or("");
    assert!(
        pair.starts_with(&format!("udp {VPS_DEVICE_SIDE}:")) && pair.ends_with("(via TURN)"),
        "media leaves from coturn's relayed address: {f}\nbox log:\n{}",
        bx.log()
    );
    assert!(bx.log().contains("TURN allocation"), "{}", bx.log());
    assert!(
        bx.log().contains(" (relay) <-> "),
        "the log names the relayed candidate:\n{}",
        bx.log()
    );
    assert!(
        t.udp_dropped(&t.device) > 0,
        "direct UDP was not even tried"
    );
    assert!(!bx.log().contains(secret));
    let got = guest_views_r58(&t, &relay, 5);
    assert!(
        got >= 60,
        "{got} frames in 5 s through a forward via TURN over {way:?}"
    );
}

/// A test CA that r58 in `ns` trusts (`ip netns exec` mounts
/// /etc/netns/NS/ssl over /etc/ssl) and a certificate for coturn's
/// address signed by it; all removed on drop.
struct TrustedIn {
    etc: std::path::PathBuf,
    pki: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl TrustedIn {
    fn new(ns: &str) -> TrustedIn {
        let etc = std::path::PathBuf::from(format!("/etc/netns/{ns}"));
        let pki = std::env::temp_dir().join(format!("r58-pki-{}-{ns}", std::process::id()));
        std::fs::create_dir_all(etc.join("ssl/certs")).unwrap();
        std::fs::create_dir_all(&pki).unwrap();
        let p = |f: &str| pki.join(f).to_string_lossy().to_string();
        let (ca, ca_key, csr, cert, key) = (
            p("ca.pem"),
            p("ca.key"),
            p("turn.csr"),
            p("turn.pem"),
            p("turn.key"),
        );
        let san = format!("subjectAltName=IP:{VPS_DEVICE_SIDE}");
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1";
        for cmd in [
            format!("req -x509 {ec} -keyout {ca_key} -out {ca} -subj /CN=r58-test-ca"),
            format!(
                "req {ec} -keyout {key} -out {csr} -subj /CN=turn -addext {san} -addext extendedKeyUsage=serverAuth"
            ),
            format!(
                "x509 -req -in {csr} -CA {ca} -CAkey {ca_key} -CAcreateserial -out {cert} -days 1 -copy_extensions copy"
            ),
        ] {
            let out = std::process::Command::new("openssl")
                .args(cmd.split(' '))
                .output()
                .expect("openssl");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "openssl {cmd}: {err}");
        }
        std::fs::copy(&ca, etc.join("ssl/certs/ca-certificates.crt")).unwrap();
        TrustedIn {
            etc,
            pki,
            cert: cert.into(),
            key: key.into(),
        }
    }
}

impl Drop for TrustedIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.etc);
        let _ = std::fs::remove_dir_all(&self.pki);
    }
}

/// aiortc's venv from `make deps-interop`.
fn aiortc_python() -> Option<std::path::PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop/venv/bin/python");
    p.exists().then_some(p)
}

#[test]
#[ignore = "network namespaces, aiortc and Chromium: make interop"]
fn an_independent_whip_server_takes_the_forward_and_a_guest_views_it() {
    let Some(python) = aiortc_python() else {
        panic!("aiortc is not installed: run `make deps-interop`");
    };
    let mut t = Topo::up("fwd-aio");
    let port = free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/aiortc_relay.py");
    let (py, p) = (python.to_string_lossy().to_string(), port.to_string());
    t.spawn(&t.vps.clone(), &[&py, script, "0.0.0.0", &p, TOKEN]);
    support::netns::wait_listening(&t.vps, port);

    let url = format!("http://{VPS_DEVICE_SIDE}:{port}/cam0/whip");
    let bx = box_in(&t, &url, TOKEN);
    let f = wait_forward(&bx, "forwarding", Duration::from_secs(15));
    eprintln!("forwarding to aiortc: {f}");
    let page = format!("http://{VPS_GUEST_SIDE}:{port}/");
    let whep = format!("http://{VPS_GUEST_SIDE}:{port}/cam0/whep");
    let v = browser::script("whep.mjs", &[&page, &whep, "5"], &[], Some(&t.guest))
        .unwrap_or_else(|e| panic!("{e}\nbox log:\n{}", bx.log()));
    let got = v["after"].as_u64().unwrap_or(0) - v["before"].as_u64().unwrap_or(0);
    eprintln!("guest through aiortc: {v}");
    assert!(got >= 60, "{got} frames in 5 s: {v}");
}
