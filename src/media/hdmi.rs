//! The real HDMI inputs behind `signal::Receiver`:
//! - `HdmiRx`, the RK3588's own receiver (`stream_hdmirx`): DV timings,
//!   an EDID loaded from a file, source-change and 5 V events;
//! - `Bridge`, an LT6911 HDMI→MIPI bridge on `rkcif`: the signal is read
//!   from its subdev (pad 0), and the video node, which reports 0x0 until
//!   told, is given that format only while idle.
//!
//! Which node and subdev belong to a path is config (`device`, `subdev`),
//! not code: the numbering differs between images.

use std::path::{Path, PathBuf};

use super::signal::{Capture, Event, Probe, Receiver, Timings};
use super::source::{HDMIRX_NAME, VideoDevices};
use crate::board::v4l2::{self, Node};
use crate::config::PathConfig;

/// Pixel format a bridge's node is set to unless the path says otherwise
/// (what the fleet's LT6911 ports deliver).
pub const BRIDGE_FORMAT: &str = "UYVY";

/// Open the receiver a path's config names; the error says what is missing.
pub fn open(p: &PathConfig, devs: &dyn VideoDevices) -> Result<Box<dyn Receiver>, String> {
    let node = node_of(p, devs).ok_or_else(|| "no HDMI-RX device".to_string())?;
    Ok(match &p.subdev {
        Some(subdev) => Box::new(Bridge::open(
            node,
            Path::new(subdev),
            p.pixel_format.as_deref().unwrap_or(BRIDGE_FORMAT),
        )?),
        None => Box::new(HdmiRx::open(&node, p.edid.as_deref())?),
    })
}

/// The capture node: the path's `device` (a bridge always has one), else
/// the RK3588 receiver found by its V4L2 name.
fn node_of(p: &PathConfig, devs: &dyn VideoDevices) -> Option<PathBuf> {
    match &p.device {
        Some(d) => Some(PathBuf::from(d)),
        None => devs.find_by_name(HDMIRX_NAME),
    }
}

/// Read-only facts about a path's input, for the support bundle. Never
/// loads an EDID or sets a format: either would disturb a live input.
pub fn inspect(name: &str, p: &PathConfig, devs: &dyn VideoDevices) -> String {
    let fmt = |f: std::io::Result<v4l2::Format>| match f {
        Ok(f) => format!("{}x{} {}", f.width, f.height, v4l2::fourcc(f.code)),
        Err(e) => e.to_string(),
    };
    let Some(node_path) = node_of(p, devs) else {
        return format!("{name}: no {HDMIRX_NAME} node\n");
    };
    let mut out = format!("{name}: node {}", node_path.display());
    if let Some(sd) = &p.subdev {
        let pad = Node::open(Path::new(sd)).and_then(|n| n.subdev_format(0));
        // A media-bus code, not a fourcc: shown as a number.
        let pad = match pad {
            Ok(f) => format!("{}x{} code {:#06x}", f.width, f.height, f.code),
            Err(e) => e.to_string(),
        };
        out += &format!("\n  subdev {sd} pad 0: {pad}");
    }
    match Node::open(&node_path) {
        Ok(n) => {
            if p.subdev.is_none() {
                let t = match n.query_dv_timings() {
                    Ok(t) => format!("{}x{} {} mHz", t.width(), t.height(), t.millihertz()),
                    Err(e) => e.to_string(),
                };
                out += &format!("\n  dv timings: {t}");
            }
            out += &format!("\n  capture format: {}", fmt(n.capture_format()));
        }
        Err(e) => out += &format!("\n  {e}"),
    }
    out + "\n"
}

fn opened(path: &Path) -> Result<Node, String> {
    Node::open(path).map_err(|e| format!("opening {}: {e}", path.display()))
}

/// Subscribe, or say once why events are not coming (polling still works).
fn subscribe(node: &Node, kind: u32, id: u32) {
    if let Err(e) = node.subscribe(kind, id) {
        log::info!(
            "{}: no {} events ({e}); polling only",
            node.path.display(),
            if kind == v4l2::EVENT_CTRL {
                "5 V"
            } else {
                "source-change"
            }
        );
    }
}

fn translate(raw: Vec<v4l2::RawEvent>) -> Vec<Event> {
    raw.into_iter()
        .filter_map(|e| match e.kind {
            v4l2::EVENT_SOURCE_CHANGE => Some(Event::SourceChange),
            v4l2::EVENT_CTRL if e.id == v4l2::CID_DV_RX_POWER_PRESENT => {
                Some(Event::FiveVolt(e.value != 0))
            }
            _ => None,
        })
        .collect()
}

