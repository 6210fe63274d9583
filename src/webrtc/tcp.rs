//! The shared ICE-TCP listener: one port for every session (RFC 6544
//! passive candidates, RFC 4571 framing). Browsers behind UDP-blocking
//! networks, and everything that comes through the FRP tunnel, reach the
//! box this way.
//!
//! Each accepted connection gets a small task that splits the byte stream
//! into packets for the engine and writes the engine's packets back. The
//! engine decides what a connection belongs to (by the STUN ufrag of its
//! first packet) and drops its `Conn` to close it.
//!
//! Forwards (r58 as a WHIP client) are the active side instead: `dial`
//! connects to the relay's passive candidate for one session, and the
//! connection is then served like an accepted one.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use tokio::sync::{Notify, mpsc};

/// Batches waiting for one connection's writer: the engine hands over
/// what one wake-up produced for it (about a frame) already framed. A
/// viewer whose TCP path is slower than the stream fills this; the engine
/// then stops moving frames to it and the hub's slow-reader policy takes
/// over (skip to a keyframe).
pub const SEND_QUEUE: usize = 32;
/// The same for a viewer that can move to a smaller layer: what is queued
/// here plays out before anything newer, and 8 frames of a 2.5 Mbit/s
/// stream are a second on a 700 kbit/s link.
pub const SEND_QUEUE_LAYERED: usize = 8;
/// Connections at once, bound or not; more are refused at accept.
pub const MAX_CONNS: usize = 512;
/// RFC 4571 length prefix is 16 bits.
const MAX_PACKET: usize = 65_535;

/// The port of an active candidate (RFC 6544 §4.5: it has none; 9 says so).
pub const ACTIVE_PORT: u16 = 9;
/// A relay's passive candidate that does not accept by then is given up
/// (str0m's checks ask again for as long as the pair is alive).
const DIAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the listener and connection tasks tell the engine.
pub enum TcpEvent {
    Open(Conn),
    /// A connection `dial` made for `session`.
    Dialed {
        conn: Conn,
        session: u64,
    },
    DialFailed {
        peer: SocketAddr,
    },
    Packet {
        id: u64,
        data: Vec<u8>,
    },
    Closed {
        id: u64,
    },
}

/// Connection ids, unique across the listener and the dialer.
fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The engine's end of one connection. Dropping it closes the socket
/// once what it queued has been written.
pub struct Conn {
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    outbox: Arc<Outbox>,
    /// A duplicate of the socket's descriptor, for socket options set
    /// once the engine knows who the connection is for.
    fd: Option<std::os::fd::OwnedFd>,
    /// Batches this connection may have waiting (`SEND_QUEUE` or less).
    limit: usize,
}

impl Conn {
    /// The engine's end of `stream`, and the writer's end of its outbox.
    fn new(stream: &TcpStream, peer: SocketAddr, local: SocketAddr) -> (Conn, Arc<Outbox>) {
        let _ = stream.set_nodelay(true);
        let outbox = Arc::new(Outbox::default());
        let conn = Conn {
            id: next_id(),
            peer,
            local,
            outbox: outbox.clone(),
            fd: std::os::fd::AsFd::as_fd(stream).try_clone_to_owned().ok(),
            limit: SEND_QUEUE,
        };
        (conn, outbox)
    }
}

/// Bytes on their way from the engine to one connection's writer. The
/// two sides swap buffers instead of passing one per batch: nothing is
/// allocated per frame, and nothing the engine allocated is freed on
/// another thread (glibc's arena lock showed up in profiles at 150
/// viewers).
#[derive(Default)]
struct Outbox {
    state: Mutex<Waiting>,
    wake: Notify,
}

