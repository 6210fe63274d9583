//! The WebRTC engine: one task that owns every viewer session, the shared
//! UDP socket, the shared ICE-TCP listener's connections and the stream
//! hub. Everything reaches it as a message (HTTP commands, encoded frames,
//! packets, timer ticks), so no session state is ever behind a lock.
//!
//! This file is the engine's public face and its start-up; the task itself
//! is in `engine.rs`.

mod admit;
mod batch;
mod candidates;
mod clock;
mod commands;
mod deadlines;
mod drained;
pub mod dtls;
mod engine;
mod forward;
mod housekeeping;
pub mod ice_servers;
mod inbound;
mod layers;
mod liveness;
mod msid;
pub(crate) mod net;
mod public;
mod publish;
mod quality;
mod relay;
pub mod session;
mod simulcast;
pub(crate) mod tcp;
mod transport;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::error::{Context, Result};
use crate::media::{MediaEvent, PathHandle};
use crate::vocab::SessionId;
pub use candidates::{Advertise, PublicHost};
pub use forward::TurnLeg;
pub use net::interface_addrs;
pub use public::{Unresolved, resolve_now};
pub use session::OfferError;

pub struct Answer {
    pub sdp: String,
    pub secret: String,
    pub id: SessionId,
}

/// What one path looks like from the network side, for the API.
#[derive(Debug, Clone)]
pub struct PathTraffic {
    pub name: Arc<str>,
    pub readers: Vec<SessionId>,
    pub bytes_sent: u64,
    pub profile: Option<u32>,
    /// `publisher` paths: the WHIP session feeding it.
    pub publisher: Option<SessionId>,
    /// Codec names once media flows, e.g. ["H264", "Opus"].
    pub tracks: Vec<&'static str>,
}

/// Where the engine listens and what it tells clients, for `r58 status`.
#[derive(Debug, Clone)]
pub struct Network {
    pub udp_port: u16,
    /// 0: ICE-TCP off.
    pub tcp_port: u16,
    /// Host addresses offered to LAN/VPN clients right now.
    pub hosts: Vec<IpAddr>,
    /// Addresses that forward to the box (additional hosts, the tunnel).
    pub public: Vec<PublicHost>,
    /// Configured public names that do not resolve (yet).
    pub unresolved: Vec<Unresolved>,
    pub viewers: usize,
    pub publishers: usize,
    pub send: crate::shapes::SendFacts,
}

/// WHIP → WHEP relay latency (RTP in → SRTP out), over recent packets.
#[derive(Debug, Clone, Copy)]
pub struct RelayLatency {
    pub p50_us: u32,
    pub p99_us: u32,
    pub packets: u64,
}

/// The transport a session's media is flowing over.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub proto: &'static str,
    pub local: SocketAddr,
    /// "host" when the client listed this address, "prflx" when it was
    /// learned from a connectivity check (mDNS `.local` candidates, NAT).
    pub remote_kind: &'static str,
    pub remote: SocketAddr,
}

/// RTP packets of one session. `lost` counts gaps in what a publisher
/// sent (its link to r58), not what viewers lose.
#[derive(Debug, Clone, Copy, Default)]
pub struct RtpCounts {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
}

/// One session, for `/v3/webrtcsessions/list`.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: SessionId,
    pub path: Arc<str>,
    pub created: SystemTime,
    /// The HTTP client that made the offer.
    pub client: SocketAddr,
    pub connected: bool,
    pub pair: Option<Pair>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub rtp: RtpCounts,
    /// A WHIP publisher (else a WHEP viewer).
    pub publishing: bool,
    pub user_agent: Option<String>,
    /// Viewers: their layer and link.
    pub view: Option<crate::shapes::ViewerFacts>,
}

/// A forward's link to its relay, for status.
#[derive(Debug, Clone)]
pub struct ForwardLink {
    pub connected: bool,
    pub bytes_sent: u64,
    /// RTCP from the relay: a count that stops growing means it is gone.
    pub bytes_received: u64,
    pub rtt_ms: Option<u32>,
    pub pair: Option<Pair>,
    /// The pair's local end is a TURN allocation's relayed address.
    pub via_turn: bool,
}

