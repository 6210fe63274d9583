//! The engine's sockets: the shared UDP socket and the ICE-TCP
//! connections the listener hands over, addressed by peer. Kept apart from
//! the sessions so both can be borrowed at once.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::os::fd::AsRawFd;

use str0m::net::Protocol;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::Pair;
use super::batch::UdpBatch;
use super::tcp::frame_into;
use super::tcp::{ACTIVE_PORT, Conn, TcpEvent};
use crate::shapes::SendFacts;

pub struct TcpConn {
    pub conn: Conn,
    pub session: Option<u64>,
    pub opened: Instant,
    /// This wake-up's packets for the connection, framed, and how many.
    out: Vec<u8>,
    out_packets: u64,
}

/// A connection's batch for one wake-up stops growing here (the hub keeps
/// the rest), so one wake-up cannot queue more than the socket can take.
const TCP_BATCH: usize = 64 * 1024;

/// The sockets, separate from the sessions so both can be borrowed at once.
pub struct Transports {
    pub udp: Arc<UdpSocket>,
    pub udp_port: u16,
    pub tcp: HashMap<u64, TcpConn>,
    pub tcp_by_peer: HashMap<SocketAddr, u64>,
    /// UDP packets of this wake-up, sent together by `flush`.
    pub udp_out: UdpBatch,
    /// Connections with a batch waiting for `flush` (so a flush does not
    /// look at every connection on every wake-up).
    pub tcp_pending: Vec<u64>,
    pub tcp_packets: u64,
    /// Where dialled connections report (the listener's channel).
    pub dialer: mpsc::Sender<TcpEvent>,
    /// Relay addresses being dialled, so a burst of checks dials once.
    pub dialing: HashSet<SocketAddr>,
}

impl Transports {
    /// Queue one packet str0m produced for `flush`: UDP packets leave in
    /// one batch (batch.rs); TCP packets are framed into their
    /// connection's batch, handed to its writer in one piece.
    pub fn send(&mut self, proto: Protocol, to: SocketAddr, data: Vec<u8>) {
        match proto {
            Protocol::Udp => self.udp_out.push(to, data),
            _ => match self
                .tcp_by_peer
                .get(&to)
                .and_then(|id| self.tcp.get_mut(id))
            {
                Some(c) => {
                    if c.out.is_empty() {
                        self.tcp_pending.push(c.conn.id);
                    }
                    frame_into(&mut c.out, &data);
                    c.out_packets += 1;
                }
                None => log::debug!("webrtc: tcp packet to {to} dropped: no connection"),
            },
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

    /// Send what was queued since the last flush.
    pub fn flush(&mut self) {
        self.udp_out.flush(self.udp.as_raw_fd());
        for id in self.tcp_pending.drain(..) {
            if let Some(c) = self.tcp.get_mut(&id) {
                self.tcp_packets += flush_tcp(c);
            }
        }
    }

    /// False when the session's TCP connection is backed up.
    pub fn has_room(&self, pair: Option<&Pair>) -> bool {
        match pair {
            Some(p) if p.proto == "tcp" => self
                .tcp_by_peer
                .get(&p.remote)
                .and_then(|id| self.tcp.get(id))
                .is_some_and(|c| c.out.len() < TCP_BATCH && c.conn.has_room()),
            _ => true,
        }
    }

    pub fn drop_tcp(&mut self, id: u64) -> Option<TcpConn> {
        let mut c = self.tcp.remove(&id)?;
        // What is queued (a goodbye: RTCP BYE, close_notify) still goes;
        // the writer sends it before it sees the connection dropped.
        self.tcp_packets += flush_tcp(&mut c);
        self.tcp_by_peer.remove(&c.conn.peer);
        Some(c)
    }

    /// A forward's packet over ICE-TCP to `to`, with no connection yet:
    /// connect (once) as the active side; until then str0m's checks are
    /// dropped and repeated.
    pub fn dial(&mut self, to: SocketAddr, session: u64) {
        if to.port() == ACTIVE_PORT
            || self.tcp_by_peer.contains_key(&to)
            || !self.dialing.insert(to)
        {
            return; // an active candidate of theirs, or under way already
        }
        super::tcp::dial(to, session, self.dialer.clone());
    }

    pub fn open_tcp(&mut self, conn: Conn, now: Instant) {
        self.tcp_by_peer.insert(conn.peer, conn.id);
        let c = TcpConn {
            conn,
            session: None,
            opened: now,
            out: Vec::new(),
            out_packets: 0,
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

/// Hand a connection's batch to its writer; the packets that went.
fn flush_tcp(c: &mut TcpConn) -> u64 {
    if c.out.is_empty() {
        return 0;
    }
    let n = std::mem::take(&mut c.out_packets);
    if c.conn.send(&mut c.out) {
        n
    } else {
        log::debug!(
            "webrtc: tcp to {}: queue full, {n} packets dropped",
            c.conn.peer
        );
        0
    }
}
