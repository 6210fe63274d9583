//! One work connection: announce it to frps (NewWorkConn), wait until a
//! user connects to the public port (StartWorkConn), then carry bytes
//! between that user and the local service, with the proxy's encryption
//! and compression. Either side closing ends both (frp has no half-close).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use super::codec::Codec;
use super::crypto::Key;
use super::msg::{Decoder, Message, Wire};
use super::transport::{Channel, Opener};
use super::udp::{MAX_DATAGRAM, Relay};
use crate::config::tunnel::{Proxy, ProxyType};

const LOCAL_DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Work connections reach loopback services from this source address, so
/// r58's own WebRTC layer can tell tunnelled viewers (internet) from local
/// ones (`[webrtc] forwarders`).
pub const TUNNEL_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 58);

pub struct Work {
    pub opener: Opener,
    pub hello: Message,
    /// The control channel's wire protocol; work streams speak it too.
    pub wire: Wire,
    /// Wire name → proxy.
    pub proxies: Arc<HashMap<String, Proxy>>,
    pub key: Key,
    /// udp proxy wire name → signal to the relay on its current work
    /// connection. frps keeps one per udp proxy; a new one replaces it.
    pub udp_relays: UdpRelays,
}

pub type UdpRelays = Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>;

/// Outcome for the log: `Ok(None)` is a parked connection frps closed.
pub async fn serve(w: Work) -> Result<Option<String>, String> {
    let mut ch = w.opener.open().await?;
    let hello = match w.wire {
        Wire::V1 => w.hello.encode(),
        Wire::V2 => super::v2::work_hello(&w.hello),
    };
    ch.send(hello)
        .await
        .map_err(|e| format!("announcing a work connection: {e}"))?;
    let mut dec = Decoder::new(w.wire);
    let start = loop {
        match ch.recv().await {
            Ok(Some(d)) => dec.feed(&d),
            Ok(None) | Err(_) => return Ok(None),
        }
        if let Some(m) = dec.next().map_err(|e| e.to_string())? {
            break m;
        }
    };
    let Message::StartWorkConn(start) = start else {
        return Err(format!(
            "expected StartWorkConn, got '{}'",
            start.type_byte() as char
        ));
    };
    if !start.error.is_empty() {
        return Err(format!("frps refused a work connection: {}", start.error));
    }
    let proxy = w
        .proxies
        .get(&start.proxy_name)
        .ok_or_else(|| format!("frps sent a user for unknown proxy '{}'", start.proxy_name))?;
    if proxy.kind == ProxyType::Udp {
        let (tx, replaced) = oneshot::channel();
        // Dropping the old sender ends the relay it belonged to.
        w.udp_relays.lock().unwrap().insert(start.proxy_name, tx);
        return relay_udp(ch, dec.take_rest(), proxy, (&w.key, w.wire), replaced)
            .await
            .map(|()| Some(format!("{} (udp)", proxy.name)))
            .map_err(|e| format!("{}: {e}", proxy.name));
    }
    let local = dial_local(proxy).await?;
    let user = format!("{}:{}", start.src_addr, start.src_port);
    let what = format!("{} ({user})", proxy.name);
    pipe(ch, local, dec.take_rest(), proxy, &w.key)
        .await
        .map(|()| Some(what.clone()))
        .map_err(|e| format!("{what}: {e}"))
}

fn local_addr(p: &Proxy) -> Result<SocketAddr, String> {
    let addr: IpAddr = p.local_ip.parse().map_err(|_| {
        format!(
            "proxy '{}': local_ip '{}' is not an address",
            p.name, p.local_ip
        )
    })?;
    Ok(SocketAddr::new(addr, p.local_port))
}

/// Where local sockets bind: 127.0.0.58 toward IPv4 loopback services.
fn local_source(target: SocketAddr) -> SocketAddr {
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => SocketAddr::new(TUNNEL_SOURCE.into(), 0),
        IpAddr::V4(_) => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
        IpAddr::V6(_) => SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), 0),
    }
}

