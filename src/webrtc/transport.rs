//! The engine's sockets: the shared UDP socket and the ICE-TCP
//! connections the listener hands over, addressed by peer. Kept apart from
//! the sessions so both can be borrowed at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::os::fd::AsRawFd;

use str0m::net::Protocol;
use tokio::net::UdpSocket;

use super::Pair;
use super::batch::UdpBatch;
use super::tcp::Conn;
use crate::shapes::SendFacts;

pub struct TcpConn {
    pub conn: Conn,
    pub session: Option<u64>,
    pub opened: Instant,
}

/// The sockets, separate from the sessions so both can be borrowed at once.
pub struct Transports {
    pub udp: Arc<UdpSocket>,
    pub udp_port: u16,
    pub tcp: HashMap<u64, TcpConn>,
    pub tcp_by_peer: HashMap<SocketAddr, u64>,
    /// UDP packets of this wake-up, sent together by `flush`.
    pub udp_out: UdpBatch,
    pub tcp_packets: u64,
}

impl Transports {
    /// Send one packet str0m produced; it is moved, not copied. UDP waits
    /// for `flush` (batch.rs); TCP goes to its connection's writer, which
    /// coalesces what is queued.
    pub fn send(&mut self, proto: Protocol, to: SocketAddr, data: Vec<u8>) {
        match proto {
            Protocol::Udp => self.udp_out.push(to, data),
            _ => {
                let sent = self
                    .tcp_by_peer
                    .get(&to)
                    .and_then(|id| self.tcp.get(id))
                    .is_some_and(|c| c.conn.send(data));
                if sent {
                    self.tcp_packets += 1;
                } else {
                    log::debug!("webrtc: tcp packet to {to} dropped");
                }
            }
        }
    }

    pub fn facts(&self) -> SendFacts {
        let u = self.udp_out.stats;
        SendFacts {
            udp_packets: u.packets,
            udp_calls: u.syscalls,
            udp_dropped: u.dropped,
            tcp_packets: self.tcp_packets,
        }
    }

    /// Send the UDP packets queued since the last flush.
    pub fn flush(&mut self) {
        self.udp_out.flush(self.udp.as_raw_fd());
    }

    /// False when the session's TCP connection is backed up.
    pub fn has_room(&self, pair: Option<&Pair>) -> bool {
        match pair {
            Some(p) if p.proto == "tcp" => self
                .tcp_by_peer
                .get(&p.remote)
                .and_then(|id| self.tcp.get(id))
                .is_some_and(|c| c.conn.has_room()),
            _ => true,
        }
    }

    pub fn drop_tcp(&mut self, id: u64) -> Option<TcpConn> {
        let c = self.tcp.remove(&id)?;
        self.tcp_by_peer.remove(&c.conn.peer);
        Some(c)
    }

    pub fn open_tcp(&mut self, conn: Conn, now: Instant) {
        self.tcp_by_peer.insert(conn.peer, conn.id);
        let c = TcpConn {
            conn,
            session: None,
            opened: now,
        };
        self.tcp.insert(c.conn.id, c);
    }

    /// Close every connection bound to `session`.
    pub fn close_session_conns(&mut self, session: u64) {
        self.close_where(|c| c.session == Some(session));
    }

    /// Close connections that never said which session they are for.
    pub fn close_unbound(&mut self, now: Instant, older_than: Duration) {
        self.close_where(|c| c.session.is_none() && now.duration_since(c.opened) > older_than);
    }

    fn close_where(&mut self, f: impl Fn(&TcpConn) -> bool) {
        let ids: Vec<u64> = self
            .tcp
            .values()
            .filter(|c| f(c))
            .map(|c| c.conn.id)
            .collect();
        for id in ids {
            self.drop_tcp(id);
        }
    }
}
