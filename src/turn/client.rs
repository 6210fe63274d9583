//! One TURN allocation (RFC 8656) as a state machine: no socket,
//! no clock of its own. The caller feeds it what the server sent and the
//! time, and sends what it queues. It allocates (answering the server's
//! 401 with the long-term credential, and a 438 with the new nonce),
//! refreshes the allocation before its lifetime ends, binds a channel per
//! peer the first time data goes there (which also installs the peer's
//! permission) and keeps it bound, and wraps and unwraps peer data.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::stun::{self, Auth, Builder, Class, Message, Method, TxId, attr};

/// STUN's retransmission over UDP (RFC 8489 §6.2.1), shortened: a relay
/// that does not answer within ~8 s is as good as absent here.
const RTO: Duration = Duration::from_millis(500);
const TRIES: u8 = 5;
/// Over TCP or TLS nothing is sent twice (§6.2.2): one wait as long as
/// UDP's retransmissions take.
const STREAM_WAIT: Duration = Duration::from_millis(7500);
/// Refresh this long before the server's lifetime ends.
const REFRESH_EARLY: Duration = Duration::from_secs(60);
/// Channels and the permissions they install last 600 s and 300 s:
/// rebinding every 4 minutes keeps both.
const REBIND_EVERY: Duration = Duration::from_secs(240);
const FIRST_CHANNEL: u16 = 0x4000;
const LAST_CHANNEL: u16 = 0x4FFF;

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Allocating,
    Allocated {
        relayed: SocketAddr,
    },
    /// Why it ended: shown in status, so it names the server.
    Failed(String),
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum What {
    Allocate,
    Refresh(u32),
    Bind(SocketAddr, u16),
}

struct Pending {
    tx: TxId,
    what: What,
    next: Instant,
    rto: Duration,
    tries: u8,
    bytes: Vec<u8>,
    /// Sent with the credential: another 401 means it is wrong.
    authed: bool,
}

struct Channel {
    number: u16,
    bound: bool,
    rebind_at: Instant,
}

pub struct Client {
    server: SocketAddr,
    username: String,
    password: String,
    auth: Option<Auth>,
    state: State,
    pending: Vec<Pending>,
    out: VecDeque<Vec<u8>>,
    channels: HashMap<SocketAddr, Channel>,
    by_number: HashMap<u16, SocketAddr>,
    next_channel: u16,
    refresh_at: Option<Instant>,
    /// The server is reached over TCP or TLS: no retransmissions.
    stream: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "turn::Client({} as {}, {:?})",
            self.server, self.username, self.state
        )
    }
}

impl Client {
    /// Start allocating on `server` over UDP; the first request is queued.
    pub fn new(server: SocketAddr, username: &str, password: &str, now: Instant) -> Client {
        Client::start(server, username, password, false, now)
    }

    /// The same over a TCP or TLS connection to the server (the relayed
    /// address is UDP either way): the caller frames what comes back with
    /// `turn::stream::Deframer`.
    pub fn over_stream(server: SocketAddr, username: &str, password: &str, now: Instant) -> Client {
        Client::start(server, username, password, true, now)
    }

