//! Which H.264 encoder a path uses, and how each one is driven.
//!
//! Choice order: Rockchip MPP (the RK3588 VPU) → x264 → OpenH264. The logic
//! is pure (it takes a "is this element installed?" function) so it is tested
//! on any host; only `pipeline.rs` touches GStreamer.

use crate::config::PathConfig;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoder {
    Mpp,
    X264,
    OpenH264,
}

pub const PREFERENCE: [Encoder; 3] = [Encoder::Mpp, Encoder::X264, Encoder::OpenH264];

impl Encoder {
    pub fn element(self) -> &'static str {
        match self {
            Encoder::Mpp => "mpph264enc",
            Encoder::X264 => "x264enc",
            Encoder::OpenH264 => "openh264enc",
        }
    }

    pub fn is_hardware(self) -> bool {
        self == Encoder::Mpp
    }

    pub fn from_element(name: &str) -> Option<Encoder> {
        PREFERENCE.into_iter().find(|e| e.element() == name)
    }

    /// The gst-launch fragment for this encoder with the path's settings.
    pub fn launch_fragment(self, p: &PathConfig) -> String {
        self.fragment("enc", p.gop, p.bitrate)
    }

    /// The encoder element named `name` (a rendition's is `enc1`, …).
    pub fn fragment(self, name: &str, gop: u32, bps: u32) -> String {
        match self {
            // The parameter set the R58 fleet soak-tested; other sets crashed
            // the VPU. Never set width/height here (RGA crashes).
            Encoder::Mpp => format!(
                "mpph264enc name={name} profile=baseline rc-mode=cbr qp-init=26 qp-min=10 qp-max=51 \
                 gop={gop} header-mode=each-idr bps={bps}"
            ),
            Encoder::X264 => format!(
                "x264enc name={name} tune=zerolatency speed-preset=ultrafast bframes=0 \
                 key-int-max={gop} bitrate={} ! video/x-h264,profile=constrained-baseline",
                kbps(bps)
            ),
            Encoder::OpenH264 => format!(
                "openh264enc name={name} usage-type=camera rate-control=bitrate complexity=low \
                 gop-size={gop} bitrate={bps}"
            ),
        }
    }

    /// (property, value) that sets the bitrate on a running encoder.
    pub fn bitrate_property(self, bps: u32) -> (&'static str, String) {
        match self {
            Encoder::Mpp => ("bps", bps.to_string()),
            Encoder::X264 => ("bitrate", kbps(bps).to_string()),
            Encoder::OpenH264 => ("bitrate", bps.to_string()),
        }
    }

    /// The bitrate property's value, as read back, in bit/s.
    pub fn bps_from_property(self, value: u64) -> u32 {
        match self {
            Encoder::X264 => (value * 1000).min(u32::MAX as u64) as u32,
            _ => value.min(u32::MAX as u64) as u32,
        }
    }
}

fn kbps(bps: u32) -> u32 {
    (bps / 1000).max(1)
}

/// Pick the encoder for one path. `wanted` is the config's `encoder` key.
pub fn select(wanted: &str, installed: impl Fn(&str) -> bool) -> Result<Encoder> {
    if wanted == "auto" {
        return PREFERENCE
            .into_iter()
            .find(|e| installed(e.element()))
            .ok_or_else(|| {
                Error::new(
                    "no H.264 encoder installed (need mpph264enc, x264enc or openh264enc; \
                 install gstreamer1.0-plugins-ugly or gstreamer1.0-rockchip)",
                )
            });
    }
    let enc = Encoder::from_element(wanted)
        .ok_or_else(|| Error::new(format!("unknown encoder \"{wanted}\"")))?;
    if !installed(enc.element()) {
        return Err(Error::new(format!(
            "encoder \"{wanted}\" is forced by the config but not installed on this host"
        )));
    }
    Ok(enc)
}

/// Hardware encoder slots: paths are admitted in config order and those
/// beyond `max` are refused, never started, so the VPU is not overcommitted.
#[derive(Debug)]
pub struct HwSlots {
    max: usize,
    used: usize,
}

impl HwSlots {
    pub fn new(max: usize) -> Self {
        HwSlots { max, used: 0 }
    }

