//! Where a path's pictures come from, as a gst-launch fragment.
//!
//! Device discovery is behind `VideoDevices` so the HDMI-RX lookup is tested
//! against a fake sysfs tree; the real one reads `/sys/class/video4linux`.

use std::path::{Path, PathBuf};

use crate::config::{PathConfig, Source};

/// V4L2 name of the RK3588's native HDMI receiver node.
pub const HDMIRX_NAME: &str = "stream_hdmirx";

pub trait VideoDevices: Send + Sync {
    /// `/dev/videoN` whose V4L2 name is `name`.
    fn find_by_name(&self, name: &str) -> Option<PathBuf>;
    fn exists(&self, dev: &Path) -> bool;
}

/// The real host: `/sys/class/video4linux/videoN/name`.
pub struct Sysfs {
    pub root: PathBuf,
    pub dev: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs {
            root: "/sys/class/video4linux".into(),
            dev: "/dev".into(),
        }
    }
}

impl VideoDevices for Sysfs {
    fn find_by_name(&self, name: &str) -> Option<PathBuf> {
        let mut nodes: Vec<_> = std::fs::read_dir(&self.root).ok()?.flatten().collect();
        nodes.sort_by_key(|e| e.file_name());
        nodes.into_iter().find_map(|e| {
            let n = std::fs::read_to_string(e.path().join("name")).ok()?;
            (n.trim() == name).then(|| self.dev.join(e.file_name()))
        })
    }

    fn exists(&self, dev: &Path) -> bool {
        dev.exists()
    }
}

/// Why a path cannot start right now (it stays `no_signal`, not `error`).
#[derive(Debug, PartialEq)]
pub struct NoSource(pub String);

/// The source half of the pipeline, ending in raw video at the path's size
/// and rate. Frame rate is never forced in a capture device's caps (120 fps
/// HDMI sources broke negotiation); `videorate` converts after capture.
/// `clock`: the host has `clockoverlay` for the test pattern.
/// The test source's element whose frames at whole seconds are flashed.
pub const FLASH: &str = "flash";

pub fn launch_fragment(
    p: &PathConfig,
    devs: &dyn VideoDevices,
    clock: bool,
) -> Result<String, NoSource> {
    let (w, h, fps) = (p.width, p.height, p.fps);
    let raw = format!("video/x-raw,width={w},height={h},framerate={fps}/1");
    // With sound, the first frame of every whole second is flashed white
    // (`FLASH`, on I420's luma plane), the instant the test tone clicks:
    // lip sync can be measured on what a viewer decodes.
    let flash = if p.audio != crate::config::audio::Audio::Off {
        format!(",format=I420 ! identity name={FLASH}")
    } else {
        String::new()
    };
    let pattern = match p.pattern.as_deref() {
        Some("bars") => "smpte horizontal-speed=8",
        Some("snow") => "snow",
        _ => "ball",
    };
    match p.source {
        // The clock (pango plugin) helps eyeball latency; images without
        // it still get a moving pattern.
        Source::Test if clock => Ok(format!(
            "videotestsrc is-live=true pattern={pattern} ! {raw}{flash} ! \
             clockoverlay time-format=\"%H:%M:%S\" halignment=right valignment=top ! \
             timeoverlay halignment=left valignment=bottom"
        )),
        Source::Test => Ok(format!(
            "videotestsrc is-live=true pattern={pattern} ! {raw}{flash}"
        )),
        Source::V4l2 => {
            let d = PathBuf::from(p.device.as_deref().unwrap_or_default());
            if !devs.exists(&d) {
                return Err(NoSource(format!("{} not present", d.display())));
            }
            Ok(format!(
                "v4l2src device={} io-mode=mmap ! videorate ! videoscale ! videoconvert ! {raw}",
                d.display()
            ))
        }
        // Driven by its receiver's signal instead (`input.rs`).
        Source::Hdmi => Err(NoSource("an HDMI input starts from its signal".into())),
        Source::Publisher => Err(NoSource("waiting for a WHIP publisher".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_sysfs(names: &[(&str, &str)]) -> (Sysfs, PathBuf) {
        let root =
            std::env::temp_dir().join(format!("r58-sysfs-{}-{}", std::process::id(), names.len()));
        let _ = std::fs::remove_dir_all(&root);
        for (node, name) in names {
            std::fs::create_dir_all(root.join(node)).unwrap();
            std::fs::write(root.join(node).join("name"), format!("{name}\n")).unwrap();
        }
        (
            Sysfs {
                root: root.clone(),
                dev: "/dev".into(),
            },
            root,
        )
    }

    #[test]
    fn hdmi_node_found_by_v4l2_name() {
        let (s, root) = fake_sysfs(&[("video0", "rkcif-mipi-lvds"), ("video60", "stream_hdmirx")]);
        assert_eq!(
            s.find_by_name(HDMIRX_NAME),
            Some(PathBuf::from("/dev/video60"))
        );
        assert_eq!(s.find_by_name("uvcvideo"), None);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn test_pattern_is_configurable() {
        let p = PathConfig {
            pattern: Some("bars".into()),
            ..PathConfig::default()
        };
        let f = launch_fragment(&p, &Sysfs::default(), false).unwrap();
        assert!(f.contains("pattern=smpte horizontal-speed=8"), "{f}");
        let f = launch_fragment(&PathConfig::default(), &Sysfs::default(), false).unwrap();
        assert!(f.contains("pattern=ball"), "{f}");
    }

    #[test]
    fn test_pattern_has_clock_and_size() {
        let f = launch_fragment(&PathConfig::default(), &Sysfs::default(), true).unwrap();
        assert!(f.contains("videotestsrc is-live=true") && f.contains("clockoverlay"));
        assert!(f.contains("width=1280,height=720,framerate=30/1"), "{f}");
        let plain = launch_fragment(&PathConfig::default(), &Sysfs::default(), false).unwrap();
        assert!(
            !plain.contains("overlay") && plain.contains("framerate=30/1"),
            "{plain}"
        );
    }
}
