//! The few V4L2 ioctls r58 issues itself, to watch an HDMI input: DV
//! timings, EDID, events, and a subdev's or capture node's format. Capture
//! itself stays in GStreamer's `v4l2src`.
//!
//! No V4L2 crate: the structs are fixed-size byte buffers with the field
//! offsets of `<linux/videodev2.h>` (the same on aarch64 and x86_64; the
//! tests pin the request numbers a C compiler gives for those headers).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const fn ioc(dir: u32, nr: u32, size: usize) -> libc::c_ulong {
    ((dir << 30) | ((size as u32) << 16) | ((b'V' as u32) << 8) | nr) as libc::c_ulong
}
const W: u32 = 1;
const R: u32 = 2;
const RW: u32 = 3;

const DV_TIMINGS_SIZE: usize = 132;
const EDID_SIZE: usize = 40;
const SUBSCRIPTION_SIZE: usize = 32;
const EVENT_SIZE: usize = 136;
const SUBDEV_FORMAT_SIZE: usize = 88;
const FORMAT_SIZE: usize = 208;
const FRAME_INTERVAL_SIZE: usize = 48;

const QUERY_DV_TIMINGS: libc::c_ulong = ioc(R, 99, DV_TIMINGS_SIZE);
const S_DV_TIMINGS: libc::c_ulong = ioc(RW, 87, DV_TIMINGS_SIZE);
const S_EDID: libc::c_ulong = ioc(RW, 41, EDID_SIZE);
const SUBSCRIBE_EVENT: libc::c_ulong = ioc(W, 90, SUBSCRIPTION_SIZE);
const DQEVENT: libc::c_ulong = ioc(R, 89, EVENT_SIZE);
const SUBDEV_G_FMT: libc::c_ulong = ioc(RW, 4, SUBDEV_FORMAT_SIZE);
const SUBDEV_G_FRAME_INTERVAL: libc::c_ulong = ioc(RW, 21, FRAME_INTERVAL_SIZE);
const G_FMT: libc::c_ulong = ioc(RW, 4, FORMAT_SIZE);
const S_FMT: libc::c_ulong = ioc(RW, 5, FORMAT_SIZE);
const CONTROL_SIZE: usize = 8;
const G_CTRL: libc::c_ulong = ioc(RW, 27, CONTROL_SIZE);

pub const EVENT_CTRL: u32 = 3;
pub const EVENT_SOURCE_CHANGE: u32 = 5;
/// The 5 V detect control of an HDMI receiver.
pub const CID_DV_RX_POWER_PRESENT: u32 = 0x00a0_0964;
/// Rockchip's bridge drivers (LT6911UXC and kin, rk628): the source's
/// audio sample rate in Hz, and whether it sends audio at all
/// (V4L2_CID_USER_BASE + 0x1080 + 0x100 and + 0x101).
pub const CID_RK_AUDIO_SAMPLING_RATE: u32 = 0x0098_1a80;
pub const CID_RK_AUDIO_PRESENT: u32 = 0x0098_1a81;
/// Deliver the current value right after subscribing.
const SUB_FL_SEND_INITIAL: u32 = 1;
const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
const BUF_TYPE_VIDEO_CAPTURE_MPLANE: u32 = 9;
const SUBDEV_FORMAT_ACTIVE: u32 = 1;

/// A kernel struct as bytes, aligned for the ones holding 64-bit fields.
#[repr(C, align(8))]
struct Buf<const N: usize>([u8; N]);

