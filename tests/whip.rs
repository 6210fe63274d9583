//! WHIP ingest relayed to WHEP viewers, with real browsers: Chromium's fake
//! camera publishes through the built-in publisher page, a second Chromium
//! watches, and every refusal a publisher or viewer can meet is checked.
//! Plus the HTTP-level answers that need no browser.

mod support;

use std::time::Duration;

use support::{Daemon, browser, request};

const TOKEN: &str = "pub-token-1234";

const CAM0: &str = "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\n";

fn paths() -> String {
    format!(
        "{CAM0}[paths.cam1]\nsource = \"publisher\"\npublish_token = \"{TOKEN}\"\n\
         [paths.guest1]\nsource = \"publisher\"\noverride_publisher = true\n\
         [paths.guest2]\nsource = \"publisher\"\nread_token = \"read-token-5678\"\n"
    )
}

#[test]
fn chromium_publishes_a_second_chromium_views_and_the_publisher_leaves() {
    let d = Daemon::start(&paths());
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let api = format!("http://127.0.0.1:{}", d.api);
    let out = browser::script("whip.mjs", &[&d.base(), &api, "cam1", TOKEN], &[], None)
        .unwrap_or_else(|e| panic!("{e}\nr58 log:\n{}", d.log()));
    let ctx = || format!("{out:#}\nr58 log:\n{}", d.log());

    // Publishing, and the path is ready with what the publisher sends.
    assert!(out["publishMs"].is_u64(), "publisher never sent: {}", ctx());
    assert_eq!(out["publisher"]["codec"], "H264", "{}", ctx());
    let p = &out["pathWhilePublished"];
    assert_eq!(p["ready"], true, "{}", ctx());
    assert_eq!(p["source"]["type"], "webRTCSession", "{}", ctx());
    assert_eq!(
        p["tracks"],
        serde_json::json!(["H264", "Opus"]),
        "{}",
        ctx()
    );
    // Relayed pictures count as the path's frames (the health check reads them).
    assert!(p["r58"]["frames"].as_u64().unwrap_or(0) > 0, "{}", ctx());

    // The viewer decodes the relayed stream: rising frames, H.264, audio too.
    let v = &out["viewer"];
    assert!(v["decodedIn3s"].as_u64().unwrap_or(0) >= 45, "{}", ctx());
    assert_eq!(v["codec"], "H264", "{}", ctx());
    assert_eq!(v["width"], out["publisher"]["width"], "{}", ctx());
    assert!(v["audioPackets"].as_u64().unwrap_or(0) > 50, "{}", ctx());
    // The viewer joined a long GOP: r58 asked the publisher for a keyframe.
    assert!(
        out["publisher"]["pliCount"].as_u64().unwrap_or(0) >= 1,
        "{}",
        ctx()
    );
    let answer = out["viewerAnswer"].as_str().unwrap_or("");
    assert!(
        answer.contains("rtx/90000"),
        "RTX offered to the viewer: {answer}"
    );

    // Refusals, each saying why.
    assert_eq!(out["noToken"]["status"], 401, "{}", ctx());
    assert_eq!(out["secondPublisher"]["status"], 409, "{}", ctx());
    let busy = out["secondPublisher"]["text"].as_str().unwrap();
    assert!(busy.contains("already has a publisher"), "{busy}");
    assert_eq!(out["localSource"]["status"], 409, "{}", ctx());
    let local = out["localSource"]["text"].as_str().unwrap();
    assert!(local.contains("test source"), "{local}");
    assert_eq!(out["vp8Viewer"]["status"], 406, "{}", ctx());
    let codec = out["vp8Viewer"]["text"].as_str().unwrap();
    assert!(codec.contains("carries H264 + Opus"), "{codec}");

    // The publisher leaves: not ready, and the viewer's session ends.
    assert_eq!(out["publisherDelete"], 200, "{}", ctx());
    assert!(
        out["viewerEndedMs"].is_u64(),
        "viewer kept waiting: {}",
        ctx()
    );
    assert_eq!(out["pathAfter"]["ready"], false, "{}", ctx());
    assert_eq!(
        out["pathAfter"]["r58"]["detail"],
        "waiting for a WHIP publisher"
    );
    assert!(d.log().contains("ending, the publisher left"), "{}", ctx());
    assert!(!d.log().contains(TOKEN), "the token leaked into the log");
}

#[test]
fn whip_refusals_without_a_browser() {
    // Publisher paths only: no local pipeline feeds the engine at all.
    let d = Daemon::start(&paths().replace(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\n",
        "",
    ));
    let sdp = ("Content-Type", "application/sdp");
    // Auth comes before anything else, and says what was missing.
    let r = request(d.http, "POST", "/cam1/whip", &[sdp], b"v=0\r\n").unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    assert!(r.text().contains("no token"), "{}", r.text());
    let wrong = ("Authorization", "Bearer nope-nope-nope");
    let r = request(d.http, "POST", "/cam1/whip", &[sdp, wrong], b"v=0\r\n").unwrap();
    assert_eq!(r.status, 401);
    assert!(r.text().contains("wrong token") && !r.text().contains("nope"));
    // A good token with a bad offer gets a 400, not a 401.
    let good = ("Authorization", &*format!("Bearer {TOKEN}"));
    let r = request(d.http, "POST", "/whip/cam1", &[sdp, good], b"hello").unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    // Open paths need no token; viewers of a path nobody publishes wait.
    let offer = support::whep_client::offer(&std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).2;
    let r = request(d.http, "POST", "/guest1/whep", &[sdp], offer.as_bytes()).unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("waiting for a WHIP publisher"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("retry-after"), Some("2"));
    let info = d.path_info("guest1");
    assert_eq!(info["ready"], false);
    assert_eq!(info["r58"]["detail"], "waiting for a WHIP publisher");
    // A read token guards viewing; publishing there stays open.
    let r = request(d.http, "POST", "/guest2/whep", &[sdp], offer.as_bytes()).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        r.text().starts_with("reading 'guest2' needs a token"),
        "{}",
        r.text()
    );
    let read = ("Authorization", "Bearer read-token-5678");
    let r = request(
        d.http,
        "POST",
        "/guest2/whep",
        &[sdp, read],
        offer.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    let r = request(d.http, "POST", "/guest2/whip", &[sdp], b"v=0\r\n").unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    // The publisher page is served; GET on the WHIP endpoint is not.
    let r = request(d.http, "GET", "/guest1/publish", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.text().contains("WHIP"));
    let r = request(d.http, "GET", "/guest1/whip", &[], b"").unwrap();
    assert_eq!(r.status, 405);
}

