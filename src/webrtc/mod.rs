//! The WebRTC engine: one task that owns every viewer session, the shared
//! UDP socket and the stream hub. Everything reaches it as a message (HTTP
//! commands, encoded frames, datagrams, timer ticks), so no session state is
//! ever behind a lock.

mod net;
pub mod session;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::error::{Context, Result};
use crate::h264;
use crate::hub::{Frame, Hub};
use crate::media::{Control, MediaEvent, PathHandle, PathState};
pub use session::OfferError;
use session::Session;

/// A viewer that has not connected by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Answer {
    pub sdp: String,
    pub secret: String,
    pub id: String,
}

/// What one path looks like from the network side, for the API.
#[derive(Debug, Clone)]
pub struct PathTraffic {
    pub name: Arc<str>,
    pub readers: Vec<String>,
    pub bytes_sent: u64,
    pub profile: Option<u32>,
}

pub enum Cmd {
    Offer {
        path: String,
        sdp: String,
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
}

#[derive(Clone)]
pub struct EngineHandle(mpsc::Sender<Cmd>);

impl EngineHandle {
    /// Send a command and wait for its reply; None if the engine is gone.
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.0.send(make(tx)).await.ok()?;
        rx.await.ok()
    }
}

struct PathEntry {
    handle: PathHandle,
    max_viewers: usize,
    profile: Option<u32>,
    bytes_sent: u64,
    clock: RtpClock,
}

/// Maps a pipeline's PTS to the path's 90 kHz RTP time. A restarted
/// pipeline starts its PTS again from zero; the RTP time must not jump
/// back for viewers who stay connected, so the clock rebases.
#[derive(Default)]
struct RtpClock {
    base: Option<(u64, u32)>,
    last: u32,
}

impl RtpClock {
    fn rtp_time(&mut self, pts_ns: u64) -> u32 {
        let (pts0, rtp0) = match self.base {
            Some((p, r)) if pts_ns >= p => (p, r),
            _ => {
                let b = (pts_ns, self.last.wrapping_add(3000));
                self.base = Some(b);
                b
            }
        };
        let t = rtp0.wrapping_add(((pts_ns - pts0) as u128 * 90_000 / 1_000_000_000) as u32);
        self.last = t;
        t
    }
}

struct Engine {
    sessions: HashMap<u64, Session>,
    by_ufrag: HashMap<String, u64>,
    by_addr: HashMap<SocketAddr, u64>,
    hub: Hub,
    paths: HashMap<Arc<str>, PathEntry>,
    hosts: Vec<IpAddr>,
    udp: Arc<UdpSocket>,
    udp_port: u16,
    cert: str0m::config::DtlsCert,
    next_id: u64,
}