async fn dial_local(p: &Proxy) -> Result<TcpStream, String> {
    let target = local_addr(p)?;
    let addr = target.ip();
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    if addr.is_loopback() && addr.is_ipv4() {
        // Best effort: without it the viewer just looks local.
        let _ = socket.bind(local_source(target));
    }
    let s = tokio::time::timeout(LOCAL_DIAL_TIMEOUT, socket.connect(target))
        .await
        .map_err(|_| format!("proxy '{}': connecting to {target}: timed out", p.name))?
        .map_err(|e| format!("proxy '{}': connecting to {target}: {e}", p.name))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

async fn pipe(
    mut ch: Channel,
    mut local: TcpStream,
    first: Vec<u8>,
    p: &Proxy,
    key: &Key,
) -> Result<(), String> {
    let mut codec = Codec::new(p.use_encryption, p.use_compression, key);
    let mut inbound = first;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if !inbound.is_empty() {
            let plain = codec.inbound(std::mem::take(&mut inbound))?;
            local
                .write_all(&plain)
                .await
                .map_err(|e| format!("writing to the local service: {e}"))?;
        }
        tokio::select! {
            d = ch.recv() => match d {
                Ok(Some(d)) => inbound = d,
                Ok(None) | Err(_) => return Ok(()),
            },
            n = local.read(&mut buf) => match n {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => {
                    let wire = codec.outbound(&buf[..n]);
                    ch.send(wire).await.map_err(|e| format!("sending to frps: {e}"))?;
                }
            },
        }
    }
}

/// Datagrams between frps and the local service for one udp proxy, until
/// the work connection ends or a newer one replaces it.
async fn relay_udp(
    mut ch: Channel,
    first: Vec<u8>,
    p: &Proxy,
    (key, wire): (&Key, Wire),
    mut replaced: oneshot::Receiver<()>,
) -> Result<(), String> {
    let target = local_addr(p)?;
    let mut relay = Relay::new(
        Codec::new(p.use_encryption, p.use_compression, key),
        wire,
        Instant::now().into_std(),
    );
    // Answers from every peer's local socket funnel into one queue.
    let (answers_tx, mut answers) = mpsc::channel::<(SocketAddr, Vec<u8>)>(256);
    let mut sockets: HashMap<SocketAddr, (Arc<UdpSocket>, AbortHandle)> = HashMap::new();
    let mut readers = JoinSet::new();
    let mut inbound = first;
    loop {
        if !inbound.is_empty() {
            let now = Instant::now().into_std();
            for d in relay.inbound(std::mem::take(&mut inbound), now)? {
                let sock = match sockets.get(&d.peer) {
                    Some((s, _)) => s.clone(),
                    None => {
                        let s = Arc::new(peer_socket(target).await?);
                        let reader =
                            readers.spawn(read_answers(s.clone(), d.peer, answers_tx.clone()));
                        sockets.insert(d.peer, (s.clone(), reader));
                        s
                    }
                };
                // A service that is down answers with ICMP; the peer retries.
                let _ = sock.send(&d.payload).await;
            }
        }
        let wake = Instant::from_std(relay.poll_timeout());
        tokio::select! {
            d = ch.recv() => match d {
                Ok(Some(d)) => inbound = d,
                Ok(None) | Err(_) => return Ok(()),
            },
            Some((peer, data)) = answers.recv() => {
                if let Some(wire) = relay.outbound(peer, &data, Instant::now().into_std()) {
                    ch.send(wire).await.map_err(|e| format!("sending to frps: {e}"))?;
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                let (ping, gone) = relay.handle_timeout(Instant::now().into_std());
                for peer in gone {
                    if let Some((_, reader)) = sockets.remove(&peer) {
                        reader.abort();
                    }
                }
                if let Some(ping) = ping {
                    ch.send(ping).await.map_err(|e| format!("sending to frps: {e}"))?;
                }
            }
            Some(_) = readers.join_next() => {}
            _ = &mut replaced => return Ok(()),
        }
    }
}

async fn peer_socket(target: SocketAddr) -> Result<UdpSocket, String> {
    let s = UdpSocket::bind(local_source(target))
        .await
        .map_err(|e| format!("opening a udp socket toward {target}: {e}"))?;
    s.connect(target)
        .await
        .map_err(|e| format!("udp toward {target}: {e}"))?;
    Ok(s)
}

async fn read_answers(
    s: Arc<UdpSocket>,
    peer: SocketAddr,
    to: mpsc::Sender<(SocketAddr, Vec<u8>)>,
) {
    // Larger than any datagram, so an oversized one is seen and dropped whole.
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        match s.recv(&mut buf).await {
            Ok(n) => {
                if to.send((peer, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
            // ECONNREFUSED from an earlier send: the service was down.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(_) => return,
        }
    }
}
