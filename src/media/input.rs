//! An HDMI path's supervisor loop: the input's signal (`signal::Signal`
//! fed by a `Receiver`) decides when capture runs and at which format.
//!
//! - No signal: no pipeline; the receiver is probed with capped backoff,
//!   and its events make the next probe immediate.
//! - A signal: the idle node is prepared for it (`Receiver::prepare`), then
//!   the pipeline runs while the signal is re-checked read-only.
//! - A new mode: the pipeline is torn down first, then the node is prepared
//!   again: never a format change on a streaming node.
//! - Signal gone: the pipeline stops and the path shows why ("no cable").

use std::time::{Duration, Instant};

use super::PathState;
use super::pipeline::{Ended, Supervisor};
use super::signal::{Action, Capture, Receiver, Signal, State};
use crate::backoff::Backoff;
use crate::config::PathConfig;

/// Opens the path's receiver; called again until it succeeds.
pub type OpenInput = Box<dyn Fn() -> Result<Box<dyn Receiver>, String> + Send>;

/// How often events are read (and a due probe made), idle or capturing.
const TURN: Duration = Duration::from_millis(250);
/// How often a receiver that cannot be opened is tried again.
const REOPEN: Duration = Duration::from_secs(2);

impl Supervisor {
    pub(super) fn run_input(self, open: OpenInput) {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let mut signal = Signal::new(Instant::now());
        let mut rx = loop {
            match open() {
                Ok(rx) => break rx,
                Err(why) => {
                    self.show_signal(&why);
                    self.set(PathState::NoSignal, Some(why));
                    if self.wait(REOPEN) {
                        return;
                    }
                }
            }
        };
        loop {
            let State::Live(t) = signal.state.clone() else {
                signal.step(rx.as_mut(), Instant::now());
                let said = signal.describe();
                self.show_signal(&said);
                match signal.state {
                    State::NoSignal(_) => self.set(PathState::NoSignal, Some(said)),
                    State::Live(_) => continue,
                    State::Unknown => {}
                }
                if self.wait(TURN) {
                    return;
                }
                continue;
            };
            self.set(PathState::Starting, Some(format!("signal {t}")));
            let started = Instant::now();
            let ended = match rx.prepare(t) {
                Ok(cap) => {
                    log::info!(
                        "{}: capturing {}x{} {} from {}",
                        self.name,
                        cap.width,
                        cap.height,
                        cap.format.unwrap_or("(format negotiated)"),
                        cap.element
                    );
                    let desc = self.describe(&capture_fragment(&cap, &self.cfg), t.audio_hz);
                    let mut next = Instant::now() + TURN;
                    self.run_once(&desc, &mut || {
                        let now = Instant::now();
                        if now < next {
                            return None;
                        }
                        next = now + TURN;
                        // While live, every change is an action: only then
                        // is there something new to show.
                        let a = signal.step(rx.as_mut(), now);
                        if a.is_some() {
                            self.show_signal(&signal.describe());
                        }
                        a
                    })
                }
                Err(why) => Ended::Failed(format!("preparing the input for {t}: {why}")),
            };
            match ended {
                Ended::Stopped => return,
                // Logged by show_signal; the loop prepares the new mode.
                Ended::Signal(Action::Start(_)) => {}
                Ended::Signal(Action::Stop(why)) => self.set(PathState::NoSignal, Some(why)),
                Ended::Failed(why) => {
                    if self.failed(why, started, &mut backoff) {
                        return;
                    }
                    // Look again before restarting: the failure may have
                    // been the signal going away.
                    signal = Signal::new(Instant::now());
                }
            }
        }
    }

    /// The input's signal as status shows it; a change is logged.
    fn show_signal(&self, now: &str) {
        let mut st = self.status.lock().unwrap();
        if st.signal.as_deref() != Some(now) {
            log::info!("{}: input: {now}", self.name);
            st.signal = Some(now.to_string());
        }
    }
}

/// The source fragment for a prepared input: the node's own size (and
/// format, when known), never a frame rate; `videorate` converts after
/// capture (a forced rate broke 120 fps sources).
pub fn capture_fragment(c: &Capture, p: &PathConfig) -> String {
    let format = c.format.map(|f| format!(",format={f}")).unwrap_or_default();
    format!(
        "{} ! video/x-raw{format},width={},height={} ! videorate ! videoscale ! videoconvert \
         ! video/x-raw,width={},height={},framerate={}/1",
        c.element, c.width, c.height, p.width, p.height, p.fps
    )
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
