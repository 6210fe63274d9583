//! How bytes reach frps: TCP, optionally frp's 0x17 marker byte, TLS
//! (rustls on aws-lc-rs), then either one yamux session carrying every
//! channel or one connection per channel (`tcp_mux = false`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::mux::{self, BoxIo};
use super::tls;
use crate::config::tunnel::Settings;

/// Why a dial failed, and whether anything answered: with no answer at all
/// the path is down, and retrying soon costs only a SYN.
#[derive(Debug)]
pub struct DialError {
    pub msg: String,
    pub path_down: bool,
}

impl DialError {
    fn answered(msg: String) -> DialError {
        DialError {
            msg,
            path_down: false,
        }
    }
}

const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// A new TCP attempt joins the waiting ones this often (see `tcp`).
const DIAL_STAGGER: Duration = Duration::from_secs(1);
/// frp's marker for "TLS follows" on a port that also takes plaintext.
const TLS_FIRST_BYTE: u8 = 0x17;

/// Everything needed to open a new connection to frps.
pub struct Dialer {
    host: String,
    port: u16,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    first_byte: bool,
}

impl Dialer {
    pub fn new(s: &Settings) -> Result<Dialer, String> {
        let tls = if s.tls.enable {
            Some(tls::connector(s)?)
        } else {
            None
        };
        Ok(Dialer {
            host: s.server_addr.clone(),
            port: s.server_port,
            tls,
            first_byte: s.tls.first_byte,
        })
    }

    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Resolves the name on every attempt: a box that booted before DNS
    /// worked must not keep a failure.
    pub async fn dial(&self) -> Result<BoxIo, DialError> {
        let server = self.server();
        let tcp = self.tcp().await?;
        let _ = tcp.set_nodelay(true);
        let Some((connector, name)) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let mut tcp = tcp;
        if self.first_byte {
            tcp.write_all(&[TLS_FIRST_BYTE])
                .await
                .map_err(|e| DialError::answered(format!("connecting to {server}: {e}")))?;
        }
        let tls = tokio::time::timeout(DIAL_TIMEOUT, connector.connect(name.clone(), tcp))
            .await
            .map_err(|_| DialError::answered(format!("TLS with {server}: timed out")))?
            .map_err(|e| DialError::answered(format!("TLS with {server}: {e}")))?;
        Ok(Box::new(tls))
    }

    /// TCP with staggered attempts: while earlier SYNs wait (a slow link
    /// gets the full 10 s), a fresh attempt starts every second. A path
    /// that comes back is then used within a second, instead of at the
    /// kernel's next SYN retry, which doubles up to 8 s apart.
    async fn tcp(&self) -> Result<TcpStream, DialError> {
        let server = self.server();
        let addrs: Vec<_> = tokio::net::lookup_host((&*self.host, self.port))
            .await
            .map_err(|e| DialError::answered(format!("resolving {}: {e}", self.host)))?
            .collect();
        if addrs.is_empty() {
            return Err(DialError::answered(format!("{} has no address", self.host)));
        }
        let deadline = Instant::now() + DIAL_TIMEOUT;
        let mut next = Instant::now();
        let mut attempts = JoinSet::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next), if next < deadline => {
                    attempts.spawn(TcpStream::connect(addrs[attempts.len() % addrs.len()]));
                    next += DIAL_STAGGER;
                }
                // The first answer decides; the others are dropped.
                Some(r) = attempts.join_next() => {
                    let r = r.map_err(|e| io::Error::other(e.to_string())).and_then(|r| r);
                    return r.map_err(|e| DialError {
                        path_down: matches!(
                            e.kind(),
                            io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable
                        ),
                        msg: format!("connecting to {server}: {e}"),
                    });
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(DialError {
                        msg: format!("connecting to {server}: no answer in {} s", DIAL_TIMEOUT.as_secs()),
                        path_down: true,
                    });
                }
            }
        }
    }
}

/// One conversation with frps: the control channel or a work connection.
pub enum Channel {
    Mux(mux::Stream),
    Raw(BoxIo, Vec<u8>),
}

impl Channel {
    fn raw(io: BoxIo) -> Channel {
        Channel::Raw(io, vec![0; 32 * 1024])
    }

    /// `Ok(None)` when frps closed it.
    pub async fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self {
            Channel::Mux(s) => Ok(s.recv().await),
            Channel::Raw(io, buf) => match io.read(buf).await? {
                0 => Ok(None),
                n => Ok(Some(buf[..n].to_vec())),
            },
        }
    }

    pub async fn send(&mut self, data: Vec<u8>) -> io::Result<()> {
        match self {
            Channel::Mux(s) => s.send(data).await,
            Channel::Raw(io, _) => io.write_all(&data).await,
        }
    }
}

/// Opens channels: streams on the session, or fresh connections.
#[derive(Clone)]
pub enum Opener {
    Mux(mux::Handle),
    Direct(Arc<Dialer>),
}

impl Opener {
    pub async fn open(&self) -> Result<Channel, String> {
        match self {
            Opener::Mux(h) => h.open().await.map(Channel::Mux).map_err(|e| e.to_string()),
            Opener::Direct(d) => d.dial().await.map(Channel::raw).map_err(|e| e.msg),
        }
    }
}

/// Connect and set up the transport: the control channel, an opener for
/// work connections and, with mux, the session task to watch.
pub async fn connect(
    dialer: &Arc<Dialer>,
    s: &Settings,
) -> Result<(Channel, Opener, Option<tokio::task::JoinHandle<String>>), DialError> {
    let io = dialer.dial().await?;
    if !s.tcp_mux {
        return Ok((Channel::raw(io), Opener::Direct(dialer.clone()), None));
    }
    let cfg = super::yamux::Config {
        // Our own keepalive on top of frp Ping: both must answer.
        keepalive: s.heartbeat.max(Duration::from_secs(1)) * 2,
        ping_timeout: s.dead_after,
        ..Default::default()
    };
    let (handle, task) = mux::spawn(io, cfg, None);
    let control = handle
        .open()
        .await
        .map_err(|e| DialError::answered(e.to_string()))?;
    Ok((Channel::Mux(control), Opener::Mux(handle), Some(task)))
}
