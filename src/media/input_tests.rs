//! The HDMI supervisor against a scripted receiver and real GStreamer: the
//! receiver is the only fake (no HDMI-RX here); `prepare` hands out a
//! `videotestsrc` at the signal's size, so capture, encoding and the
//! restarts are real.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::config::Source;
use crate::media::signal::tests::{P720, P1080};
use crate::media::signal::{Event, Probe, Timings};
use crate::media::{Control, PathState, PathStatus, encoder};

/// What the test plugs in, and what the supervisor asked of the receiver.
#[derive(Default)]
struct Bench {
    probe: Option<Probe>,
    events: Vec<Event>,
    /// Each `prepare`: the timings, and whether frames were still being
    /// made while it ran (a pipeline still streaming from the node).
    prepared: Vec<(Timings, bool)>,
}

struct Scripted {
    bench: Arc<Mutex<Bench>>,
    status: Arc<Mutex<PathStatus>>,
}

impl Receiver for Scripted {
    fn query(&mut self) -> Probe {
        self.bench
            .lock()
            .unwrap()
            .probe
            .clone()
            .unwrap_or(Probe::NoLink)
    }
    fn events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.bench.lock().unwrap().events)
    }
    fn prepare(&mut self, t: Timings) -> Result<Capture, String> {
        // Setting a format takes a moment on a real node; if capture were
        // still running, frames would arrive meanwhile (15 fps).
        let before = self.status.lock().unwrap().frames;
        std::thread::sleep(Duration::from_millis(400));
        let streaming = self.status.lock().unwrap().frames != before;
        self.bench.lock().unwrap().prepared.push((t, streaming));
        Ok(Capture {
            element: "videotestsrc is-live=true pattern=smpte".into(),
            width: t.width,
            height: t.height,
            format: Some("I420"),
        })
    }
}

struct Running {
    status: Arc<Mutex<PathStatus>>,
    control: std::sync::mpsc::Sender<Control>,
    thread: std::thread::JoinHandle<()>,
    // Kept so the pipeline's frames have somewhere to go.
    _frames: tokio::sync::mpsc::Receiver<super::super::MediaEvent>,
}

fn start(name: &str, source: Source, input: Option<OpenInput>) -> Running {
    gstreamer::init().unwrap();
    let cfg = PathConfig {
        source,
        width: 320,
        height: 240,
        fps: 15,
        ..PathConfig::default()
    };
    let encoder = encoder::select("auto", |e| gstreamer::ElementFactory::find(e).is_some())
        .expect("a software H.264 encoder (x264enc or openh264enc) is installed");
    let status = Arc::new(Mutex::new(PathStatus::new(source, "320x240@15".into())));
    let (control, rx) = std::sync::mpsc::channel();
    let (tx, frames) = tokio::sync::mpsc::channel(4096);
    let sup = Supervisor {
        name: name.into(),
        cfg,
        encoder,
        status: status.clone(),
        control: rx,
        frames: tx,
        input,
        running: Default::default(),
        audio_warned: Default::default(),
    };
    let thread = std::thread::spawn(move || sup.run());
    Running {
        status,
        control,
        thread,
        _frames: frames,
    }
}