#[derive(Default)]
struct Waiting {
    bytes: Vec<u8>,
    /// Batches in `bytes`.
    batches: usize,
    /// The engine has dropped its end.
    closed: bool,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Neither side panics while holding it; a poisoned lock's data is
        // still whole bytes.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writer's side: swap what is waiting into `into` (empty); true
    /// when the engine has closed the connection.
    fn take(&self, into: &mut Vec<u8>) -> bool {
        let mut w = self.lock();
        std::mem::swap(&mut w.bytes, into);
        w.batches = 0;
        w.closed
    }
}

impl Conn {
    /// For a viewer that can move between layers: keep its backlog out
    /// of the kernel (`UNSENT_MAX`) and short here (`SEND_QUEUE_LAYERED`).
    pub fn keep_backlog_short(&mut self) {
        use std::os::fd::AsRawFd;
        if let Some(fd) = &self.fd {
            limit_unsent(fd.as_raw_fd());
        }
        self.limit = SEND_QUEUE_LAYERED;
    }

    /// Queue a batch of packets already framed (`frame_into`); `batch` is
    /// left empty either way, with a capacity to reuse. False when the
    /// queue is full or the connection has gone: the batch is dropped, as
    /// on UDP.
    pub fn send(&self, batch: &mut Vec<u8>) -> bool {
        let mut w = self.outbox.lock();
        if w.closed || w.batches >= self.limit {
            batch.clear();
            return false;
        }
        if w.bytes.is_empty() {
            // The writer has taken everything: hand it this buffer whole.
            std::mem::swap(&mut w.bytes, batch);
            self.outbox.wake.notify_one();
        } else {
            w.bytes.extend_from_slice(batch);
            batch.clear();
        }
        w.batches += 1;
        true
    }

    /// Room for several more batches.
    pub fn has_room(&self) -> bool {
        self.outbox.lock().batches <= self.limit / 2
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.outbox.lock().closed = true;
        self.outbox.wake.notify_one();
    }
}

/// Append a packet to `out` with its RFC 4571 length prefix.
pub fn frame_into(out: &mut Vec<u8>, packet: &[u8]) {
    let p = &packet[..packet.len().min(MAX_PACKET)];
    out.extend_from_slice(&(p.len() as u16).to_be_bytes());
    out.extend_from_slice(p);
}

/// Splits an RFC 4571 byte stream back into packets. Sans-IO: feed bytes
/// as they arrive, take whole packets out.
#[derive(Default)]
pub struct Deframer {
    buf: Vec<u8>,
}

impl Deframer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn next_packet(&mut self) -> Option<Vec<u8>> {
        if self.buf.len() < 2 {
            return None;
        }
        let len = u16::from_be_bytes([self.buf[0], self.buf[1]]) as usize;
        if self.buf.len() < 2 + len {
            return None;
        }
        let p = self.buf[2..2 + len].to_vec();
        self.buf.drain(..2 + len);
        Some(p)
    }
}

/// Bind `0.0.0.0:port` with `SO_REUSEADDR`, so a restarted daemon gets its
/// port back while old connections sit in TIME_WAIT.
pub fn bind(port: u16) -> io::Result<TcpListener> {
    let s = TcpSocket::new_v4()?;
    s.set_reuseaddr(true)?;
    s.bind(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::UNSPECIFIED,
        port,
    )))?;
    s.listen(128)
}

/// Media does not wait in the kernel: at most this much unsent data per
/// connection (TCP_NOTSENT_LOWAT), for viewers of paths with renditions. A
/// link slower than the stream then backs up into the connection's queue,
/// where the engine sees it (and moves the viewer to a smaller layer),
/// instead of into a socket buffer that autotunes to megabytes: seconds of
/// stale video that would play out before anything newer. Not for every
/// connection: on a fast link it costs more, smaller writes (ICE-TCP at
/// 50 -> 150 viewers: 8.2-9.1 µs per packet without, 9.9-11.5 with).
const UNSENT_MAX: libc::c_int = 16 * 1024;

