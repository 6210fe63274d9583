//! Real browser: headless Debian Chromium (playwright-core) plays cam0 from
//! the built-in viewer page. `make test` installs Chromium and the node
//! module; without them these tests fail and say how to get them.

mod support;

use std::time::Duration;

use support::{Daemon, browser};

fn view(d: &Daemon, viewers: usize, secs: u32) -> serde_json::Value {
    view_env(d, viewers, secs, &[])
}

fn view_env(d: &Daemon, viewers: usize, secs: u32, env: &[(&str, &str)]) -> serde_json::Value {
    browser::view(&d.base(), "cam0", viewers, secs, env, None)
        .unwrap_or_else(|e| panic!("{e}\nr58 log:\n{}", d.log()))
}

/// The picture's width: 720p natively; 640x360 under qemu, where x264 at
/// 720p made 11-12 fps on a 2-core machine and the frame-count checks
/// measured the emulator.
fn width() -> u64 {
    if support::emulated() { 640 } else { 1280 }
}

/// cam0, video only: these tests are about the picture and ICE, and also
/// run against the aarch64 binary under qemu (`make cross-test`), where
/// the sound's encoder would take CPU the emulated video needs. Sound has
/// its own test binary (`tests/sound.rs`).
fn daemon() -> Daemon {
    let (w, h) = (width(), width() * 9 / 16);
    let d = Daemon::start(&format!(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\naudio = \"off\"\nwidth = {w}\nheight = {h}\n"
    ));
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    d
}

#[test]
fn chromium_decodes_h264_and_delete_ends_the_session() {
    let d = daemon();
    let v = view(&d, 1, 5);
    let v0 = &v["viewers"][0];
    let decoded = v0["after"].as_u64().unwrap() - v0["before"].as_u64().unwrap();
    assert!(decoded >= 60, "decoded {decoded} frames in 5 s: {v0}");
    assert_eq!(v0["codec"], "H264", "{v0}");
    assert_eq!(v0["width"], width(), "{v0}");
    assert_eq!(v0["candidate"], "host", "{v0}");
    assert_eq!(v0["protocol"], "udp", "{v0}");
    assert_eq!(v0["deleteStatus"], 200, "{v0}");
    assert_eq!(v0["deleteAgainStatus"], 404, "{v0}");
    assert_eq!(
        d.path_info("cam0")["readers"].as_array().unwrap().len(),
        0,
        "server-side session gone"
    );
    assert!(d.log().contains("deleted by viewer"), "{}", d.log());
}

#[test]
fn four_chromium_viewers_all_decode() {
    let d = daemon();
    let v = view(&d, 4, 5);
    let viewers = v["viewers"].as_array().unwrap();
    assert_eq!(viewers.len(), 4);
    for (i, x) in viewers.iter().enumerate() {
        let decoded = x["after"].as_u64().unwrap() - x["before"].as_u64().unwrap();
        assert!(
            decoded >= 60,
            "viewer {i} decoded {decoded} frames in 5 s: {x}"
        );
        assert_eq!(x["codec"], "H264");
    }
}

#[test]
fn real_viewer_offering_only_mdns_candidates_connects() {
    // Without the test flags Chromium hides its addresses behind `.local`
    // names; the ICE-lite server must learn the peer from its checks.
    let d = daemon();
    let v = view_env(&d, 1, 3, &[("R58_REAL_VIEWER", "1")]);
    let v0 = &v["viewers"][0];
    let decoded = v0["after"].as_u64().unwrap() - v0["before"].as_u64().unwrap();
    assert!(decoded >= 36, "decoded {decoded} frames in 3 s: {v0}");
    assert_eq!(v0["deleteStatus"], 200, "{v0}");
}
