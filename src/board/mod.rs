//! Board glue: which board this is, and the parts of it r58 drives besides
//! video (hardware watchdog, status LED, CPU governor). Everything takes a
//! root directory so tests run against a fake sysfs/procfs tree.

pub mod leds;
pub mod v4l2;
pub mod watchdog;

use std::path::Path;

use crate::config::Config;

/// The board parts the health loop drives on every tick.
pub struct Glue {
    feeder: Option<watchdog::Feeder>,
    led: Option<leds::Led>,
    /// How the watchdog is kept, for status: "systemd (30 s)", a device, "off".
    pub watchdog: String,
}

impl Glue {
    /// Set up from config. Never fails: a watchdog or LED that cannot be
    /// opened is logged and left out, and the box keeps serving video.
    /// `systemd`: started by systemd (`NOTIFY_SOCKET`), with its
    /// keep-alive interval if `WatchdogSec=` is set.
    pub fn start(cfg: &Config, systemd: Option<Option<std::time::Duration>>) -> Glue {
        let mut watchdog = match systemd {
            Some(Some(t)) => format!("systemd ({} s)", (t * 2).as_secs()),
            _ => "off".into(),
        };
        let feeder = match (&cfg.watchdog.device, systemd) {
            (Some(dev), Some(_)) => {
                log::info!(
                    "watchdog: systemd owns the hardware watchdog; {} is left to it",
                    dev.display()
                );
                None
            }
            (Some(dev), None) => match watchdog::DevWatchdog::open(dev)
                .and_then(|d| watchdog::Feeder::start(Box::new(d), dev, cfg.watchdog.timeout_secs))
            {
                Ok(f) => {
                    log::info!("watchdog: feeding {} while healthy", f.describe());
                    watchdog = f.describe();
                    Some(f)
                }
                Err(e) => {
                    log::error!("watchdog: {e}");
                    watchdog = format!("{} failed", dev.display());
                    None
                }
            },
            (None, _) => None,
        };
        let led = cfg.leds.status.as_ref().and_then(|name| {
            leds::Led::open(&cfg.leds.sysfs, name)
                .map_err(|e| log::warn!("{e}; no status LED"))
                .ok()
        });
        Glue {
            feeder,
            led,
            watchdog,
        }
    }

    /// Longest safe gap between ticks for the watchdog device.
    pub fn max_tick(&self) -> Option<std::time::Duration> {
        self.feeder.as_ref().map(|f| f.timeout() / 3)
    }

    pub fn tick(
        &mut self,
        healthy: bool,
        path_states: &[crate::vocab::PathState],
        tunnel_down: bool,
    ) {
        if let Some(f) = &mut self.feeder {
            f.verdict(healthy);
        }
        // A failed write would fail again every tick: say so once, stop.
        if let Some(led) = &mut self.led
            && let Err(e) = led.show(leds::pattern(path_states, tunnel_down))
        {
            log::warn!("{e}; status LED disabled");
            self.led = None;
        }
    }

    /// Clean exit: LED off, watchdog disarmed.
    pub fn stop(&mut self) {
        if let Some(led) = &mut self.led {
            let _ = led.show(leds::Pattern::Off);
        }
        if let Some(f) = self.feeder.take() {
            f.stop();
        }
    }
}

/// Once at start: say what board this is; on an RK3588 set the governor and
/// check the MPP encoder is there, elsewhere say software encoding is used.
pub fn bring_up(root: &Path, mpp_installed: bool) {
    let b = detect(root);
    if b.rk3588 {
        log::info!("board: {} (RK3588)", b.model);
        let changed = set_performance_governor(root);
        if !changed.is_empty() {
            log::info!("cpu governor: performance on {}", changed.join(", "));
        }
        if !mpp_installed {
            log::error!(
                "RK3588 without mpph264enc: install gstreamer1.0-rockchip (MPP); \
                 using software encoding meanwhile"
            );
        }
    } else if !mpp_installed {
        log::info!("not an RK3588, using software encoding");
    }
}

/// What `/proc/device-tree` says about this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Board {
    pub rk3588: bool,
    pub model: String,
}

