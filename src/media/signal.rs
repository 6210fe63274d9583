//! An HDMI input's signal, as a state machine: it is fed what the receiver
//! reports (a `VIDIOC_QUERY_DV_TIMINGS` result, source-change and 5 V
//! events) and the time, and says what the path's pipeline must do. The
//! receiver itself sits behind the narrow `Receiver` trait, so every
//! sequence (no cable → 1080p60 → 720p50 → unplug) is tested without
//! hardware, and the real V4L2 node only has to answer three questions.
//!
//! Rules (from the fleet, `../shared/reference/existing-r58.md`):
//! - ENOLINK means no cable, ENOLCK a cable without a stable signal.
//! - `stream_hdmirx` reports 640x480 when it has no signal; anything below
//!   720x480 is not a real source either.
//! - While live, the signal is re-checked read-only every `LIVE_CHECK`, so
//!   an unplug is seen within 10 s even if its event is lost; without a
//!   signal, probes back off from 1 s to `MAX_RETRY` and go on forever.

use std::time::{Duration, Instant};

/// How often a live input is re-checked (unplug seen well within 10 s).
pub const LIVE_CHECK: Duration = Duration::from_secs(2);
/// Longest wait between probes while there is no signal.
pub const MAX_RETRY: Duration = Duration::from_secs(8);

/// A source's timings, as the receiver reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub width: u32,
    pub height: u32,
    /// Frames per 1000 s (59940 for 59.94 Hz), as DV timings give it;
    /// 0 when the receiver does not say.
    pub millihertz: u32,
    /// The source's audio sample rate where the receiver reports it (a
    /// bridge's RK_V4L2_CID_AUDIO_SAMPLING_RATE); 0 when it does not, or
    /// no audio. A change restarts capture, sound with the picture.
    pub audio_hz: u32,
}

impl std::fmt::Display for Timings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.millihertz == 0 {
            // A bridge's subdev reports no frame rate.
            return write!(f, "{}x{}", self.width, self.height);
        }
        let hz = self.millihertz as f64 / 1000.0;
        write!(
            f,
            "{}x{}@{}",
            self.width,
            self.height,
            (hz * 100.0).round() / 100.0
        )
    }
}

/// One answer to "what is on the input now?".
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// ENOLINK: no cable (or the source is off).
    NoLink,
    /// ENOLCK: a cable, but the receiver cannot lock.
    NoLock,
    Timings(Timings),
    /// Anything else the driver said, verbatim.
    Failed(String),
}

/// What the receiver announced between probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// V4L2_EVENT_SOURCE_CHANGE: timings changed.
    SourceChange,
    /// V4L2_EVENT_CTRL on the 5 V detect control: cable in or out.
    FiveVolt(bool),
}

/// How the pipeline reads an input once `Receiver::prepare` set it up.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// The gst-launch source element: `v4l2src device=/dev/video60 …`.
    pub element: String,
    pub width: u32,
    pub height: u32,
    /// GStreamer's name for the node's pixel format ("NV16"), when known.
    pub format: Option<&'static str>,
}

/// The narrow interface to a real HDMI receiver (or bridge).
pub trait Receiver: Send {
    /// What is on the input now. Read-only: safe while capture runs.
    fn query(&mut self) -> Probe;
    /// Events since the last call (never blocks).
    fn events(&mut self) -> Vec<Event>;
    /// Set the node up for capture at `t`. Called only while no pipeline
    /// reads the node: setting a format on a streaming node crashed the box.
    fn prepare(&mut self, t: Timings) -> Result<Capture, String>;
}

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Not probed yet.
    Unknown,
    /// No usable signal, and why ("no cable", "no lock", "640x480 …").
    NoSignal(String),
    Live(Timings),
}

/// What the path's pipeline must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// (Re)start capture at these timings; a running pipeline is stopped
    /// first, since the format must never change on a streaming node.
    Start(Timings),
    /// Stop capture: the signal is gone.
    Stop(String),
}

pub struct Signal {
    pub state: State,
    next_probe: Instant,
    retry: Duration,
}

impl Signal {
    pub fn new(now: Instant) -> Signal {
        Signal {
            state: State::Unknown,
            next_probe: now,
            retry: Duration::from_secs(1),
        }
    }

    /// The signal in a few words, for status: "1920x1080@60", "no cable".
    pub fn describe(&self) -> String {
        match &self.state {
            State::Unknown => "checking".into(),
            State::NoSignal(why) => why.clone(),
            State::Live(t) => t.to_string(),
        }
    }

