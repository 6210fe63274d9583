//! Shared by the adaptive-quality tests and bench: the path they view and
//! the per-second timeline `tests/browser/adapt.mjs` records.

use serde_json::Value;

/// 720p30 at 2.5 Mbit/s, 2 s GOP, and one rendition at 500 kbit/s; video
/// only, as issue 17's cells are specified (sound would take ~100 kbit/s
/// of the 700).
pub const PATHS: &str = "[paths.cam0]\nsource = \"test\"\npattern = \"bars\"\nencoder = \"x264enc\"\n\
    width = 1280\nheight = 720\nfps = 30\nbitrate = 2500000\ngop = 60\naudio = \"off\"\n\
    renditions = [{ width = 640, height = 360, bitrate = 500000 }]\n";

/// One viewer's per-second samples.
pub struct Timeline(pub Vec<Value>);

impl Timeline {
    pub fn of(v: &Value) -> Timeline {
        Timeline(v["timeline"].as_array().cloned().unwrap_or_default())
    }

    pub fn at(&self, t: u64, key: &str) -> u64 {
        self.0
            .iter()
            .find(|s| s["t"] == t)
            .and_then(|s| s[key].as_u64())
            .unwrap_or(0)
    }

    /// Frames per second decoded from second `a` to `b`.
    pub fn fps(&self, a: u64, b: u64) -> f64 {
        (self.at(b, "frames") - self.at(a, "frames")) as f64 / (b - a) as f64
    }

    pub fn freezes(&self, a: u64, b: u64) -> u64 {
        self.at(b, "freezes") - self.at(a, "freezes")
    }

    pub fn frames(&self) -> Vec<u64> {
        self.0
            .iter()
            .map(|s| s["frames"].as_u64().unwrap_or(0))
            .collect()
    }

    /// The first second from which the picture kept its final height.
    pub fn settled(&self) -> u64 {
        let last = self.0.len() as u64;
        let h = self.at(last, "height");
        (1..=last)
            .find(|&t| (t..=last).all(|u| self.at(u, "height") == h))
            .unwrap_or(last)
    }

    pub fn heights(&self) -> Vec<u64> {
        self.0
            .iter()
            .map(|s| s["height"].as_u64().unwrap_or(0))
            .collect()
    }

    /// The first second from `from` on after which every 1 s window has
    /// at least `fps` frames, or None.
    pub fn smooth_from(&self, from: u64, fps: u64) -> Option<u64> {
        // The last sample races the end of the view: not counted.
        let last = self.0.len() as u64 - 1;
        (from..last)
            .find(|&t| (t..last).all(|u| self.at(u + 1, "frames") - self.at(u, "frames") >= fps))
    }
}
