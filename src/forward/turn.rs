//! A forward's TURN allocation on a connection of its own: allocate on
//! the first TURN server of the relay's `Link` headers that gives one, then
//! pump for the session's life: packets the engine sends from the relayed
//! candidate are wrapped for the server, and what the server relays back
//! goes to the engine as if it arrived on that candidate. The server is
//! reached over UDP, TCP (`?transport=tcp`) or TLS (`turns:`), for networks
//! that let nothing but TCP out. The protocol is `crate::turn::Client`;
//! this is only its connection and clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::whip::LinkServer;
use crate::turn::stream::Deframer;
use crate::turn::{Client, State};
use crate::vocab::SessionId;
use crate::webrtc::{Cmd, EngineHandle, TurnLeg};

/// One server's allocation may take this long (connecting, retransmits
/// and the TLS handshake included).
const ALLOCATE_WITHIN: Duration = Duration::from_secs(3);
/// Packets the engine may queue for the connection before they are dropped.
const QUEUE: usize = 1024;

/// How the TURN server is reached (the relayed address is UDP either way).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// A TURN server r58 can use, from its URL (RFC 7065).
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub transport: Transport,
}

impl Server {
    /// `turn:` over UDP or TCP, `turns:` over TLS; `None` for anything
    /// else (`stun:`, DTLS).
    pub fn parse(url: &str) -> Option<Server> {
        let (tls, rest) = match url.strip_prefix("turns:") {
            Some(r) => (true, r),
            None => (false, url.strip_prefix("turn:")?),
        };
        let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
        let asked = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("transport="))
            .map(str::to_ascii_lowercase);
        let transport = match (tls, asked.as_deref()) {
            (false, None | Some("udp")) => Transport::Udp,
            (false, Some("tcp")) => Transport::Tcp,
            (true, None | Some("tcp")) => Transport::Tls,
            _ => return None,
        };
        let (host, port) = match hostport.strip_prefix('[') {
            Some(v6) => {
                let (h, p) = v6.split_once(']')?;
                (h, p.strip_prefix(':'))
            }
            None => match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            },
        };
        let default = if tls { 5349 } else { 3478 };
        let port = port.map_or(Some(default), |p| p.parse().ok())?;
        (!host.is_empty()).then(|| Server {
            host: host.to_string(),
            port,
            transport,
        })
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The connection to the TURN server, with one read buffer for its life
/// (`recv` is polled anew each time the pump sends a packet).
struct Wire {
    link: Link,
    buf: Vec<u8>,
}

enum Link {
    Udp(UdpSocket, SocketAddr),
    Stream(Box<dyn Io>, Deframer),
}

impl Wire {
    async fn connect(s: &Server, server: SocketAddr) -> Result<(Wire, SocketAddr), String> {
        let ctx = |e: std::io::Error| format!("TURN server {server}: {e}");
        if s.transport == Transport::Udp {
            let any: SocketAddr = match server {
                SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
                SocketAddr::V6(_) => ([0u16; 8], 0).into(),
            };
            let socket = UdpSocket::bind(any).await.map_err(ctx)?;
            let local = socket.local_addr().map_err(ctx)?;
            return Ok((Wire::new(Link::Udp(socket, server)), local));
        }
        let tcp = TcpStream::connect(server).await.map_err(ctx)?;
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(ctx)?;
        let io: Box<dyn Io> = match s.transport {
            Transport::Tls => {
                let name = rustls::pki_types::ServerName::try_from(s.host.clone())
                    .map_err(|_| format!("TURN server {}: not a TLS name", s.host))?;
                let tls = super::http::tls()?.connect(name, tcp).await;
                Box::new(tls.map_err(|e| format!("TURN server {}: TLS: {e}", s.host))?)
            }
            _ => Box::new(tcp),
        };
        Ok((Wire::new(Link::Stream(io, Deframer::default())), local))
    }

    fn new(link: Link) -> Wire {
        Wire {
            link,
            buf: vec![0u8; 2048],
        }
    }

    /// Best effort over UDP; over a stream a failed write ends it.
    async fn send(&mut self, data: &[u8]) -> Result<(), String> {
        match &mut self.link {
            Link::Udp(socket, server) => {
                let _ = socket.send_to(data, *server).await;
                Ok(())
            }
            Link::Stream(io, _) => io.write_all(data).await.map_err(|e| e.to_string()),
        }
    }

    /// The server's next message. Cancel-safe: bytes read stay in the
    /// deframer.
    async fn recv(&mut self) -> Result<Vec<u8>, String> {
        let buf = &mut self.buf;
        match &mut self.link {
            Link::Udp(socket, server) => loop {
                match socket.recv_from(buf).await {
                    Ok((n, from)) if from == *server => return Ok(buf[..n].to_vec()),
                    Ok(_) => {}
                    Err(e) => log::debug!("turn: {e}"),
                }
            },
            Link::Stream(io, frames) => loop {
                if let Some(m) = frames.next()? {
                    return Ok(m);
                }
                match io.read(buf).await {
                    Ok(0) => return Err("the TURN server closed the connection".into()),
                    Ok(n) => frames.push(&buf[..n]),
                    Err(e) => return Err(e.to_string()),
                }
            },
        }
    }
}

/// A live allocation, before the session that uses it exists.
pub struct Allocation {
    client: Client,
    wire: Wire,
    rx: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    /// The engine's end, handed over with the offer.
    leg: Option<TurnLeg>,
}

