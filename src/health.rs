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
use std::time::Duration;

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
    {
        if pid != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// One-line summary for `STATUS=` (systemctl status shows it).
pub fn status_line(paths: &[(String, &str, usize)]) -> String {
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

    #[test]
    fn status_reads_like_a_sentence() {
        let s = status_line(&[
            ("cam0".into(), "streaming", 2),
            ("cam1".into(), "no_signal", 0),
        ]);
        assert_eq!(s, "cam0 streaming 2 viewers; cam1 no_signal");
        assert_eq!(status_line(&[]), "no paths");
    }
}
