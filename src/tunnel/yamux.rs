//! yamux (hashicorp's protocol version 0, what frp multiplexes with) as a
//! sans-IO state machine: feed it received bytes and the time, take the
//! bytes to send and the events. No sockets, no clocks of its own.
//!
//! Frame header, 12 bytes big-endian: version, type (Data, WindowUpdate,
//! Ping, GoAway), flags (SYN ACK FIN RST), stream id, length. The client
//! opens odd stream ids. Each stream starts with a 256 KiB window; like
//! frp we grow it to 6 MiB so long-RTT links are not window-bound.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

pub const HEADER_LEN: usize = 12;
pub const INITIAL_WINDOW: u32 = 256 * 1024;

const DATA: u8 = 0;
const WINDOW_UPDATE: u8 = 1;
const PING: u8 = 2;
const GO_AWAY: u8 = 3;
const SYN: u16 = 1;
const ACK: u16 = 2;
const FIN: u16 = 4;
const RST: u16 = 8;

#[derive(Debug, Clone)]
pub struct Config {
    /// Client opens odd ids (frpc), server even.
    pub client: bool,
    pub max_window: u32,
    /// How often we ping the peer; the answer must come within `ping_timeout`.
    pub keepalive: Duration,
    pub ping_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client: true,
            max_window: 6 * 1024 * 1024,
            keepalive: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The peer opened a stream (server role only in frp).
    Opened(u32),
    Data(u32, Vec<u8>),
    /// The peer will send no more on this stream.
    Finished(u32),
    Reset(u32),
    /// Sending was blocked on the window and may continue.
    Writable(u32),
    /// The peer asks us to stop opening streams (it is shutting down).
    GoAway(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    Protocol(String),
    KeepaliveTimeout,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Protocol(e) => write!(f, "yamux protocol error: {e}"),
            Error::KeepaliveTimeout => f.write_str("yamux keepalive not answered"),
        }
    }
}

struct Stream {
    send_window: u32,
    /// What the peer may still send before our next window update.
    recv_window: u32,
    /// Delivered to the application and read, not yet credited back.
    unacked_reads: u32,
    local_fin: bool,
    remote_fin: bool,
}

pub struct Session {
    cfg: Config,
    next_id: u32,
    streams: HashMap<u32, Stream>,
    input: Vec<u8>,
    out: Vec<u8>,
    events: VecDeque<Event>,
    next_ping_id: u32,
    /// (opaque id, sent at)
    ping: Option<(u32, Instant)>,
    next_keepalive: Instant,
    pub last_rtt: Option<Duration>,
}

fn header(out: &mut Vec<u8>, kind: u8, flags: u16, id: u32, len: u32) {
    out.push(0);
    out.push(kind);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
}

impl Session {
    pub fn new(cfg: Config, now: Instant) -> Self {
        Session {
            next_id: if cfg.client { 1 } else { 2 },
            next_keepalive: now + cfg.keepalive,
            cfg,
            streams: HashMap::new(),
            input: Vec::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            next_ping_id: 0,
            ping: None,
            last_rtt: None,
        }
    }

    fn new_stream(&self) -> Stream {
        Stream {
            send_window: INITIAL_WINDOW,
            recv_window: self.cfg.max_window.max(INITIAL_WINDOW),
            unacked_reads: 0,
            local_fin: false,
            remote_fin: false,
        }
    }

    /// Open a stream; data may be sent at once, before the peer's ACK.
    pub fn open(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        let s = self.new_stream();
        header(
            &mut self.out,
            WINDOW_UPDATE,
            SYN,
            id,
            s.recv_window - INITIAL_WINDOW,
        );
        self.streams.insert(id, s);
        id
    }

    /// Frames as much of `data` as the peer's window allows; returns how
    /// much. Zero means wait for `Event::Writable`.
    pub fn send(&mut self, id: u32, data: &[u8]) -> usize {
        let Some(s) = self.streams.get_mut(&id) else {
            return 0;
        };
        if s.local_fin {
            return 0;
        }
        let n = data.len().min(s.send_window as usize);
        if n > 0 {
            s.send_window -= n as u32;
            header(&mut self.out, DATA, 0, id, n as u32);
            self.out.extend_from_slice(&data[..n]);
        }
        n
    }

    pub fn is_open(&self, id: u32) -> bool {
        self.streams.get(&id).is_some_and(|s| !s.local_fin)
    }

    /// The application has consumed `n` received bytes: credit the peer
    /// once half the window is used, so updates stay rare.
    pub fn consumed(&mut self, id: u32, n: usize) {
        let max = self.cfg.max_window;
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.unacked_reads += n as u32;
        if s.unacked_reads >= max / 2 && !s.remote_fin {
            let delta = s.unacked_reads;
            s.recv_window += delta;
            s.unacked_reads = 0;
            header(&mut self.out, WINDOW_UPDATE, 0, id, delta);
        }
    }

    /// Half-close: we send no more. The stream goes once both sides closed.
    pub fn close(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if !s.local_fin {
            s.local_fin = true;
            header(&mut self.out, WINDOW_UPDATE, FIN, id, 0);
        }
        if s.remote_fin {
            self.streams.remove(&id);
        }
    }

