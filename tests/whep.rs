//! WHEP over real sockets against the real binary: the happy path with a
//! str0m viewer, and every bad-input answer a client can get.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use support::whep_client::{Viewer, offer};
use support::{Daemon, request};

const SDP: (&str, &str) = ("Content-Type", "application/sdp");

fn valid_offer() -> String {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    offer(&sock).2
}

/// POST a fresh, valid offer to `path` on the daemon's WHEP port.
fn post_offer(d: &Daemon, path: &str) -> support::HttpResponse {
    request(d.http, "POST", path, &[SDP], valid_offer().as_bytes()).unwrap()
}

fn test_paths() -> &'static str {
    "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\nmax_viewers = 2\nbitrate = 1000000\n\
     [paths.hdmi0]\nsource = \"hdmi\"\n"
}

#[test]
fn viewer_receives_frames_and_delete_ends_the_session() {
    let d = Daemon::start(test_paths());
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let v = Viewer::connect(d.http, "cam0").expect("offer accepted");
    assert!(
        v.location.starts_with("/cam0/whep/"),
        "relative Location: {}",
        v.location
    );
    let got = v.wait_frames(30, Duration::from_secs(10));
    assert!(got >= 30, "got {got} frames; log:\n{}", d.log());
    let info = d.path_info("cam0");
    assert_eq!(info["readers"].as_array().unwrap().len(), 1, "{info}");
    assert!(info["bytesSent"].as_u64().unwrap() > 10_000, "{info}");
    // MediaMTX's session list, with the pair media actually flows on.
    let list = d.api_json("/v3/webrtcsessions/list");
    let s = &list["items"][0];
    assert_eq!(list["itemCount"], 1, "{list}");
    assert_eq!(s["path"], "cam0", "{s}");
    assert_eq!(s["state"], "read", "{s}");
    assert_eq!(s["peerConnectionEstablished"], true, "{s}");
    let local = s["localCandidate"].as_str().unwrap();
    assert!(
        local.starts_with("host/udp/") && local.ends_with(&format!("/{}", d.udp)),
        "{s}"
    );
    let remote = s["remoteCandidate"].as_str().unwrap();
    assert!(remote.starts_with("host/udp/127.0.0.1/"), "{s}");
    assert!(s["outboundBytes"].as_u64().unwrap() > 10_000, "{s}");
    assert!(s["inboundBytes"].as_u64().unwrap() > 0, "{s}");
    // Every frame is at least one RTP packet; a viewer receives none.
    assert!(s["outboundRTPPackets"].as_u64().unwrap() >= 30, "{s}");
    assert_eq!(s["inboundRTPPackets"], 0, "{s}");
    let id = s["id"].as_str().unwrap();
    assert_eq!(
        d.api_json(&format!("/v3/webrtcsessions/get/{id}"))["id"],
        id
    );
    // The same facts for Prometheus, under MediaMTX's names.
    let m = d.api_request("GET", "/metrics").unwrap();
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = m.text();
    for line in [
        "paths{name=\"cam0\",state=\"ready\"} 1",
        "paths_readers{name=\"cam0\",readerType=\"webRTCSession\",state=\"ready\"} 1",
        "r58_sessions{state=\"read\",transport=\"udp\"} 1",
        "r58_engine_responding 1",
    ] {
        assert!(m.lines().any(|l| l == line), "no {line:?} in\n{m}");
    }
    assert!(
        m.contains(&format!("webrtc_sessions{{id=\"{id}\",path=\"cam0\"")),
        "{m}"
    );

    let r = request(d.http, "DELETE", &v.location, &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.path_info("cam0")["readers"].as_array().unwrap().len(), 0);
    let r = request(d.http, "DELETE", &v.location, &[], b"").unwrap();
    assert_eq!(r.status, 404, "second DELETE: {}", r.text());
}

