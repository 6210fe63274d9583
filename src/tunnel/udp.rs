//! frp's udp proxies, sans-IO. Datagrams ride one work connection as
//! UDPPacket messages (base64 inside JSON), each tagged by frps with the
//! public peer's address. Answers go back tagged the same way. Like frpc,
//! the glue gives every peer its own local socket, so the local service
//! (the WebRTC socket, say) can tell peers apart. A peer is forgotten
//! after 30 s without datagrams either way. A Ping every 30 s keeps
//! middleboxes from dropping a quiet work connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};

use super::codec::Codec;
use super::msg::{Decoder, Message, Ping, UdpAddr, UdpPacket, Wire};

pub const PEER_IDLE: Duration = Duration::from_secs(30);
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// Base64 grows a datagram by a third; frp refuses messages over 10240
/// bytes, which would end the work connection. Bigger ones are dropped.
pub const MAX_DATAGRAM: usize = 7 * 1024;
/// Each peer costs a socket and a task; beyond this new peers are ignored.
pub const MAX_PEERS: usize = 1024;

/// A datagram from a public peer, to hand to the local service.
#[derive(Debug, PartialEq)]
pub struct Datagram {
    pub peer: SocketAddr,
    pub payload: Vec<u8>,
}

pub struct Relay {
    codec: Codec,
    wire: Wire,
    msgs: Decoder,
    /// Peer → last datagram in either direction.
    peers: HashMap<SocketAddr, Instant>,
    next_ping: Instant,
    /// Datagrams that could not be carried (malformed, too big, too many peers).
    pub dropped: u64,
}

impl Relay {
    /// UDPPacket messages framed as the control channel's `wire` frames
    /// them (v2: message frames, id 13).
    pub fn new(codec: Codec, wire: Wire, now: Instant) -> Relay {
        Relay {
            codec,
            wire,
            msgs: Decoder::new(wire),
            peers: HashMap::new(),
            next_ping: now + PING_EVERY,
            dropped: 0,
        }
    }

    /// Bytes read from the work connection → datagrams to deliver, in
    /// order. An error means the connection itself is broken.
    pub fn inbound(&mut self, bytes: Vec<u8>, now: Instant) -> Result<Vec<Datagram>, String> {
        let plain = self.codec.inbound(bytes)?;
        self.msgs.feed(&plain);
        let mut out = Vec::new();
        while let Some(m) = self.msgs.next().map_err(|e| e.to_string())? {
            // frps sends nothing else here today; anything new is skipped.
            let Message::UdpPacket(p) = m else { continue };
            let peer = p.remote_addr.as_ref().and_then(UdpAddr::to_socket);
            let payload = Base64::decode_vec(&p.content).ok();
            let (Some(peer), Some(payload)) = (peer, payload) else {
                self.dropped += 1;
                continue;
            };
            if !self.touch(peer, now) {
                continue;
            }
            out.push(Datagram { peer, payload });
        }
        Ok(out)
    }

    /// A local answer for `peer` → bytes for the work connection, or
    /// `None` when it cannot be carried.
    pub fn outbound(&mut self, peer: SocketAddr, payload: &[u8], now: Instant) -> Option<Vec<u8>> {
        if payload.len() > MAX_DATAGRAM || !self.touch(peer, now) {
            self.dropped += (payload.len() > MAX_DATAGRAM) as u64;
            return None;
        }
        let m = Message::UdpPacket(UdpPacket {
            content: Base64::encode_string(payload),
            local_addr: None,
            remote_addr: Some(UdpAddr::from_socket(peer)),
        });
        Some(self.codec.outbound_owned(m.frame(self.wire)))
    }

    /// Records activity; false when the peer is new and there is no room.
    fn touch(&mut self, peer: SocketAddr, now: Instant) -> bool {
        if self.peers.len() >= MAX_PEERS && !self.peers.contains_key(&peer) {
            self.dropped += 1;
            return false;
        }
        self.peers.insert(peer, now);
        true
    }

    pub fn poll_timeout(&self) -> Instant {
        let idle = self.peers.values().min().map(|t| *t + PEER_IDLE);
        idle.map_or(self.next_ping, |t| t.min(self.next_ping))
    }