    /// When to probe next.
    #[cfg(test)]
    pub fn poll_timeout(&self) -> Instant {
        self.next_probe
    }

    /// Events make the next probe due at once.
    pub fn on_events(&mut self, events: &[Event], now: Instant) {
        if !events.is_empty() {
            self.next_probe = now;
        }
    }

    /// Feed a probe's result; returns what the pipeline must do, if anything.
    pub fn on_probe(&mut self, p: Probe, now: Instant) -> Option<Action> {
        let next = match p {
            Probe::Timings(t) => valid(t).map(|()| State::Live(t)),
            Probe::NoLink => Err("no cable".into()),
            Probe::NoLock => Err("cable in, no lock".into()),
            Probe::Failed(e) => Err(e),
        }
        .unwrap_or_else(State::NoSignal);
        let action = match (&self.state, &next) {
            (State::Live(a), State::Live(b)) if a == b => None,
            (_, State::Live(t)) => Some(Action::Start(*t)),
            (State::Live(_), State::NoSignal(why)) => Some(Action::Stop(why.clone())),
            _ => None,
        };
        if let State::Live(_) = next {
            self.retry = Duration::from_secs(1);
            self.next_probe = now + LIVE_CHECK;
        } else {
            self.next_probe = now + self.retry;
            self.retry = (self.retry * 2).min(MAX_RETRY);
        }
        self.state = next;
        action
    }

    /// One turn against a real or fake receiver: read events, probe if due.
    pub fn step(&mut self, rx: &mut dyn Receiver, now: Instant) -> Option<Action> {
        self.on_events(&rx.events(), now);
        (now >= self.next_probe)
            .then(|| self.on_probe(rx.query(), now))
            .flatten()
    }
}

