//! Media: one GStreamer pipeline per configured path, each supervised on its
//! own thread, producing H.264 access units for the stream hub.
//!
//! A path's state is shared (`PathStatus`) so the API and WHEP handlers can
//! answer truthfully without talking to the pipeline thread.

pub mod audio;
pub mod encoder;
pub mod hdmi;
mod input;
mod pipeline;
pub mod signal;
pub mod source;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::config::{Config, Source};
use crate::error::Result;
pub use encoder::Encoder;

/// One encoded picture (Annex-B bytes with SPS/PPS in front of every
/// IDR) or one Opus packet.
#[derive(Debug, Clone)]
pub struct AccessUnit {
    pub data: Vec<u8>,
    /// Presentation time in nanoseconds on the pipeline's running clock.
    pub pts_ns: u64,
    pub keyframe: bool,
    /// When it was captured, on this process's clock: viewers' sender
    /// reports map both tracks' RTP time to it, so browsers align them.
    pub captured: Instant,
}

/// Access units leave the pipeline threads through this.
pub struct MediaEvent {
    pub path: Arc<str>,
    /// The main stream or one of the path's renditions (video).
    pub layer: Layer,
    pub track: crate::hub::Track,
    pub au: AccessUnit,
}

pub use crate::vocab::{Layer, PathState};

#[derive(Debug, Clone, Serialize)]
pub struct PathStatus {
    pub state: PathState,
    pub source: &'static str,
    pub encoder: Option<&'static str>,
    pub frames: u64,
    pub restarts: u64,
    /// Encoder target in bit/s, read back from the running encoder.
    pub bitrate: u32,
    /// IDRs forced on request (viewer joins, PLI/FIR, slow readers).
    pub keyframes_forced: u64,
    /// Output format, e.g. "1280x720@30".
    pub format: String,
    /// Why the path is not streaming (no signal, last pipeline error).
    pub detail: Option<String>,
    /// HDMI inputs: the incoming signal, "1920x1080@60" or why there is
    /// none ("no cable"); `None` for other sources.
    pub signal: Option<String>,
    /// "Opus 48 kHz stereo, test tone", why the configured sound is
    /// missing, or `None` (no sound for this path).
    pub audio: Option<String>,
    /// The pipeline has an Opus branch: viewers are offered audio.
    #[serde(skip)]
    pub sends_audio: bool,
    /// Sound was asked for (or is the source's own) but is not there.
    pub audio_missing: bool,
    #[serde(skip)]
    pub since: Instant,
    /// Frames per second actually delivered, over the last few seconds.
    pub fps: f32,
    /// Where the fps window started: (when, frame count then).
    #[serde(skip)]
    rate_mark: (Instant, u64),
}

impl PathStatus {
    fn new(source: Source, format: String) -> Self {
        PathStatus {
            state: PathState::Idle,
            source: source_name(source),
            encoder: None,
            frames: 0,
            restarts: 0,
            bitrate: 0,
            keyframes_forced: 0,
            format,
            detail: None,
            signal: None,
            audio: None,
            sends_audio: false,
            audio_missing: false,
            since: Instant::now(),
            fps: 0.0,
            rate_mark: (Instant::now(), 0),
        }
    }

    /// Update `fps` from the frame count; called every few seconds (the
    /// health tick), so the figure is what viewers got, not the config.
    pub fn measure_fps(&mut self, now: Instant) {
        let (then, count) = self.rate_mark;
        let dt = now.saturating_duration_since(then).as_secs_f32();
        if dt < 1.0 {
            return;
        }
        self.fps = if self.state == PathState::Streaming {
            (self.frames.saturating_sub(count)) as f32 / dt
        } else {
            0.0
        };
        self.rate_mark = (now, self.frames);
    }

    pub fn set(&mut self, state: PathState, detail: Option<String>) {
        if self.state != state {
            self.since = Instant::now();
        }
        self.state = state;
        self.detail = detail;
    }
}

pub fn source_name(s: Source) -> &'static str {
    match s {
        Source::Test => "test",
        Source::Hdmi => "hdmi",
        Source::V4l2 => "v4l2",
        Source::Publisher => "publisher",
    }
}

/// Requests from the WebRTC side to a running pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Force an IDR now on this layer's encoder (already rate-limited by
    /// the caller).
    Keyframe(Layer),
    /// Feed a rendition's encoder (a viewer needs it) or stop feeding it;
    /// it starts with an IDR.
    Run(Layer, bool),
    /// New target bitrate in bit/s.
    Bitrate(u32),
    Stop,
}

/// The handle the rest of the daemon keeps for one path.
#[derive(Clone)]
pub struct PathHandle {
    pub name: Arc<str>,
    pub status: Arc<Mutex<PathStatus>>,
    control: Option<std::sync::mpsc::Sender<Control>>,
}

impl PathHandle {
    pub fn send(&self, c: Control) {
        if let Some(tx) = &self.control {
            let _ = tx.send(c);
        }
    }