#[test]
fn a_new_publisher_takes_over_and_the_viewer_keeps_playing() {
    let d = Daemon::start(&paths());
    let out = browser::script("override.mjs", &[&d.base(), "guest1"], &[], None)
        .unwrap_or_else(|e| panic!("{e}\nr58 log:\n{}", d.log()));
    let ctx = || format!("{out:#}\nr58 log:\n{}", d.log());
    assert!(out["viewerMs"].is_u64(), "viewer never decoded: {}", ctx());
    assert!(
        out["secondMs"].is_u64(),
        "second publisher refused: {}",
        ctx()
    );
    assert!(
        out["firstEndedMs"].is_u64(),
        "first publisher not told: {}",
        ctx()
    );
    assert_eq!(
        out["first"]["error"],
        "the server ended the session",
        "{}",
        ctx()
    );
    assert_eq!(out["viewer"]["error"], serde_json::Value::Null, "{}", ctx());
    assert_eq!(out["viewer"]["codec"], "VP8", "{}", ctx());
    assert!(
        out["viewer"]["decodedIn3s"].as_u64().unwrap_or(0) >= 45,
        "{}",
        ctx()
    );
    assert!(
        d.log().contains("replaced by a new publisher of guest1"),
        "{}",
        ctx()
    );
    assert!(!d.log().contains("ending, the publisher left"), "{}", ctx());
}

#[test]
fn losses_on_both_legs_are_repaired_by_nack() {
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test needs root for a network namespace (CI runs as root)");
    }
    let lossy = support::netns::Lossy::up("loss", 10);
    let d = Daemon::start_with(support::Setup {
        paths: "[paths.guest1]\nsource = \"publisher\"\n".into(),
        netns: Some(lossy.ns.clone()),
        ..Default::default()
    });
    let base = format!("http://127.0.0.1:{}", d.http);
    let out = browser::script("lossy.mjs", &[&base, "guest1", "8"], &[], Some(&lossy.ns))
        .unwrap_or_else(|e| panic!("{e}\nr58 log:\n{}", d.log()));
    let ctx = || {
        format!(
            "{out:#}\ndropped {}\nr58 log:\n{}",
            lossy.dropped(),
            d.log()
        )
    };
    let (v, p) = (&out["viewer"], &out["publisher"]);
    eprintln!(
        "dropped {} UDP packets; publisher: {} NACKs in, {} resent; viewer: {} NACKs out, \
         {} resends in, {} decoded, {} freezes",
        lossy.dropped(),
        p["nackCount"],
        p["retransmitted"],
        v["nackCount"],
        v["retransmitted"],
        v["decoded"],
        v["freezeCount"]
    );
    assert!(
        lossy.dropped() > 100,
        "the namespace really dropped UDP: {}",
        ctx()
    );
    // Upstream: r58 NACKed the publisher, which resent (RTX).
    assert!(p["nackCount"].as_u64().unwrap_or(0) > 0, "{}", ctx());
    assert!(p["retransmitted"].as_u64().unwrap_or(0) > 0, "{}", ctx());
    // Downstream: the viewer NACKed r58, and r58's resends arrived.
    assert!(v["nackCount"].as_u64().unwrap_or(0) > 0, "{}", ctx());
    assert!(v["retransmitted"].as_u64().unwrap_or(0) > 0, "{}", ctx());
    // And the picture kept going: 8 s at 30 fps, most frames decoded.
    assert!(v["decoded"].as_u64().unwrap_or(0) >= 150, "{}", ctx());
}

#[test]
fn a_publisher_that_stops_sending_is_given_up_after_10_s() {
    let d = Daemon::start("[paths.guest1]\nsource = \"publisher\"\n");
    let api = format!("http://127.0.0.1:{}", d.api);
    let out = browser::script("stall.mjs", &[&d.base(), &api, "guest1"], &[], None)
        .unwrap_or_else(|e| panic!("{e}\nr58 log:\n{}", d.log()));
    let ctx = || format!("{out:#}\nr58 log:\n{}", d.log());
    assert!(out["publishMs"].is_u64(), "{}", ctx());
    let ms = out["notReadyMs"].as_u64().unwrap_or(u64::MAX);
    assert!(
        (9_000..=13_000).contains(&ms),
        "gave up after {ms} ms: {}",
        ctx()
    );
    assert_eq!(out["path"]["r58"]["detail"], "waiting for a WHIP publisher");
    assert!(
        out["toldMs"].is_u64(),
        "the publisher was not told: {}",
        ctx()
    );
    assert!(
        d.log().contains("no media from the publisher for 10 s"),
        "{}",
        ctx()
    );
}
