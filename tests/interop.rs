//! The interop matrix: every WebRTC stack this machine has, in each role it
//! supports, against the real binary, over UDP and (for peers that do
//! ICE-TCP) over TCP with every UDP packet dropped. Each cell asserts media:
//! frames decoded, or H.264 keyframes received for pion, never just a 201.
//!
//! The peers are big installs (Firefox, aiortc, GStreamer's Python
//! bindings), so the cells are `#[ignore]`d in `cargo test` and run by
//! `make interop`, which installs them. Each cell writes what it saw to
//! `target/tmp/interop/`; `tests/interop/table.py` turns that into the
//! README's table of supported clients.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::netns::Lossy;
use support::{Daemon, Setup, browser};

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Udp,
    /// ICE-TCP only: the namespace drops every UDP packet.
    Tcp,
}

/// One namespace holding r58 and the peer (pages on 127.0.0.1, media on
/// its veth address): cam0 is the test pattern, pub1 takes a publisher.
struct World {
    daemon: Daemon,
    net: Lossy,
}

const ADDR: &str = "192.0.2.58";

impl World {
    fn up(tag: &str, t: Transport) -> World {
        // Lossy with 100 % drops all UDP leaving any socket in the
        // namespace, r58's and the peer's alike.
        let net = Lossy::up(tag, if t == Transport::Tcp { 100 } else { 0 });
        let daemon = Daemon::start_with(Setup {
            paths: "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\n\
                    [paths.pub1]\nsource = \"publisher\"\n"
                .into(),
            netns: Some(net.ns.clone()),
            ..Setup::default()
        });
        daemon.wait_state("cam0", "streaming", Duration::from_secs(20));
        World { daemon, net }
    }

    /// Page base (a secure context for the browsers).
    fn local(&self) -> String {
        format!("http://127.0.0.1:{}", self.daemon.http)
    }

    /// What non-browser peers post to: aiortc drops loopback candidates.
    fn url(&self, path: &str, kind: &str) -> String {
        format!("http://{ADDR}:{}/{path}/{kind}", self.daemon.http)
    }

    fn fail(&self, what: &str, out: &Value) -> ! {
        panic!("{what}: {out:#}\nr58 log:\n{}", self.daemon.log())
    }

    /// Run a peer program in the namespace; its last stdout line is JSON.
    fn peer(&self, program: &Path, args: &[&str]) -> Value {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.net.ns])
            .arg(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
            panic!(
                "{} printed no JSON ({e}):\n{stdout}\n{}\nr58 log:\n{}",
                program.display(),
                String::from_utf8_lossy(&out.stderr),
                self.daemon.log()
            )
        })
    }
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop")
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Record a passed cell for the README table.
fn record(peer: &str, version: &str, role: &str, t: Transport, media: String) {
    let transport = match t {
        Transport::Udp => "UDP",
        Transport::Tcp => "ICE-TCP, UDP dropped",
    };
    let cell = json!({ "peer": peer, "version": version, "role": role,
                       "transport": transport, "media": media });
    let dir = interop_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("{peer}-{role}-{transport}")
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        .to_lowercase();
    std::fs::write(dir.join(format!("{name}.json")), cell.to_string()).unwrap();
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

// ---- Chromium (playwright-core) -------------------------------------

/// "Chromium 156.0.8078.114 built on Debian …" → "156.0.8078.114".
fn chromium_version() -> String {
    let out = Command::new("chromium").arg("--version").output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.split_whitespace().nth(1).unwrap_or("?").to_string()
}

/// The number in "firefox/153.8.0" or "GStreamer 1.22.0".
fn last_word(v: &Value) -> String {
    let s = v.as_str().unwrap_or("?");
    s.rsplit(['/', ' ']).next().unwrap_or(s).to_string()
}

fn chromium_views(t: Transport, tag: &str) {
    let w = World::up(tag, t);
    let v = browser::view(&w.local(), "cam0", 1, 3, &[], Some(&w.net.ns))
        .unwrap_or_else(|e| panic!("{e}\nr58 log:\n{}", w.daemon.log()));
    let v0 = &v["viewers"][0];
    let decoded = browser::decoded(v0);
    if decoded < 45 || v0["codec"] != "H264" || v0["protocol"] != proto(t) {
        w.fail("Chromium viewer", v0);
    }
    let media = format!("{decoded} H.264 frames decoded in 3 s");
    record("Chromium", &chromium_version(), "view H.264", t, media);
}

fn proto(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
    }
}