    /// Can this path take `Control` requests (a local encoder is running)?
    pub fn has_encoder(&self) -> bool {
        self.control.is_some()
    }

    pub fn status(&self) -> PathStatus {
        self.status.lock().unwrap().clone()
    }
}

/// Is this GStreamer element installed? (Initialises GStreamer once.)
pub fn element_installed(name: &str) -> bool {
    gstreamer::init().is_ok() && gstreamer::ElementFactory::find(name).is_some()
}

/// Start every configured path. Never fails for one path's sake: a path that
/// cannot start reports why in its status and the others run.
/// The configured paths as "starting", for the API to show while media
/// (GStreamer's first-boot registry scan included) is still coming up.
pub fn placeholders(cfg: &Config) -> Vec<PathHandle> {
    cfg.paths
        .iter()
        .map(|(name, p)| {
            let mut st = PathStatus::new(p.source, format!("{}x{}@{}", p.width, p.height, p.fps));
            st.state = PathState::Starting;
            PathHandle {
                name: name.as_str().into(),
                status: Arc::new(Mutex::new(st)),
                control: None,
            }
        })
        .collect()
}

pub fn start(
    cfg: &Config,
    frames: tokio::sync::mpsc::Sender<MediaEvent>,
) -> Result<Vec<PathHandle>> {
    gstreamer::init()
        .map_err(|e| crate::error::Error::new(format!("initialising GStreamer: {e}")))?;
    let installed = |name: &str| gstreamer::ElementFactory::find(name).is_some();
    let mut slots = encoder::HwSlots::new(cfg.max_hw_encoders);
    let mut handles = Vec::new();
    for (name, p) in &cfg.paths {
        let name: Arc<str> = name.as_str().into();
        let format = format!("{}x{}@{}", p.width, p.height, p.fps);
        let status = Arc::new(Mutex::new(PathStatus::new(p.source, format)));
        let mut handle = PathHandle {
            name: name.clone(),
            status: status.clone(),
            control: None,
        };
        if p.source == Source::Publisher {
            status.lock().unwrap().detail = Some("waiting for a WHIP publisher".into());
            handles.push(handle);
            continue;
        }
        // A forced encoder this host lacks is a config mistake: refuse to start.
        // (`auto` finding nothing is reported on the path and the rest runs.)
        let chosen = encoder::select(&p.encoder, installed);
        if p.encoder != "auto"
            && let Err(e) = &chosen
        {
            return Err(crate::error::Error::new(format!("path '{name}': {e}")));
        }
        let chosen = chosen.and_then(|e| slots.admit(&name, e, 1 + p.renditions.len()).map(|_| e));
        match chosen {
            Err(e) => {
                log::error!("{name}: {e}");
                status
                    .lock()
                    .unwrap()
                    .set(PathState::Error, Some(e.to_string()));
            }
            Ok(enc) => {
                log::info!(
                    "{name}: {} source, {} encoder, {}x{}@{} {} bit/s",
                    source_name(p.source),
                    enc.element(),
                    p.width,
                    p.height,
                    p.fps,
                    p.bitrate
                );
                {
                    let mut st = status.lock().unwrap();
                    st.encoder = Some(enc.element());
                    st.bitrate = p.bitrate;
                }
                let (tx, rx) = std::sync::mpsc::channel();
                handle.control = Some(tx);
                let input = (p.source == Source::Hdmi).then(|| {
                    let p = p.clone();
                    Box::new(move || hdmi::open(&p, &source::Sysfs::default())) as input::OpenInput
                });
                let sup = pipeline::Supervisor {
                    name: name.clone(),
                    cfg: p.clone(),
                    encoder: enc,
                    status,
                    control: rx,
                    frames: frames.clone(),
                    input,
                    running: Default::default(),
                    audio_warned: Default::default(),
                };
                std::thread::Builder::new()
                    .name(format!("media-{name}"))
                    .spawn(move || sup.run())
                    .map_err(|e| crate::error::Error::new(format!("starting path thread: {e}")))?;
            }
        }
        handles.push(handle);
    }
    Ok(handles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fps_is_measured_over_the_window_and_zero_when_not_streaming() {
        let t0 = Instant::now();
        let mut st = PathStatus::new(Source::Test, "1280x720@30".into());
        st.rate_mark = (t0, 0);
        st.set(PathState::Streaming, None);
        st.frames = 150;
        st.measure_fps(t0 + Duration::from_millis(500));
        assert_eq!(st.fps, 0.0, "under a second: keep the window open");
        st.measure_fps(t0 + Duration::from_secs(5));
        assert_eq!(st.fps, 30.0);
        st.frames += 25;
        st.measure_fps(t0 + Duration::from_secs(10));
        assert_eq!(st.fps, 5.0, "a slowing source shows");
        st.set(PathState::NoSignal, Some("no cable".into()));
        st.measure_fps(t0 + Duration::from_secs(15));
        assert_eq!(st.fps, 0.0);
    }
}
