//! One work connection: announce it to frps (NewWorkConn), wait until a
//! user connects to the public port (StartWorkConn), then carry bytes
//! between that user and the local service, with the proxy's encryption
//! and compression. Either side closing ends both (frp has no half-close).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::crypto::{Decryptor, Encryptor, Key};
use super::msg::{Decoder, Message};
use super::snappy;
use super::transport::{Channel, Opener};
use crate::config::tunnel::Proxy;

const LOCAL_DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Work connections reach loopback services from this source address, so
/// r58's own WebRTC layer can tell tunnelled viewers (internet) from local
/// ones (`[webrtc] forwarders`).
pub const TUNNEL_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 58);

pub struct Work {
    pub opener: Opener,
    pub hello: Message,
    /// Wire name → proxy.
    pub proxies: Arc<HashMap<String, Proxy>>,
    pub key: Key,
}

/// Outcome for the log: `Ok(None)` is a parked connection frps closed.
pub async fn serve(w: Work) -> Result<Option<String>, String> {
    let mut ch = w.opener.open().await?;
    ch.send(w.hello.encode())
        .await
        .map_err(|e| format!("announcing a work connection: {e}"))?;
    let mut dec = Decoder::default();
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
    let local = dial_local(proxy).await?;
    let user = format!("{}:{}", start.src_addr, start.src_port);
    let what = format!("{} ({user})", proxy.name);
    pipe(ch, local, dec.take_rest(), proxy, &w.key)
        .await
        .map(|()| Some(what.clone()))
        .map_err(|e| format!("{what}: {e}"))
}

async fn dial_local(p: &Proxy) -> Result<TcpStream, String> {
    let addr: IpAddr = p.local_ip.parse().map_err(|_| {
        format!(
            "proxy '{}': local_ip '{}' is not an address",
            p.name, p.local_ip
        )
    })?;
    let target = SocketAddr::new(addr, p.local_port);
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    if addr.is_loopback() && addr.is_ipv4() {
        // Best effort: without it the viewer just looks local.
        let _ = socket.bind(SocketAddr::new(TUNNEL_SOURCE.into(), 0));
    }
    let s = tokio::time::timeout(LOCAL_DIAL_TIMEOUT, socket.connect(target))
        .await
        .map_err(|_| format!("proxy '{}': connecting to {target}: timed out", p.name))?
        .map_err(|e| format!("proxy '{}': connecting to {target}: {e}", p.name))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// The per-direction transforms: compress then encrypt toward frps.
struct Codec {
    enc: Option<Encryptor>,
    dec: Option<Decryptor>,
    comp: Option<snappy::Encoder>,
    decomp: Option<snappy::Decoder>,
}

impl Codec {
    /// One owned buffer out per read: a plain proxy copies once, here.
    fn outbound(&mut self, data: &[u8]) -> Vec<u8> {
        match (&mut self.comp, &mut self.enc) {
            (Some(c), Some(e)) => e.seal(&c.encode(data)),
            (Some(c), None) => c.encode(data),
            (None, Some(e)) => e.seal(data),
            (None, None) => data.to_vec(),
        }
    }

    /// A plain proxy passes the received buffer through untouched.
    fn inbound(&mut self, data: Vec<u8>) -> Result<Vec<u8>, String> {
        let data = match &mut self.dec {
            Some(d) => d.open(&data),
            None => data,
        };
        match &mut self.decomp {
            Some(d) => d.decode(&data),
            None => Ok(data),
        }
    }
}

async fn pipe(
    mut ch: Channel,
    mut local: TcpStream,
    first: Vec<u8>,
    p: &Proxy,
    key: &Key,
) -> Result<(), String> {
    let mut codec = Codec {
        enc: p.use_encryption.then(|| Encryptor::new(key)),
        dec: p.use_encryption.then(|| Decryptor::new(key)),
        comp: p.use_compression.then(snappy::Encoder::default),
        decomp: p.use_compression.then(snappy::Decoder::default),
    };
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