fn limit_unsent(fd: std::os::fd::RawFd) {
    // SAFETY: a socket the connection's task keeps open while the Conn
    // lives, and a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&UNSENT_MAX as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        log::debug!("webrtc: TCP_NOTSENT_LOWAT: {}", io::Error::last_os_error());
    }
}

/// Accept forever, one task per connection.
pub async fn listen(listener: TcpListener, events: mpsc::Sender<TcpEvent>) {
    let open = std::sync::Arc::new(());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                log::warn!("webrtc: tcp accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // Each task holds a clone; the count is the number of live connections.
        if std::sync::Arc::strong_count(&open) > MAX_CONNS {
            log::warn!("webrtc: refusing tcp connection from {peer}: {MAX_CONNS} open");
            continue;
        }
        let Ok(local) = stream.local_addr() else {
            continue;
        };
        let (conn, outbox) = Conn::new(&stream, peer, local);
        let id = conn.id;
        if events.send(TcpEvent::Open(conn)).await.is_err() {
            return;
        }
        let (events, guard) = (events.clone(), open.clone());
        tokio::spawn(async move {
            serve(stream, id, &events, &outbox).await;
            let _ = events.send(TcpEvent::Closed { id }).await;
            drop(guard);
        });
    }
}

/// Connect to `peer` (a relay's passive candidate) for `session`. The
/// connection's local address is the active candidate's (`ACTIVE_PORT`),
/// which is what the ICE agent knows it by.
pub fn dial(peer: SocketAddr, session: u64, events: mpsc::Sender<TcpEvent>) {
    tokio::spawn(async move {
        let stream = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(peer)).await {
            Ok(Ok(s)) => s,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer in {DIAL_TIMEOUT:?}"),
                };
                log::debug!("webrtc: ICE-TCP to {peer}: {why}");
                let _ = events.send(TcpEvent::DialFailed { peer }).await;
                return;
            }
        };
        let Ok(local) = stream.local_addr() else {
            let _ = events.send(TcpEvent::DialFailed { peer }).await;
            return;
        };
        let local = SocketAddr::new(local.ip(), ACTIVE_PORT);
        let (conn, outbox) = Conn::new(&stream, peer, local);
        let id = conn.id;
        if events
            .send(TcpEvent::Dialed { conn, session })
            .await
            .is_err()
        {
            return;
        }
        serve(stream, id, &events, &outbox).await;
        let _ = events.send(TcpEvent::Closed { id }).await;
    });
}