    /// What is due at `now`: the keepalive Ping's bytes, if it is time,
    /// and the peers to forget (close their local sockets).
    pub fn handle_timeout(&mut self, now: Instant) -> (Option<Vec<u8>>, Vec<SocketAddr>) {
        let ping = (now >= self.next_ping).then(|| {
            self.next_ping = now + PING_EVERY;
            self.codec
                .outbound_owned(Message::Ping(Ping::default()).frame(self.wire))
        });
        let gone: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, t)| now.duration_since(**t) >= PEER_IDLE)
            .map(|(p, _)| *p)
            .collect();
        for p in &gone {
            self.peers.remove(p);
        }
        (ping, gone)
    }

    #[cfg(test)]
    pub fn peers(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::crypto::derive_key;

    fn pair(enc: bool, comp: bool, now: Instant) -> (Relay, Relay) {
        pair_on(Wire::V1, enc, comp, now)
    }

    fn pair_on(wire: Wire, enc: bool, comp: bool, now: Instant) -> (Relay, Relay) {
        let key = derive_key("secret");
        (
            Relay::new(Codec::new(enc, comp, &key), wire, now),
            Relay::new(Codec::new(enc, comp, &key), wire, now),
        )
    }

    #[test]
    fn datagrams_cross_in_both_directions_in_every_mode() {
        let t0 = Instant::now();
        let a: SocketAddr = "198.51.100.4:40000".parse().unwrap();
        let b: SocketAddr = "[2001:db8::1]:5".parse().unwrap();
        let modes = [(false, false), (true, true), (true, false)];
        for (w, (enc, comp)) in [Wire::V1, Wire::V2]
            .into_iter()
            .flat_map(|w| modes.map(|m| (w, m)))
        {
            // `frps` stands in for the server end of the same connection.
            let (mut frpc, mut frps) = pair_on(w, enc, comp, t0);
            let mut wire = frps.outbound(a, b"stun", t0).unwrap();
            wire.extend(frps.outbound(b, &[0u8; 1400], t0).unwrap());
            // Split anywhere: framing must not depend on reads.
            let (x, y) = wire.split_at(7);
            let mut got = frpc.inbound(x.to_vec(), t0).unwrap();
            got.extend(frpc.inbound(y.to_vec(), t0).unwrap());
            assert_eq!(got.len(), 2);
            assert_eq!(
                got[0],
                Datagram {
                    peer: a,
                    payload: b"stun".to_vec()
                }
            );
            assert_eq!(got[1].peer, b);
            assert_eq!(frpc.peers(), 2);
            let back = frpc.outbound(a, b"answer", t0).unwrap();
            assert_eq!(frps.inbound(back, t0).unwrap()[0].payload, b"answer");
        }
    }

    #[test]
    fn idle_peers_are_forgotten_and_pings_are_due_every_30_s() {
        let t0 = Instant::now();
        let (mut frpc, mut frps) = pair(true, false, t0);
        let a: SocketAddr = "198.51.100.4:1".parse().unwrap();
        let b: SocketAddr = "198.51.100.4:2".parse().unwrap();
        frpc.inbound(frps.outbound(a, b"x", t0).unwrap(), t0)
            .unwrap();
        let t10 = t0 + Duration::from_secs(10);
        frpc.inbound(frps.outbound(b, b"y", t10).unwrap(), t10)
            .unwrap();
        assert_eq!(frpc.poll_timeout(), t0 + PEER_IDLE);
        // An answer counts as activity too.
        let t25 = t0 + Duration::from_secs(25);
        let answer = frpc.outbound(a, b"z", t25).unwrap();
        frps.inbound(answer, t25).unwrap();
        let t30 = t0 + PING_EVERY;
        let (ping, gone) = frpc.handle_timeout(t30);
        assert!(gone.is_empty());
        let mut m = Decoder::default();
        m.feed(&frps.codec.inbound(ping.unwrap()).unwrap());
        assert_eq!(m.next().unwrap(), Some(Message::Ping(Ping::default())));
        let (ping, gone) = frpc.handle_timeout(t10 + PEER_IDLE);
        assert_eq!((ping, gone), (None, vec![b]));
        assert_eq!(frpc.peers(), 1);
        assert_eq!(frpc.poll_timeout(), t25 + PEER_IDLE);
    }

    #[test]
    fn what_cannot_be_carried_is_dropped_and_counted() {
        let t0 = Instant::now();
        let (mut frpc, _) = pair(false, false, t0);
        let a: SocketAddr = "198.51.100.4:1".parse().unwrap();
        assert!(frpc.outbound(a, &vec![0; MAX_DATAGRAM + 1], t0).is_none());
        assert!(frpc.outbound(a, &vec![0; MAX_DATAGRAM], t0).unwrap().len() < 10240);
        let bad = |content: &str, ip: &str| {
            let r = UdpAddr {
                ip: ip.into(),
                port: 9,
                zone: String::new(),
            };
            let p = UdpPacket {
                content: content.into(),
                local_addr: None,
                remote_addr: Some(r),
            };
            Message::UdpPacket(p).encode()
        };
        let mut wire = bad("not base64!", "10.0.0.1");
        wire.extend(bad("aGk=", "nowhere"));
        wire.extend(Message::Pong(Default::default()).encode());
        wire.extend(bad("aGk=", "10.0.0.1"));
        let got = frpc.inbound(wire, t0).unwrap();
        assert_eq!(
            got,
            vec![Datagram {
                peer: "10.0.0.1:9".parse().unwrap(),
                payload: b"hi".to_vec()
            }]
        );
        assert_eq!(frpc.dropped, 3);
        for port in 0..MAX_PEERS as u16 {
            frpc.outbound(SocketAddr::new(a.ip(), 1000 + port), b"", t0);
        }
        assert_eq!(frpc.peers(), MAX_PEERS);
        assert!(
            frpc.outbound("192.0.2.1:1".parse().unwrap(), b"", t0)
                .is_none()
        );
        assert!(frpc.inbound(b"x\0\0".repeat(4), t0).is_err());
    }
}