impl<const N: usize> Buf<N> {
    fn new() -> Self {
        Buf([0; N])
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_ne_bytes(self.0[at..at + 4].try_into().unwrap())
    }
    fn u64(&self, at: usize) -> u64 {
        u64::from_ne_bytes(self.0[at..at + 8].try_into().unwrap())
    }
    fn put(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
}

/// An incoming signal's timings as `VIDIOC_QUERY_DV_TIMINGS` gave them,
/// kept whole so they can be handed back with `VIDIOC_S_DV_TIMINGS`.
pub struct DvTimings(Buf<DV_TIMINGS_SIZE>);

impl DvTimings {
    // Offsets into `struct v4l2_dv_timings` (packed: type, then the bt union).
    pub fn width(&self) -> u32 {
        self.0.u32(4)
    }
    pub fn height(&self) -> u32 {
        self.0.u32(8)
    }
    fn interlaced(&self) -> bool {
        self.0.u32(12) != 0
    }
    fn pixelclock(&self) -> u64 {
        self.0.u64(20)
    }
    /// Frames per 1000 s, from the pixel clock and the total frame size.
    pub fn millihertz(&self) -> u32 {
        let porches = |from: usize, n: usize| (0..n).map(move |i| self.0.u32(from + 4 * i) as u64);
        let htotal = self.width() as u64 + porches(28, 3).sum::<u64>();
        let mut vtotal = self.height() as u64 + porches(40, 3).sum::<u64>();
        if self.interlaced() {
            vtotal += porches(52, 3).sum::<u64>();
        }
        (self.pixelclock() * 1000)
            .checked_div(htotal * vtotal)
            .unwrap_or(0) as u32
    }

    #[cfg(test)]
    pub fn fake(w: u32, h: u32, pixelclock: u64, porches: [u32; 6]) -> DvTimings {
        let mut b = Buf::new();
        b.put(4, w);
        b.put(8, h);
        b.0[20..28].copy_from_slice(&pixelclock.to_ne_bytes());
        for (i, p) in porches.iter().enumerate() {
            b.put(28 + 4 * i, *p);
        }
        DvTimings(b)
    }
}

/// What a subdev or capture node says it delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub width: u32,
    pub height: u32,
    /// A media-bus code for a subdev, a fourcc for a capture node.
    pub code: u32,
}

/// One event from `VIDIOC_DQEVENT`: its type, id and, for control
/// events, the control's new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent {
    pub kind: u32,
    pub id: u32,
    pub value: i64,
}

/// An open V4L2 node (`/dev/videoN` or `/dev/v4l-subdevN`).
pub struct Node {
    file: File,
    pub path: PathBuf,
}