    fn start(
        server: SocketAddr,
        username: &str,
        password: &str,
        stream: bool,
        now: Instant,
    ) -> Client {
        let mut c = Client {
            server,
            username: username.into(),
            password: password.into(),
            auth: None,
            state: State::Allocating,
            pending: Vec::new(),
            out: VecDeque::new(),
            channels: HashMap::new(),
            by_number: HashMap::new(),
            next_channel: FIRST_CHANNEL,
            refresh_at: None,
            stream,
        };
        c.request(What::Allocate, now);
        c
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    pub fn relayed(&self) -> Option<SocketAddr> {
        match self.state {
            State::Allocated { relayed } => Some(relayed),
            _ => None,
        }
    }

    /// The next datagram for the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// When `handle_timeout` wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !matches!(self.state, State::Allocating | State::Allocated { .. }) {
            return None;
        }
        let pend = self.pending.iter().map(|p| p.next);
        let rebind = self.channels.values().map(|c| c.rebind_at);
        pend.chain(rebind).chain(self.refresh_at).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let mut gave_up = Vec::new();
        for p in self.pending.iter_mut().filter(|p| p.next <= now) {
            if p.tries >= TRIES {
                gave_up.push(p.what);
                continue;
            }
            p.tries += 1;
            p.rto *= 2;
            p.next = now + p.rto;
            self.out.push_back(p.bytes.clone());
        }
        self.pending
            .retain(|p| !(p.next <= now && p.tries >= TRIES));
        for w in gave_up {
            match w {
                What::Allocate | What::Refresh(_) => {
                    self.fail(format!("no answer from TURN server {}", self.server));
                }
                // The next packet to that peer binds again.
                What::Bind(peer, _) => self.forget_channel(peer),
            }
        }
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            self.request(What::Refresh(600), now);
        }
        let due: Vec<(SocketAddr, u16)> = self
            .channels
            .iter_mut()
            .filter(|(_, c)| c.rebind_at <= now)
            .map(|(p, c)| {
                c.rebind_at = now + REBIND_EVERY;
                (*p, c.number)
            })
            .collect();
        for (peer, n) in due {
            self.request(What::Bind(peer, n), now);
        }
    }

    /// Something from the server: peer data comes back as (peer, payload);
    /// the server's own answers are consumed here.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        if let Some((n, payload)) = stun::parse_channel_data(data) {
            return Some((*self.by_number.get(&n)?, payload.to_vec()));
        }
        let m = Message::parse(data)?;
        if m.is(Method::Data, Class::Indication) {
            return Some((m.addr(attr::XOR_PEER_ADDRESS)?, m.get(attr::DATA)?.to_vec()));
        }
        let i = self.pending.iter().position(|p| p.tx == m.tx)?;
        if m.class == Class::Success && self.auth.as_ref().is_some_and(|a| !a.verifies(&m)) {
            return None; // not from the server we share a key with: ignore
        }
        let p = self.pending.swap_remove(i);
        match m.class {
            Class::Success => self.succeeded(p.what, &m, now),
            Class::Error => self.refused(p, &m, now),
            _ => {}
        }
        None
    }

    /// `data` for `peer`, ready for the server: ChannelData once the
    /// peer's channel is bound, a Send indication until then (the bind
    /// request is queued the first time).
    pub fn wrap(&mut self, peer: SocketAddr, data: &[u8], now: Instant) -> Option<Vec<u8>> {
        self.relayed()?;
        match self.channels.get(&peer) {
            Some(c) if c.bound => return Some(stun::channel_data(c.number, data)),
            Some(_) => {}
            None if self.next_channel <= LAST_CHANNEL => {
                let number = self.next_channel;
                self.next_channel += 1;
                self.channels.insert(
                    peer,
                    Channel {
                        number,
                        bound: false,
                        rebind_at: now + REBIND_EVERY,
                    },
                );
                self.by_number.insert(number, peer);
                self.request(What::Bind(peer, number), now);
            }
            None => {}
        }
        Some(
            Builder::new(Method::Send, Class::Indication, tx_id())
                .addr(attr::XOR_PEER_ADDRESS, peer)
                .attr(attr::DATA, data)
                .finish(None),
        )
    }

    /// Release the allocation (a Refresh with lifetime 0, not retried).
    pub fn close(&mut self, now: Instant) {
        if self.relayed().is_some() {
            self.request(What::Refresh(0), now);
        }
        self.pending.clear();
        self.state = State::Closed;
    }

    fn succeeded(&mut self, what: What, m: &Message, now: Instant) {
        let lifetime = Duration::from_secs(m.u32(attr::LIFETIME).unwrap_or(600).into());
        match what {
            What::Allocate => {
                let Some(relayed) = m.addr(attr::XOR_RELAYED_ADDRESS) else {
                    return self.fail(format!(
                        "TURN server {} gave no relayed address",
                        self.server
                    ));
                };
                self.state = State::Allocated { relayed };
                self.refresh_at = Some(now + refresh_in(lifetime));
            }
            What::Refresh(_) => self.refresh_at = Some(now + refresh_in(lifetime)),
            What::Bind(peer, n) => {
                if let Some(c) = self.channels.get_mut(&peer).filter(|c| c.number == n) {
                    c.bound = true;
                }
            }
        }
    }

    fn refused(&mut self, p: Pending, m: &Message, now: Instant) {
        let (code, reason) = m.error().unwrap_or((0, String::new()));
        let (realm, nonce) = (m.text(attr::REALM), m.text(attr::NONCE));
        match (code, realm, nonce) {
            // The challenge (or a new nonce): sign and send again.
            (401, Some(realm), Some(nonce)) if !p.authed => {
                self.auth = Some(Auth::new(&self.username, &self.password, &realm, &nonce));
                return self.request(p.what, now);
            }
            // A new nonce (the same one again would loop).
            (438, _, Some(nonce)) if self.auth.as_ref().is_some_and(|a| a.nonce != nonce) => {
                self.auth = self.auth.as_ref().map(|a| a.with_nonce(nonce));
                return self.request(p.what, now);
            }
            _ => {}
        }
        match p.what {
            What::Allocate | What::Refresh(_) => {
                let why = match code {
                    401 => "wrong TURN username or credential".to_string(),
                    _ => format!("TURN server refused: {code} {reason}"),
                };
                self.fail(format!("{why} ({})", self.server));
            }
            What::Bind(peer, _) => {
                log::debug!("turn: channel to {peer} refused: {code} {reason}");
                self.forget_channel(peer);
            }
        }
    }

    fn request(&mut self, what: What, now: Instant) {
        let tx = tx_id();
        let b = match what {
            What::Allocate => Builder::new(Method::Allocate, Class::Request, tx)
                .u32(attr::REQUESTED_TRANSPORT, 17 << 24),
            What::Refresh(secs) => {
                Builder::new(Method::Refresh, Class::Request, tx).u32(attr::LIFETIME, secs)
            }
            What::Bind(peer, n) => Builder::new(Method::ChannelBind, Class::Request, tx)
                .u32(attr::CHANNEL_NUMBER, u32::from(n) << 16)
                .addr(attr::XOR_PEER_ADDRESS, peer),
        };
        let bytes = b.finish(self.auth.as_ref());
        self.out.push_back(bytes.clone());
        let (rto, tries) = match self.stream {
            true => (STREAM_WAIT, TRIES),
            false => (RTO, 1),
        };
        self.pending.push(Pending {
            tx,
            what,
            next: now + rto,
            rto,
            tries,
            bytes,
            authed: self.auth.is_some(),
        });
    }

    fn forget_channel(&mut self, peer: SocketAddr) {
        if let Some(c) = self.channels.remove(&peer) {
            self.by_number.remove(&c.number);
        }
    }

    fn fail(&mut self, why: String) {
        self.pending.clear();
        self.state = State::Failed(why);
    }
}

fn refresh_in(lifetime: Duration) -> Duration {
    lifetime
        .checked_sub(REFRESH_EARLY)
        .unwrap_or(lifetime / 2)
        .max(Duration::from_secs(1))
}

fn tx_id() -> TxId {
    let mut t = [0u8; 12];
    let _ = aws_lc_rs::rand::fill(&mut t);
    t
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