/// Shuttle packets both ways until either side ends.
async fn serve(stream: TcpStream, id: u64, events: &mpsc::Sender<TcpEvent>, outbox: &Outbox) {
    let (mut rd, mut wr) = stream.into_split();
    let mut deframer = Deframer::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut writing = Vec::with_capacity(64 * 1024);
    loop {
        tokio::select! {
            n = rd.read(&mut buf) => {
                let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                deframer.push(&buf[..n]);
                while let Some(data) = deframer.next_packet() {
                    if events.send(TcpEvent::Packet { id, data }).await.is_err() {
                        return;
                    }
                }
            }
            () = outbox.wake.notified() => {
                // Everything queued since the last write goes in one.
                let closed = outbox.take(&mut writing);
                if wr.write_all(&writing).await.is_err() || closed {
                    return; // a dropped Conn's last batch (a goodbye) went first
                }
                writing.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips_across_arbitrary_splits() {
        let packets: Vec<Vec<u8>> = vec![vec![1; 20], vec![], vec![7; 1500], vec![9; 3]];
        let mut stream = Vec::new();
        for p in &packets {
            frame_into(&mut stream, p);
        }
        for chunk in [1, 2, 3, 7, 1000, stream.len()] {
            let mut d = Deframer::default();
            let mut got = vec![];
            for c in stream.chunks(chunk) {
                d.push(c);
                while let Some(p) = d.next_packet() {
                    got.push(p);
                }
            }
            assert_eq!(got, packets, "chunk size {chunk}");
        }
    }

    #[test]
    fn a_partial_packet_waits_for_the_rest() {
        let mut d = Deframer::default();
        d.push(&[0, 4, 1, 2]);
        assert_eq!(d.next_packet(), None);
        d.push(&[3, 4, 0]);
        assert_eq!(d.next_packet(), Some(vec![1, 2, 3, 4]));
        assert_eq!(d.next_packet(), None);
    }

    /// A listener on loopback and one client whose receive buffer is small;
    /// the engine's end of the connection.
    async fn pair() -> (Conn, TcpStream, mpsc::Receiver<TcpEvent>) {
        let l = bind(0).unwrap();
        let port = l.local_addr().unwrap().port();
        let (events, mut rx) = mpsc::channel(16);
        tokio::spawn(listen(l, events));
        let s = TcpSocket::new_v4().unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        let client = s.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        let Some(TcpEvent::Open(conn)) = rx.recv().await else {
            panic!("no connection")
        };
        (conn, client, rx)
    }

    fn numbered_batch(b: u32, out: &mut Vec<u8>) {
        for i in 0..10u32 {
            let mut p = vec![(b % 251) as u8; 1000];
            p[..4].copy_from_slice(&(b * 10 + i).to_be_bytes());
            frame_into(out, &p);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_conn_writes_what_it_queued_then_closes() {
        use tokio::io::AsyncReadExt;
        let (conn, mut client, _events) = pair().await;
        let mut batch = Vec::new();
        numbered_batch(7, &mut batch);
        let sent = batch.clone();
        assert!(conn.send(&mut batch));
        assert!(batch.is_empty());
        drop(conn);
        let mut got = Vec::new();
        let read = client.read_to_end(&mut got);
        tokio::time::timeout(std::time::Duration::from_secs(5), read)
            .await
            .expect("the socket closes")
            .unwrap();
        assert!(
            got == sent,
            "the goodbye batch went out whole before the close"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_peer_fills_the_queue_and_gets_every_accepted_packet_in_order() {
        use tokio::io::AsyncReadExt;
        let (conn, mut client, _events) = pair().await;
        // The peer reads nothing: the socket, then the queue, fill up.
        let (mut accepted, mut refused, mut batch) = (Vec::new(), 0, Vec::new());
        let mut b = 0u32;
        while refused <= 10 && b < 10_000 {
            numbered_batch(b, &mut batch);
            if conn.send(&mut batch) {
                accepted.extend((0..10).map(|i| b * 10 + i));
            } else {
                refused += 1;
            }
            b += 1;
        }
        assert!(
            refused > 10,
            "a peer that reads nothing is refused at some point"
        );
        assert!(!conn.has_room());
        // Now it reads, slowly, while more is sent: the socket takes some
        // directly while the task still writes the backlog.
        let reader = tokio::spawn(async move {
            let (mut d, mut got, mut buf) = (Deframer::default(), Vec::new(), vec![0u8; 8192]);
            loop {
                let r =
                    tokio::time::timeout(std::time::Duration::from_secs(2), client.read(&mut buf));
                let Ok(Ok(n @ 1..)) = r.await else { break };
                d.push(&buf[..n]);
                while let Some(p) = d.next_packet() {
                    assert_eq!(p.len(), 1000, "a torn packet");
                    got.push(u32::from_be_bytes(p[..4].try_into().unwrap()));
                }
                tokio::task::yield_now().await;
            }
            got
        });
        for n in 0..20_000 {
            numbered_batch(b, &mut batch);
            if conn.send(&mut batch) {
                accepted.extend((0..10).map(|i| b * 10 + i));
            }
            b += 1;
            if n % 8 == 0 {
                tokio::time::sleep(std::time::Duration::from_micros(100)).await;
            }
        }
        let got = reader.await.unwrap();
        assert_eq!(got.len(), accepted.len());
        assert!(got == accepted, "out of order");
    }
}
