//! A small frps for tests, written from the protocol notes: plain or TLS
//! (0x16 or 0x17 first byte), yamux or one connection per channel, frp
//! wire v1 and v2 on every stream (or, as frps before 0.69, v1 only,
//! hanging up at v2's magic), token login with run-id replacement, tcp
//! proxies (allowed ports, conflicts), the encrypted control channel
//! (AES-128-CFB or v2's AEAD), Ping/Pong, a work-connection pool and
//! per-proxy encryption and compression, and udp proxies (datagrams as
//! UDPPacket messages on one work connection at a time). It reuses r58's sans-IO cores in
//! the server role; those are pinned to stock frp by recorded bytes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64ct::{Base64, Encoding};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::tunnel::aead::Algorithm;
use crate::tunnel::codec::Codec;
use crate::tunnel::msg::{
    Decoder, LoginResp, Message, NewProxy, NewProxyResp, Pong, StartWorkConn, UdpAddr, UdpPacket,
    Wire,
};
use crate::tunnel::mux::{self, BoxIo};
use crate::tunnel::v2::V2;

use crate::tunnel::wire::ControlWire;
use crate::tunnel::{crypto, yamux};

#[path = "frps_wire.rs"]
mod wire;
use wire::{Ctl, which_wire};

#[derive(Clone, Default)]
pub struct Opts {
    pub token: String,
    pub mux: bool,
    /// (cert chain PEM, key PEM) to offer TLS; plaintext is accepted too.
    pub tls: Option<(String, String)>,
    pub allow_ports: Option<(u16, u16)>,
    /// Where every port listens; 127.0.0.1 when unset.
    pub bind: Option<std::net::IpAddr>,
    /// frps's `auth.additionalScopes = ["HeartBeats", "NewWorkConns"]`:
    /// Pings and NewWorkConns must carry a valid privilege key.
    pub scopes: bool,
    /// An frps from before 0.69: v1 only; a stream that starts with v2's
    /// magic is dropped, as the old parser drops an unknown type byte.
    pub v1_only: bool,
    /// A future frps without v1: v1 streams are dropped unanswered.
    pub v2_only: bool,
}

/// What the server saw, for assertions.
#[derive(Default)]
pub struct Seen {
    /// run_id sent in each Login ("" for a first login).
    pub logins: Vec<String>,
    /// The wire protocol of each stream that began with a Login, and v2
    /// streams dropped by a `v1_only` server.
    pub wires: Vec<Wire>,
    pub hung_up_v2: usize,
    pub tls: Vec<bool>,
    pub pings: usize,
    pub closed_proxies: Vec<String>,
    /// Pings frpc sent on udp work connections.
    pub udp_pings: usize,
    /// Pings and NewWorkConns whose privilege key was checked: valid, not.
    pub signed: usize,
    pub unsigned: usize,
    /// Work connections each udp proxy has taken, by wire name.
    pub udp_work_conns: HashMap<String, usize>,
}

pub struct Frps {
    pub port: u16,
    pub seen: Arc<Mutex<Seen>>,
    rt: Option<tokio::runtime::Runtime>,
}

/// A logged-in client: where its work connections park, how to kick it
/// out when the same run id logs in again, and when it is gone.
type Session = (
    mpsc::UnboundedSender<(Chan, Wire)>,
    watch::Sender<bool>,
    watch::Receiver<bool>,
);

/// Marks a control as gone (ports released) when its task ends.
struct Gone(watch::Sender<bool>);

impl Drop for Gone {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

struct Server {
    opts: Opts,
    key: crypto::Key,
    seen: Arc<Mutex<Seen>>,
    /// run id → (pool of parked work connections, kick the old control)
    controls: Mutex<HashMap<String, Session>>,
    ports: Mutex<HashMap<u16, String>>,
}

enum Chan {
    Mux(mux::Stream),
    Raw(BoxIo),
}

impl Chan {
    async fn recv(&mut self) -> Option<Vec<u8>> {
        match self {
            Chan::Mux(s) => s.recv().await,
            Chan::Raw(io) => {
                let mut b = vec![0u8; 32 * 1024];
                match io.read(&mut b).await {
                    Ok(0) | Err(_) => None,
                    Ok(n) => Some(b[..n].to_vec()),
                }
            }
        }
    }
    async fn send(&mut self, d: Vec<u8>) -> bool {
        match self {
            Chan::Mux(s) => s.send(d).await.is_ok(),
            Chan::Raw(io) => io.write_all(&d).await.is_ok(),
        }
    }
}

impl Opts {
    /// Plaintext, yamux, every port allowed, on 127.0.0.1.
    pub fn new(token: &str) -> Opts {
        Opts {
            token: token.into(),
            mux: true,
            ..Opts::default()
        }
    }
}

impl Frps {
    pub fn start(opts: Opts) -> Frps {
        Frps::start_on(opts, 0)
    }

