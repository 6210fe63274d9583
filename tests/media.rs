//! The media side seen from outside: keyframes on request, bitrate at
//! runtime, and a broken pipeline that restarts without disturbing others.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::whep_client::Viewer;
use support::{Daemon, request};

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn join_and_pli_force_idrs_rate_limited() {
    let d = Daemon::start("[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\ngop = 300\n");
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    let forced = || {
        d.path_info("cam0")["r58"]["keyframesForced"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(forced(), 0);
    // GOP is 10 s: without a forced IDR this viewer would wait seconds.
    let v = Viewer::connect(d.http, "cam0").unwrap();
    wait_for("first frame", Duration::from_secs(5), || v.frames() > 0);
    let first = v.first_frame.lock().unwrap().unwrap();
    assert!(
        first < Duration::from_secs(2),
        "first frame after {first:?} with a 10 s GOP"
    );
    wait_for("the join to force an IDR", Duration::from_secs(2), || {
        forced() >= 1
    });
    let after_join = forced();
    std::thread::sleep(Duration::from_millis(600)); // past the rate limit
    v.pli.store(true, Ordering::Relaxed);
    wait_for("PLI to force an IDR", Duration::from_secs(5), || {
        forced() > after_join
    });
    // A burst of PLIs inside the interval forces at most one more.
    let before_burst = forced();
    for _ in 0..5 {
        v.pli.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(40));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        forced() <= before_burst + 1,
        "rate limit: {} -> {}",
        before_burst,
        forced()
    );
}

#[test]
fn bitrate_changes_at_runtime() {
    let d = Daemon::start(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\nbitrate = 2000000\n",
    );
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    assert_eq!(d.path_info("cam0")["r58"]["bitrate"], 2_000_000);
    let r = request(
        d.api,
        "POST",
        "/v3/r58/bitrate/cam0",
        &[],
        br#"{"bps": 750000}"#,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // The value is read back from the running encoder.
    wait_for(
        "encoder to report 750 kbit/s",
        Duration::from_secs(5),
        || d.path_info("cam0")["r58"]["bitrate"] == 750_000,
    );
    let r = request(d.api, "POST", "/v3/r58/bitrate/cam0", &[], br#"{"bps": 5}"#).unwrap();
    assert_eq!(r.status, 400);
    let r = request(
        d.api,
        "POST",
        "/v3/r58/bitrate/nope",
        &[],
        br#"{"bps": 750000}"#,
    )
    .unwrap();
    assert_eq!(r.status, 404);
}

#[test]
fn failing_pipeline_restarts_with_backoff_and_others_keep_streaming() {
    // /dev/null exists but is no capture device: v4l2src fails every time.
    let d = Daemon::start(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\n\
         [paths.broken]\nsource = \"v4l2\"\ndevice = \"/dev/null\"\nencoder = \"x264enc\"\n",
    );
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    wait_for("two restarts", Duration::from_secs(10), || {
        d.path_info("broken")["r58"]["restarts"].as_u64().unwrap() >= 2
    });
    let b = d.path_info("broken");
    assert_eq!(b["ready"], false);
    assert!(!b["r58"]["detail"].as_str().unwrap_or("").is_empty(), "{b}");
    let log = d.log();
    assert!(
        log.contains("broken: restarting in 1 s") && log.contains("broken: restarting in 2 s"),
        "{log}"
    );
    // cam0 is untouched: still streaming and serving.
    let v = Viewer::connect(d.http, "cam0").unwrap();
    wait_for("cam0 frames", Duration::from_secs(5), || v.frames() >= 10);
    assert_eq!(d.path_info("cam0")["r58"]["restarts"], 0);
}

/// An offer like a browser's: video and audio, both receive-only.
fn av_offer() -> String {
    use str0m::media::{Direction, MediaKind};
    support::whep_client::init_crypto();
    let mut rtc = str0m::Rtc::builder().build(Instant::now());
    let addr = "127.0.0.1:9".parse().unwrap();
    rtc.add_local_candidate(str0m::Candidate::host(addr, "udp").unwrap());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    api.apply().unwrap().0.to_sdp_string()
}

/// The answer's audio m-line: (port, whether it carries Opus).
fn answered_audio(d: &Daemon, path: &str) -> (String, bool) {
    let r = request(
        d.http,
        "POST",
        &format!("/{path}/whep"),
        &[("Content-Type", "application/sdp")],
        av_offer().as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let text = r.text();
    let audio = text.split("m=audio").nth(1).unwrap_or_default().to_string();
    let port = audio.split_whitespace().next().unwrap_or("").to_string();
    (port, audio.contains("opus/48000/2"))
}

/// Sound per path: the test tone by default, none when off, and a device
/// that is not there is one warning and a status line, with video going on.
#[test]
fn audio_is_opus_when_there_is_sound_and_video_only_otherwise() {
    let d = Daemon::start(
        "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\n\
         [paths.quiet]\nsource = \"test\"\nencoder = \"x264enc\"\naudio = \"off\"\n\
         [paths.gone]\nsource = \"test\"\nencoder = \"x264enc\"\naudio = \"hw:CARD=nosuch\"\n",
    );
    for p in ["cam0", "quiet", "gone"] {
        d.wait_state(p, "streaming", Duration::from_secs(20));
    }
    let cam0 = d.path_info("cam0");
    assert_eq!(
        cam0["tracks"],
        serde_json::json!(["H264", "Opus"]),
        "{cam0}"
    );
    assert_eq!(cam0["r58"]["audio"], "Opus 48 kHz stereo, test tone");
    let (port, opus) = answered_audio(&d, "cam0");
    assert!(opus && port != "0", "audio answered: {port} {opus}");

    let quiet = d.path_info("quiet");
    assert_eq!(quiet["tracks"], serde_json::json!(["H264"]), "{quiet}");
    assert!(quiet["r58"]["audio"].is_null(), "{quiet}");
    assert!(!answered_audio(&d, "quiet").1, "no Opus for a silent path");

    let gone = d.path_info("gone");
    assert_eq!(
        gone["r58"]["audio"],
        "no audio: ALSA device hw:CARD=nosuch not present"
    );
    assert_eq!(gone["r58"]["audioMissing"], true);
    assert!(!answered_audio(&d, "gone").1);
    let warnings = d.log().matches("hw:CARD=nosuch not present").count();
    assert_eq!(
        warnings,
        1,
        "one warning, not one per restart:\n{}",
        d.log()
    );
    assert!(!d.log().contains("ERROR"), "{}", d.log());
}