impl Node {
    /// Non-blocking, so dequeueing events never waits and a slow driver
    /// cannot hold the path's thread in `open`.
    pub fn open(path: &Path) -> io::Result<Node> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Node {
            file,
            path: path.to_owned(),
        })
    }

    fn ioctl<const N: usize>(&self, req: libc::c_ulong, buf: &mut Buf<N>) -> io::Result<()> {
        // SAFETY: `buf` is a live, 8-byte aligned buffer of the exact size
        // encoded in `req`, which is all the kernel reads or writes.
        let r = unsafe { libc::ioctl(self.file.as_raw_fd(), req as _, buf.0.as_mut_ptr()) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// The incoming signal's timings; ENOLINK = no 5 V, ENOLCK = no lock,
    /// ERANGE = out of the receiver's range.
    pub fn query_dv_timings(&self) -> io::Result<DvTimings> {
        let mut b = Buf::new();
        self.ioctl(QUERY_DV_TIMINGS, &mut b)?;
        Ok(DvTimings(b))
    }

    /// Hand queried timings back before streaming (the mainline driver
    /// captures at the timings set, not the ones detected).
    pub fn set_dv_timings(&self, t: &DvTimings) -> io::Result<()> {
        let mut b = Buf::<DV_TIMINGS_SIZE>::new();
        b.0.copy_from_slice(&t.0.0);
        self.ioctl(S_DV_TIMINGS, &mut b)
    }

    /// Load an EDID on pad 0: whole 128-byte blocks.
    pub fn set_edid(&self, edid: &[u8]) -> io::Result<()> {
        if edid.is_empty() || !edid.len().is_multiple_of(128) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} bytes is not a whole number of EDID blocks", edid.len()),
            ));
        }
        let mut data = edid.to_vec();
        let mut b = Buf::<EDID_SIZE>::new();
        b.put(8, (edid.len() / 128) as u32);
        b.0[32..40].copy_from_slice(&(data.as_mut_ptr() as u64).to_ne_bytes());
        self.ioctl(S_EDID, &mut b)
    }

    /// Subscribe to an event type (`id` names the control for control events).
    pub fn subscribe(&self, kind: u32, id: u32) -> io::Result<()> {
        let mut b = Buf::<SUBSCRIPTION_SIZE>::new();
        b.put(0, kind);
        b.put(4, id);
        b.put(8, SUB_FL_SEND_INITIAL);
        self.ioctl(SUBSCRIBE_EVENT, &mut b)
    }

    /// Every pending event; none pending (ENOENT) ends the list.
    pub fn events(&self) -> Vec<RawEvent> {
        let mut out = Vec::new();
        // Bounded: a storm of events must not starve the path's thread.
        for _ in 0..64 {
            let mut b = Buf::<EVENT_SIZE>::new();
            if self.ioctl(DQEVENT, &mut b).is_err() {
                break;
            }
            // v4l2_event_ctrl: changes, type, then the value (s64) at 8.
            let value = i64::from_ne_bytes(b.0[16..24].try_into().unwrap());
            out.push(RawEvent {
                kind: b.u32(0),
                id: b.u32(96),
                value,
            });
        }
        out
    }

    /// A subdev pad's active format: only reads, so safe while streaming.
    pub fn subdev_format(&self, pad: u32) -> io::Result<Format> {
        let mut b = Buf::<SUBDEV_FORMAT_SIZE>::new();
        b.put(0, SUBDEV_FORMAT_ACTIVE);
        b.put(4, pad);
        self.ioctl(SUBDEV_G_FMT, &mut b)?;
        Ok(Format {
            width: b.u32(8),
            height: b.u32(12),
            code: b.u32(16),
        })
    }

    /// A subdev pad's frame rate in frames per 1000 s (read-only). `which`
    /// stays 0: kernels before 6.8 have no such field, and newer ones read
    /// it as "active" for callers that did not opt in.
    pub fn subdev_millihertz(&self, pad: u32) -> io::Result<u32> {
        let mut b = Buf::<FRAME_INTERVAL_SIZE>::new();
        b.put(0, pad);
        self.ioctl(SUBDEV_G_FRAME_INTERVAL, &mut b)?;
        // An interval of num/den seconds per frame.
        let (num, den) = (b.u32(4) as u64, b.u32(8) as u64);
        Ok((den * 1000).checked_div(num).unwrap_or(0) as u32)
    }

    /// A control's value (`VIDIOC_G_CTRL`).
    pub fn control(&self, id: u32) -> io::Result<i32> {
        let mut b = Buf::<CONTROL_SIZE>::new();
        b.put(0, id);
        self.ioctl(G_CTRL, &mut b)?;
        Ok(b.u32(4) as i32)
    }

    /// The capture format (multi-planar first, as rkcif and hdmirx are).
    pub fn capture_format(&self) -> io::Result<Format> {
        self.format_ioctl(G_FMT, None)
    }

    /// Set the capture format. Only ever on an idle node: on a streaming
    /// rkcif node this crashed the box.
    pub fn set_capture_format(&self, f: Format) -> io::Result<Format> {
        self.format_ioctl(S_FMT, Some(f))
    }

    fn format_ioctl(&self, req: libc::c_ulong, set: Option<Format>) -> io::Result<Format> {
        let mut last = None;
        for kind in [BUF_TYPE_VIDEO_CAPTURE_MPLANE, BUF_TYPE_VIDEO_CAPTURE] {
            let mut b = Buf::<FORMAT_SIZE>::new();
            b.put(0, kind);
            if let Some(f) = set {
                // Same offsets for pix and pix_mp: width, height, pixelformat.
                b.put(8, f.width);
                b.put(12, f.height);
                b.put(16, f.code);
            }
            match self.ioctl(req, &mut b) {
                Ok(()) => {
                    return Ok(Format {
                        width: b.u32(8),
                        height: b.u32(12),
                        code: b.u32(16),
                    });
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)))
    }
}

