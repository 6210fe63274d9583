//! `renditions = [{ width = 640, height = 360, bitrate = 500000 }]` under
//! `[paths.NAME]`: smaller encodes of the same capture for viewers whose
//! link cannot carry the main stream (issue 17). Each is scaled before its
//! own encoder (never by `mpph264enc`'s width/height: RGA crashes), counts
//! as one more encoder against `max_hw_encoders`, and runs only while a
//! viewer needs it.

use serde::Deserialize;

use super::{PathConfig, Source};

/// More would cost the VPU more than it saves the network.
pub const MAX_RENDITIONS: usize = 3;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rendition {
    pub width: u32,
    pub height: u32,
    /// Bits per second.
    pub bitrate: u32,
}

impl Rendition {
    /// "640x360 500 kbit/s", for logs and status.
    pub fn label(&self) -> String {
        format!(
            "{}x{} {} kbit/s",
            self.width,
            self.height,
            self.bitrate / 1000
        )
    }
}

/// The path's renditions must be smaller than its main stream and each
/// smaller than the one before, so "one step down" is always cheaper.
pub fn check(name: &str, p: &PathConfig) -> Result<(), String> {
    let r = &p.renditions;
    if r.is_empty() {
        return Ok(());
    }
    if p.source == Source::Publisher {
        return Err(format!(
            "path '{name}': renditions need a local source (a publisher's stream is not re-encoded)"
        ));
    }
    if r.len() > MAX_RENDITIONS {
        return Err(format!(
            "path '{name}': at most {MAX_RENDITIONS} renditions, not {}",
            r.len()
        ));
    }
    let mut above = (p.width, p.height, p.bitrate);
    for (i, x) in r.iter().enumerate() {
        let n = i + 1;
        if x.width < 16 || x.height < 16 || x.width % 2 != 0 || x.height % 2 != 0 {
            return Err(format!(
                "path '{name}': rendition {n} size {}x{} must be even and at least 16x16",
                x.width, x.height
            ));
        }
        if x.width > above.0 || x.height > above.1 {
            return Err(format!(
                "path '{name}': rendition {n} ({}x{}) must not be larger than {}x{} above it",
                x.width, x.height, above.0, above.1
            ));
        }
        if x.bitrate < 100_000 || x.bitrate >= above.2 {
            return Err(format!(
                "path '{name}': rendition {n} bitrate {} must be at least 100000 and below the {} bit/s above it",
                x.bitrate, above.2
            ));
        }
        above = (x.width, x.height, x.bitrate);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(r: &[(u32, u32, u32)]) -> PathConfig {
        PathConfig {
            renditions: r
                .iter()
                .map(|&(width, height, bitrate)| Rendition {
                    width,
                    height,
                    bitrate,
                })
                .collect(),
            ..PathConfig::default()
        }
    }

    #[test]
    fn a_ladder_going_down_is_accepted() {
        assert!(check("cam0", &path(&[])).is_ok());
        assert!(check("cam0", &path(&[(640, 360, 500_000), (320, 180, 200_000)])).is_ok());
    }

    #[test]
    fn each_step_must_be_smaller_and_cheaper() {
        let e = check("cam0", &path(&[(1920, 1080, 500_000)])).unwrap_err();
        assert!(e.contains("rendition 1") && e.contains("larger"), "{e}");
        let e = check("cam0", &path(&[(640, 360, 2_000_000)])).unwrap_err();
        assert!(e.contains("bitrate 2000000"), "{e}");
        let e = check("cam0", &path(&[(640, 360, 500_000), (800, 450, 300_000)])).unwrap_err();
        assert!(e.contains("rendition 2"), "{e}");
        let e = check("cam0", &path(&[(641, 360, 500_000)])).unwrap_err();
        assert!(e.contains("even"), "{e}");
        let four = [(640, 360, 500_000); 4];
        assert!(
            check("cam0", &path(&four))
                .unwrap_err()
                .contains("at most 3")
        );
    }

    #[test]
    fn a_publisher_path_has_nothing_to_re_encode() {
        let mut p = path(&[(640, 360, 500_000)]);
        p.source = Source::Publisher;
        assert!(check("guest1", &p).unwrap_err().contains("local source"));
    }
}
