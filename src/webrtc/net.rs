//! The shared UDP socket and the facts needed to demultiplex it.
//!
//! One wildcard-bound socket serves every session. The ICE agent only
//! accepts a check that arrived on one of its own candidate addresses, so
//! each datagram's real destination address is read with `IP_PKTINFO`.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Bind `0.0.0.0:port` with destination-address reporting switched on.
pub fn bind_udp(port: u16) -> io::Result<UdpSocket> {
    let std = std::net::UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))?;
    std.set_nonblocking(true)?;
    let on: libc::c_int = 1;
    // SAFETY: valid fd, option value is a c_int that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            std.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            &on as *const _ as *const libc::c_void,
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // One socket carries every session: a publisher's burst (a keyframe)
    // must fit while the engine is busy sending a frame to many viewers,
    // and a batch of a frame for many viewers must fit on the way out; the
    // default 208 KiB is sized for one flow, not for every session at once.
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        set_buffer(std.as_raw_fd(), opt, SOCKET_BUFFER);
    }
    UdpSocket::from_std(std)
}

/// What the media socket asks for in each direction (the kernel caps it at
/// net.core.rmem_max/wmem_max unless r58 may force it, as root).
const SOCKET_BUFFER: libc::c_int = 4 << 20;

fn set_buffer(fd: std::os::fd::RawFd, opt: libc::c_int, bytes: libc::c_int) {
    let force = if opt == libc::SO_RCVBUF {
        libc::SO_RCVBUFFORCE
    } else {
        libc::SO_SNDBUFFORCE
    };
    let set = |o: libc::c_int| {
        // SAFETY: valid fd; the value is a c_int that outlives the call.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                o,
                &bytes as *const _ as *const libc::c_void,
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    // FORCE needs CAP_NET_ADMIN; without it the plain option, capped.
    if set(force) != 0 && set(opt) != 0 {
        log::debug!("webrtc: socket buffer: {}", io::Error::last_os_error());
    }
}

/// Receive one datagram: (length, source, destination IP).
pub async fn recv_from_to(
    sock: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, IpAddr)> {
    loop {
        sock.readable().await?;
        match sock.try_io(Interest::READABLE, || {
            recvmsg_pktinfo(sock.as_raw_fd(), buf)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

fn recvmsg_pktinfo(fd: i32, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, IpAddr)> {
    // SAFETY: all pointers refer to locals that outlive the call; the kernel
    // writes at most the lengths we pass.
    unsafe {
        let mut src: libc::sockaddr_in = zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut _,
            iov_len: buf.len(),
        };
        let mut cbuf = [0u8; 64];
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = &mut src as *mut _ as *mut _;
        msg.msg_namelen = size_of::<libc::sockaddr_in>() as _;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut _;
        msg.msg_controllen = cbuf.len() as _;
        let n = libc::recvmsg(fd, &mut msg, 0);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let source = SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(src.sin_addr.s_addr)),
            u16::from_be(src.sin_port),
        ));
        let mut dest = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_PKTINFO {
                let info = &*(libc::CMSG_DATA(c) as *const libc::in_pktinfo);
                dest = IpAddr::V4(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Ok((n as usize, source, dest))
    }
}

/// IPv4 addresses of the interfaces that are up (loopback included: a
/// browser on the box itself should work too). `only` limits them to the
/// named interfaces (`eth0`, `tailscale0`); empty means all.
pub fn interface_addrs(only: &[String]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs allocates a list we walk read-only and then free.
    unsafe {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut p = head;
        while !p.is_null() {
            let ifa = &*p;
            let up = ifa.ifa_flags & libc::IFF_UP as u32 != 0;
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name).to_string_lossy();
            let wanted = only.is_empty() || only.iter().any(|n| *n == name);
            if up
                && wanted
                && !ifa.ifa_addr.is_null()
                && (*ifa.ifa_addr).sa_family as i32 == libc::AF_INET
            {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            }
            p = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out.sort_by_key(|a| a.is_loopback()); // real interfaces first
    out.dedup();
    out
}

/// Our ICE ufrag from a STUN Binding request's USERNAME ("ours:theirs").
/// None for anything that is not a STUN request carrying one.
pub fn stun_local_ufrag(pkt: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    if pkt.len() < 20 || pkt[0] & 0xc0 != 0 || pkt[4..8] != MAGIC {
        return None;
    }
    let len = u16::from_be_bytes([pkt[2], pkt[3]]) as usize;
    let attrs = pkt.get(20..20 + len)?;
    let mut i = 0;
    while i + 4 <= attrs.len() {
        let t = u16::from_be_bytes([attrs[i], attrs[i + 1]]);
        let l = u16::from_be_bytes([attrs[i + 2], attrs[i + 3]]) as usize;
        let v = attrs.get(i + 4..i + 4 + l)?;
        if t == USERNAME {
            let s = std::str::from_utf8(v).ok()?;
            return s.split(':').next();
        }
        i += 4 + l.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun_with_username(user: &str) -> Vec<u8> {
        let mut attrs = vec![0x80, 0x2a, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]; // ICE-CONTROLLING first
        attrs.extend(USERNAME_T.to_be_bytes());
        attrs.extend((user.len() as u16).to_be_bytes());
        attrs.extend(user.as_bytes());
        attrs.resize(attrs.len().div_ceil(4) * 4, 0);
        let mut p = vec![0x00, 0x01];
        p.extend((attrs.len() as u16).to_be_bytes());
        p.extend([0x21, 0x12, 0xa4, 0x42]);
        p.extend([7u8; 12]);
        p.extend(attrs);
        p
    }
    const USERNAME_T: u16 = 6;

    #[test]
    fn ufrag_from_binding_request() {
        assert_eq!(
            stun_local_ufrag(&stun_with_username("srvA:cli")),
            Some("srvA")
        );
        assert_eq!(
            stun_local_ufrag(&stun_with_username("abcde:x")),
            Some("abcde")
        );
    }

    #[test]
    fn non_stun_is_ignored() {
        assert_eq!(stun_local_ufrag(&[0x80, 0x60, 0, 1, 0, 0, 0, 0]), None); // RTP
        assert_eq!(stun_local_ufrag(&[22, 254, 253]), None); // DTLS
        let mut truncated = stun_with_username("a:b");
        truncated.truncate(24);
        assert_eq!(stun_local_ufrag(&truncated), None);
    }

    #[test]
    fn loopback_is_listed_last() {
        let a = interface_addrs(&[]);
        assert!(a.iter().any(|a| a.is_loopback()));
        assert!(a.last().unwrap().is_loopback());
        assert_eq!(
            interface_addrs(&["lo".into()]),
            ["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert!(interface_addrs(&["no-such-if0".into()]).is_empty());
    }
}
