//! The engine task: sessions, the hub and the sockets, driven by one loop.
//! Each wake-up (command, frame, packet, timer) is handled to completion
//! before the next, so the state needs no locks.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use str0m::net::{Protocol, Receive};
use str0m::{Input, Output};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::Cmd;
use super::candidates::{self, Advertise};
use super::clock::RtpClock;
use super::deadlines::Deadlines;
use super::drained::{drain, transmit};
use super::layers::{LayerEntry, finish_move, layers_of, send_filler};
use super::net;
use super::relay::{Carried, Ingest, Latency};
use super::session::Session;
use super::simulcast::Simulcast;
use super::tcp::TcpEvent;
use super::transport::Transports;
use crate::config::{Config, Source};
use crate::h264;
use crate::hub::{Frame, Hub, Track};
use crate::media::{Control, MediaEvent, PathHandle};
use crate::vocab::Layer;

pub(super) struct PathEntry {
    pub handle: PathHandle,
    pub source: Source,
    pub override_publisher: bool,
    pub max_viewers: usize,
    pub profile: Option<u32>,
    /// Opus bit/s, when the path has sound.
    pub audio_bitrate: u32,
    pub bytes_sent: u64,
    clock: RtpClock,
    audio_clock: RtpClock,
    /// `publisher` paths: the session feeding it, and what it sends.
    pub publisher: Option<u64>,
    pub carried: Option<Carried>,
    pub ingest: Ingest,
    /// The main stream and the renditions (layers.rs), or a simulcast
    /// publisher's encodings.
    pub layers: Vec<LayerEntry>,
    pub simulcast: Option<Simulcast>,
}

impl PathEntry {
    /// Has renditions: its viewers may move between layers.
    pub fn layered(&self) -> bool {
        self.layers.len() > 1
    }
}

pub struct Engine {
    pub(super) sessions: HashMap<u64, Session>,
    pub(super) by_ufrag: HashMap<String, u64>,
    pub(super) by_addr: HashMap<SocketAddr, u64>,
    pub(super) hub: Hub,
    pub(super) paths: HashMap<Arc<str>, PathEntry>,
    pub(super) adv: Advertise,
    pub(super) net: Transports,
    pub(super) cert: str0m::config::DtlsCert,
    pub(super) next_id: u64,
    pub(super) latency: Latency,
    fan_ids: Vec<u64>,
    /// Sessions whose timeout is due, in a buffer kept across wake-ups
    /// (not `fan_ids`: driving a publisher fans out).
    due_ids: Vec<u64>,
    /// When each session next wants its timeout.
    pub(super) deadlines: Deadlines,
    /// The next round over all sessions (housekeeping.rs).
    pub(super) housekeeping: Instant,
    /// Public names that do not resolve, for `r58 status` and the doctor.
    pub(super) unresolved: Vec<super::Unresolved>,
    /// Set by `Cmd::Shutdown`: offers are refused from then on.
    pub(super) stopping: bool,
}

enum Wake {
    Cmd(Cmd),
    Frame(MediaEvent),
    Datagram(usize, SocketAddr, IpAddr),
    Tcp(TcpEvent),
    Timer,
    Closed,
}

impl Engine {
    pub fn new(
        cfg: &Config,
        paths: &[PathHandle],
        udp: UdpSocket,
        adv: Advertise,
        cert: str0m::config::DtlsCert,
        dialer: mpsc::Sender<TcpEvent>,
    ) -> Engine {
        let paths = paths
            .iter()
            .map(|h| {
                let p = cfg.paths.get(&*h.name).cloned().unwrap_or_default();
                let entry = PathEntry {
                    handle: h.clone(),
                    source: p.source,
                    override_publisher: p.override_publisher,
                    max_viewers: p.max_viewers,
                    profile: None,
                    audio_bitrate: p.audio_bitrate,
                    bytes_sent: 0,
                    clock: RtpClock::default(),
                    audio_clock: RtpClock::audio(),
                    publisher: None,
                    carried: None,
                    ingest: Ingest::default(),
                    layers: layers_of(&h.name, &p),
                    simulcast: None,
                };
                (h.name.clone(), entry)
            })
            .collect();
        Engine {
            sessions: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            hub: Hub::default(),
            paths,
            net: Transports {
                udp: Arc::new(udp),
                udp_port: adv.udp_port,
                tcp: HashMap::new(),
                tcp_by_peer: HashMap::new(),
                udp_out: Default::default(),
                tcp_pending: Vec::new(),
                tcp_packets: 0,
                dialer,
                dialing: Default::default(),
            },
            adv,
            cert,
            next_id: 1,
            latency: Latency::default(),
            fan_ids: Vec::new(),
            due_ids: Vec::new(),
            deadlines: Deadlines::default(),
            housekeeping: Instant::now(),
            unresolved: Vec::new(),
            stopping: false,
        }
    }

