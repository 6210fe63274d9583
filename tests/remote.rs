//! The remote path, for real: r58 in a `device` namespace, a plain TCP
//! forwarder (socat, standing in for frps+frpc) or coturn in `vps`, and
//! headless Chromium in `guest`, which has no route to the device at all.
//! Needs root (namespaces, nftables); `make test` runs as root in CI.

mod support;

use std::time::Duration;

use support::netns::{
    self, HTTP_PUBLIC, ICE_TCP_PUBLIC, Topo, VPS_DEVICE_SIDE, VPS_GUEST_SIDE, tcp_only_world,
    view_from_guest,
};
use support::{Daemon, Setup, browser};

#[test]
fn guest_without_udp_views_through_a_tcp_forwarder() {
    let (t, d) = tcp_only_world("tcp", true);
    let v = view_from_guest(&t, &d, 4, "");
    let frames = browser::decoded(&v);
    assert!(
        frames >= 60,
        "decoded {frames} frames in 4 s: {v}\nlog:\n{}",
        d.log()
    );
    assert_eq!(v["protocol"], "tcp", "{v}");
    assert_eq!(
        v["remote"],
        format!("{VPS_GUEST_SIDE}:{ICE_TCP_PUBLIC}"),
        "{v}"
    );
    assert!(
        t.udp_dropped(&t.guest) > 0,
        "the guest did try UDP, and it was dropped"
    );
    // Route-aware: a forwarded request is public, so the device's own
    // addresses were never offered.
    let answer = v["answer"].as_str().unwrap();
    assert!(
        answer.contains(&format!(
            "{VPS_GUEST_SIDE} {ICE_TCP_PUBLIC} typ host tcptype passive"
        )),
        "{answer}"
    );
    assert!(
        !answer.contains(netns::DEVICE_IP) && !answer.contains("127.0.0.1"),
        "{answer}"
    );
    // The session list and the log name the pair (the session was deleted
    // by the page; the log keeps it).
    assert!(
        d.log().contains(&format!(
            "via tcp {VPS_GUEST_SIDE}:{ICE_TCP_PUBLIC} (host) <-> {VPS_DEVICE_SIDE}:"
        )),
        "{}",
        d.log()
    );
}

#[test]
fn without_the_ice_tcp_listener_the_same_guest_cannot_connect() {
    // Negative control for the test above: same world, listener off.
    let (t, d) = tcp_only_world("notcp", false);
    let v = view_from_guest(&t, &d, 2, "");
    assert_eq!(browser::decoded(&v), 0, "{v}");
    assert_eq!(v["framesDecoded"].as_u64().unwrap_or(0), 0, "{v}");
    assert!(!v["answer"].as_str().unwrap_or("").contains(" tcp "), "{v}");
    let s = d.api_json("/v3/webrtcsessions/list");
    assert!(
        s["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["peerConnectionEstablished"] == false),
        "{s}"
    );
}

#[test]
fn relay_only_guest_connects_through_coturn_with_minted_credentials() {
    let mut t = Topo::up("turn");
    let secret = "r58-test-secret";
    let dir = t.start_coturn(secret);
    let d = Daemon::start_with(Setup {
        paths: "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\n".into(),
        webrtc: format!(
            "ice_servers = [{{ urls = \"turn:{VPS_GUEST_SIDE}:3478?transport=udp\", secret = \"{secret}\", user = \"guest\" }}]\n"
        ),
        netns: Some(t.device.clone()),
        ..Setup::default()
    });
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    t.forward_tcp(HTTP_PUBLIC, d.http);
    let v = view_from_guest(&t, &d, 3, "?relay=1");
    let _ = std::fs::remove_dir_all(&dir);
    let frames = browser::decoded(&v);
    assert!(
        frames >= 45,
        "decoded {frames} frames in 3 s: {v}\nlog:\n{}",
        d.log()
    );
    assert_eq!(v["localType"], "relay", "{v}");
    // The secret itself never reaches the daemon's log.
    assert!(!d.log().contains(secret));
}

#[test]
fn answers_at_once_even_with_unreachable_ice_servers() {
    let t = Topo::up("stun");
    // Addresses inside the device namespace's subnet that nobody answers.
    let d = Daemon::start_with(Setup {
        paths: "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\n".into(),
        webrtc: "ice_servers = [{ urls = \"stun:10.213.2.77:3478\" }, { urls = \"turn:10.213.2.78:3478\", secret = \"x\" }]\n".into(),
        netns: Some(t.device.clone()),
        ..Setup::default()
    });
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let http = d.http;
    let (status, ms) = netns::run_in(&t.device, move || {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (_rtc, _pending, offer) = support::whep_client::offer(&sock);
        let t0 = std::time::Instant::now();
        let r = support::request(
            http,
            "POST",
            "/cam0/whep",
            &[("Content-Type", "application/sdp")],
            offer.as_bytes(),
        )
        .unwrap();
        (r.status, t0.elapsed().as_millis())
    });
    assert_eq!(status, 201);
    // STUN/TURN timeouts are seconds; an answer that waited on one would show.
    assert!(ms < 1000, "answer took {ms} ms");
}