/// A browser publishes into pub1 and a second tab views it.
fn browser_publishes(which: &str, codec: &str, t: Transport, tag: &str) {
    let w = World::up(tag, t);
    let base = w.local();
    let out = browser::script(
        "pubview.mjs",
        &[which, &base, "pub1", codec, "3"],
        &[],
        Some(&w.net.ns),
    )
    .unwrap_or_else(|e| panic!("{e}\nr58 log:\n{}", w.daemon.log()));
    let (p, v) = (&out["publisher"], &out["viewer"]);
    let want = codec.to_uppercase();
    let name = if codec == "h264" { "H.264" } else { "VP8" };
    let ok = out["error"].is_null()
        && p["codec"] == want.as_str()
        && p["protocol"] == proto(t)
        && n(&v["decoded"]) >= 45
        && v["codec"] == want.as_str();
    if !ok {
        w.fail(&format!("{which} publishing {codec}"), &out);
    }
    let (peer, version) = match which {
        "firefox" => ("Firefox ESR", last_word(&out["browser"])),
        _ => ("Chromium", chromium_version()),
    };
    let role = format!("publish {name} (WHIP) and view it");
    let media = format!("{} {name} frames decoded in 3 s", n(&v["decoded"]));
    record(peer, &version, &role, t, media);
}

#[test]
#[ignore = "make interop"]
fn chromium_views_over_udp() {
    chromium_views(Transport::Udp, "cr-v-u");
}

#[test]
#[ignore = "make interop"]
fn chromium_views_over_tcp() {
    chromium_views(Transport::Tcp, "cr-v-t");
}

#[test]
#[ignore = "make interop"]
fn chromium_publishes_over_udp() {
    browser_publishes("chromium", "h264", Transport::Udp, "cr-p-u");
}

#[test]
#[ignore = "make interop"]
fn chromium_publishes_over_tcp() {
    browser_publishes("chromium", "h264", Transport::Tcp, "cr-p-t");
}

// ---- Firefox ESR (puppeteer-core, WebDriver BiDi) -------------------
// Debian's Firefox has no OpenH264 offline: VP8 publisher paths only.

#[test]
#[ignore = "make interop"]
fn firefox_publishes_vp8_and_views_over_udp() {
    browser_publishes("firefox", "vp8", Transport::Udp, "ff-p-u");
}

#[test]
#[ignore = "make interop"]
fn firefox_publishes_vp8_and_views_over_tcp() {
    browser_publishes("firefox", "vp8", Transport::Tcp, "ff-p-t");
}

// ---- aiortc (Python; no ICE-TCP) ------------------------------------

#[test]
#[ignore = "make interop"]
fn aiortc_views_over_udp() {
    let w = World::up("ai-v-u", Transport::Udp);
    let python = repo("target/interop/venv/bin/python");
    let script = repo("tests/interop/aiortc_view.py");
    let url = w.url("cam0", "whep");
    let out = w.peer(&python, &[script.to_str().unwrap(), &url, "4"]);
    if out["status"] != 201 || n(&out["frames"]) < 60 || out["codec"] != "H264" {
        w.fail("aiortc viewer", &out);
    }
    let media = format!("{} H.264 frames decoded in 4 s", n(&out["frames"]));
    let version = last_word(&out["aiortc"]);
    record("aiortc", &version, "view H.264", Transport::Udp, media);
}

// ---- pion (../shared/tools/whepbench; UDP host candidates only) -----