impl Allocation {
    /// Allocate on the first of `servers` that works; why none did.
    pub async fn on_first(servers: &[LinkServer]) -> Result<Allocation, String> {
        let mut why = Vec::new();
        for s in servers {
            let Some(server) = Server::parse(&s.url) else {
                continue;
            };
            let (Some(user), Some(cred)) = (&s.username, &s.credential) else {
                why.push(format!("{}: no credentials", server.host));
                continue;
            };
            let within = ALLOCATE_WITHIN.as_secs();
            match tokio::time::timeout(ALLOCATE_WITHIN, allocate(&server, user, cred.expose()))
                .await
            {
                Ok(Ok(a)) => return Ok(a),
                Ok(Err(e)) => why.push(e),
                Err(_) => why.push(format!(
                    "no allocation from TURN server {} within {within} s",
                    server.host
                )),
            }
        }
        Err(match why.is_empty() {
            true => "no TURN server r58 can use (turn: or turns:)".into(),
            false => why.join("; "),
        })
    }

    pub fn relayed(&self) -> SocketAddr {
        self.client.relayed().expect("allocated")
    }

    pub fn server(&self) -> SocketAddr {
        self.client.server()
    }

    /// The engine's end: offered with the session.
    pub fn take_leg(&mut self) -> Option<TurnLeg> {
        self.leg.take()
    }

    /// Pump until the session ends (the engine drops its sender), then
    /// release the allocation.
    pub async fn run(mut self, id: SessionId, engine: EngineHandle) {
        loop {
            if let Err(why) = self.flush().await {
                log::warn!("forward {id}: TURN server {}: {why}", self.client.server());
                return;
            }
            if let State::Failed(why) = self.client.state() {
                log::warn!("forward {id}: {why}");
                return;
            }
            let wake = self
                .client
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
            tokio::select! {
                r = self.wire.recv() => match r {
                    Ok(m) => {
                        if let Some((peer, data)) = self.client.handle_input(&m, Instant::now()) {
                            engine.tell(Cmd::ForwardRelayed { id, peer, data }).await;
                        }
                    }
                    Err(why) => {
                        log::warn!("forward {id}: TURN server {}: {why}", self.client.server());
                        return;
                    }
                },
                m = self.rx.recv() => {
                    let Some((peer, data)) = m else { break };
                    if let Some(w) = self.client.wrap(peer, &data, Instant::now()) {
                        let _ = self.wire.send(&w).await;
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => self.client.handle_timeout(Instant::now()),
            }
        }
        self.close().await;
    }

    /// Release the allocation (best effort: one message).
    pub async fn close(mut self) {
        self.client.close(Instant::now());
        let _ = self.flush().await;
    }

    async fn flush(&mut self) -> Result<(), String> {
        while let Some(d) = self.client.poll_transmit() {
            self.wire.send(&d).await?;
        }
        Ok(())
    }
}

async fn allocate(s: &Server, user: &str, pass: &str) -> Result<Allocation, String> {
    let server = tokio::net::lookup_host((s.host.as_str(), s.port))
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("TURN server {}: cannot resolve the name", s.host))?;
    // The local address as the relay will not see it; str0m only needs
    // it to tell candidates apart.
    let (wire, local) = Wire::connect(s, server).await?;
    let client = match s.transport {
        Transport::Udp => Client::new(server, user, pass, Instant::now()),
        _ => Client::over_stream(server, user, pass, Instant::now()),
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let mut a = Allocation {
        client,
        wire,
        rx,
        leg: None,
    };
    // The caller's deadline ends this loop when the server says nothing.
    loop {
        a.flush()
            .await
            .map_err(|e| format!("TURN server {server}: {e}"))?;
        match a.client.state() {
            State::Allocated { relayed } => {
                a.leg = Some(TurnLeg {
                    relayed: *relayed,
                    local,
                    tx,
                });
                return Ok(a);
            }
            State::Failed(why) => return Err(why.clone()),
            _ => {}
        }
        let wake = a
            .client
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + ALLOCATE_WITHIN);
        tokio::select! {
            r = a.wire.recv() => {
                let m = r.map_err(|e| format!("TURN server {server}: {e}"))?;
                a.client.handle_input(&m, Instant::now());
            }
            _ = tokio::time::sleep_until(wake.into()) => a.client.handle_timeout(Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_urls_r58_can_use() {
        let ok = |u: &str| Server::parse(u).map(|s| (s.host, s.port, s.transport));
        use Transport::*;
        assert_eq!(
            ok("turn:vps.example.no"),
            Some(("vps.example.no".into(), 3478, Udp))
        );
        assert_eq!(
            ok("turn:10.0.0.1:3479?transport=udp"),
            Some(("10.0.0.1".into(), 3479, Udp))
        );
        assert_eq!(
            ok("turn:[2001:db8::1]:5349"),
            Some(("2001:db8::1".into(), 5349, Udp))
        );
        assert_eq!(
            ok("turn:[2001:db8::1]"),
            Some(("2001:db8::1".into(), 3478, Udp))
        );
        assert_eq!(ok("turn:h:443?transport=TCP"), Some(("h".into(), 443, Tcp)));
        assert_eq!(ok("turns:h"), Some(("h".into(), 5349, Tls)));
        assert_eq!(
            ok("turns:h:443?transport=tcp"),
            Some(("h".into(), 443, Tls))
        );
        assert_eq!(ok("turns:h:5349?transport=udp"), None, "DTLS");
        assert_eq!(ok("turn:h?transport=sctp"), None);
        assert_eq!(ok("stun:h:3478"), None);
        assert_eq!(ok("turn:h:notaport"), None);
        assert_eq!(ok("turn:"), None);
    }
}