pub fn detect(root: &Path) -> Board {
    let dt = root.join("proc/device-tree");
    let compatible = std::fs::read(dt.join("compatible")).unwrap_or_default();
    let rk3588 = compatible
        .split(|b| *b == 0)
        .any(|c| c == b"rockchip,rk3588" || c == b"rockchip,rk3588s");
    let model = std::fs::read(dt.join("model"))
        .map(|m| {
            String::from_utf8_lossy(&m)
                .trim_end_matches('\0')
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    Board { rk3588, model }
}

/// On an RK3588, run every CPU cluster with the `performance` governor:
/// capture and RTP pacing suffer from ondemand's ramp-up latency. Returns
/// the policies changed; failures are logged, never fatal.
pub fn set_performance_governor(root: &Path) -> Vec<String> {
    let dir = root.join("sys/devices/system/cpu/cpufreq");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("policy"))
        .collect();
    names.sort();
    let mut changed = Vec::new();
    for n in names {
        let f = dir.join(&n).join("scaling_governor");
        let now = std::fs::read_to_string(&f).unwrap_or_default();
        if now.trim() == "performance" {
            continue;
        }
        match std::fs::write(&f, "performance") {
            Ok(()) => changed.push(n),
            Err(e) => log::warn!("cpu governor: writing {}: {e}", f.display()),
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(tag: &str) -> std::path::PathBuf {
        let r = std::env::temp_dir().join(format!("r58-board-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&r);
        std::fs::create_dir_all(r.join("proc/device-tree")).unwrap();
        r
    }

    #[test]
    fn detects_the_r58_from_its_device_tree() {
        let r = tree("r58x");
        std::fs::write(
            r.join("proc/device-tree/compatible"),
            b"rockchip,rk3588-blueberry-edge-v12-linux\0rockchip,rk3588\0",
        )
        .unwrap();
        std::fs::write(
            r.join("proc/device-tree/model"),
            b"RK3588 EDGE LP4x V1.2 BlueBerry Board\0",
        )
        .unwrap();
        let b = detect(&r);
        assert!(b.rk3588);
        assert_eq!(b.model, "RK3588 EDGE LP4x V1.2 BlueBerry Board");
        // Another board, and a PC without a device tree.
        std::fs::write(r.join("proc/device-tree/compatible"), b"rockchip,rk3568\0").unwrap();
        assert!(!detect(&r).rk3588);
        std::fs::remove_dir_all(&r).unwrap();
        assert!(!detect(&r).rk3588);
    }

    #[test]
    fn an_led_that_stops_taking_writes_is_dropped_once() {
        let r = tree("glue");
        let led = r.join("work-led");
        std::fs::create_dir_all(&led).unwrap();
        std::fs::write(led.join("max_brightness"), "1").unwrap();
        let mut cfg = Config::default();
        cfg.leds.status = Some("work-led".into());
        cfg.leds.sysfs = r.clone();
        let mut g = Glue::start(&cfg, None);
        g.tick(true, &[crate::vocab::PathState::Streaming], false);
        assert_eq!(
            std::fs::read_to_string(led.join("brightness")).unwrap(),
            "1"
        );
        assert!(g.led.is_some());
        std::fs::remove_dir_all(&r).unwrap(); // like a read-only /sys
        g.tick(true, &[crate::vocab::PathState::NoSignal], false);
        assert!(g.led.is_none(), "no warning every tick");
        assert_eq!(g.watchdog, "off");
    }

    #[test]
    fn sets_the_governor_on_every_policy_once() {
        let r = tree("gov");
        for (p, g) in [
            ("policy0", "ondemand\n"),
            ("policy4", "performance\n"),
            ("policy6", "schedutil\n"),
        ] {
            let d = r.join("sys/devices/system/cpu/cpufreq").join(p);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("scaling_governor"), g).unwrap();
        }
        assert_eq!(set_performance_governor(&r), ["policy0", "policy6"]);
        assert!(set_performance_governor(&r).is_empty(), "already set");
        std::fs::remove_dir_all(&r).unwrap();
    }
}