pub enum Cmd {
    /// Could a forward of the path start now (is it streaming)?
    ForwardReady {
        path: String,
        reply: oneshot::Sender<Result<(), OfferError>>,
    },
    /// A forward (r58 as WHIP client) of a path: the offer to POST, with a
    /// TURN allocation's relayed address among its candidates when given.
    ForwardOffer {
        path: String,
        turn: Option<TurnLeg>,
        reply: oneshot::Sender<Result<(SessionId, String), OfferError>>,
    },
    /// Add a TURN allocation to a forward already answered: the relayed
    /// candidate's SDP line, for a PATCH.
    ForwardTrickle {
        id: SessionId,
        turn: TurnLeg,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// A datagram from `peer` that a forward's TURN server relayed.
    ForwardRelayed {
        id: SessionId,
        peer: SocketAddr,
        data: Vec<u8>,
    },
    /// The relay's answer to that offer.
    ForwardAnswer {
        id: SessionId,
        sdp: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// How a forward is doing; None once its session is closed.
    ForwardLink {
        id: SessionId,
        reply: oneshot::Sender<Option<ForwardLink>>,
    },
    /// End a forward's session (the relay is told by DELETE, not here).
    ForwardStop {
        id: SessionId,
    },
    Offer {
        path: String,
        sdp: String,
        client: SocketAddr,
        /// The client's User-Agent header, for the session list.
        user_agent: Option<String>,
        /// WHIP (publish) rather than WHEP (read).
        publish: bool,
        reply: oneshot::Sender<Result<Answer, OfferError>>,
    },
    Delete {
        path: String,
        secret: String,
        reply: oneshot::Sender<bool>,
    },
    Patch {
        path: String,
        secret: String,
        frag: String,
        reply: oneshot::Sender<bool>,
    },
    Traffic {
        reply: oneshot::Sender<Vec<PathTraffic>>,
    },
    Sessions {
        reply: oneshot::Sender<Vec<SessionInfo>>,
    },
    RelayLatency {
        reply: oneshot::Sender<Option<RelayLatency>>,
    },
    Network {
        reply: oneshot::Sender<Network>,
    },
    /// The daemon is stopping: say goodbye to every session (RTCP BYE,
    /// DTLS close_notify) and take no new ones; replies how many ended.
    Shutdown {
        reply: oneshot::Sender<usize>,
    },
    /// The public addresses changed (a name resolved, or stopped to).
    Public {
        hosts: Vec<PublicHost>,
        unresolved: Vec<Unresolved>,
    },
}

#[derive(Clone)]
pub struct EngineHandle(mpsc::Sender<Cmd>);

impl EngineHandle {
    /// Send a command that has no reply.
    pub async fn tell(&self, cmd: Cmd) {
        let _ = self.0.send(cmd).await;
    }

    /// Send a command and wait for its reply; None if the engine is gone.
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.0.send(make(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// Bind the media sockets and start the engine task.
pub fn start(
    cfg: &Config,
    paths: &[PathHandle],
    frames: mpsc::Receiver<MediaEvent>,
) -> Result<EngineHandle> {
    dtls::install();
    let cert = dtls::provider()
        .dtls_provider
        .generate_certificate()
        .context("creating the DTLS certificate")?;
    let w = &cfg.webrtc;
    let any = |port| SocketAddr::from(([0, 0, 0, 0], port));
    let udp = net::bind_udp(w.udp_port).map_err(|e| {
        crate::error::Error::new(crate::http::bind_error("WebRTC UDP", any(w.udp_port), &e))
    })?;
    let udp_port = udp.local_addr().context("reading UDP port")?.port();
    let (tcp_tx, tcp_rx) = mpsc::channel(1024);
    let tcp_port = if w.tcp_port == 0 {
        log::info!("webrtc: ICE-TCP disabled (tcp_port = 0)");
        0
    } else {
        let l = tcp::bind(w.tcp_port).map_err(|e| {
            crate::error::Error::new(crate::http::bind_error(
                "WebRTC ICE-TCP",
                any(w.tcp_port),
                &e,
            ))
        })?;
        let port = l.local_addr().context("reading TCP port")?.port();
        tokio::spawn(tcp::listen(l, tcp_tx.clone()));
        port
    };
    // Names resolve in the background: start-up never waits for DNS.
    let names = public::Names::new(w, udp_port, tcp_port, std::time::Instant::now());
    let adv = Advertise {
        hosts: w.hosts.clone(),
        interfaces: w.interfaces.clone(),
        public: names.hosts(),
        udp_port,
        tcp_port,
        policy: w.candidate_policy,
        forwarders: w.forwarders.clone(),
    };
    log::info!(
        "webrtc: media on udp/{udp_port}{}, shared by all sessions",
        if tcp_port > 0 {
            format!(" and tcp/{tcp_port}")
        } else {
            String::new()
        }
    );
    for p in &adv.public {
        log::info!(
            "webrtc: public address {} (udp {}, tcp {})",
            p.ip,
            port_text(p.udp_port),
            port_text(p.tcp_port)
        );
    }
    let (tx, rx) = mpsc::channel(64);
    if names.next_due().is_some() {
        tokio::spawn(public::resolve_forever(names, tx.downgrade()));
    }
    let engine = engine::Engine::new(cfg, paths, udp, adv, cert, tcp_tx);
    tokio::spawn(engine.run(rx, frames, tcp_rx));
    Ok(EngineHandle(tx))
}

fn port_text(p: u16) -> String {
    if p == 0 { "off".into() } else { p.to_string() }
}

/// 128 random bits as hex, for unguessable session URLs. From aws-lc-rs's
/// RNG, which needs no file descriptor (a box out of them must still
/// answer, not panic).
pub fn random_hex() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).expect("the system RNG failed");
    crate::hex::encode(&b)
}

/// An SDP offer from a throwaway str0m client with one recvonly video
/// m-line: what `r58 doctor` sends to check the engine answers viewers.
pub fn probe_offer() -> Result<String> {
    dtls::install();
    let mut rtc = str0m::Rtc::builder().build(std::time::Instant::now());
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let cand = str0m::Candidate::host(local, "udp").context("making a probe candidate")?;
    rtc.add_local_candidate(cand);
    let mut api = rtc.sdp_api();
    api.add_media(
        str0m::media::MediaKind::Video,
        str0m::media::Direction::RecvOnly,
        None,
        None,
        None,
    );
    let (offer, _pending) = api.apply().context("making a probe offer")?;
    Ok(offer.to_sdp_string())
}