    /// Admit a path needing `sessions` encoders (1 + its renditions).
    pub fn admit(&mut self, path: &str, enc: Encoder, sessions: usize) -> Result<()> {
        if !enc.is_hardware() {
            return Ok(());
        }
        if self.used + sessions > self.max {
            let what = if sessions > 1 {
                format!("its {sessions} hardware encoder sessions (1 + renditions) do not fit")
            } else {
                "all hardware encoder sessions are in use".into()
            };
            return Err(Error::new(format!(
                "path '{path}' refused: {what}; {} of {} in use (max_hw_encoders)",
                self.used, self.max
            )));
        }
        self.used += sessions;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(names: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |n| names.contains(&n)
    }

    #[test]
    fn auto_prefers_hardware_then_x264_then_openh264() {
        let all = only(&["mpph264enc", "x264enc", "openh264enc"]);
        assert_eq!(select("auto", &all).unwrap(), Encoder::Mpp);
        assert_eq!(
            select("auto", only(&["x264enc", "openh264enc"])).unwrap(),
            Encoder::X264
        );
        assert_eq!(
            select("auto", only(&["openh264enc"])).unwrap(),
            Encoder::OpenH264
        );
        let e = select("auto", only(&[])).unwrap_err().to_string();
        assert!(e.contains("no H.264 encoder"), "{e}");
    }

    #[test]
    fn forced_encoder_must_be_installed() {
        assert_eq!(
            select("x264enc", only(&["mpph264enc", "x264enc"])).unwrap(),
            Encoder::X264
        );
        let e = select("mpph264enc", only(&["x264enc"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("forced") && e.contains("mpph264enc"), "{e}");
    }

    #[test]
    fn mpp_uses_the_fleet_parameter_set_and_config_bitrate() {
        let p = PathConfig {
            bitrate: 4_000_000,
            ..PathConfig::default()
        };
        let f = Encoder::Mpp.launch_fragment(&p);
        for want in [
            "profile=baseline",
            "rc-mode=cbr",
            "qp-init=26",
            "qp-min=10",
            "qp-max=51",
            "gop=30",
            "header-mode=each-idr",
            "bps=4000000",
        ] {
            assert!(f.contains(want), "{want} missing from {f}");
        }
        assert!(!f.contains("width"), "never size the MPP encoder: {f}");
    }

    #[test]
    fn x264_has_no_bframes_and_kbit_bitrate() {
        let f = Encoder::X264.launch_fragment(&PathConfig::default());
        assert!(
            f.contains("bframes=0") && f.contains("tune=zerolatency") && f.contains("bitrate=2000"),
            "{f}"
        );
        assert_eq!(
            Encoder::X264.bitrate_property(3_000_000),
            ("bitrate", "3000".into())
        );
        assert_eq!(
            Encoder::Mpp.bitrate_property(3_000_000),
            ("bps", "3000000".into())
        );
        assert_eq!(Encoder::X264.bps_from_property(3000), 3_000_000);
        assert_eq!(Encoder::OpenH264.bps_from_property(3_000_000), 3_000_000);
    }

    #[test]
    fn hardware_slots_cap_mpp_only() {
        let mut s = HwSlots::new(2);
        assert!(s.admit("cam0", Encoder::Mpp, 1).is_ok());
        assert!(s.admit("cam1", Encoder::X264, 3).is_ok());
        assert!(s.admit("cam2", Encoder::Mpp, 1).is_ok());
        let e = s.admit("cam3", Encoder::Mpp, 1).unwrap_err().to_string();
        assert!(e.contains("cam3") && e.contains("max_hw_encoders"), "{e}");
        assert!(s.admit("cam4", Encoder::OpenH264, 1).is_ok());
    }

    #[test]
    fn renditions_count_as_hardware_sessions() {
        let mut s = HwSlots::new(4);
        assert!(s.admit("cam0", Encoder::Mpp, 3).is_ok());
        let e = s.admit("cam1", Encoder::Mpp, 2).unwrap_err().to_string();
        assert!(
            e.contains("2 hardware encoder sessions") && e.contains("3 of 4"),
            "{e}"
        );
        assert!(s.admit("cam1", Encoder::Mpp, 1).is_ok());
    }
}
