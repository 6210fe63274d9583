//! The tokio driver around the sans-IO `yamux::Session`: one task owns the
//! connection to frps; streams talk to it over channels. A send completes
//! when the peer's window admitted the bytes, so a slow viewer pushes back
//! on its local socket instead of growing buffers here.

use std::collections::{HashMap, VecDeque};
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::yamux::{self, Event};

/// Any byte stream to the peer: TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}
pub type BoxIo = Box<dyn Io>;

enum Cmd {
    Open(oneshot::Sender<Stream>),
    Send(u32, Vec<u8>, oneshot::Sender<io::Result<()>>),
    Consumed(u32, usize),
    Close(u32),
}

/// Opens streams on the session; cheap to clone.
#[derive(Clone)]
pub struct Handle {
    cmd: mpsc::UnboundedSender<Cmd>,
}

pub struct Stream {
    id: u32,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    cmd: mpsc::UnboundedSender<Cmd>,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "tunnel session ended")
}

impl Handle {
    pub async fn open(&self) -> io::Result<Stream> {
        let (tx, rx) = oneshot::channel();
        self.cmd.send(Cmd::Open(tx)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }
}

impl Stream {
    /// `None` once the peer closed its side (or the session ended).
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let d = self.rx.recv().await?;
        let _ = self.cmd.send(Cmd::Consumed(self.id, d.len()));
        Some(d)
    }

    pub async fn send(&mut self, data: Vec<u8>) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Cmd::Send(self.id, data, tx))
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.cmd.send(Cmd::Close(self.id));
    }
}

/// Runs the session until the connection fails; the task's result says why.
/// Streams the peer opens go to `incoming` (frps never opens any, so the
/// client passes `None` and refuses them; a server passes a channel).
pub fn spawn(
    io: BoxIo,
    cfg: yamux::Config,
    incoming: Option<mpsc::UnboundedSender<Stream>>,
) -> (Handle, tokio::task::JoinHandle<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handle = Handle { cmd: tx.clone() };
    let task = tokio::spawn(async move {
        let mut d = Driver {
            core: yamux::Session::new(cfg, Instant::now().into_std()),
            streams: HashMap::new(),
            pending: HashMap::new(),
            cmd_tx: tx,
            incoming,
            framed: Vec::new(),
        };
        match d.run(io, rx).await {
            Ok(()) => "closed".to_string(),
            Err(e) => e,
        }
    });
    (handle, task)
}

type Pending = VecDeque<(Vec<u8>, usize, oneshot::Sender<io::Result<()>>)>;

struct Driver {
    core: yamux::Session,
    streams: HashMap<u32, mpsc::UnboundedSender<Vec<u8>>>,
    pending: HashMap<u32, Pending>,
    cmd_tx: mpsc::UnboundedSender<Cmd>,
    incoming: Option<mpsc::UnboundedSender<Stream>>,
    /// Sends framed but not yet written to the socket; completed after
    /// the write, so "sent" means "handed to the kernel".
    framed: Vec<oneshot::Sender<io::Result<()>>>,
}

impl Driver {
    fn stream(&mut self, id: u32) -> Stream {
        let (tx, rx) = mpsc::unbounded_channel();
        self.streams.insert(id, tx);
        Stream {
            id,
            rx,
            cmd: self.cmd_tx.clone(),
        }
    }

    async fn run(&mut self, io: BoxIo, mut rx: mpsc::UnboundedReceiver<Cmd>) -> Result<(), String> {
        let (mut rd, mut wr) = tokio::io::split(io);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let out = self.core.take_transmit();
            if !out.is_empty() {
                let w = async {
                    wr.write_all(&out).await?;
                    wr.flush().await
                };
                w.await.map_err(|e| format!("writing to frps: {e}"))?;
            }
            for done in self.framed.drain(..) {
                let _ = done.send(Ok(()));
            }
            let deadline = Instant::from_std(self.core.poll_timeout());
            tokio::select! {
                n = rd.read(&mut buf) => {
                    let n = n.map_err(|e| format!("reading from frps: {e}"))?;
                    if n == 0 {
                        return Err("frps closed the connection".into());
                    }
                    self.core
                        .handle_input(&buf[..n], Instant::now().into_std())
                        .map_err(|e| e.to_string())?;
                    self.dispatch()?;
                }
                cmd = rx.recv() => match cmd {
                    // Unreachable while we hold cmd_tx; kept for clarity.
                    None => return Ok(()),
                    Some(c) => self.command(c),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    self.core
                        .handle_timeout(Instant::now().into_std())
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    }

    fn command(&mut self, c: Cmd) {
        match c {
            Cmd::Open(reply) => {
                let id = self.core.open();
                let s = self.stream(id);
                // A caller that gave up drops the Stream, which closes it.
                let _ = reply.send(s);
            }
            Cmd::Send(id, data, done) => {
                if !self.core.is_open(id) {
                    let _ = done.send(Err(gone()));
                    return;
                }
                self.pending
                    .entry(id)
                    .or_default()
                    .push_back((data, 0, done));
                self.flush(id);
            }
            Cmd::Consumed(id, n) => self.core.consumed(id, n),
            Cmd::Close(id) => {
                self.streams.remove(&id);
                self.pending.remove(&id);
                self.core.close(id);
            }
        }
    }

    /// Frame queued sends for `id` as far as the window allows.
    fn flush(&mut self, id: u32) {
        let Some(q) = self.pending.get_mut(&id) else {
            return;
        };
        while let Some((data, off, _)) = q.front_mut() {
            let n = self.core.send(id, &data[*off..]);
            *off += n;
            if *off < data.len() {
                if !self.core.is_open(id) {
                    // The peer reset the stream under us.
                    while let Some((_, _, done)) = q.pop_front() {
                        let _ = done.send(Err(gone()));
                    }
                }
                return;
            }
            let (_, _, done) = q.pop_front().unwrap();
            self.framed.push(done);
        }
    }

    fn dispatch(&mut self) -> Result<(), String> {
        while let Some(ev) = self.core.poll_event() {
            match ev {
                Event::Data(id, d) => {
                    if let Some(tx) = self.streams.get(&id)
                        && tx.send(d).is_err()
                    {
                        self.streams.remove(&id);
                        self.core.reset(id);
                    }
                }
                Event::Finished(id) => {
                    self.streams.remove(&id);
                }
                Event::Reset(id) => {
                    self.streams.remove(&id);
                    self.flush(id);
                    self.pending.remove(&id);
                }
                Event::Writable(id) => self.flush(id),
                Event::Opened(id) => match self.incoming.clone() {
                    Some(tx) => {
                        let s = self.stream(id);
                        let _ = tx.send(s);
                    }
                    None => self.core.reset(id),
                },
                Event::GoAway(code) => return Err(format!("frps is going away (code {code})")),
            }
        }
        Ok(())
    }
}