/// The RK3588's HDMI receiver node. Its fd stays open for queries and
/// events while `v4l2src` streams from the same node: one streamer and
/// read-only queries beside it is what the fleet's `v4l2-ctl` health checks
/// did for months (two *streaming* opens of video60 crashed the box).
pub struct HdmiRx {
    node: Node,
    /// The last timings queried, handed back by `prepare`.
    last: Option<v4l2::DvTimings>,
}

impl HdmiRx {
    pub fn open(dev: &Path, edid: Option<&Path>) -> Result<HdmiRx, String> {
        let node = opened(dev)?;
        if let Some(file) = edid {
            // The BSP driver has a default EDID, mainline none: say so loudly
            // but keep going, the source may still accept the default.
            match std::fs::read(file).and_then(|e| node.set_edid(&e).map(|()| e.len())) {
                Ok(n) => log::info!(
                    "{}: EDID {} loaded ({n} bytes)",
                    dev.display(),
                    file.display()
                ),
                Err(e) => log::error!(
                    "{}: loading the EDID {}: {e}",
                    dev.display(),
                    file.display()
                ),
            }
        }
        subscribe(&node, v4l2::EVENT_SOURCE_CHANGE, 0);
        subscribe(&node, v4l2::EVENT_CTRL, v4l2::CID_DV_RX_POWER_PRESENT);
        Ok(HdmiRx { node, last: None })
    }
}

impl Receiver for HdmiRx {
    fn query(&mut self) -> Probe {
        match self.node.query_dv_timings() {
            Ok(t) => {
                let p = Probe::Timings(Timings {
                    width: t.width(),
                    height: t.height(),
                    millihertz: t.millihertz(),
                    // The native receiver's card follows the stream itself.
                    audio_hz: 0,
                });
                self.last = Some(t);
                p
            }
            Err(e) => errno_probe(&e, "querying the signal"),
        }
    }

    fn events(&mut self) -> Vec<Event> {
        translate(self.node.events())
    }

    fn prepare(&mut self, t: Timings) -> Result<Capture, String> {
        if let Some(dv) = &self.last
            && let Err(e) = self.node.set_dv_timings(dv)
        {
            // The BSP driver follows the source by itself; mainline needs it.
            log::debug!("{}: setting timings {t}: {e}", self.node.path.display());
        }
        let f = self
            .node
            .capture_format()
            .map_err(|e| format!("reading the format of {}: {e}", self.node.path.display()))?;
        if (f.width, f.height) == (640, 480) {
            return Err("the receiver still shows its no-signal picture".into());
        }
        Ok(capture(&self.node.path, f))
    }
}

/// An LT6911 bridge: the subdev knows the signal, the video node captures.
pub struct Bridge {
    node: PathBuf,
    subdev: Node,
    code: u32,
}

impl Bridge {
    pub fn open(node: PathBuf, subdev: &Path, pixel_format: &str) -> Result<Bridge, String> {
        let code = v4l2::fourcc_code(pixel_format)
            .ok_or_else(|| format!("pixel_format \"{pixel_format}\" is not a fourcc"))?;
        let subdev = opened(subdev)?;
        subscribe(&subdev, v4l2::EVENT_SOURCE_CHANGE, 0);
        Ok(Bridge { node, subdev, code })
    }
}

impl Bridge {
    /// The source's audio rate as the bridge reports it; 0 without audio
    /// or when its driver has no such control.
    fn audio_hz(&self) -> u32 {
        if self.subdev.control(v4l2::CID_RK_AUDIO_PRESENT).ok() == Some(0) {
            return 0;
        }
        match self.subdev.control(v4l2::CID_RK_AUDIO_SAMPLING_RATE) {
            Ok(hz) if (8_000..=192_000).contains(&hz) => hz as u32,
            _ => 0,
        }
    }
}

impl Receiver for Bridge {
    fn query(&mut self) -> Probe {
        match self.subdev.subdev_format(0) {
            Ok(f) if f.width == 0 || f.height == 0 => Probe::NoLink,
            // A driver without a frame interval leaves the rate unknown
            // (the status then shows WxH only).
            Ok(f) => Probe::Timings(Timings {
                width: f.width,
                height: f.height,
                millihertz: self.subdev.subdev_millihertz(0).unwrap_or(0),
                audio_hz: self.audio_hz(),
            }),
            Err(e) => errno_probe(&e, "reading the bridge's format"),
        }
    }