    pub fn start_on(opts: Opts, port: u16) -> Frps {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let srv = Arc::new(Server {
            key: crypto::derive_key(&opts.token),
            opts,
            seen: seen.clone(),
            controls: Mutex::default(),
            ports: Mutex::default(),
        });
        let listener = rt
            .block_on(TcpListener::bind((bind_ip(&srv.opts), port)))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(connection(srv.clone(), tcp));
            }
        });
        Frps {
            port,
            seen,
            rt: Some(rt),
        }
    }
}

impl Server {
    /// With scopes on, checks a Ping's or NewWorkConn's key like frps.
    fn signed(&self, key: &str, timestamp: i64) -> bool {
        if !self.opts.scopes {
            return true;
        }
        let ok = crypto::privilege_key(&self.opts.token, timestamp) == key;
        let mut seen = self.seen.lock().unwrap();
        *(if ok {
            &mut seen.signed
        } else {
            &mut seen.unsigned
        }) += 1;
        ok
    }
}

fn bind_ip(o: &Opts) -> std::net::IpAddr {
    o.bind.unwrap_or([127, 0, 0, 1].into())
}

impl Drop for Frps {
    fn drop(&mut self) {
        // Closes every socket the server holds, like a killed frps.
        self.rt.take().unwrap().shutdown_background();
    }
}