/// Wait up to `secs` for the path's status to satisfy `ok`.
fn until(r: &Running, secs: u64, what: &str, ok: impl Fn(&PathStatus) -> bool) -> PathStatus {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        let st = r.status.lock().unwrap().clone();
        if ok(&st) {
            return st;
        }
        assert!(
            Instant::now() < end,
            "{what}: not within {secs} s; state {:?}, signal {:?}, detail {:?}",
            st.state,
            st.signal,
            st.detail
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn streaming_at(st: &PathStatus, signal: &str, frames_after: u64) -> bool {
    st.state == PathState::Streaming
        && st.signal.as_deref() == Some(signal)
        && st.frames > frames_after + 5
}

#[test]
fn no_cable_then_1080p60_then_720p50_then_unplug_drives_capture() {
    let bench = Arc::new(Mutex::new(Bench::default()));
    let slot: Arc<Mutex<Option<Arc<Mutex<PathStatus>>>>> = Arc::default();
    let (b, s) = (bench.clone(), slot.clone());
    let open: OpenInput = Box::new(move || {
        let status = s.lock().unwrap().clone().ok_or("not wired yet")?;
        Ok(Box::new(Scripted {
            bench: b.clone(),
            status,
        }) as Box<dyn Receiver>)
    });
    let hdmi = start("cam1", Source::Hdmi, Some(open));
    *slot.lock().unwrap() = Some(hdmi.status.clone());
    // Another input on its own thread: nothing below may disturb it.
    let other = start("cam0", Source::Test, None);

    // No cable: no pipeline, and the path says why.
    let st = until(&hdmi, 10, "no cable", |s| {
        s.state == PathState::NoSignal && s.signal.as_deref() == Some("no cable")
    });
    assert_eq!(st.detail.as_deref(), Some("no cable"));
    assert!(bench.lock().unwrap().prepared.is_empty());

    // 1080p60 with its 5 V event: capture starts at the source's size.
    {
        let mut b = bench.lock().unwrap();
        b.probe = Some(Probe::Timings(P1080));
        b.events.push(Event::FiveVolt(true));
    }
    let st = until(&hdmi, 10, "streaming 1080p60", |s| {
        streaming_at(s, "1920x1080@60", 0)
    });
    let other_frames = other.status.lock().unwrap().frames;

    // 720p50 with a source-change event: stop, prepare again, stream.
    {
        let mut b = bench.lock().unwrap();
        b.probe = Some(Probe::Timings(P720));
        b.events.push(Event::SourceChange);
    }
    let st = until(&hdmi, 10, "streaming 720p50", |s| {
        streaming_at(s, "1280x720@50", st.frames)
    });
    assert_eq!(st.restarts, 0, "a new mode is not a failure");

    // Unplugged: capture stops, and frames stop.
    {
        let mut b = bench.lock().unwrap();
        b.probe = Some(Probe::NoLink);
        b.events.push(Event::FiveVolt(false));
    }
    let st = until(&hdmi, 10, "unplug seen", |s| {
        s.state == PathState::NoSignal && s.detail.as_deref() == Some("no cable")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        hdmi.status.lock().unwrap().frames,
        st.frames,
        "no capture without a signal"
    );

    // Plugged again but the event is lost: polling finds it within 10 s.
    bench.lock().unwrap().probe = Some(Probe::Timings(P1080));
    until(&hdmi, 10, "re-plug found by polling", |s| {
        streaming_at(s, "1920x1080@60", st.frames)
    });

    // The receiver was only ever prepared while no pipeline streamed.
    let prepared = bench.lock().unwrap().prepared.clone();
    assert_eq!(
        prepared.iter().map(|p| p.0).collect::<Vec<_>>(),
        [P1080, P720, P1080]
    );
    for (t, streaming) in &prepared {
        assert!(!streaming, "format set on a streaming node for {t}");
    }
    // And the other input kept streaming through all of it.
    let o = other.status.lock().unwrap().clone();
    assert_eq!((o.state, o.restarts), (PathState::Streaming, 0));
    assert!(
        o.frames > other_frames + 15,
        "cam0 stalled: {} → {}",
        other_frames,
        o.frames
    );

    for r in [hdmi, other] {
        r.control.send(Control::Stop).unwrap();
        r.thread.join().unwrap();
    }
}

#[test]
fn a_receiver_that_cannot_be_opened_is_retried_and_said() {
    let tries = Arc::new(Mutex::new(0));
    let t = tries.clone();
    let open: OpenInput = Box::new(move || {
        *t.lock().unwrap() += 1;
        Err("no HDMI-RX device".into())
    });
    let r = start("cam1", Source::Hdmi, Some(open));
    let st = until(&r, 10, "said", |s| s.state == PathState::NoSignal);
    assert_eq!(st.signal.as_deref(), Some("no HDMI-RX device"));
    assert_eq!(st.detail.as_deref(), Some("no HDMI-RX device"));
    r.control.send(Control::Stop).unwrap();
    r.thread.join().unwrap();
    assert!(*tries.lock().unwrap() >= 1);
}

#[test]
fn capture_caps_carry_the_nodes_size_and_format_but_never_a_rate() {
    let p = PathConfig {
        width: 1280,
        height: 720,
        fps: 30,
        ..PathConfig::default()
    };
    let c = Capture {
        element: "v4l2src device=/dev/video60 io-mode=mmap".into(),
        width: 1920,
        height: 1080,
        format: Some("NV16"),
    };
    assert_eq!(
        capture_fragment(&c, &p),
        "v4l2src device=/dev/video60 io-mode=mmap ! video/x-raw,format=NV16,width=1920,height=1080 \
         ! videorate ! videoscale ! videoconvert ! video/x-raw,width=1280,height=720,framerate=30/1"
    );
    let c = Capture { format: None, ..c };
    assert!(capture_fragment(&c, &p).contains("! video/x-raw,width=1920,height=1080 ! videorate"));
}
