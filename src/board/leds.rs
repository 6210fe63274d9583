//! The status LED through `/sys/class/leds/<name>`: steady when every path
//! is live, slow blink when a path has no signal, fast blink when the
//! tunnel is down, off when r58 is not running. Writes happen only when
//! the pattern changes (sysfs writes are cheap, but the timer trigger
//! restarts its phase on every write and would flicker).

use std::path::{Path, PathBuf};

use crate::error::{Context, Result};
use crate::vocab::PathState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Steady,
    SlowBlink,
    FastBlink,
    Off,
}

/// What the LED should show for these path states.
pub fn pattern(path_states: &[PathState], tunnel_down: bool) -> Pattern {
    if tunnel_down {
        Pattern::FastBlink
    } else if path_states.iter().all(|s| *s == PathState::Streaming) {
        Pattern::Steady
    } else {
        Pattern::SlowBlink
    }
}

pub struct Led {
    dir: PathBuf,
    max: String,
    shown: Option<Pattern>,
}

impl Led {
    pub fn open(sysfs: &Path, name: &str) -> Result<Led> {
        let dir = sysfs.join(name);
        let max = std::fs::read_to_string(dir.join("max_brightness"))
            .with_context(|| format!("LED {name}: reading {}", dir.display()))?
            .trim()
            .to_string();
        Ok(Led {
            dir,
            max,
            shown: None,
        })
    }

    pub fn show(&mut self, p: Pattern) -> Result<()> {
        if self.shown == Some(p) {
            return Ok(());
        }
        let (on, off) = match p {
            Pattern::Steady => return self.solid(&self.max.clone(), p),
            Pattern::Off => return self.solid("0", p),
            Pattern::SlowBlink => ("1000", "1000"),
            Pattern::FastBlink => ("100", "100"),
        };
        // delay_on/delay_off appear once the timer trigger is set.
        self.write("trigger", "timer")?;
        self.write("delay_on", on)?;
        self.write("delay_off", off)?;
        self.shown = Some(p);
        Ok(())
    }

    fn solid(&mut self, brightness: &str, p: Pattern) -> Result<()> {
        self.write("trigger", "none")?;
        self.write("brightness", brightness)?;
        self.shown = Some(p);
        Ok(())
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        let p = self.dir.join(file);
        std::fs::write(&p, value).with_context(|| format!("writing {value} to {}", p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_led(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("r58-leds-{}-{tag}", std::process::id()));
        let led = root.join("work-led");
        std::fs::create_dir_all(&led).unwrap();
        for (f, v) in [
            ("max_brightness", "255\n"),
            ("brightness", "0"),
            ("trigger", "[none] timer heartbeat"),
        ] {
            std::fs::write(led.join(f), v).unwrap();
        }
        root
    }

    fn read(root: &Path, f: &str) -> String {
        std::fs::read_to_string(root.join("work-led").join(f)).unwrap()
    }

    #[test]
    fn patterns_follow_paths_and_tunnel() {
        assert_eq!(
            pattern(&[PathState::Streaming, PathState::Streaming], false),
            Pattern::Steady
        );
        assert_eq!(
            pattern(&[PathState::Streaming, PathState::NoSignal], false),
            Pattern::SlowBlink
        );
        assert_eq!(pattern(&[PathState::Starting], false), Pattern::SlowBlink);
        assert_eq!(pattern(&[PathState::Streaming], true), Pattern::FastBlink);
    }

    #[test]
    fn writes_sysfs_and_only_on_change() {
        let root = fake_led("show");
        let mut led = Led::open(&root, "work-led").unwrap();
        led.show(Pattern::Steady).unwrap();
        assert_eq!(read(&root, "trigger"), "none");
        assert_eq!(read(&root, "brightness"), "255");
        led.show(Pattern::SlowBlink).unwrap();
        assert_eq!(read(&root, "trigger"), "timer");
        assert_eq!(read(&root, "delay_on"), "1000");
        // Unchanged pattern: no write (would restart the blink phase).
        std::fs::write(root.join("work-led/delay_on"), "touched").unwrap();
        led.show(Pattern::SlowBlink).unwrap();
        assert_eq!(read(&root, "delay_on"), "touched");
        led.show(Pattern::FastBlink).unwrap();
        assert_eq!(read(&root, "delay_off"), "100");
        led.show(Pattern::Off).unwrap();
        assert_eq!(read(&root, "brightness"), "0");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_missing_led_names_itself() {
        let root = fake_led("missing");
        let e = Led::open(&root, "hdd-led").err().unwrap().to_string();
        assert!(e.starts_with("LED hdd-led: reading "), "{e}");
        std::fs::remove_dir_all(root).unwrap();
    }
}