/// Is this a real source? `stream_hdmirx` shows 640x480 without one.
fn valid(t: Timings) -> Result<(), String> {
    if (t.width, t.height) == (640, 480) {
        return Err("no signal (receiver reports 640x480)".into());
    }
    if t.width < 720 || t.height < 480 {
        return Err(format!("invalid signal {t}"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A receiver that plays a script: what is plugged in from when on.
    struct Fake {
        now: Instant,
        script: VecDeque<(Duration, Probe, Option<Event>)>,
        current: Probe,
        t0: Instant,
        pending: Vec<Event>,
    }

    impl Receiver for Fake {
        fn query(&mut self) -> Probe {
            self.current.clone()
        }
        fn events(&mut self) -> Vec<Event> {
            while let Some((at, _, _)) = self.script.front() {
                if self.t0 + *at > self.now {
                    break;
                }
                let (_, p, ev) = self.script.pop_front().unwrap();
                self.current = p;
                self.pending.extend(ev);
            }
            std::mem::take(&mut self.pending)
        }
        fn prepare(&mut self, _: Timings) -> Result<Capture, String> {
            unreachable!("the signal machine itself never prepares capture")
        }
    }

    /// The modes, shared with the supervisor's tests.
    pub(crate) const P1080: Timings = Timings {
        width: 1920,
        height: 1080,
        millihertz: 60000,
        audio_hz: 0,
    };
    pub(crate) const P720: Timings = Timings {
        width: 1280,
        height: 720,
        millihertz: 50000,
        audio_hz: 0,
    };

    /// Run the fake for `secs` in 100 ms steps; (seconds, action) pairs.
    fn run(script: Vec<(u64, Probe, Option<Event>)>, secs: u64) -> Vec<(f64, Action)> {
        let t0 = Instant::now();
        let mut rx = Fake {
            now: t0,
            script: script
                .into_iter()
                .map(|(ms, p, e)| (Duration::from_millis(ms), p, e))
                .collect(),
            current: Probe::NoLink,
            t0,
            pending: vec![],
        };
        let mut s = Signal::new(t0);
        let mut out = vec![];
        for step in 0..=secs * 10 {
            let now = t0 + Duration::from_millis(step * 100);
            rx.now = now;
            if let Some(a) = s.step(&mut rx, now) {
                out.push((step as f64 / 10.0, a));
            }
        }
        out
    }

    #[test]
    fn no_cable_then_1080p60_then_720p50_then_unplug_with_events() {
        let script = vec![
            (3_000, Probe::Timings(P1080), Some(Event::FiveVolt(true))),
            (10_000, Probe::Timings(P720), Some(Event::SourceChange)),
            (20_000, Probe::NoLink, Some(Event::FiveVolt(false))),
        ];
        let got = run(script, 30);
        assert_eq!(
            got,
            [
                (3.0, Action::Start(P1080)),
                (10.0, Action::Start(P720)),
                (20.0, Action::Stop("no cable".into())),
            ]
        );
    }

    #[test]
    fn lost_events_are_caught_by_polling_within_10_s() {
        // The same sequence with no events at all (a driver that drops them).
        let script = vec![
            (3_000, Probe::Timings(P1080), None),
            (10_000, Probe::Timings(P720), None),
            (20_000, Probe::NoLink, None),
            (40_000, Probe::Timings(P1080), None),
        ];
        let got = run(script, 60);
        let kinds: Vec<&Action> = got.iter().map(|(_, a)| a).collect();
        assert_eq!(
            kinds,
            [
                &Action::Start(P1080),
                &Action::Start(P720),
                &Action::Stop("no cable".into()),
                &Action::Start(P1080),
            ]
        );
        for ((t, _), want) in got.iter().zip([3.0, 10.0, 20.0, 40.0]) {
            assert!(
                *t >= want && *t - want <= 10.0,
                "seen at {t} s, happened at {want} s"
            );
        }
        // While live, a change is seen within one LIVE_CHECK.
        assert!(got[1].0 - 10.0 <= LIVE_CHECK.as_secs_f64());
    }

    #[test]
    fn the_receivers_no_signal_picture_and_small_modes_are_not_sources() {
        let mut s = Signal::new(Instant::now());
        let t = Instant::now();
        let vga = Timings {
            width: 640,
            height: 480,
            millihertz: 60000,
            audio_hz: 0,
        };
        assert_eq!(s.on_probe(Probe::Timings(vga), t), None);
        assert!(matches!(&s.state, State::NoSignal(w) if w.contains("640x480")));
        let small = Timings {
            width: 720,
            height: 400,
            millihertz: 70000,
            audio_hz: 0,
        };
        assert_eq!(s.on_probe(Probe::Timings(small), t), None);
        assert!(matches!(&s.state, State::NoSignal(w) if w == "invalid signal 720x400@70"));
        assert_eq!(s.on_probe(Probe::NoLock, t), None);
        assert_eq!(s.state, State::NoSignal("cable in, no lock".into()));
        assert_eq!(
            s.on_probe(Probe::Timings(P720), t),
            Some(Action::Start(P720))
        );
        assert_eq!(
            s.on_probe(Probe::Timings(P720), t),
            None,
            "no restart without a change"
        );
        assert_eq!(
            s.on_probe(Probe::Failed("EIO".into()), t),
            Some(Action::Stop("EIO".into()))
        );
    }

    #[test]
    fn retries_back_off_to_a_cap_and_go_on_forever() {
        let t0 = Instant::now();
        let mut s = Signal::new(t0);
        let mut now = t0;
        let mut gaps = vec![];
        for _ in 0..8 {
            s.on_probe(Probe::NoLink, now);
            gaps.push((s.poll_timeout() - now).as_secs());
            now = s.poll_timeout();
        }
        assert_eq!(gaps, [1, 2, 4, 8, 8, 8, 8, 8]);
        assert_eq!(
            s.on_probe(Probe::Timings(P1080), now),
            Some(Action::Start(P1080))
        );
        assert_eq!(s.poll_timeout() - now, LIVE_CHECK);
        s.on_probe(Probe::NoLink, now);
        assert_eq!(
            s.poll_timeout() - now,
            Duration::from_secs(1),
            "backoff restarts"
        );
    }

    #[test]
    fn a_new_audio_rate_on_a_live_input_restarts_capture_with_it() {
        let t = Instant::now();
        let mut s = Signal::new(t);
        let at_48k = Timings {
            audio_hz: 48_000,
            ..P1080
        };
        assert_eq!(
            s.on_probe(Probe::Timings(at_48k), t),
            Some(Action::Start(at_48k))
        );
        assert_eq!(s.on_probe(Probe::Timings(at_48k), t), None);
        let at_44k = Timings {
            audio_hz: 44_100,
            ..P1080
        };
        assert_eq!(
            s.on_probe(Probe::Timings(at_44k), t),
            Some(Action::Start(at_44k))
        );
        // The picture's mode is shown as before: the rate is not a mode.
        assert_eq!(at_44k.to_string(), "1920x1080@60");
    }
}