async fn connection(srv: Arc<Server>, tcp: TcpStream) {
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await.unwrap_or(0) == 0 {
        return;
    }
    let tls = matches!(first[0], 0x16 | 0x17);
    srv.seen.lock().unwrap().tls.push(tls);
    let io: BoxIo = match (&srv.opts.tls, tls) {
        (Some((cert, key)), true) => {
            let mut tcp = tcp;
            if first[0] == 0x17 {
                let _ = tcp.read_exact(&mut first).await;
            }
            match acceptor(cert, key).accept(tcp).await {
                Ok(t) => Box::new(t),
                Err(_) => return,
            }
        }
        (None, true) => return,
        _ => Box::new(tcp),
    };
    if !srv.opts.mux {
        return channel(srv, Chan::Raw(io)).await;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cfg = yamux::Config {
        client: false,
        ..Default::default()
    };
    let (_handle, task) = mux::spawn(io, cfg, Some(tx));
    while let Some(s) = rx.recv().await {
        tokio::spawn(channel(srv.clone(), Chan::Mux(s)));
    }
    task.abort();
}

fn acceptor(cert: &str, key: &str) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<_> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

async fn next_msg(ch: &mut Chan, dec: &mut Decoder) -> Option<Message> {
    loop {
        if let Some(m) = dec.next().ok()? {
            return Some(m);
        }
        dec.feed(&ch.recv().await?);
    }
}

async fn channel(srv: Arc<Server>, mut ch: Chan) {
    let Some((wire, first)) = which_wire(&srv, &mut ch).await else {
        return;
    };
    let (first_msg, ctl, dec) = match wire {
        Wire::V1 => {
            let mut dec = Decoder::default();
            dec.feed(&first);
            (next_msg(&mut ch, &mut dec).await, None, dec)
        }
        Wire::V2 => {
            let algs = [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305];
            let mut w = V2::server(&srv.opts.token, &algs);
            let mut msgs = w.open(&first).unwrap_or_default();
            // A work stream has no hello: its first frame is NewWorkConn.
            while msgs.is_empty() {
                let Some(d) = ch.recv().await else { return };
                match w.open(&d) {
                    Ok(m) => msgs = m,
                    Err(_) => return,
                }
            }
            let m = msgs.remove(0);
            // What followed NewWorkConn is the work stream's own bytes.
            (Some(m), Some(w), Decoder::new(Wire::V2))
        }
    };
    let start = |m: StartWorkConn| Message::StartWorkConn(m).frame(wire);
    match first_msg {
        Some(Message::Login(l)) => {
            srv.seen.lock().unwrap().wires.push(wire);
            let ctl = match ctl {
                Some(w) => Ctl::V2(Box::new(w)),
                None => Ctl::Plain(dec),
            };
            control(srv, ch, ctl, l).await
        }
        Some(Message::NewWorkConn(w)) => {
            if !srv.signed(&w.privilege_key, w.timestamp) {
                let m = StartWorkConn {
                    error: "invalid NewWorkConn".into(),
                    ..Default::default()
                };
                ch.send(start(m)).await;
                return;
            }
            let pool = srv
                .controls
                .lock()
                .unwrap()
                .get(&w.run_id)
                .map(|c| c.0.clone());
            match pool {
                Some(p) => {
                    let _ = p.send((ch, wire));
                }
                None => {
                    let error = format!("no client control found for run id [{}]", w.run_id);
                    let m = StartWorkConn {
                        error,
                        ..Default::default()
                    };
                    ch.send(start(m)).await;
                }
            }
        }
        _ => {}
    }
}

async fn control(srv: Arc<Server>, mut ch: Chan, mut ctl: Ctl, login: crate::tunnel::msg::Login) {
    srv.seen.lock().unwrap().logins.push(login.run_id.clone());
    if crypto::privilege_key(&srv.opts.token, login.timestamp) != login.privilege_key {
        let error = "token in login doesn't match token from configuration".to_string();
        let r = LoginResp {
            version: "0.70.0".into(),
            error,
            ..Default::default()
        };
        ch.send(ctl.seal(&Message::LoginResp(r))).await;
        return;
    }
    let run_id = if login.run_id.is_empty() {
        let mut b = [0u8; 8];
        aws_lc_rs::rand::fill(&mut b).unwrap();
        b.iter().map(|x| format!("{x:02x}")).collect()
    } else {
        login.run_id.clone()
    };
    let (pool_tx, pool_rx) = mpsc::unbounded_channel();
    let (kick_tx, mut kick) = watch::channel(false);
    let (gone_tx, gone_rx) = watch::channel(false);
    let _gone = Gone(gone_tx);
    // Same run id: the new session replaces the stale one, and, as frps
    // does (`oldCtl.WaitClosed()`), answers only once its ports are free.
    let old = srv
        .controls
        .lock()
        .unwrap()
        .insert(run_id.clone(), (pool_tx, kick_tx, gone_rx));
    if let Some((_, old_kick, mut old_gone)) = old {
        let _ = old_kick.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), old_gone.wait_for(|g| *g)).await;
    }
    let r = LoginResp {
        version: "0.70.0".into(),
        run_id: run_id.clone(),
        ..Default::default()
    };
    if !ch.send(ctl.seal(&Message::LoginResp(r))).await {
        return;
    }
    ctl.secure(&srv.key);
    let mut inbox = ctl.open(&[]);
    let pool = Arc::new(tokio::sync::Mutex::new(pool_rx));
    let (refill_tx, mut refill) = mpsc::unbounded_channel::<()>();
    let mut out = vec![Message::ReqWorkConn; login.pool_count.max(1) as usize];
    let mut listeners: HashMap<String, (u16, tokio::task::JoinHandle<()>)> = HashMap::new();
    loop {
        for m in out.drain(..) {
            if !ch.send(ctl.seal(&m)).await {
                break;
            }
        }
        for m in inbox.drain(..) {
            match m {
                Message::NewProxy(p) => {
                    let port = p.remote_port as u16;
                    let allowed = srv
                        .opts
                        .allow_ports
                        .is_none_or(|(a, b)| (a..=b).contains(&port));
                    let taken = srv.ports.lock().unwrap().contains_key(&port);
                    let error = if !allowed {
                        "port not allowed".to_string()
                    } else if taken {
                        "port already used".to_string()
                    } else {
                        let pool = (pool.clone(), refill_tx.clone());
                        match bind_public(&srv, &p, pool).await {
                            Err(()) => "port unavailable".to_string(),
                            Ok(t) => {
                                srv.ports.lock().unwrap().insert(port, p.proxy_name.clone());
                                listeners.insert(p.proxy_name.clone(), (port, t));
                                String::new()
                            }
                        }
                    };
                    let remote_addr = if error.is_empty() {
                        format!(":{port}")
                    } else {
                        String::new()
                    };
                    out.push(Message::NewProxyResp(NewProxyResp {
                        proxy_name: p.proxy_name,
                        remote_addr,
                        error,
                    }));
                }
                Message::Ping(p) => {
                    srv.seen.lock().unwrap().pings += 1;
                    let error = if srv.signed(&p.privilege_key, p.timestamp) {
                        String::new()
                    } else {
                        "invalid ping".into()
                    };
                    out.push(Message::Pong(Pong { error }));
                }
                Message::CloseProxy(c) => {
                    srv.seen
                        .lock()
                        .unwrap()
                        .closed_proxies
                        .push(c.proxy_name.clone());
                    if let Some((port, t)) = listeners.remove(&c.proxy_name) {
                        release(&srv, port, t).await;
                    }
                }
                _ => {}
            }
        }
        if !out.is_empty() {
            continue;
        }
        tokio::select! {
            d = ch.recv() => match d {
                Some(d) => inbox = ctl.open(&d),
                None => break,
            },
            Some(()) = refill.recv() => out.push(Message::ReqWorkConn),
            _ = kick.changed() => break,
        }
    }
    for (_, (port, t)) in listeners {
        release(&srv, port, t).await;
    }
}