#[test]
fn answer_carries_whep_headers_and_ice_servers() {
    let d = Daemon::start(test_paths());
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let origin = ("Origin", "https://app.example.no");
    let r = request(
        d.http,
        "POST",
        "/cam0/whep",
        &[SDP, origin],
        valid_offer().as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/sdp"));
    assert!(r.header("etag").is_some());
    assert_eq!(
        r.header("link"),
        Some("<stun:stun.example.net:3478>; rel=\"ice-server\"")
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.no")
    );
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .contains("Location")
    );
    let answer = r.text();
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(
        answer.contains("H264/90000") && answer.contains("packetization-mode=1"),
        "{answer}"
    );
    assert!(
        answer.contains(&format!("127.0.0.1 {} typ host", d.udp)),
        "{answer}"
    );

    // The legacy alias answers the same way.
    let r = post_offer(&d, "/whep/cam0");
    assert_eq!(r.status, 201, "{}", r.text());

    // Preflight from an allowed origin; a foreign origin gets no CORS grant.
    let pre = [
        ("Origin", "http://localhost:5173"),
        ("Access-Control-Request-Method", "POST"),
    ];
    let r = request(d.http, "OPTIONS", "/cam0/whep", &pre, b"").unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("PATCH")
    );
    let r = request(
        d.http,
        "OPTIONS",
        "/cam0/whep",
        &[("Origin", "https://evil.example.com"), pre[1]],
        b"",
    )
    .unwrap();
    assert_eq!(r.header("access-control-allow-origin"), None);
    // Plain OPTIONS lists the ICE servers before an offer is made.
    let r = request(d.http, "OPTIONS", "/cam0/whep", &[], b"").unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(r.all("link").len(), 1);
}

#[test]
fn bad_input_gets_a_clear_status_and_line() {
    let d = Daemon::start(test_paths());
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let post = |path: &str, headers: &[(&str, &str)], body: &[u8]| {
        request(d.http, "POST", path, headers, body).unwrap()
    };

    let r = post("/cam0/whep", &[("Content-Type", "text/plain")], b"v=0");
    assert_eq!(
        (r.status, r.text().trim()),
        (415, "Content-Type must be application/sdp")
    );

    let r = post("/cam0/whep", &[SDP], b"hello");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("v=0"), "{}", r.text());

    let audio_only = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
    let r = post("/cam0/whep", &[SDP], audio_only.as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.text().contains("no video"), "{}", r.text());

    let vp8_only = valid_offer()
        .lines()
        .filter(|l| !l.contains("H264") && !l.contains("apt="))
        .collect::<Vec<_>>()
        .join("\r\n");
    let r = post("/cam0/whep", &[SDP], vp8_only.as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.text().contains("H264"), "{}", r.text());

    let r = post("/nope/whep", &[SDP], valid_offer().as_bytes());
    assert_eq!(r.status, 404);
    assert!(r.text().contains("'nope'"), "{}", r.text());

    let r = post("/hdmi0/whep", &[SDP], valid_offer().as_bytes());
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("2"));
    assert!(r.text().contains("no HDMI-RX device"), "{}", r.text());

    let big = vec![b'a'; 129 * 1024];
    let r = post("/cam0/whep", &[SDP], &big);
    assert_eq!(r.status, 413, "{}", r.text());

    let frag = ("Content-Type", "application/trickle-ice-sdpfrag");
    let r = request(
        d.http,
        "PATCH",
        "/cam0/whep/0123456789abcdef",
        &[frag],
        b"a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 404);
    let r = request(d.http, "DELETE", "/cam0/whep/0123456789abcdef", &[], b"").unwrap();
    assert_eq!(r.status, 404);
    let r = request(d.http, "GET", "/cam0/whep", &[], b"").unwrap();
    assert_eq!(r.status, 405);
    // Refused offers are logged with the reason and the client, once per
    // client and status every 10 s: three 400s above, one line.
    let log = d.log();
    assert_eq!(
        log.matches("read: refused 400 from 127.0.0.1").count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("read: refused 503 from 127.0.0.1: path 'hdmi0' is not ready"),
        "{log}"
    );
}

