//! Batched UDP sends. str0m hands the engine one packet at a time; sending
//! each with its own `sendto` made the system call the largest single cost
//! of one more viewer. Packets queue here during a wake-up and leave in one
//! `sendmmsg`, and runs of equal-size packets to one peer (a frame's RTP
//! packets) go as one UDP GSO message (`UDP_SEGMENT`, Linux ≥ 4.18), which
//! the kernel splits. Where GSO is refused, it is switched off for good and
//! the packets go one message each, still batched.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Linux caps a GSO message at 64 segments (UDP_MAX_SEGMENTS) and 64 KiB.
const MAX_SEGMENTS: usize = 64;
const MAX_GSO_BYTES: usize = 65_000;
/// Messages per `sendmmsg` call (the kernel's UIO_MAXIOV is 1024).
const MAX_MESSAGES: usize = 256;

/// Counters for `/v3/info` and `make bench`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct SendStats {
    pub packets: u64,
    pub syscalls: u64,
    /// Packets the kernel refused (socket buffer full): lost, as a full
    /// network would lose them; NACK and keyframes recover.
    pub dropped: u64,
}

/// Consecutive packets to one peer leaving in one message.
#[derive(Debug, PartialEq)]
struct Group {
    to: SocketAddr,
    /// Range in the queue.
    start: usize,
    end: usize,
    /// GSO segment size, when the group has more than one packet.
    segment: Option<u16>,
}

pub struct UdpBatch {
    queue: Vec<(SocketAddr, Vec<u8>)>,
    gso: bool,
    pub stats: SendStats,
}

impl Default for UdpBatch {
    fn default() -> Self {
        UdpBatch {
            queue: Vec::new(),
            gso: cfg!(target_os = "linux"),
            stats: SendStats::default(),
        }
    }
}

impl UdpBatch {
    pub fn push(&mut self, to: SocketAddr, data: Vec<u8>) {
        self.queue.push((to, data));
    }

    /// Send everything queued on `fd` (non-blocking) and empty the queue.
    pub fn flush(&mut self, fd: RawFd) {
        if self.queue.is_empty() {
            return;
        }
        let groups = group(&self.queue, self.gso);
        // One iovec per packet, made once per flush; messages point into it.
        let iovs: Vec<libc::iovec> = self
            .queue
            .iter()
            .map(|(_, d)| libc::iovec {
                iov_base: d.as_ptr() as *mut libc::c_void,
                iov_len: d.len(),
            })
            .collect();
        let mut done = 0;
        while done < groups.len() {
            let end = (done + MAX_MESSAGES).min(groups.len());
            match send(fd, &iovs, &groups[done..end]) {
                Ok((sent, calls)) => {
                    self.stats.syscalls += calls;
                    self.count(&groups[done..done + sent]);
                    done += sent;
                    if sent == 0 {
                        break;
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                // A kernel or route without GSO: say so once, then send
                // the rest packet by packet.
                Err(e) if self.gso && groups[done].segment.is_some() => {
                    log::info!("webrtc: UDP GSO unavailable ({e}); sending packets singly");
                    self.gso = false;
                    self.queue.drain(..groups[done].start);
                    return self.flush(fd);
                }
                Err(e) => {
                    log::debug!("webrtc: udp send to {}: {e}", groups[done].to);
                    self.stats.dropped += (groups[done].end - groups[done].start) as u64;
                    done += 1;
                }
            }
        }
        let unsent: usize = groups[done..].iter().map(|g| g.end - g.start).sum();
        self.stats.dropped += unsent as u64;
        self.queue.clear();
    }

    fn count(&mut self, sent: &[Group]) {
        let n: usize = sent.iter().map(|g| g.end - g.start).sum();
        self.stats.packets += n as u64;
    }
}

/// Split the queue into messages: with GSO, runs of packets to one peer
/// whose sizes equal the first's (the last may be shorter).
fn group(queue: &[(SocketAddr, Vec<u8>)], gso: bool) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for (i, (to, data)) in queue.iter().enumerate() {
        if gso && let Some(g) = out.last_mut() {
            let seg = queue[g.start].1.len();
            let last_len = queue[g.end - 1].1.len();
            let fits = g.to == *to
                && last_len == seg
                && data.len() <= seg
                && g.end - g.start < MAX_SEGMENTS
                && (g.end - g.start + 1) * seg <= MAX_GSO_BYTES
                && seg <= u16::MAX as usize;
            if fits {
                g.end = i + 1;
                g.segment = Some(seg as u16);
                continue;
            }
        }
        out.push(Group {
            to: *to,
            start: i,
            end: i + 1,
            segment: None,
        });
    }
    out
}

/// `sendmmsg` of `groups` (`iovs` has one entry per queued packet):
/// (messages sent, system calls made).
fn send(fd: RawFd, iovs: &[libc::iovec], groups: &[Group]) -> io::Result<(usize, u64)> {
    // Everything a message points at lives in `iovs` and these vectors,
    // which are filled completely before any pointer into them is taken.
    let addrs: Vec<(libc::sockaddr_storage, libc::socklen_t)> =
        groups.iter().map(|g| sockaddr(g.to)).collect();
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
    let mut control = vec![0u8; space * groups.len()];
    let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        // SAFETY: an all-zero msghdr is valid (no name, no iov, no control).
        let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
        h.msg_name = &addrs[i].0 as *const _ as *mut libc::c_void;
        h.msg_namelen = addrs[i].1;
        h.msg_iov = iovs[g.start..].as_ptr() as *mut libc::iovec;
        h.msg_iovlen = g.end - g.start;
        if let Some(seg) = g.segment {
            let buf = &mut control[i * space..(i + 1) * space];
            h.msg_control = buf.as_mut_ptr() as *mut libc::c_void;
            h.msg_controllen = space;
            // SAFETY: msg_control points at `space` bytes, enough for one
            // cmsghdr carrying a u16 (CMSG_SPACE above).
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&h);
                (*c).cmsg_level = libc::SOL_UDP;
                (*c).cmsg_type = libc::UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, seg);
            }
        }
        msgs.push(libc::mmsghdr {
            msg_hdr: h,
            msg_len: 0,
        });
    }
    let mut sent = 0;
    let mut calls = 0;
    while sent < msgs.len() {
        // SAFETY: every header points into `iovs`, `addrs` and `control`,
        // which outlive the call and are not moved while it runs.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                msgs[sent..].as_mut_ptr(),
                (msgs.len() - sent) as u32,
                libc::MSG_DONTWAIT,
            )
        };
        calls += 1;
        if n < 0 {
            let e = io::Error::last_os_error();
            if sent > 0 && e.raw_os_error() != Some(libc::EINTR) {
                // Report what went; the caller sees the error on its retry.
                return Ok((sent, calls));
            }
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        sent += n as usize;
    }
    Ok((sent, calls))
}

fn sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in.
            unsafe { std::ptr::write(&mut s as *mut _ as *mut libc::sockaddr_in, sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6.
            unsafe { std::ptr::write(&mut s as *mut _ as *mut libc::sockaddr_in6, sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (s, len as libc::socklen_t)
}

#[cfg(test)]
mod tests;