/// Bind the media socket and start the engine task.
pub fn start(
    cfg: &Config,
    paths: &[PathHandle],
    frames: mpsc::Receiver<MediaEvent>,
) -> Result<EngineHandle> {
    let provider = str0m::crypto::from_feature_flags();
    let cert = provider
        .dtls_provider
        .generate_certificate()
        .context("creating the DTLS certificate")?;
    provider.install_process_default();
    let udp = net::bind_udp(cfg.webrtc.udp_port)
        .with_context(|| format!("binding WebRTC UDP port {}", cfg.webrtc.udp_port))?;
    let udp_port = udp.local_addr().context("reading UDP port")?.port();
    log::info!("webrtc: media on udp/{udp_port}, shared by all sessions");
    let entries = paths
        .iter()
        .map(|h| {
            let max_viewers = cfg.paths.get(&*h.name).map(|p| p.max_viewers).unwrap_or(32);
            (
                h.name.clone(),
                PathEntry {
                    handle: h.clone(),
                    max_viewers,
                    profile: None,
                    bytes_sent: 0,
                    clock: RtpClock::default(),
                },
            )
        })
        .collect();
    let engine = Engine {
        sessions: HashMap::new(),
        by_ufrag: HashMap::new(),
        by_addr: HashMap::new(),
        hub: Hub::default(),
        paths: entries,
        hosts: cfg.webrtc.hosts.clone(),
        udp: Arc::new(udp),
        udp_port,
        cert,
        next_id: 1,
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(engine.run(rx, frames));
    Ok(EngineHandle(tx))
}

enum Wake {
    Cmd(Cmd),
    Frame(MediaEvent),
    Datagram(usize, SocketAddr, IpAddr),
    Timer,
    Closed,
}

impl Engine {
    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>, mut frames: mpsc::Receiver<MediaEvent>) {
        let udp = self.udp.clone();
        let mut buf = vec![0u8; 2048];
        loop {
            let deadline = self
                .sessions
                .values()
                .map(|s| s.next_timeout)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            let wake = tokio::select! {
                c = cmds.recv() => c.map(Wake::Cmd).unwrap_or(Wake::Closed),
                f = frames.recv() => f.map(Wake::Frame).unwrap_or(Wake::Closed),
                r = net::recv_from_to(&udp, &mut buf) => match r {
                    Ok((n, src, dst)) => Wake::Datagram(n, src, dst),
                    Err(e) => { log::warn!("webrtc: udp receive: {e}"); Wake::Timer }
                },
                _ = tokio::time::sleep_until(deadline.into()) => Wake::Timer,
            };
            let now = Instant::now();
            match wake {
                Wake::Cmd(c) => self.on_cmd(c, now),
                Wake::Frame(ev) => self.on_frame(ev, now),
                Wake::Datagram(n, src, dst) => self.on_datagram(&buf[..n], src, dst, now),
                Wake::Timer => {}
                Wake::Closed => return,
            }
            self.on_timeouts(Instant::now());
        }
    }

    fn on_cmd(&mut self, cmd: Cmd, now: Instant) {
        match cmd {
            Cmd::Offer { path, sdp, reply } => {
                let _ = reply.send(self.offer(&path, &sdp, now));
            }
            Cmd::Delete {
                path,
                secret,
                reply,
            } => {
                let id = self.find(&path, &secret);
                if let Some(id) = id {
                    log::info!("whep {id}: deleted by viewer");
                    self.close(id, now);
                }
                let _ = reply.send(id.is_some());
            }
            Cmd::Patch {
                path,
                secret,
                frag,
                reply,
            } => {
                let id = self.find(&path, &secret);
                if let Some(s) = id.and_then(|id| self.sessions.get_mut(&id)) {
                    for line in frag.lines().filter_map(|l| l.trim().strip_prefix("a=")) {
                        if line.starts_with("candidate:") {
                            match Candidate::from_sdp_string(line) {
                                Ok(c) => s.rtc.add_remote_candidate(c),
                                Err(e) => log::debug!("whep {}: ignoring candidate: {e}", s.id),
                            }
                        }
                    }
                }
                let _ = reply.send(id.is_some());
            }
            Cmd::Traffic { reply } => {
                let mut out: Vec<PathTraffic> = self
                    .paths
                    .iter()
                    .map(|(name, p)| PathTraffic {
                        name: name.clone(),
                        readers: vec![],
                        bytes_sent: p.bytes_sent,
                        profile: p.profile,
                    })
                    .collect();
                for s in self.sessions.values().filter(|s| s.reading) {
                    if let Some(t) = out.iter_mut().find(|t| t.name == s.path) {
                        t.readers.push(format!("{:016x}", s.id));
                    }
                }
                let _ = reply.send(out);
            }
        }
    }

    fn find(&self, path: &str, secret: &str) -> Option<u64> {
        self.sessions
            .values()
            .find(|s| &*s.path == path && s.secret == secret)
            .map(|s| s.id)
    }

    fn offer(&mut self, path: &str, sdp: &str, now: Instant) -> Result<Answer, OfferError> {
        let (name, entry) = self.paths.get_key_value(path).ok_or(OfferError::NoPath)?;
        let name = name.clone();
        let st = entry.handle.status();
        if st.state != PathState::Streaming {
            let why = st.detail.unwrap_or_else(|| st.state.as_str().into());
            return Err(OfferError::NotReady(format!(
                "path '{path}' is not ready: {why}"
            )));
        }
        let viewers = self.sessions.values().filter(|s| s.path == name).count();
        if viewers >= entry.max_viewers {
            return Err(OfferError::Full(entry.max_viewers));
        }
        let profile = entry.profile;
        let candidates = self.candidates();
        let id = self.next_id;
        self.next_id += 1;
        let secret = random_hex();
        let (mut s, answer) = Session::accept(
            id,
            secret.clone(),
            name.clone(),
            sdp,
            &candidates,
            &self.cert,
            profile,
            now,
        )?;
        // Ask for a fresh IDR now, so one is cached by the time ICE+DTLS are up.
        if self.hub.keyframe_request(&name, now) {
            entry_send(&self.paths, &name, Control::Keyframe);
        }
        s.next_timeout = now;
        self.by_ufrag.insert(s.ufrag.clone(), id);
        log::info!("whep {id}: new viewer of {path} (mid {})", s.video_mid());
        self.sessions.insert(id, s);
        Ok(Answer {
            sdp: answer,
            secret,
            id: format!("{id:016x}"),
        })
    }

    fn candidates(&self) -> Vec<Candidate> {
        let ips = if self.hosts.is_empty() {
            net::interface_addrs()
        } else {
            self.hosts.clone()
        };
        ips.into_iter()
            .filter_map(|ip| Candidate::host(SocketAddr::new(ip, self.udp_port), "udp").ok())
            .collect()
    }

    fn on_datagram(&mut self, data: &[u8], source: SocketAddr, dst: IpAddr, now: Instant) {
        let id = match self.by_addr.get(&source) {
            Some(id) => *id,
            None => match net::stun_local_ufrag(data).and_then(|u| self.by_ufrag.get(u)) {
                Some(id) => {
                    self.by_addr.insert(source, *id);
                    *id
                }
                None => return,
            },
        };
        let Some(s) = self.sessions.get_mut(&id) else {
            self.by_addr.remove(&source);
            return;
        };
        let Ok(contents) = data.try_into() else {
            return;
        };
        let recv = Receive {
            proto: Protocol::Udp,
            source,
            destination: SocketAddr::new(dst, self.udp_port),
            contents,
        };
        s.remote.get_or_insert(source);
        if let Err(e) = s.rtc.handle_input(Input::Receive(now, recv)) {
            log::debug!("whep {id}: input rejected: {e}");
        }
        self.drive(id, now);
    }

    fn on_frame(&mut self, ev: MediaEvent, now: Instant) {
        let Some(entry) = self.paths.get_mut(&ev.path) else {
            return;
        };
        if ev.au.keyframe {
            if let Some(p) = h264::profile_level_id(&ev.au.data) {
                entry.profile = Some(p);
            }
        }
        let payloads = h264::packetize(&ev.au.data, h264::MAX_PAYLOAD);
        let frame = Arc::new(Frame {
            rtp_time: entry.clock.rtp_time(ev.au.pts_ns),
            keyframe: ev.au.keyframe,
            bytes: payloads.iter().map(|p| p.len()).sum(),
            payloads,
        });
        if self.hub.push(&ev.path, frame, now) {
            entry.handle.send(Control::Keyframe);
        }
        let ids: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| s.reading && s.path == ev.path)
            .map(|s| s.id)
            .collect();
        for id in ids {
            self.pump(id, now);
            self.drive(id, now);
        }
    }

    /// Move queued frames from the hub into the session's RTP stream.
    fn pump(&mut self, id: u64, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut sent = 0;
        while let Some(f) = self.hub.pop(&s.path, id) {
            s.write_frame(&f, now);
            sent += f.bytes as u64;
        }
        if let Some(p) = self.paths.get_mut(&s.path) {
            p.bytes_sent += sent;
        }
    }

    /// Run one session's state machine until it wants to wait.
    fn drive(&mut self, id: u64, now: Instant) {
        let mut close = false;
        let mut joined = false;
        let mut keyframe = false;
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        loop {
            match s.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    s.next_timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    if let Err(e) = self.udp.try_send_to(&t.contents, t.destination) {
                        log::debug!("whep {id}: send to {}: {e}", t.destination);
                    }
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected => {
                        s.connected = true;
                        joined = !s.reading;
                        s.reading = true;
                        log::info!(
                            "whep {id}: connected from {}",
                            s.remote.map(|a| a.to_string()).unwrap_or_default()
                        );
                    }
                    Event::KeyframeRequest(_) => keyframe = true,
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        close = true
                    }
                    _ => {}
                },
                Err(e) => {
                    log::info!("whep {id}: session error: {e}");
                    close = true;
                    break;
                }
            }
        }
        let path = s.path.clone();
        if joined && self.hub.add_reader(&path, id, now) {
            entry_send(&self.paths, &path, Control::Keyframe);
        }
        if keyframe && self.hub.keyframe_request(&path, now) {
            entry_send(&self.paths, &path, Control::Keyframe);
        }
        if joined {
            self.pump(id, now);
            self.drive(id, now);
        }
        if close {
            self.close(id, now);
        }
    }

    fn on_timeouts(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| s.next_timeout <= now)
            .map(|s| s.id)
            .collect();
        for id in due {
            if let Some(s) = self.sessions.get_mut(&id) {
                if let Err(e) = s.rtc.handle_input(Input::Timeout(now)) {
                    log::debug!("whep {id}: timeout: {e}");
                }
            }
            self.drive(id, now);
        }
        let dead: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| {
                !s.rtc.is_alive()
                    || (!s.connected && now.duration_since(s.created) > HANDSHAKE_TIMEOUT)
            })
            .map(|s| s.id)
            .collect();
        for id in dead {
            log::info!("whep {id}: timed out or disconnected");
            self.close(id, now);
        }
    }

    fn close(&mut self, id: u64, now: Instant) {
        let Some(mut s) = self.sessions.remove(&id) else {
            return;
        };
        // Tell the browser (RTCP BYE + DTLS close_notify) before forgetting it.
        if s.rtc.is_alive() {
            let _ = s.rtc.close();
            while let Ok(out) = s.rtc.poll_output() {
                match out {
                    Output::Transmit(t) => {
                        let _ = self.udp.try_send_to(&t.contents, t.destination);
                    }
                    Output::Timeout(_) => break,
                    Output::Event(_) => {}
                }
            }
        }
        let _ = now;
        self.hub.remove_reader(&s.path, id);
        self.by_ufrag.remove(&s.ufrag);
        self.by_addr.retain(|_, v| *v != id);
        log::info!("whep {id}: closed ({} bytes sent)", s.bytes_sent);
    }
}

fn entry_send(paths: &HashMap<Arc<str>, PathEntry>, path: &str, c: Control) {
    if let Some(p) = paths.get(path) {
        p.handle.send(c);
    }
}

/// 128 random bits as hex, for unguessable session URLs.
pub fn random_hex() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("reading /dev/urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_clock_is_90khz_and_survives_a_pipeline_restart() {
        let mut c = RtpClock::default();
        let a = c.rtp_time(5_000_000_000);
        assert_eq!(c.rtp_time(5_000_000_000 + 33_333_333).wrapping_sub(a), 2999);
        let before = c.rtp_time(6_000_000_000);
        // Restart: PTS back near zero; RTP time keeps going forward.
        let after = c.rtp_time(1_000_000);
        assert_eq!(after.wrapping_sub(before), 3000);
        assert_eq!(
            c.rtp_time(1_000_000 + 1_000_000_000).wrapping_sub(after),
            90_000
        );
    }
}
