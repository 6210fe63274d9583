//! How bytes reach frps: TCP, optionally frp's 0x17 marker byte, TLS
//! (rustls on aws-lc-rs), then either one yamux session carrying every
//! channel or one connection per channel (`tcp_mux = false`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::mux::{self, BoxIo};
use super::tls;
use crate::config::tunnel::Settings;

const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
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
    pub async fn dial(&self) -> Result<BoxIo, String> {
        let server = self.server();
        let tcp = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect((&*self.host, self.port)))
            .await
            .map_err(|_| format!("connecting to {server}: timed out"))?
            .map_err(|e| format!("connecting to {server}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let Some((connector, name)) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let mut tcp = tcp;
        if self.first_byte {
            tcp.write_all(&[TLS_FIRST_BYTE])
                .await
                .map_err(|e| format!("connecting to {server}: {e}"))?;
        }
        let tls = tokio::time::timeout(DIAL_TIMEOUT, connector.connect(name.clone(), tcp))
            .await
            .map_err(|_| format!("TLS with {server}: timed out"))?
            .map_err(|e| format!("TLS with {server}: {e}"))?;
        Ok(Box::new(tls))
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
            Opener::Direct(d) => d.dial().await.map(Channel::raw),
        }
    }
}

/// Connect and set up the transport: the control channel, an opener for
/// work connections and, with mux, the session task to watch.
pub async fn connect(
    dialer: &Arc<Dialer>,
    s: &Settings,
) -> Result<(Channel, Opener, Option<tokio::task::JoinHandle<String>>), String> {
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
    let control = handle.open().await.map_err(|e| e.to_string())?;
    Ok((Channel::Mux(control), Opener::Mux(handle), Some(task)))
}