#[test]
fn trickle_patch_and_viewer_limit() {
    let d = Daemon::start(test_paths());
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let mut locations = vec![];
    for _ in 0..2 {
        let r = post_offer(&d, "/cam0/whep");
        assert_eq!(r.status, 201, "{}", r.text());
        locations.push(r.header("location").unwrap().to_string());
    }
    let r = post_offer(&d, "/cam0/whep");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("max_viewers"), "{}", r.text());

    let frag = ("Content-Type", "application/trickle-ice-sdpfrag");
    let body = b"a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n";
    let r = request(d.http, "PATCH", &locations[0], &[frag], body).unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    let r = request(d.http, "PATCH", &locations[0], &[SDP], body).unwrap();
    assert_eq!(r.status, 415);

    // Ending one session frees a slot.
    assert_eq!(
        request(d.http, "DELETE", &locations[0], &[], b"")
            .unwrap()
            .status,
        200
    );
    let r = post_offer(&d, "/cam0/whep");
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn paths_list_has_mediamtx_shape_and_truthful_states() {
    let d = Daemon::start(test_paths());
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    d.wait_state("hdmi0", "no_signal", Duration::from_secs(5));
    let r = request(d.api, "GET", "/v3/paths/list", &[], b"").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["itemCount"], 2);
    let cam0 = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "cam0")
        .unwrap();
    assert_eq!(cam0["ready"], true);
    // The test source has its tone (MediaMTX lists Opus tracks the same way).
    assert_eq!(cam0["tracks"], serde_json::json!(["H264", "Opus"]));
    assert_eq!(cam0["tracks2"][1]["codec"], "Opus");
    assert!(cam0["readyTime"].as_str().unwrap().ends_with('Z'));
    assert!(cam0["r58"]["frames"].as_u64().unwrap() > 0);
    let hdmi = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "hdmi0")
        .unwrap();
    assert_eq!(hdmi["ready"], false);
    assert_eq!(hdmi["source"], serde_json::Value::Null);
    assert_eq!(hdmi["r58"]["detail"], "no HDMI-RX device");
    assert_eq!(hdmi["r58"]["signal"], "no HDMI-RX device");
    let r = request(d.api, "GET", "/v3/paths/get/nope", &[], b"").unwrap();
    assert_eq!(r.status, 404);
}

#[test]
fn viewer_page_is_served() {
    let d = Daemon::start(test_paths());
    let r = request(d.http, "GET", "/cam0/", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("RTCPeerConnection"));
    let r = request(d.http, "GET", "/cam0", &[], b"").unwrap();
    assert_eq!((r.status, r.header("location")), (302, Some("/cam0/")));
    assert_eq!(
        request(d.http, "GET", "/nope/", &[], b"").unwrap().status,
        404
    );
}

#[test]
fn ice_tcp_connection_that_is_not_ice_is_closed() {
    use std::io::{Read, Write};
    let d = Daemon::start(test_paths());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.tcp)).expect("ICE-TCP listens");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // One RFC 4571 frame that is not a STUN check for any session.
    s.write_all(&[0, 4, b'G', b'E', b'T', b' ']).unwrap();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).expect("closed, not left hanging");
    assert_eq!(n, 0, "the server closes the connection");
}

#[test]
fn a_non_browser_viewer_over_ice_tcp_gets_frames_and_the_counters_say_tcp() {
    // The load client's ICE-TCP mode (make bench uses it for the TCP path).
    let d = Daemon::start(test_paths());
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let v = Viewer::connect_tcp(d.http, "cam0").expect("offer accepted");
    let got = v.wait_frames(30, Duration::from_secs(10));
    assert!(got >= 30, "got {got} frames; log:\n{}", d.log());
    let send = &d.api_json("/v3/info")["r58"]["webrtc"]["send"];
    assert!(send["tcpPackets"].as_u64().unwrap_or(0) >= 30, "{send}");
    let list = d.api_json("/v3/webrtcsessions/list");
    let local = list["items"][0]["localCandidate"].as_str().unwrap_or("");
    assert!(local.contains("/tcp/"), "{list}");
}
