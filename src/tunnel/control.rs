//! The control channel's state machine: login, proxy registration and
//! retries, work-connection requests, heartbeats and dead-path detection.
//! Sans-IO: messages and the time in, messages out.
//!
//! Better than stock frpc: Ping is always sent (also with yamux) and any
//! silence longer than `dead_after` ends the session; a LoginResp that
//! never comes times out; a rejected proxy keeps its server's reason and
//! is retried on its own while the others keep working.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::crypto;
use super::msg::{CloseProxy, Login, LoginResp, Message, NewProxy, NewWorkConn, Ping};
use crate::config::tunnel::{Proxy, Settings};

pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Resend a NewProxy that got no answer (stock frpc: 20 s).
const PROXY_ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
/// Retry a proxy frps rejected ("port already used" often clears when the
/// server drops a stale session).
pub const PROXY_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq)]
pub enum ProxyPhase {
    Waiting,
    Running { remote_addr: String },
    Rejected { error: String, retry_at: Instant },
}

#[derive(Debug, Clone)]
pub struct ProxyState {
    pub proxy: Proxy,
    pub phase: ProxyPhase,
    sent_at: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    LoginRejected(String),
    LoginTimeout,
    Silent(Duration),
    HeartbeatRefused(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::LoginRejected(e) => write!(f, "frps refused the login: {e}"),
            Error::LoginTimeout => write!(f, "no login answer from frps in {LOGIN_TIMEOUT:?}"),
            Error::Silent(d) => write!(f, "no answer from frps for {} s", d.as_secs()),
            Error::HeartbeatRefused(e) => write!(f, "frps refused a heartbeat: {e}"),
        }
    }
}

/// What the server learns about us at login.
pub struct Host {
    pub hostname: String,
    pub os: &'static str,
    pub arch: &'static str,
}

impl Host {
    pub fn this() -> Host {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        // Go's names, which frps logs and plugins see.
        let arch = match std::env::consts::ARCH {
            "aarch64" => "arm64",
            "x86_64" => "amd64",
            "arm" => "arm",
            other => other,
        };
        Host {
            hostname,
            os: "linux",
            arch,
        }
    }
}

/// The frp version whose protocol we speak; frps only logs it.
pub const FRP_VERSION: &str = "0.70.0";

pub struct Control {
    token: String,
    user: String,
    pool_count: u32,
    heartbeat: Duration,
    dead_after: Duration,
    auth_heartbeats: bool,
    auth_new_work_conns: bool,
    pub run_id: String,
    logged_in: bool,
    login_deadline: Instant,
    last_heard: Instant,
    next_ping: Instant,
    ping_sent: Option<Instant>,
    pub rtt: Option<Duration>,
    proxies: Vec<ProxyState>,
    out: VecDeque<Message>,
    work_requests: usize,
}

impl Control {
    pub fn new(s: &Settings, run_id: String, now: Instant) -> Self {
        Control {
            token: s.token.expose().to_string(),
            user: s.user.clone(),
            pool_count: s.pool_count,
            heartbeat: s.heartbeat,
            dead_after: s.dead_after,
            auth_heartbeats: s.auth_heartbeats,
            auth_new_work_conns: s.auth_new_work_conns,
            run_id,
            logged_in: false,
            login_deadline: now + LOGIN_TIMEOUT,
            last_heard: now,
            next_ping: now,
            ping_sent: None,
            rtt: None,
            proxies: s
                .proxies
                .iter()
                .map(|p| ProxyState {
                    proxy: p.clone(),
                    phase: ProxyPhase::Waiting,
                    sent_at: None,
                })
                .collect(),
            out: VecDeque::new(),
            work_requests: 0,
        }
    }

    /// The plaintext Login that opens the control channel.
    pub fn login(&self, host: &Host, unix_now: i64) -> Message {
        Message::Login(Login {
            version: FRP_VERSION.into(),
            hostname: host.hostname.clone(),
            os: host.os.into(),
            arch: host.arch.into(),
            user: self.user.clone(),
            privilege_key: crypto::privilege_key(&self.token, unix_now),
            timestamp: unix_now,
            run_id: self.run_id.clone(),
            pool_count: self.pool_count as i64,
            ..Login::default()
        })
    }

    pub fn handle_login_resp(&mut self, r: LoginResp, now: Instant) -> Result<(), Error> {
        if !r.error.is_empty() {
            return Err(Error::LoginRejected(r.error));
        }
        if !r.run_id.is_empty() {
            self.run_id = r.run_id;
        }
        self.logged_in = true;
        self.last_heard = now;
        for i in 0..self.proxies.len() {
            self.register(i, now);
        }
        Ok(())
    }