/// A fourcc as text ("NV16"); unprintable bytes as `?`.
pub fn fourcc(code: u32) -> String {
    code.to_le_bytes()
        .iter()
        .map(|b| {
            if b.is_ascii_graphic() {
                *b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// The fourcc for "UYVY" and the like; `None` unless four printable bytes.
pub fn fourcc_code(text: &str) -> Option<u32> {
    let b = text.as_bytes();
    (b.len() == 4 && b.iter().all(u8::is_ascii_graphic))
        .then(|| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// GStreamer's name for a V4L2 pixel format, where the two differ or the
/// format is one an HDMI input delivers; `None` leaves it to negotiation.
pub fn gst_format(code: u32) -> Option<&'static str> {
    Some(match &fourcc(code)[..] {
        "NV12" => "NV12",
        "NV16" => "NV16",
        "NV24" => "NV24",
        "UYVY" => "UYVY",
        "YUYV" => "YUY2",
        "BGR3" => "BGR",
        "RGB3" => "RGB",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_match_the_kernel_headers() {
        // Printed by a C program including <linux/videodev2.h> and
        // <linux/v4l2-subdev.h>, built for x86_64 and for aarch64.
        assert_eq!(QUERY_DV_TIMINGS, 0x8084_5663);
        assert_eq!(S_DV_TIMINGS, 0xc084_5657);
        assert_eq!(S_EDID, 0xc028_5629);
        assert_eq!(SUBSCRIBE_EVENT, 0x4020_565a);
        assert_eq!(DQEVENT, 0x8088_5659);
        assert_eq!(SUBDEV_G_FMT, 0xc058_5604);
        assert_eq!(SUBDEV_G_FRAME_INTERVAL, 0xc030_5615);
        assert_eq!(G_FMT, 0xc0d0_5604);
        assert_eq!(S_FMT, 0xc0d0_5605);
        assert_eq!(G_CTRL, 0xc008_561b);
    }

    #[test]
    fn frame_rate_comes_from_the_pixel_clock_and_blanking() {
        // CEA 1080p60: 148.5 MHz, 2200 x 1125 total.
        let t = DvTimings::fake(1920, 1080, 148_500_000, [88, 44, 148, 4, 5, 36]);
        assert_eq!((t.width(), t.height(), t.millihertz()), (1920, 1080, 60000));
        // CEA 720p50: 74.25 MHz, 1980 x 750.
        let t = DvTimings::fake(1280, 720, 74_250_000, [440, 40, 220, 5, 5, 20]);
        assert_eq!(t.millihertz(), 50000);
        // 1080p59.94: 148.3516 MHz.
        let t = DvTimings::fake(1920, 1080, 148_351_648, [88, 44, 148, 4, 5, 36]);
        assert_eq!(t.millihertz(), 59940);
        // A zeroed answer must not divide by zero.
        assert_eq!(DvTimings::fake(0, 0, 0, [0; 6]).millihertz(), 0);
    }

    #[test]
    fn fourccs_read_and_map_to_gstreamer() {
        let nv16 = fourcc_code("NV16").unwrap();
        assert_eq!(nv16, 0x3631_564e);
        assert_eq!(fourcc(nv16), "NV16");
        assert_eq!(gst_format(fourcc_code("BGR3").unwrap()), Some("BGR"));
        assert_eq!(gst_format(fourcc_code("YUYV").unwrap()), Some("YUY2"));
        assert_eq!(gst_format(0), None);
        assert_eq!(fourcc_code("NV1"), None);
    }

    #[test]
    fn a_missing_node_is_an_error_not_a_hang() {
        let e = Node::open(Path::new("/dev/video-r58-none")).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let bad = Node {
            file: File::open("/dev/null").unwrap(),
            path: "/dev/null".into(),
        };
        assert!(bad.query_dv_timings().is_err());
        assert!(bad.events().is_empty());
        assert!(bad.set_edid(&[0; 100]).is_err(), "partial block refused");
    }
}
