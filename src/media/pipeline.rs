//! One path's GStreamer pipeline and the thread that keeps it alive:
//! source → encoder → `h264parse config-interval=-1` → `appsink`. A path
//! with renditions tees the capture into one more branch per rendition:
//! `valve` → `videoscale` → its own encoder → its own `appsink`. The valve
//! stays shut (its encoder idle) until a viewer needs that rendition.
//!
//! A pipeline error, or 15 s without a frame while the source is present,
//! tears the pipeline down and starts it again after a capped backoff,
//! forever. Other paths are untouched: each has its own thread. HDMI paths
//! are driven by their input's signal instead (`input.rs`).

use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::signal::Action;
use super::{
    AccessUnit, Control, Encoder, Layer, MediaEvent, PathState, PathStatus, audio, source,
};
use crate::backoff::Backoff;
use crate::config::PathConfig;
use crate::hub::Track;

/// No frames for this long while the source is present means wedged.
const STALL: Duration = Duration::from_secs(15);
/// How often a path without a source looks again.
const SOURCE_RETRY: Duration = Duration::from_secs(2);

pub struct Supervisor {
    pub name: Arc<str>,
    pub cfg: PathConfig,
    pub encoder: Encoder,
    pub status: Arc<Mutex<PathStatus>>,
    pub control: Receiver<Control>,
    pub frames: tokio::sync::mpsc::Sender<MediaEvent>,
    /// HDMI paths: opens the path's receiver, whose signal drives capture.
    pub input: Option<super::input::OpenInput>,
    /// Renditions being fed, one bit per layer; kept across pipeline
    /// restarts so viewers on a rendition get it back.
    pub running: std::cell::Cell<u8>,
    /// Missing sound is said once, not at every restart.
    pub audio_warned: std::cell::Cell<bool>,
}

pub(super) enum Ended {
    Stopped,
    Failed(String),
    /// The input's signal changed or went away (HDMI paths).
    Signal(Action),
}