    fn wire_name(&self, name: &str) -> String {
        crate::config::tunnel::wire_name(&self.user, name)
    }

    fn register(&mut self, i: usize, now: Instant) {
        let p = &self.proxies[i].proxy;
        let msg = Message::NewProxy(NewProxy {
            proxy_name: self.wire_name(&p.name),
            proxy_type: p.kind.as_str().into(),
            use_encryption: p.use_encryption,
            use_compression: p.use_compression,
            remote_port: p.remote_port as i64,
            ..NewProxy::default()
        });
        self.out.push_back(msg);
        let st = &mut self.proxies[i];
        st.sent_at = Some(now);
        st.phase = ProxyPhase::Waiting;
    }

    pub fn handle(&mut self, msg: Message, now: Instant) -> Result<(), Error> {
        self.last_heard = now;
        match msg {
            Message::ReqWorkConn => self.work_requests += 1,
            Message::NewProxyResp(r) => {
                let Some(i) = (0..self.proxies.len())
                    .find(|&i| self.wire_name(&self.proxies[i].proxy.name) == r.proxy_name)
                else {
                    return Ok(());
                };
                let st = &mut self.proxies[i];
                st.sent_at = None;
                st.phase = if r.error.is_empty() {
                    ProxyPhase::Running {
                        remote_addr: r.remote_addr,
                    }
                } else {
                    ProxyPhase::Rejected {
                        error: r.error,
                        retry_at: now + PROXY_RETRY,
                    }
                };
            }
            Message::Pong(p) => {
                if !p.error.is_empty() {
                    return Err(Error::HeartbeatRefused(p.error));
                }
                if let Some(sent) = self.ping_sent.take() {
                    self.rtt = Some(now.saturating_duration_since(sent));
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub fn handle_timeout(&mut self, now: Instant, unix_now: i64) -> Result<(), Error> {
        if !self.logged_in {
            return if now >= self.login_deadline {
                Err(Error::LoginTimeout)
            } else {
                Ok(())
            };
        }
        let silent = now.saturating_duration_since(self.last_heard);
        if silent >= self.dead_after {
            return Err(Error::Silent(silent));
        }
        if now >= self.next_ping {
            let mut ping = Ping::default();
            if self.auth_heartbeats {
                ping.privilege_key = crypto::privilege_key(&self.token, unix_now);
                ping.timestamp = unix_now;
            }
            self.out.push_back(Message::Ping(ping));
            self.ping_sent.get_or_insert(now);
            self.next_ping = now + self.heartbeat;
        }
        for i in 0..self.proxies.len() {
            let due = match (&self.proxies[i].phase, self.proxies[i].sent_at) {
                (ProxyPhase::Rejected { retry_at, .. }, _) => now >= *retry_at,
                (ProxyPhase::Waiting, Some(at)) => now >= at + PROXY_ANSWER_TIMEOUT,
                _ => false,
            };
            if due {
                self.register(i, now);
            }
        }
        Ok(())
    }

    pub fn poll_timeout(&self) -> Instant {
        if !self.logged_in {
            return self.login_deadline;
        }
        let mut t = self.next_ping.min(self.last_heard + self.dead_after);
        for st in &self.proxies {
            match (&st.phase, st.sent_at) {
                (ProxyPhase::Rejected { retry_at, .. }, _) => t = t.min(*retry_at),
                (ProxyPhase::Waiting, Some(at)) => t = t.min(at + PROXY_ANSWER_TIMEOUT),
                _ => {}
            }
        }
        t
    }

    pub fn poll_message(&mut self) -> Option<Message> {
        self.out.pop_front()
    }

    /// One pending ReqWorkConn to answer with a new work connection.
    pub fn take_work_request(&mut self) -> bool {
        if self.work_requests > 0 {
            self.work_requests -= 1;
            true
        } else {
            false
        }
    }

    /// The plaintext first message of a work connection.
    pub fn new_work_conn(&self, unix_now: i64) -> Message {
        let mut m = NewWorkConn {
            run_id: self.run_id.clone(),
            ..NewWorkConn::default()
        };
        if self.auth_new_work_conns {
            m.privilege_key = crypto::privilege_key(&self.token, unix_now);
            m.timestamp = unix_now;
        }
        Message::NewWorkConn(m)
    }

    /// Graceful stop: tell frps to release our ports now.
    pub fn close_all(&mut self) {
        for i in 0..self.proxies.len() {
            if matches!(self.proxies[i].phase, ProxyPhase::Running { .. }) {
                let name = self.wire_name(&self.proxies[i].proxy.name);
                self.out
                    .push_back(Message::CloseProxy(CloseProxy { proxy_name: name }));
            }
        }
    }

    pub fn proxies(&self) -> &[ProxyState] {
        &self.proxies
    }
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
