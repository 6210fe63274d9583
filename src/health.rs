//! Health as systemd sees it: the sd_notify protocol (`READY=1`, `STATUS=`,
//! `WATCHDOG=1`, `STOPPING=1`) spoken directly over `$NOTIFY_SOCKET`, which
//! may be a path or an abstract (`@name`) socket.
//!
//! Watchdog rule: `WATCHDOG=1` is sent only while the WebRTC engine answers
//! a request within a second and no path with a present source is wedged.
//! A missing HDMI signal or a failed pipeline that keeps retrying is a
//! degraded state reported in `STATUS=`, not a reason to be rebooted.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::vocab::PathState;

/// A streaming path whose frame count has not moved for this long has a
/// wedged pipeline thread (its own supervisor would have restarted it).
pub const WEDGED: Duration = Duration::from_secs(20);

/// One path as the monitor sees it on a tick.
pub struct PathSample<'a> {
    pub name: &'a str,
    pub state: PathState,
    pub frames: u64,
    pub viewers: usize,
    /// HDMI inputs: the mode, or why there is none.
    pub signal: Option<&'a str>,
}

/// The verdict of one tick, shown in `/v3/info` and fed to the watchdog.
/// Also what `status` and the doctor read back from `/v3/info`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Snapshot {
    /// False until the first tick: nothing has been judged yet.
    pub checked: bool,
    pub healthy: bool,
    #[serde(rename = "engineResponding")]
    pub engine_ok: bool,
    pub wedged: Vec<String>,
    pub status: String,
    /// Who keeps the watchdog: "systemd (30 s)", "/dev/watchdog0 (32 s)", "off".
    pub watchdog: String,
    /// `WATCHDOG=1` keep-alives sent to systemd so far.
    #[serde(rename = "watchdogPings")]
    pub watchdog_pings: u64,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            checked: false,
            healthy: false,
            engine_ok: false,
            wedged: Vec::new(),
            status: "starting".into(),
            watchdog: "off".into(),
            watchdog_pings: 0,
        }
    }
}

/// Sans-IO wedge detection: remembers when each path's frame count last
/// moved, driven by explicit time so tests need no sleeping.
pub struct Monitor {
    progress: Vec<(u64, Instant)>,
}

impl Monitor {
    pub fn new(paths: usize, now: Instant) -> Monitor {
        Monitor {
            progress: vec![(0, now); paths],
        }
    }

    /// Judge one tick. `samples` are in the same order every tick.
    pub fn observe(&mut self, now: Instant, engine_ok: bool, samples: &[PathSample]) -> Snapshot {
        let mut wedged = Vec::new();
        let mut summary = Vec::new();
        for (s, seen) in samples.iter().zip(self.progress.iter_mut()) {
            if s.frames != seen.0 || s.state != PathState::Streaming {
                *seen = (s.frames, now);
            } else if now.duration_since(seen.1) > WEDGED {
                wedged.push(s.name.to_string());
            }
            let state = match (s.state, s.signal) {
                (PathState::Streaming, Some(mode)) => format!("streaming {mode}"),
                (PathState::NoSignal, Some(why)) => format!("no_signal ({why})"),
                (state, _) => state.as_str().to_string(),
            };
            summary.push((s.name.to_string(), state, s.viewers));
        }
        let mut status = status_line(&summary);
        if !engine_ok {
            status = format!("webrtc engine not responding; {status}");
        }
        if !wedged.is_empty() {
            status = format!("wedged: {}; {status}", wedged.join(", "));
        }
        Snapshot {
            checked: true,
            healthy: engine_ok && wedged.is_empty(),
            engine_ok,
            wedged,
            status,
            watchdog: "off".into(),
            watchdog_pings: 0,
        }
    }
}

/// Where notifications go; None when not started by systemd.
pub struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    pub fn from_env() -> Option<Notifier> {
        Notifier::new(&std::env::var("NOTIFY_SOCKET").ok()?)
    }

    pub fn new(target: &str) -> Option<Notifier> {
        let addr = match target.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok()?,
            None if target.starts_with('/') => SocketAddr::from_pathname(target).ok()?,
            None => return None,
        };
        let sock = UnixDatagram::unbound().ok()?;
        Some(Notifier { sock, addr })
    }

    /// Send one notification; failures are logged once per kind, never fatal.
    pub fn send(&self, msg: &str) {
        if let Err(e) = self.sock.send_to_addr(msg.as_bytes(), &self.addr) {
            log::debug!("sd_notify: {e}");
        }
    }
}