/// Closes a proxy's public port; it is free again when this returns.
async fn release(srv: &Server, port: u16, t: tokio::task::JoinHandle<()>) {
    t.abort();
    // Awaiting the aborted task waits until its socket is closed.
    let _ = t.await;
    srv.ports.lock().unwrap().remove(&port);
}

type Pool = (
    Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(Chan, Wire)>>>,
    mpsc::UnboundedSender<()>,
);

/// Opens a proxy's public port and serves it.
async fn bind_public(
    srv: &Arc<Server>,
    p: &NewProxy,
    pool: Pool,
) -> Result<tokio::task::JoinHandle<()>, ()> {
    let addr = (bind_ip(&srv.opts), p.remote_port as u16);
    Ok(if p.proxy_type == "udp" {
        let sock = UdpSocket::bind(addr).await.map_err(|_| ())?;
        tokio::spawn(public_udp(sock, p.clone(), pool, srv.clone()))
    } else {
        let l = TcpListener::bind(addr).await.map_err(|_| ())?;
        tokio::spawn(public(l, p.clone(), pool, srv.key))
    })
}

/// Takes a parked work connection (asking for a new one to be parked)
/// and starts it for `p`.
async fn start_work(pool: &Pool, p: &NewProxy, from: Option<SocketAddr>) -> Option<(Chan, Wire)> {
    let work = tokio::time::timeout(Duration::from_secs(10), async {
        pool.0.lock().await.recv().await
    })
    .await;
    let _ = pool.1.send(());
    let (mut work, wire) = work.ok()??;
    let start = StartWorkConn {
        proxy_name: p.proxy_name.clone(),
        src_addr: from.map(|f| f.ip().to_string()).unwrap_or_default(),
        dst_addr: "127.0.0.1".into(),
        src_port: from.map_or(0, |f| f.port() as i64),
        dst_port: p.remote_port,
        ..Default::default()
    };
    work.send(Message::StartWorkConn(start).frame(wire))
        .await
        .then_some((work, wire))
}

/// The public port of one tcp proxy: each user gets a parked work connection.
async fn public(l: TcpListener, p: NewProxy, pool: Pool, key: crypto::Key) {
    while let Ok((user, from)) = l.accept().await {
        if let Some((work, _)) = start_work(&pool, &p, Some(from)).await {
            let codec = Codec::new(p.use_encryption, p.use_compression, &key);
            tokio::spawn(relay(user, work, codec));
        }
    }
}

/// User ↔ work connection, undoing the client's compression and
/// encryption on the way in and applying them on the way out.
async fn relay(mut user: TcpStream, mut work: Chan, mut codec: Codec) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            n = user.read(&mut buf) => {
                let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                if !work.send(codec.outbound(&buf[..n])).await { return; }
            }
            w = work.recv() => {
                let Some(data) = w else { return };
                let Ok(data) = codec.inbound(data) else { return };
                if user.write_all(&data).await.is_err() { return; }
            }
        }
    }
}

/// A udp proxy's public port, like frps: every user's datagrams ride one
/// work connection, tagged with the user's address; answers are sent to
/// the address they are tagged with. A broken connection is replaced.
async fn public_udp(sock: UdpSocket, p: NewProxy, pool: Pool, srv: Arc<Server>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Some((mut work, wire)) = start_work(&pool, &p, None).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        *srv.seen
            .lock()
            .unwrap()
            .udp_work_conns
            .entry(p.proxy_name.clone())
            .or_default() += 1;
        let mut codec = Codec::new(p.use_encryption, p.use_compression, &srv.key);
        let mut msgs = Decoder::new(wire);
        loop {
            tokio::select! {
                r = sock.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { return };
                    let m = Message::UdpPacket(UdpPacket {
                        content: Base64::encode_string(&buf[..n]),
                        local_addr: None,
                        remote_addr: Some(UdpAddr::from_socket(from)),
                    });
                    if !work.send(codec.outbound_owned(m.frame(wire))).await { break; }
                }
                w = work.recv() => {
                    let Some(Ok(data)) = w.map(|d| codec.inbound(d)) else { break };
                    msgs.feed(&data);
                    while let Ok(Some(m)) = msgs.next() {
                        match m {
                            Message::UdpPacket(u) => {
                                let to = u.remote_addr.as_ref().and_then(UdpAddr::to_socket);
                                let data = Base64::decode_vec(&u.content);
                                if let (Some(to), Ok(data)) = (to, data) {
                                    let _ = sock.send_to(&data, to).await;
                                }
                            }
                            Message::Ping(_) => srv.seen.lock().unwrap().udp_pings += 1,
                            _ => {}
                        }
                    }
                }
            }
        }
    }
}
