//! The hardware watchdog (`/dev/watchdogN`), fed by r58 itself when no
//! systemd owns it. The device sits behind a narrow trait so the feeding
//! rules are tested without one.
//!
//! Rules: the timeout is set once and read back (drivers round it up);
//! keep-alives go out only while the health verdict is good; a clean exit
//! disarms with the magic close (`V`), which a `nowayout` driver ignores.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Context, Result};

/// `<linux/watchdog.h>`; same numbers on x86_64 and aarch64.
const WDIOC_KEEPALIVE: libc::c_ulong = 0x8004_5705;
const WDIOC_SETTIMEOUT: libc::c_ulong = 0xC004_5706;

pub trait Device: Send {
    /// Ask for `secs`; returns what the driver actually uses.
    fn set_timeout(&mut self, secs: u32) -> io::Result<u32>;
    fn keepalive(&mut self) -> io::Result<()>;
    /// Stop the watchdog on a clean exit (magic close).
    fn disarm(self: Box<Self>) -> io::Result<()>;
}

/// A real `/dev/watchdogN`. Single-open: a second opener gets EBUSY.
pub struct DevWatchdog {
    file: File,
}

impl DevWatchdog {
    pub fn open(path: &Path) -> Result<DevWatchdog> {
        let file = File::options()
            .write(true)
            .open(path)
            .with_context(|| format!("opening watchdog {}", path.display()))?;
        Ok(DevWatchdog { file })
    }

    fn ioctl(&self, req: libc::c_ulong, val: &mut libc::c_int) -> io::Result<()> {
        // SAFETY: both requests take a pointer to one int, which we own.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), req as _, val as *mut libc::c_int) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Device for DevWatchdog {
    fn set_timeout(&mut self, secs: u32) -> io::Result<u32> {
        let mut v = secs as libc::c_int;
        self.ioctl(WDIOC_SETTIMEOUT, &mut v)?;
        Ok(v.max(1) as u32)
    }
    fn keepalive(&mut self) -> io::Result<()> {
        let mut v = 0;
        self.ioctl(WDIOC_KEEPALIVE, &mut v)
    }
    fn disarm(mut self: Box<Self>) -> io::Result<()> {
        self.file.write_all(b"V")
    }
}

/// Feeds a device from the health loop's verdicts.
pub struct Feeder {
    dev: Option<Box<dyn Device>>,
    path: PathBuf,
    timeout: u32,
    starving: bool,
}

impl Feeder {
    pub fn start(mut dev: Box<dyn Device>, path: &Path, secs: u32) -> Result<Feeder> {
        let timeout = dev
            .set_timeout(secs)
            .with_context(|| format!("setting the timeout of {}", path.display()))?;
        dev.keepalive()
            .with_context(|| format!("feeding {}", path.display()))?;
        Ok(Feeder {
            dev: Some(dev),
            path: path.to_path_buf(),
            timeout,
            starving: false,
        })
    }

    /// The timeout the driver settled on.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.into())
    }

    /// One health verdict: feed if healthy, otherwise let it run down so
    /// the board reboots if r58 stays wedged for the whole timeout.
    pub fn verdict(&mut self, healthy: bool) {
        let Some(dev) = self.dev.as_mut() else {
            return;
        };
        if !healthy {
            if !self.starving {
                log::warn!(
                    "watchdog {}: not fed while unhealthy; reboot in {} s unless r58 recovers",
                    self.path.display(),
                    self.timeout
                );
            }
            self.starving = true;
            return;
        }
        if self.starving {
            log::info!("watchdog {}: fed again", self.path.display());
            self.starving = false;
        }
        if let Err(e) = dev.keepalive() {
            log::warn!("watchdog {}: keep-alive failed: {e}", self.path.display());
        }
    }

    /// Clean shutdown: disarm so a deliberate stop is not a reboot.
    pub fn stop(mut self) {
        if let Some(dev) = self.dev.take() {
            match dev.disarm() {
                Ok(()) => log::info!("watchdog {}: disarmed", self.path.display()),
                Err(e) => log::warn!("watchdog {}: disarm failed: {e}", self.path.display()),
            }
        }
    }

    pub fn describe(&self) -> String {
        format!("{} ({} s)", self.path.display(), self.timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Log(Vec<String>);

    /// A driver that rounds timeouts up to a multiple of 8 like dw_wdt's
    /// power-of-two periods do, and records what it was asked.
    struct Fake(Arc<Mutex<Log>>);

    impl Device for Fake {
        fn set_timeout(&mut self, secs: u32) -> io::Result<u32> {
            self.0.lock().unwrap().0.push(format!("timeout {secs}"));
            Ok(secs.div_ceil(8) * 8)
        }
        fn keepalive(&mut self) -> io::Result<()> {
            self.0.lock().unwrap().0.push("ping".into());
            Ok(())
        }
        fn disarm(self: Box<Self>) -> io::Result<()> {
            self.0.lock().unwrap().0.push("V".into());
            Ok(())
        }
    }

    #[test]
    fn feeds_only_while_healthy_and_disarms_on_exit() {
        let log = Arc::new(Mutex::new(Log::default()));
        let mut f =
            Feeder::start(Box::new(Fake(log.clone())), Path::new("/dev/watchdog0"), 30).unwrap();
        assert_eq!(
            f.timeout(),
            Duration::from_secs(32),
            "driver's value is used"
        );
        f.verdict(true);
        f.verdict(false);
        f.verdict(false);
        f.verdict(true);
        f.stop();
        assert_eq!(
            log.lock().unwrap().0,
            ["timeout 30", "ping", "ping", "ping", "V"]
        );
    }

    #[test]
    fn a_file_that_is_not_a_watchdog_is_a_clear_error() {
        let p = std::env::temp_dir().join(format!("r58-not-a-watchdog-{}", std::process::id()));
        std::fs::write(&p, b"").unwrap();
        let dev = DevWatchdog::open(&p).unwrap();
        let e = Feeder::start(Box::new(dev), &p, 30)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with(&format!("setting the timeout of {}", p.display())),
            "{e}"
        );
        std::fs::remove_file(&p).unwrap();
        let e = DevWatchdog::open(Path::new("/nonexistent/watchdog9"))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .contains("opening watchdog /nonexistent/watchdog9")
        );
    }
}