    pub fn reset(&mut self, id: u32) {
        if self.streams.remove(&id).is_some() {
            header(&mut self.out, WINDOW_UPDATE, RST, id, 0);
        }
    }

    #[cfg(test)]
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    pub fn take_transmit(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Instant {
        match self.ping {
            Some((_, sent)) => sent + self.cfg.ping_timeout,
            None => self.next_keepalive,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        match self.ping {
            Some((_, sent)) if now >= sent + self.cfg.ping_timeout => Err(Error::KeepaliveTimeout),
            None if now >= self.next_keepalive => {
                let id = self.next_ping_id;
                self.next_ping_id = self.next_ping_id.wrapping_add(1);
                header(&mut self.out, PING, SYN, 0, id);
                self.ping = Some((id, now));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<(), Error> {
        // Usually reads end on a frame boundary: parse in place and keep
        // only a partial tail, instead of copying every read first.
        if self.input.is_empty() {
            let used = self.parse(bytes, now)?;
            self.input.extend_from_slice(&bytes[used..]);
        } else {
            let mut input = std::mem::take(&mut self.input);
            input.extend_from_slice(bytes);
            let used = self.parse(&input, now)?;
            input.drain(..used);
            self.input = input;
        }
        Ok(())
    }

    /// Handles the whole frames at the start of `buf`; returns their length.
    fn parse(&mut self, buf: &[u8], now: Instant) -> Result<usize, Error> {
        let mut pos = 0;
        while buf.len() - pos >= HEADER_LEN {
            let h = &buf[pos..pos + HEADER_LEN];
            if h[0] != 0 {
                return Err(Error::Protocol(format!("version {}", h[0])));
            }
            let kind = h[1];
            let flags = u16::from_be_bytes([h[2], h[3]]);
            let id = u32::from_be_bytes(h[4..8].try_into().unwrap());
            let len = u32::from_be_bytes(h[8..12].try_into().unwrap());
            let body_len = if kind == DATA { len as usize } else { 0 };
            // Refuse at the header: never buffer toward a frame no window allows.
            if body_len > self.cfg.max_window.max(INITIAL_WINDOW) as usize {
                return Err(Error::Protocol(format!("stream {id} overran its window")));
            }
            if buf.len() - pos - HEADER_LEN < body_len {
                break;
            }
            let body = buf[pos + HEADER_LEN..pos + HEADER_LEN + body_len].to_vec();
            pos += HEADER_LEN + body_len;
            self.frame(kind, flags, id, len, body, now)?;
        }
        Ok(pos)
    }

    fn frame(
        &mut self,
        kind: u8,
        flags: u16,
        id: u32,
        len: u32,
        body: Vec<u8>,
        now: Instant,
    ) -> Result<(), Error> {
        match kind {
            PING => {
                if flags & SYN != 0 {
                    header(&mut self.out, PING, ACK, 0, len);
                } else if flags & ACK != 0
                    && let Some((want, sent)) = self.ping
                    && want == len
                {
                    self.last_rtt = Some(now.saturating_duration_since(sent));
                    self.ping = None;
                    self.next_keepalive = now + self.cfg.keepalive;
                }
                return Ok(());
            }
            GO_AWAY => {
                self.events.push_back(Event::GoAway(len));
                return Ok(());
            }
            DATA | WINDOW_UPDATE => {}
            k => return Err(Error::Protocol(format!("frame type {k}"))),
        }
        if flags & SYN != 0 {
            let peer_odd = !self.cfg.client;
            if id == 0 || (id % 2 == 1) != peer_odd || self.streams.contains_key(&id) {
                return Err(Error::Protocol(format!("bad stream open {id}")));
            }
            let s = self.new_stream();
            header(
                &mut self.out,
                WINDOW_UPDATE,
                ACK,
                id,
                s.recv_window - INITIAL_WINDOW,
            );
            self.streams.insert(id, s);
            self.events.push_back(Event::Opened(id));
        }
        let Some(s) = self.streams.get_mut(&id) else {
            // Late frames for a stream we already dropped: harmless.
            return Ok(());
        };
        if kind == WINDOW_UPDATE {
            let was_blocked = s.send_window == 0;
            s.send_window = s.send_window.saturating_add(len);
            if was_blocked && len > 0 {
                self.events.push_back(Event::Writable(id));
            }
        } else if !body.is_empty() {
            if body.len() as u32 > s.recv_window {
                return Err(Error::Protocol(format!("stream {id} overran its window")));
            }
            s.recv_window -= body.len() as u32;
            self.events.push_back(Event::Data(id, body));
        }
        if flags & RST != 0 {
            self.streams.remove(&id);
            self.events.push_back(Event::Reset(id));
        } else if flags & FIN != 0 && !s.remote_fin {
            s.remote_fin = true;
            let gone = s.local_fin;
            self.events.push_back(Event::Finished(id));
            if gone {
                self.streams.remove(&id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "yamux_tests.rs"]
mod tests;