/// Half of `$WATCHDOG_USEC`, if systemd wants keep-alives from this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// One-line summary for `STATUS=` (systemctl status shows it).
pub fn status_line(paths: &[(String, String, usize)]) -> String {
    let parts: Vec<String> = paths
        .iter()
        .map(|(name, state, viewers)| match *viewers {
            0 => format!("{name} {state}"),
            1 => format!("{name} {state} 1 viewer"),
            n => format!("{name} {state} {n} viewers"),
        })
        .collect();
    if parts.is_empty() {
        "no paths".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifies_a_path_socket() {
        let p = std::env::temp_dir().join(format!("r58-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let rx = UnixDatagram::bind(&p).unwrap();
        let n = Notifier::new(p.to_str().unwrap()).unwrap();
        n.send("READY=1\nSTATUS=cam0 streaming");
        let mut buf = [0u8; 128];
        let k = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"READY=1\nSTATUS=cam0 streaming");
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn notifies_an_abstract_socket() {
        let name = format!("r58-notify-test-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
            .unwrap();
        let n = Notifier::new(&format!("@{name}")).unwrap();
        n.send("WATCHDOG=1");
        let mut buf = [0u8; 64];
        let k = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..k], b"WATCHDOG=1");
    }

    #[test]
    fn rejects_relative_targets() {
        assert!(Notifier::new("relative/path").is_none());
    }

    fn sample(state: PathState, frames: u64) -> [PathSample<'static>; 1] {
        [PathSample {
            name: "cam0",
            state,
            frames,
            viewers: 0,
            signal: None,
        }]
    }

    #[test]
    fn a_stalled_streaming_path_is_wedged_after_the_limit() {
        let t0 = Instant::now();
        let mut m = Monitor::new(1, t0);
        assert!(
            m.observe(t0, true, &sample(PathState::Streaming, 10))
                .healthy
        );
        let later = t0 + WEDGED;
        assert!(
            m.observe(later, true, &sample(PathState::Streaming, 10))
                .healthy
        );
        let s = m.observe(
            later + Duration::from_secs(1),
            true,
            &sample(PathState::Streaming, 10),
        );
        assert!(!s.healthy);
        assert_eq!(s.wedged, vec!["cam0"]);
        assert!(s.status.starts_with("wedged: cam0; "), "{}", s.status);
        // Frames moving again clears it.
        let s = m.observe(
            later + Duration::from_secs(2),
            true,
            &sample(PathState::Streaming, 11),
        );
        assert!(s.healthy && s.wedged.is_empty());
    }

    #[test]
    fn no_signal_is_degraded_not_wedged() {
        let t0 = Instant::now();
        let mut m = Monitor::new(1, t0);
        let s = m.observe(t0 + WEDGED * 5, true, &sample(PathState::NoSignal, 0));
        assert!(s.healthy, "a missing cable must not get the box rebooted");
        assert_eq!(s.status, "cam0 no_signal");
    }

    #[test]
    fn an_unresponsive_engine_is_unhealthy() {
        let t0 = Instant::now();
        let s = Monitor::new(1, t0).observe(t0, false, &sample(PathState::Streaming, 1));
        assert!(!s.healthy && !s.engine_ok);
        assert!(s.status.starts_with("webrtc engine not responding"));
    }

    #[test]
    fn status_reads_like_a_sentence() {
        let s = status_line(&[
            ("cam0".into(), "streaming".into(), 2),
            ("cam1".into(), "no_signal".into(), 0),
        ]);
        assert_eq!(s, "cam0 streaming 2 viewers; cam1 no_signal");
        assert_eq!(status_line(&[]), "no paths");
        // HDMI inputs say their mode, or why they have none.
        let mut m = Monitor::new(2, Instant::now());
        let hdmi = |state, signal| PathSample {
            name: "cam1",
            state,
            frames: 1,
            viewers: 1,
            signal: Some(signal),
        };
        let s = m.observe(
            Instant::now(),
            true,
            &[
                hdmi(PathState::Streaming, "1920x1080@60"),
                hdmi(PathState::NoSignal, "no cable"),
            ],
        );
        assert_eq!(
            s.status,
            "cam1 streaming 1920x1080@60 1 viewer; cam1 no_signal (no cable) 1 viewer"
        );
    }
}
