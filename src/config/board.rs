//! `[watchdog]` and `[leds]`: how r58 drives the board's watchdog and
//! status LED.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Watchdog {
    /// A hardware watchdog r58 feeds itself, only when it is not started by
    /// systemd (under systemd, PID 1 owns the device: `RuntimeWatchdogSec=`).
    pub device: Option<PathBuf>,
    /// Requested timeout; the driver may round it up (read back and logged).
    pub timeout_secs: u32,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            device: None,
            timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Leds {
    /// The LED under `sysfs` that shows r58's state (R58X: `work-led`):
    /// steady = all paths live, slow blink = a path has no signal, fast
    /// blink = tunnel down, off = r58 not running.
    pub status: Option<String>,
    pub sysfs: PathBuf,
}

impl Default for Leds {
    fn default() -> Self {
        Leds {
            status: None,
            sysfs: PathBuf::from("/sys/class/leds"),
        }
    }
}

impl Watchdog {
    /// (key, message) on a bad value.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(5..=600).contains(&self.timeout_secs) {
            return Err((
                "timeout_secs",
                format!("timeout_secs {} must be 5..600", self.timeout_secs),
            ));
        }
        Ok(())
    }
}
