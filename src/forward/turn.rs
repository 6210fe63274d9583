//! A forward's TURN allocation on a socket of its own: allocate on the
//! first TURN server of the relay's `Link` headers that gives one, then
//! pump for the session's life: packets the engine sends from the relayed
//! candidate are wrapped for the server, and what the server relays back
//! goes to the engine as if it arrived on that candidate. The protocol is
//! `crate::turn::Client`; this is only its socket and clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::whip::LinkServer;
use crate::turn::{Client, State};
use crate::vocab::SessionId;
use crate::webrtc::{Cmd, EngineHandle, TurnLeg};

/// One server's allocation may take this long (retransmits included).
const ALLOCATE_WITHIN: Duration = Duration::from_secs(3);
/// Packets the engine may queue for the socket before they are dropped.
const QUEUE: usize = 1024;

/// A `turn:` URL r58 can use: UDP to the server (`turns:` and
/// `?transport=tcp` are not implemented), host and port.
pub fn udp_server(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("turn:")?;
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    if query
        .split('&')
        .any(|kv| kv.eq_ignore_ascii_case("transport=tcp"))
    {
        return None;
    }
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
    let port = port.map_or(Some(3478), |p| p.parse().ok())?;
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// A live allocation, before the session that uses it exists.
pub struct Allocation {
    client: Client,
    socket: UdpSocket,
    rx: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    /// The engine's end, handed over with the offer.
    leg: Option<TurnLeg>,
}

impl Allocation {
    /// Allocate on the first of `servers` that works; why none did.
    pub async fn on_first(servers: &[LinkServer]) -> Result<Allocation, String> {
        let mut why = Vec::new();
        for s in servers {
            let Some((host, port)) = udp_server(&s.url) else {
                continue;
            };
            let (Some(user), Some(cred)) = (&s.username, &s.credential) else {
                why.push(format!("{host}: no credentials"));
                continue;
            };
            match allocate(&host, port, user, cred.expose()).await {
                Ok(a) => return Ok(a),
                Err(e) => why.push(e),
            }
        }
        Err(match why.is_empty() {
            true => "no TURN server r58 can use (turn: over UDP)".into(),
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
        let server = self.client.server();
        let mut buf = vec![0u8; 2048];
        loop {
            self.flush().await;
            if let State::Failed(why) = self.client.state() {
                log::warn!("forward {id}: {why}");
                return;
            }
            let wake = self
                .client
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    if from != server {
                        continue;
                    }
                    if let Some((peer, data)) = self.client.handle_input(&buf[..n], Instant::now()) {
                        engine.tell(Cmd::ForwardRelayed { id, peer, data }).await;
                    }
                }
                m = self.rx.recv() => {
                    let Some((peer, data)) = m else { break };
                    if let Some(w) = self.client.wrap(peer, &data, Instant::now()) {
                        let _ = self.socket.send_to(&w, server).await;
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => self.client.handle_timeout(Instant::now()),
            }
        }
        self.close().await;
    }

    /// Release the allocation (best effort: one datagram).
    pub async fn close(mut self) {
        self.client.close(Instant::now());
        self.flush().await;
    }

    async fn flush(&mut self) {
        while let Some(d) = self.client.poll_transmit() {
            let _ = self.socket.send_to(&d, self.client.server()).await;
        }
    }
}

async fn allocate(host: &str, port: u16, user: &str, pass: &str) -> Result<Allocation, String> {
    let server = tokio::net::lookup_host((host, port))
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("TURN server {host}: cannot resolve the name"))?;
    let any: SocketAddr = match server {
        SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        SocketAddr::V6(_) => ([0u16; 8], 0).into(),
    };
    let socket = UdpSocket::bind(any)
        .await
        .map_err(|e| format!("TURN server {server}: no local UDP socket: {e}"))?;
    let mut client = Client::new(server, user, pass, Instant::now());
    let mut buf = vec![0u8; 2048];
    let give_up = Instant::now() + ALLOCATE_WITHIN;
    loop {
        while let Some(d) = client.poll_transmit() {
            let _ = socket.send_to(&d, server).await;
        }
        match client.state() {
            State::Allocated { .. } => break,
            State::Failed(why) => return Err(why.clone()),
            _ => {}
        }
        let wake = client.poll_timeout().unwrap_or(give_up).min(give_up);
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = r.map_err(|e| log::debug!("turn: {e}"))
                    && from == server
                {
                    client.handle_input(&buf[..n], Instant::now());
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                if Instant::now() >= give_up {
                    return Err(format!("no allocation from TURN server {server} within {} s", ALLOCATE_WITHIN.as_secs()));
                }
                client.handle_timeout(Instant::now());
            }
        }
    }
    // The socket's address as the relay will not see it; str0m only
    // needs it to tell candidates apart.
    let local = socket
        .local_addr()
        .map_err(|e| format!("TURN socket: {e}"))?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let leg = TurnLeg {
        relayed: client.relayed().expect("allocated"),
        local,
        tx,
    };
    Ok(Allocation {
        client,
        socket,
        rx,
        leg: Some(leg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_urls_r58_can_use() {
        let ok = |u: &str| udp_server(u);
        assert_eq!(
            ok("turn:vps.example.no"),
            Some(("vps.example.no".into(), 3478))
        );
        assert_eq!(
            ok("turn:10.0.0.1:3479?transport=udp"),
            Some(("10.0.0.1".into(), 3479))
        );
        assert_eq!(
            ok("turn:[2001:db8::1]:5349"),
            Some(("2001:db8::1".into(), 5349))
        );
        assert_eq!(ok("turn:[2001:db8::1]"), Some(("2001:db8::1".into(), 3478)));
        assert_eq!(ok("turn:h:3478?transport=tcp"), None);
        assert_eq!(ok("turns:h:5349"), None);
        assert_eq!(ok("stun:h:3478"), None);
        assert_eq!(ok("turn:h:notaport"), None);
        assert_eq!(ok("turn:"), None);
    }
}
