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

/// The test source's pictures: a ball on black (cheap to encode, the
/// default), scrolling colour bars (motion everywhere: an encoder spends
/// its whole bitrate, as on a real camera), noise (incompressible).
pub const TEST_PATTERNS: &[&str] = &["ball", "bars", "snow"];

/// An input's board keys: a bridge needs its node, and the EDID and the
/// bridge keys only mean something on an `hdmi` path. (key, message).
pub fn check_input(name: &str, p: &super::PathConfig) -> Result<(), (&'static str, String)> {
    if let Some(pat) = &p.pattern {
        if p.source != super::Source::Test {
            return Err((
                "pattern",
                format!("path '{name}': pattern needs source = \"test\""),
            ));
        }
        if !TEST_PATTERNS.contains(&pat.as_str()) {
            return Err((
                "pattern",
                format!(
                    "path '{name}': unknown pattern \"{pat}\" (one of: {})",
                    TEST_PATTERNS.join(", ")
                ),
            ));
        }
    }
    let hdmi = p.source == super::Source::Hdmi;
    for (key, set) in [
        ("subdev", p.subdev.is_some()),
        ("pixel_format", p.pixel_format.is_some()),
        ("edid", p.edid.is_some()),
    ] {
        if set && !hdmi {
            return Err((key, format!("path '{name}': {key} needs source = \"hdmi\"")));
        }
    }
    if p.subdev.is_some() && p.device.is_none() {
        return Err((
            "subdev",
            format!("path '{name}': a bridge's subdev needs its device = \"/dev/videoN\" too"),
        ));
    }
    if p.subdev.is_some() && p.edid.is_some() {
        return Err((
            "edid",
            format!(
                "path '{name}': an LT6911 bridge keeps its EDID in firmware; edid is for the RK3588's own input"
            ),
        ));
    }
    if p.pixel_format.is_some() && p.subdev.is_none() {
        return Err((
            "pixel_format",
            format!(
                "path '{name}': pixel_format is for bridge inputs (with subdev); the RK3588 receiver follows its source"
            ),
        ));
    }
    if let Some(f) = &p.pixel_format
        && crate::board::v4l2::fourcc_code(f).is_none()
    {
        return Err((
            "pixel_format",
            format!(
                "path '{name}': pixel_format \"{f}\" must be a 4-character fourcc such as \"UYVY\""
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn the_4x4_layout_maps_inputs_to_nodes_and_subdevs() {
        // The R58 4x4 3S: three LT6911 bridges on rkcif and the RK3588's own.
        let c = Config::parse(
            r#"
[paths.cam0]
source = "hdmi"
device = "/dev/video0"
subdev = "/dev/v4l-subdev2"
[paths.cam1]
source = "hdmi"
edid = "/usr/share/r58/edid/r58-1080p60.bin"
[paths.cam2]
source = "hdmi"
device = "/dev/video11"
subdev = "/dev/v4l-subdev7"
pixel_format = "NV12"
"#,
        )
        .unwrap();
        assert_eq!(c.paths["cam0"].subdev.as_deref(), Some("/dev/v4l-subdev2"));
        assert_eq!(c.paths["cam1"].device, None, "found by V4L2 name");
        assert_eq!(c.paths["cam2"].pixel_format.as_deref(), Some("NV12"));
    }

    #[test]
    fn misplaced_input_keys_name_their_line() {
        for (text, line, says) in [
            (
                "[paths.a]\nsubdev = \"/dev/v4l-subdev2\"\n",
                2,
                "needs source = \"hdmi\"",
            ),
            (
                "[paths.a]\nsource = \"hdmi\"\nsubdev = \"/dev/v4l-subdev2\"\n",
                3,
                "needs its device",
            ),
            (
                "[paths.a]\nsource = \"hdmi\"\ndevice = \"/dev/video0\"\nsubdev = \"/s\"\nedid = \"/e\"\n",
                5,
                "EDID in firmware",
            ),
            (
                "[paths.a]\nsource = \"hdmi\"\npixel_format = \"UYVY\"\n",
                3,
                "bridge inputs",
            ),
            (
                "[paths.a]\nsource = \"hdmi\"\ndevice = \"/dev/video0\"\nsubdev = \"/s\"\npixel_format = \"UYVY8\"\n",
                5,
                "4-character fourcc",
            ),
        ] {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{line}: ")) && e.contains(says),
                "{e}"
            );
        }
    }
}