#[test]
#[ignore = "make interop"]
fn pion_views_over_udp() {
    let bench = std::env::var_os("WHEPBENCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo("../shared/tools/whepbench"));
    if !bench.exists() {
        // Only in the team's checkout; a user's clone has no ../shared.
        eprintln!("skipped: no whepbench at {}", bench.display());
        return;
    }
    let w = World::up("pi-v-u", Transport::Udp);
    let url = w.url("cam0", "whep");
    let out = Command::new("ip")
        .args(["netns", "exec", &w.net.ns])
        .arg(&bench)
        .args(["-url", &url, "-d", "5s", "-audio=false"])
        .output()
        .expect("running whepbench");
    let text = String::from_utf8_lossy(&out.stdout);
    let keyframes = text
        .lines()
        .find_map(|l| l.strip_prefix("first-keyframe: n="))
        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    if !out.status.success() || !text.contains("sessions: ok=1 ") || keyframes != 1 {
        w.fail("pion viewer", &json!(text));
    }
    let media = "RTP with an H.264 keyframe, no loss".to_string();
    record(
        "pion (whepbench)",
        "webrtc v4",
        "view H.264",
        Transport::Udp,
        media,
    );
}

// ---- GStreamer webrtcbin (RSA certificate; libnice does ICE-TCP) ----

fn gst_peer(w: &World, mode: &str, path: &str, secs: &str) -> Value {
    let kind = if mode == "whip" { "whip" } else { "whep" };
    let script = repo("tests/interop/gst_peer.py");
    w.peer(
        Path::new("/usr/bin/python3"),
        &[script.to_str().unwrap(), mode, &w.url(path, kind), secs],
    )
}

fn gstreamer_views(mode: &str, t: Transport, tag: &str) {
    let w = World::up(tag, t);
    let out = gst_peer(&w, mode, "cam0", "4");
    if out["connection"] != "connected" || n(&out["frames"]) < 60 || out["codec"] != "H264" {
        w.fail("webrtcbin viewer", &out);
    }
    let media = format!("{} H.264 frames decoded in 4 s", n(&out["frames"]));
    let version = last_word(&out["gstreamer"]);
    let role = match mode {
        "whep-passive" => "view H.264, offer says setup:passive (r58 is DTLS client)",
        _ => "view H.264",
    };
    record("GStreamer webrtcbin", &version, role, t, media);
}

fn gstreamer_publishes(t: Transport, tag: &str) {
    let w = World::up(tag, t);
    let publisher = {
        let ns = w.net.ns.clone();
        let (script, url) = (repo("tests/interop/gst_peer.py"), w.url("pub1", "whip"));
        std::thread::spawn(move || {
            let out = Command::new("ip")
                .args(["netns", "exec", &ns, "/usr/bin/python3"])
                .arg(script)
                .args(["whip", &url, "27"])
                .output()
                .expect("running gst_peer.py");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            serde_json::from_str::<Value>(stdout.lines().last().unwrap_or(""))
                .unwrap_or_else(|_| json!(stdout))
        })
    };
    w.daemon
        .wait_state("pub1", "streaming", Duration::from_secs(15));
    // A second webrtcbin views what the first publishes, past the 15 s at
    // which ICE-lite gave up on libnice peers (they send no consent checks).
    let view = gst_peer(&w, "whep", "pub1", "20");
    let publish = publisher.join().unwrap();
    let both = json!({ "publisher": publish, "viewer": view });
    let whole = publish["deleteStatus"] == 200 && view["deleteStatus"] == 200;
    if publish["connection"] != "connected" || n(&view["frames"]) < 400 || !whole {
        w.fail("webrtcbin publisher", &both);
    }
    let media = format!("{} H.264 frames decoded in 20 s", n(&view["frames"]));
    let version = last_word(&view["gstreamer"]);
    let role = "publish H.264 (WHIP) and view it";
    record("GStreamer webrtcbin", &version, role, t, media);
}

#[test]
#[ignore = "make interop"]
fn gstreamer_views_over_udp() {
    gstreamer_views("whep", Transport::Udp, "gs-v-u");
}

#[test]
#[ignore = "make interop"]
fn gstreamer_views_as_the_dtls_server() {
    // An RSA server certificate, r58 the DTLS client: the role a WHIP relay
    // answering r58's offers will put it in.
    gstreamer_views("whep-passive", Transport::Udp, "gs-vp-u");
}

#[test]
#[ignore = "make interop"]
fn gstreamer_views_over_tcp() {
    gstreamer_views("whep", Transport::Tcp, "gs-v-t");
}

#[test]
#[ignore = "make interop"]
fn gstreamer_publishes_over_udp() {
    gstreamer_publishes(Transport::Udp, "gs-p-u");
}

#[test]
#[ignore = "make interop"]
fn gstreamer_publishes_over_tcp() {
    gstreamer_publishes(Transport::Tcp, "gs-p-t");
}
