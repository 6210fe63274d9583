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

/// cam0, video only: these tests are about the picture and ICE, and also
/// run against the aarch64 binary under qemu (`make cross-test`), where
/// the sound's encoder would take CPU the emulated video needs.
fn daemon() -> Daemon {
    daemon_with("audio = \"off\"\n")
}

fn daemon_with(extra: &str) -> Daemon {
    let d = Daemon::start(&format!(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\n{extra}"
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
    assert_eq!(v0["width"], 1280, "{v0}");
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

/// The test source's sound as a browser gets it: Opus, samples flowing with
/// almost nothing concealed, a level a WebAudio analyser hears well above
/// the tone, video at full rate, and the click each second in step with the
/// picture's flash (display time against play time, Chromium's own A/V
/// sync from r58's sender reports).
#[test]
fn chromium_hears_the_test_tone_in_step_with_the_picture() {
    let d = daemon_with("");
    let out = browser::script("audio.mjs", &[&d.base(), "cam0", "10"], &[], None)
        .unwrap_or_else(|e| panic!("{e}\nr58 log:\n{}", d.log()));
    eprintln!("sound: {out}");
    assert_eq!(out["codec"], "audio/opus", "{out}");
    let samples = out["samples"].as_f64().unwrap_or(0.0);
    assert!(samples > 48_000.0 * 8.0, "{out}");
    assert!(
        out["concealed"].as_f64().unwrap_or(1e9) < samples / 100.0,
        "{out}"
    );
    // The tone is at 0.1, the clicks at 0.9.
    assert!(out["peak"].as_f64().unwrap_or(0.0) > 0.5, "{out}");
    assert!(out["frames"].as_u64().unwrap_or(0) >= 240, "{out}");
    let mut offsets: Vec<i64> = out["offsetsMs"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_i64()).collect())
        .unwrap_or_default();
    assert!(offsets.len() >= 5, "flashes paired with clicks: {out}");
    offsets.sort();
    let median = offsets[offsets.len() / 2];
    // Measured here: 77-85 ms, the same whether sender reports carry the
    // capture time or the send time; the WebAudio tap adds its own delay
    // (see the README). A clock or timestamp bug shows as hundreds of ms.
    assert!(median.abs() <= 150, "lip sync off by {median} ms: {out}");
}