    pub async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Cmd>,
        mut frames: mpsc::Receiver<MediaEvent>,
        mut tcp: mpsc::Receiver<TcpEvent>,
    ) {
        let udp = self.net.udp.clone();
        let mut buf = vec![0u8; 2048];
        // With only `publisher` paths no pipeline holds a frame sender, so
        // this closes at once; the engine must go on without it.
        let mut local_media = true;
        loop {
            let deadline = self
                .deadlines
                .next()
                .map_or(self.housekeeping, |d| d.min(self.housekeeping));
            let wake = tokio::select! {
                c = cmds.recv() => c.map(Wake::Cmd).unwrap_or(Wake::Closed),
                f = frames.recv(), if local_media => f.map(Wake::Frame).unwrap_or_else(|| {
                    local_media = false;
                    Wake::Timer
                }),
                r = net::recv_from_to(&udp, &mut buf) => match r {
                    Ok((n, src, dst)) => Wake::Datagram(n, src, dst),
                    Err(e) => { log::warn!("webrtc: udp receive: {e}"); Wake::Timer }
                },
                // The listener may be disabled: then this arm just never fires.
                Some(t) = tcp.recv() => Wake::Tcp(t),
                _ = tokio::time::sleep_until(deadline.into()) => Wake::Timer,
            };
            let now = Instant::now();
            match wake {
                Wake::Cmd(c) => self.on_cmd(c, now),
                Wake::Frame(ev) => self.on_frame(ev, now),
                Wake::Datagram(n, src, dst) => {
                    let to = SocketAddr::new(dst, self.net.udp_port);
                    let id = self.session_for_udp(&buf[..n], src);
                    if let Some(id) = id {
                        self.on_packet(id, Protocol::Udp, &buf[..n], src, to, now);
                    }
                }
                Wake::Tcp(ev) => self.on_tcp(ev, now),
                Wake::Timer => {}
                Wake::Closed => {
                    self.net.flush();
                    return;
                }
            }
            self.on_timeouts(Instant::now());
            // Everything this wake-up produced leaves in one batch.
            self.net.flush();
        }
    }

    /// Which session a datagram belongs to: by source address once known,
    /// else by the ufrag in its STUN check.
    fn session_for_udp(&mut self, data: &[u8], source: SocketAddr) -> Option<u64> {
        if let Some(id) = self.by_addr.get(&source) {
            return Some(*id);
        }
        let id = *net::stun_local_ufrag(data).and_then(|u| self.by_ufrag.get(u))?;
        self.by_addr.insert(source, id);
        Some(id)
    }

    fn on_tcp(&mut self, ev: TcpEvent, now: Instant) {
        match ev {
            TcpEvent::Open(conn) => self.net.open_tcp(conn, now),
            TcpEvent::Dialed { conn, session } => {
                self.net.dialing.remove(&conn.peer);
                // A session that ended meanwhile: dropping `conn` closes it.
                if self.sessions.contains_key(&session) {
                    let id = conn.id;
                    self.net.open_tcp(conn, now);
                    if let Some(c) = self.net.tcp.get_mut(&id) {
                        c.session = Some(session);
                    }
                }
            }
            TcpEvent::DialFailed { peer } => {
                self.net.dialing.remove(&peer);
            }
            TcpEvent::Packet { id, data } => {
                let Some(c) = self.net.tcp.get_mut(&id) else {
                    return;
                };
                let sid = c.session.or_else(|| {
                    net::stun_local_ufrag(&data).and_then(|u| self.by_ufrag.get(u).copied())
                });
                let Some(sid) = sid else {
                    log::debug!("webrtc: tcp {} sent no known ufrag; closing", c.conn.peer);
                    self.net.drop_tcp(id);
                    return;
                };
                let layered = |s: &Session| {
                    !s.is_publisher() && self.paths.get(&s.path).is_some_and(PathEntry::layered)
                };
                if c.session.is_none() && self.sessions.get(&sid).is_some_and(layered) {
                    // A viewer that may move between layers: keep its
                    // backlog where the engine sees it (tcp.rs says why).
                    c.conn.keep_backlog_short();
                }
                c.session = Some(sid);
                let (peer, local) = (c.conn.peer, c.conn.local);
                self.on_packet(sid, Protocol::Tcp, &data, peer, local, now);
            }
            TcpEvent::Closed { id } => {
                let Some(c) = self.net.drop_tcp(id) else {
                    return;
                };
                // Media was flowing over this connection: the session is over.
                let sid = c.session.filter(|sid| {
                    self.sessions
                        .get(sid)
                        .is_some_and(|s| s.pair.as_ref().is_some_and(|p| p.remote == c.conn.peer))
                });
                if let Some(sid) = sid {
                    let kind = self.sessions.get(&sid).map_or("whep", |s| s.kind());
                    log::info!("{kind} {sid}: tcp connection closed by the peer");
                    self.close(sid);
                }
            }
        }
    }

    /// Feed one packet to a session. `arrived` is the local address it came
    /// in on, mapped to the candidate the client used.
    pub(super) fn on_packet(
        &mut self,
        id: u64,
        proto: Protocol,
        data: &[u8],
        source: SocketAddr,
        arrived: SocketAddr,
        now: Instant,
    ) {
        let Some(s) = self.sessions.get_mut(&id) else {
            self.by_addr.remove(&source);
            return;
        };
        let Some(destination) = candidates::local_for(&s.candidates, proto, arrived) else {
            return;
        };
        let Ok(contents) = data.try_into() else {
            return;
        };
        let recv = Receive {
            proto,
            source,
            destination,
            contents,
        };
        s.bytes_received += data.len() as u64;
        s.liveness.saw(data, now);
        if let Err(e) = s.rtc.handle_input(Input::Receive(now, recv)) {
            log::debug!("{} {id}: input rejected: {e}", s.kind());
        }
        self.drive(id, now);
    }

    fn on_frame(&mut self, ev: MediaEvent, now: Instant) {
        let Some(entry) = self.paths.get_mut(&ev.path) else {
            return;
        };
        if ev.track == Track::Audio {
            // One Opus packet, for the viewers of every layer.
            let t = entry.audio_clock.rtp_time(ev.au.pts_ns);
            let frame = Arc::new(Frame::sound(t, ev.au.data, ev.au.captured));
            for l in 0..entry.layers.len() {
                self.fan_out(&ev.path, Layer(l as u8), frame.clone(), now);
            }
            return;
        }
        if ev.au.keyframe
            && let Some(p) = h264::profile_level_id(&ev.au.data)
        {
            entry.profile = Some(p);
        }
        let payloads = h264::packetize(&ev.au.data, h264::MAX_PAYLOAD);
        let rtp_time = if ev.layer.is_main() {
            entry.clock.rtp_time(ev.au.pts_ns)
        } else {
            entry.clock.same_capture(ev.au.pts_ns)
        };
        let frame = Frame::picture(rtp_time, ev.au.keyframe, payloads).captured_at(ev.au.captured);
        self.fan_out(&ev.path, ev.layer, Arc::new(frame), now);
    }

    /// One unit of a path's layer for its viewers: into the hub, then out
    /// to each.
    pub(super) fn fan_out(
        &mut self,
        path: &Arc<str>,
        layer: Layer,
        unit: Arc<Frame>,
        now: Instant,
    ) {
        let arrived = unit.arrived;
        let feed = self.feed(path, layer);
        if self.hub.push(&feed, unit, now) {
            self.ask_keyframe_of(path, layer);
        }
        // The feed's readers, in a buffer kept across calls: this runs per
        // relayed packet, so no allocation and no scan of every session.
        let mut ids = std::mem::take(&mut self.fan_ids);
        self.hub.reader_ids(&feed, &mut ids);
        let watched = !ids.is_empty();
        for &id in &ids {
            self.pump(id, now);
            self.drive(id, now);
        }
        self.fan_ids = ids;
        // Relay latency: this packet in → its copy to the last viewer out.
        // (GOP replays to new viewers are not relaying and are not counted.)
        if let Some(t) = arrived.filter(|_| watched) {
            self.latency.add(t.elapsed());
        }
    }

    /// Ask whoever feeds `path` for a keyframe (already rate-limited): the
    /// local encoder, or the WHIP publisher by PLI on its next poll.
    pub(super) fn ask_keyframe(&mut self, path: &str) {
        self.ask_keyframe_of(path, Layer::MAIN);
    }

    /// The same for one layer (a rendition's own encoder).
    pub(super) fn ask_keyframe_of(&mut self, path: &str, layer: Layer) {
        let Some(p) = self.paths.get(path) else {
            return;
        };
        match p.publisher.and_then(|id| self.sessions.get_mut(&id)) {
            Some(s) => {
                s.request_keyframe(p.simulcast.as_ref().and_then(|sc| sc.rid_of(layer)));
                self.deadlines.set(s.id, Instant::now());
            }
            None => p.handle.send(Control::Keyframe(layer)),
        }
    }

    /// Move queued frames from the hub into the session's RTP stream, as
    /// far as its transport keeps up; the rest wait in the hub, which
    /// skips a reader that falls too far behind to the next keyframe.
    fn pump(&mut self, id: u64, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.view.moving.is_some() {
            finish_move(&mut self.hub, s);
        }
        let mut sent = 0;
        loop {
            if !self.net.has_room(s.pair.as_ref()) {
                s.view.fell_behind |= self.hub.ready(&s.view.feed, id);
                break;
            }
            let Some(f) = self.hub.pop(&s.view.feed, id) else {
                break;
            };
            s.write_frame(&f, now);
            sent += f.bytes as u64;
            // Let str0m turn this frame into packets before checking room
            // again. (`drive` always follows: it records the next timeout
            // and acts on what was seen here too.)
            let seen = drain(s, &mut self.net);
            s.seen.merge(seen);
        }
        if s.view.filler_at.is_some() {
            send_filler(&mut self.net, s, now);
        }
        if let Some(p) = self.paths.get_mut(&s.path) {
            p.bytes_sent += sent;
        }
    }

    /// Run one session's state machine until it wants to wait.
    pub(super) fn drive(&mut self, id: u64, now: Instant) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut ev = drain(s, &mut self.net);
        ev.merge(std::mem::take(&mut s.seen));
        self.deadlines.set(id, s.next_timeout);
        let path = s.path.clone();
        if s.is_publisher() {
            if ev.connected {
                log::info!("whip {id}: publishing to {path}, {}", s.pair_text());
            }
            let packets = std::mem::take(&mut ev.packets);
            self.on_published(id, packets, now);
            if ev.close {
                self.close(id);
            }
            return;
        }
        let joined = ev.connected && !s.reading;
        if joined {
            s.reading = true;
            log::info!("{} {id}: connected, {}", s.kind(), s.pair_text());
        }
        let (feed, layer) = (s.view.feed.clone(), s.view.layer);
        // A viewer's keyframe request during a move is for the new layer.
        let wanted = s.view.moving.as_ref().map_or(layer, |m| m.0);
        if joined {
            self.start_quality(id, now);
            if self.hub.add_reader(&feed, id, now) {
                self.ask_keyframe_of(&path, layer);
            }
        }
        if ev.keyframe && self.hub.keyframe_request(&feed, now) {
            self.ask_keyframe_of(&path, wanted);
        }
        if let Some(e) = ev.estimate {
            self.on_estimate(id, e, now);
        }
        if let Some(r) = ev.report {
            self.on_report(id, r, now);
        }
        if joined {
            self.pump(id, now);
            self.drive(id, now);
        }
        if ev.close {
            self.close(id);
        }
    }

    fn on_timeouts(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due_ids);
        due.clear();
        self.deadlines.pop_due(now, &mut due);
        for &id in &due {
            if let Some(s) = self.sessions.get_mut(&id)
                && let Err(e) = s.rtc.handle_input(Input::Timeout(now))
            {
                log::debug!("{} {id}: timeout: {e}", s.kind());
            }
            self.drive(id, now);
        }
        self.due_ids = due;
        if now >= self.housekeeping {
            self.housekeep(now);
        }
    }

    pub(super) fn close(&mut self, id: u64) {
        let Some(mut s) = self.sessions.remove(&id) else {
            return;
        };
        // Tell the browser (RTCP BYE + DTLS close_notify) before forgetting it.
        // str0m queues both for its next timeout, so drive it until drained.
        if s.rtc.is_alive() {
            let _ = s.rtc.close();
            for _ in 0..4 {
                while let Ok(out) = s.rtc.poll_output() {
                    match out {
                        Output::Transmit(t) => transmit(&s, &mut self.net, t),
                        Output::Timeout(_) => break,
                        Output::Event(_) => {}
                    }
                }
                if !s.rtc.is_alive() || s.rtc.handle_input(Input::Timeout(Instant::now())).is_err()
                {
                    break;
                }
            }
        }
        self.leave_feeds(&s.view, id);
        self.deadlines.remove(id);
        self.by_ufrag.remove(&s.ufrag);
        self.by_addr.retain(|_, v| *v != id);
        self.net.close_session_conns(id); // closes the sockets
        log::info!(
            "{} {id}: closed ({} bytes sent, {} received, {})",
            s.kind(),
            s.bytes_sent,
            s.bytes_received,
            s.pair_text()
        );
        if self
            .paths
            .get(&s.path)
            .is_some_and(|p| p.publisher == Some(id))
        {
            self.publisher_gone(&s.path);
        }
    }
}