    fn events(&mut self) -> Vec<Event> {
        translate(self.subdev.events())
    }

    fn prepare(&mut self, t: Timings) -> Result<Capture, String> {
        // Opened for this one call and closed again: r58 holds no fd on
        // the node while GStreamer streams from it.
        let node = opened(&self.node)?;
        let want = v4l2::Format {
            width: t.width,
            height: t.height,
            code: self.code,
        };
        let got = node.set_capture_format(want).map_err(|e| {
            format!(
                "setting {}x{} {} on {}: {e}",
                t.width,
                t.height,
                v4l2::fourcc(self.code),
                self.node.display()
            )
        })?;
        if (got.width, got.height) != (t.width, t.height) {
            return Err(format!(
                "{} took {}x{}, not the bridge's {}x{}",
                self.node.display(),
                got.width,
                got.height,
                t.width,
                t.height
            ));
        }
        Ok(capture(&self.node, got))
    }
}

fn capture(dev: &Path, f: v4l2::Format) -> Capture {
    Capture {
        element: format!("v4l2src device={} io-mode=mmap", dev.display()),
        width: f.width,
        height: f.height,
        format: v4l2::gst_format(f.code),
    }
}

fn errno_probe(e: &std::io::Error, doing: &str) -> Probe {
    match e.raw_os_error() {
        Some(libc::ENOLINK) => Probe::NoLink,
        Some(libc::ENOLCK) => Probe::NoLock,
        Some(libc::ERANGE) => Probe::Failed("signal out of the receiver's range".into()),
        _ => Probe::Failed(format!("{doing}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use crate::media::source::Sysfs;

    #[test]
    fn driver_answers_become_probes() {
        let err = |n| std::io::Error::from_raw_os_error(n);
        assert_eq!(errno_probe(&err(libc::ENOLINK), "x"), Probe::NoLink);
        assert_eq!(errno_probe(&err(libc::ENOLCK), "x"), Probe::NoLock);
        assert!(
            matches!(errno_probe(&err(libc::ERANGE), "x"), Probe::Failed(w) if w.contains("range"))
        );
        assert!(
            matches!(errno_probe(&err(libc::EIO), "querying the signal"), Probe::Failed(w) if w.starts_with("querying the signal: "))
        );
        let ev = translate(vec![
            v4l2::RawEvent {
                kind: v4l2::EVENT_SOURCE_CHANGE,
                id: 0,
                value: 0,
            },
            v4l2::RawEvent {
                kind: v4l2::EVENT_CTRL,
                id: v4l2::CID_DV_RX_POWER_PRESENT,
                value: 1,
            },
            v4l2::RawEvent {
                kind: v4l2::EVENT_CTRL,
                id: v4l2::CID_DV_RX_POWER_PRESENT,
                value: 0,
            },
            v4l2::RawEvent {
                kind: v4l2::EVENT_CTRL,
                id: 42,
                value: 1,
            },
        ]);
        assert_eq!(
            ev,
            [
                Event::SourceChange,
                Event::FiveVolt(true),
                Event::FiveVolt(false)
            ]
        );
    }

    #[test]
    fn opening_says_what_is_missing() {
        let empty = Sysfs {
            root: "/nonexistent-r58".into(),
            dev: "/dev".into(),
        };
        let mut p = PathConfig {
            source: Source::Hdmi,
            ..PathConfig::default()
        };
        assert_eq!(open(&p, &empty).err().unwrap(), "no HDMI-RX device");
        p.device = Some("/dev/video-r58-none".into());
        let e = open(&p, &empty).err().unwrap();
        assert!(e.starts_with("opening /dev/video-r58-none: "), "{e}");
        p.subdev = Some("/dev/v4l-subdev-r58-none".into());
        p.pixel_format = Some("UYVY8".into());
        assert_eq!(
            open(&p, &empty).err().unwrap(),
            "pixel_format \"UYVY8\" is not a fourcc"
        );
        p.pixel_format = None;
        let e = open(&p, &empty).err().unwrap();
        assert!(e.starts_with("opening /dev/v4l-subdev-r58-none: "), "{e}");
        // The bundle's read-only look says the same without failing.
        p.device = Some("/dev/video-r58-none".into());
        let facts = inspect("cam0", &p, &empty);
        assert!(facts.starts_with("cam0: node /dev/video-r58-none\n  subdev /dev/v4l-subdev-r58-none pad 0: No such file"), "{facts}");
        p.subdev = None;
        p.device = None;
        assert_eq!(inspect("cam1", &p, &empty), "cam1: no stream_hdmirx node\n");
    }
}