impl Supervisor {
    pub fn run(mut self) {
        if let Some(open) = self.input.take() {
            return self.run_input(open);
        }
        let devices = source::Sysfs::default();
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            let src = match source::launch_fragment(
                &self.cfg,
                &devices,
                gst::ElementFactory::find("clockoverlay").is_some(),
            ) {
                Ok(s) => s,
                Err(source::NoSource(why)) => {
                    self.set(PathState::NoSignal, Some(why));
                    if self.wait(SOURCE_RETRY) {
                        return;
                    }
                    continue;
                }
            };
            self.set(PathState::Starting, None);
            let started = Instant::now();
            match self.run_once(&self.describe(&src, 0), &mut || None) {
                Ended::Failed(why) => {
                    if self.failed(why, started, &mut backoff) {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// The whole pipeline behind a source fragment; `audio_hz` is the
    /// input's audio rate where its receiver reports it (else 0).
    pub(super) fn describe(&self, src: &str, audio_hz: u32) -> String {
        const QUEUE: &str =
            "queue max-size-buffers=5 max-size-time=0 max-size-bytes=0 leaky=downstream";
        // A rendition's sink must not wait for a first buffer to change
        // state (async=false): its valve may be shut, and a live pipeline
        // whose sink never prerolls never plays.
        let branch = |sink: &str, enc: String| {
            format!(
                "{enc} ! h264parse config-interval=-1 \
                 ! video/x-h264,stream-format=byte-stream,alignment=au \
                 ! appsink name={sink} sync=false max-buffers=30 drop=true{}",
                if sink == "sink" { "" } else { " async=false" }
            )
        };
        let main = branch("sink", self.encoder.launch_fragment(&self.cfg));
        let sound = self.sound(audio_hz);
        if self.cfg.renditions.is_empty() {
            return format!("{src} ! {QUEUE} ! videoconvert ! {main}{sound}");
        }
        let mut d = format!("{src} ! {QUEUE} ! videoconvert ! tee name=t t. ! {QUEUE} ! {main}");
        for (i, r) in self.cfg.renditions.iter().enumerate() {
            let n = i + 1;
            let enc = self
                .encoder
                .fragment(&format!("enc{n}"), self.cfg.gop, r.bitrate);
            d += &format!(
                " t. ! {QUEUE} ! valve name=valve{n} drop=true drop-mode=forward-sticky-events \
                 ! videoscale ! video/x-raw,width={},height={},pixel-aspect-ratio=1/1 ! {}",
                r.width,
                r.height,
                branch(&format!("sink{n}"), enc)
            );
        }
        d + &sound
    }

    /// The audio branch (" ..." to append), and the path's audio status.
    fn sound(&self, audio_hz: u32) -> String {
        let cards = std::fs::read_to_string(audio::CARDS).unwrap_or_default();
        let (branch, label, missing) = match audio::plan(&self.cfg, &cards, audio_hz) {
            audio::Plan::Sound(b) => (format!(" {}", b.launch), Some(b.label), false),
            audio::Plan::Silent => (String::new(), None, false),
            audio::Plan::Missing(why) => {
                if !self.audio_warned.replace(true) {
                    log::warn!("{}: {why}; sending video only", self.name);
                }
                (String::new(), Some(format!("no audio: {why}")), true)
            }
        };
        let mut st = self.status.lock().unwrap();
        st.sends_audio = !branch.is_empty();
        st.audio_missing = missing;
        st.audio = label;
        branch
    }

    /// A pipeline failed: count it, show it, wait out the backoff. Returns
    /// true when told to stop meanwhile.
    pub(super) fn failed(&self, why: String, started: Instant, backoff: &mut Backoff) -> bool {
        log::warn!("{}: pipeline failed: {why}", self.name);
        if started.elapsed() > Duration::from_secs(60) {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        {
            let mut st = self.status.lock().unwrap();
            st.restarts += 1;
            st.set(PathState::Error, Some(why));
        }
        log::info!("{}: restarting in {} s", self.name, delay.as_secs());
        self.wait(delay)
    }

    pub(super) fn set(&self, state: PathState, detail: Option<String>) {
        let mut st = self.status.lock().unwrap();
        if st.state != state {
            log::info!(
                "{}: {}{}",
                self.name,
                state.as_str(),
                detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            );
        }
        st.set(state, detail);
    }

    /// Sleep, but wake for Stop. Returns true when told to stop.
    pub(super) fn wait(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.control.recv_timeout(left) {
                Ok(Control::Stop) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return true;
                }
                _ => {}
            }
        }
    }

    /// Build, run until it ends, tear down. `check` is asked on every turn
    /// whether the input's signal ends this run.
    pub(super) fn run_once(&self, desc: &str, check: &mut dyn FnMut() -> Option<Action>) -> Ended {
        let pipeline = match gst::parse::launch(desc) {
            Ok(p) => p
                .downcast::<gst::Pipeline>()
                .expect("launch of a chain yields a pipeline"),
            Err(e) => return Ended::Failed(format!("building pipeline: {e}")),
        };
        let ended = self.drive(&pipeline, check);
        let _ = pipeline.set_state(gst::State::Null);
        ended
    }

    fn drive(&self, pipeline: &gst::Pipeline, check: &mut dyn FnMut() -> Option<Action>) -> Ended {
        let sink_of = |l: Layer| {
            let name = if l.is_main() {
                "sink".into()
            } else {
                format!("sink{}", l.0)
            };
            pipeline
                .by_name(&name)
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        };
        sink_of(Layer::MAIN).expect("pipeline has the appsink we named");
        let enc = pipeline
            .by_name("enc")
            .expect("pipeline has the encoder we named");
        let layers = 1 + self.cfg.renditions.len() as u8;
        if let Some(s) = pipeline
            .by_name("asink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        {
            self.install_sink(&s, Layer::MAIN, Track::Audio);
        }
        for l in (0..layers).map(Layer) {
            if let Some(s) = sink_of(l) {
                self.install_sink(&s, l, Track::Video);
            }
            if !l.is_main() {
                self.feed(pipeline, l, self.running.get() & (1 << l.0) != 0);
            }
        }

        if let Some(f) = pipeline.by_name(source::FLASH) {
            flash_whole_seconds(&f, self.cfg.width, self.cfg.height, self.cfg.fps);
        }
        if let Err(e) = pipeline.set_state(gst::State::Playing) {
            return Ended::Failed(format!("starting pipeline: {e}"));
        }
        let bus = pipeline.bus().expect("a pipeline has a bus");
        // `frames` counts across restarts; this run started at `first`.
        let first = self.status.lock().unwrap().frames;
        let (mut last_count, mut last_progress) = (first, Instant::now());
        loop {
            // One message per turn at most: controls (forced IDRs) must not
            // wait behind a chatty bus; they are on the time-to-first-frame path.
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(10)) {
                match msg.view() {
                    gst::MessageView::Error(e) => {
                        let src = e.src().map(|s| s.name().to_string()).unwrap_or_default();
                        return Ended::Failed(format!("{src}: {}", e.error()));
                    }
                    gst::MessageView::Eos(_) => return Ended::Failed("source ended".into()),
                    _ => {}
                }
            }
            loop {
                match self.control.try_recv() {
                    Ok(Control::Keyframe(l)) => {
                        if let Some(s) = sink_of(l) {
                            force_keyframe(&s);
                            self.status.lock().unwrap().keyframes_forced += 1;
                        }
                    }
                    Ok(Control::Run(l, on)) if !l.is_main() && l.0 < layers => {
                        let bit = 1u8 << l.0;
                        let was = self.running.get();
                        self.running.set(if on { was | bit } else { was & !bit });
                        self.feed(pipeline, l, on);
                        if on && let Some(s) = sink_of(l) {
                            force_keyframe(&s);
                        }
                    }
                    Ok(Control::Run(..)) => {}
                    Ok(Control::Bitrate(bps)) => {
                        let (prop, value) = self.encoder.bitrate_property(bps);
                        enc.set_property_from_str(prop, &value);
                        // Report what the encoder took, not what we asked for.
                        let now = enc
                            .property_value(prop)
                            .transform::<u64>()
                            .ok()
                            .and_then(|v| v.get::<u64>().ok())
                            .map(|v| self.encoder.bps_from_property(v))
                            .unwrap_or(0);
                        self.status.lock().unwrap().bitrate = now;
                        log::info!("{}: bitrate now {now} bit/s (asked {bps})", self.name);
                    }
                    Ok(Control::Stop) | Err(TryRecvError::Disconnected) => return Ended::Stopped,
                    Err(TryRecvError::Empty) => break,
                }
            }
            if let Some(a) = check() {
                return Ended::Signal(a);
            }
            let n = self.status.lock().unwrap().frames;
            if n != last_count {
                if last_count == first {
                    self.set(PathState::Streaming, None);
                }
                last_count = n;
                last_progress = Instant::now();
            } else if last_progress.elapsed() > STALL {
                return Ended::Failed(format!("no frames for {} s", STALL.as_secs()));
            }
        }
    }

    /// Open or shut a rendition's valve.
    fn feed(&self, pipeline: &gst::Pipeline, l: Layer, on: bool) {
        if let Some(v) = pipeline.by_name(&format!("valve{}", l.0)) {
            v.set_property("drop", !on);
            let r = self.cfg.renditions[l.0 as usize - 1];
            log::info!(
                "{}: rendition {l} ({}) {}",
                self.name,
                r.label(),
                if on { "started" } else { "stopped" }
            );
        }
    }

    fn install_sink(&self, sink: &gst_app::AppSink, layer: Layer, track: Track) {
        let (name, tx, status) = (self.name.clone(), self.frames.clone(), self.status.clone());
        let mut dropped = 0u64;
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(buf) = sample.buffer() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
                    let pts_ns = buf.pts().map(|t| t.nseconds()).unwrap_or(0);
                    // How long ago, in running time, this was captured.
                    let age = sink
                        .current_running_time()
                        .map(|now| now.nseconds().saturating_sub(pts_ns))
                        .unwrap_or(0);
                    let au = AccessUnit {
                        data: map.as_slice().to_vec(),
                        pts_ns,
                        keyframe: !buf.flags().contains(gst::BufferFlags::DELTA_UNIT),
                        captured: Instant::now() - Duration::from_nanos(age.min(5_000_000_000)),
                    };
                    // The path's frame count (fps, stall) is the main video's.
                    if layer.is_main() && track == Track::Video {
                        status.lock().unwrap().frames += 1;
                    }
                    // Never block a streaming thread on the network side.
                    if tx
                        .try_send(MediaEvent {
                            path: name.clone(),
                            layer,
                            track,
                            au,
                        })
                        .is_err()
                    {
                        dropped += 1;
                        if dropped.is_power_of_two() {
                            log::warn!("{name}: consumer busy, dropped {dropped} frames");
                        }
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
}

/// The test source's sync mark: the first frame of every whole second of
/// running time gets a white luma plane, at the instant its tone clicks.
fn flash_whole_seconds(el: &gst::Element, width: u32, height: u32, fps: u32) {
    let Some(pad) = el.static_pad("src") else {
        return;
    };
    let frame_ns = 1_000_000_000 / u64::from(fps.max(1));
    let luma = (width * height) as usize;
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buf) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let at_second = buf
            .pts()
            .is_some_and(|t| t.nseconds() % 1_000_000_000 < frame_ns);
        if at_second && let Ok(mut map) = buf.make_mut().map_writable() {
            let n = luma.min(map.len());
            map[..n].fill(235);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Ask the encoder behind `sink` for an IDR with SPS/PPS.
fn force_keyframe(sink: &gst_app::AppSink) {
    let s = gst::Structure::builder("GstForceKeyUnit")
        .field("all-headers", true)
        .build();
    sink.send_event(gst::event::CustomUpstream::new(s));
}
