//! What the tunnel reports: connected or not and since when, the last
//! error, the Ping round trip, and each proxy with its public port and
//! state. Served as `/v3/tunnel` and shown by `r58 status`. Never holds
//! the token.

use serde::{Deserialize, Serialize};

use super::control::{Control, ProxyPhase};
use crate::config::tunnel::{ProxyType, Settings};
use crate::vocab::{ProxyState, TlsMode};
use crate::wallclock::unix_now;

/// Also what `status` and the doctor read back from `/v3/tunnel`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct ProxyStatus {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ProxyType,
    pub local: String,
    pub remote_port: u16,
    /// `rejected` comes with frps's reason in `error`.
    pub state: ProxyState,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Status {
    pub server: String,
    pub tls: TlsMode,
    pub connected: bool,
    /// Unix seconds of the last change between connected and not.
    pub since: u64,
    pub last_error: Option<String>,
    pub rtt_ms: Option<f64>,
    pub reconnects: u64,
    /// frp wire protocol of the last login ("v1", "v2"; "" before one).
    pub wire: String,
    /// Its control channel's AEAD algorithm (v2).
    pub aead: Option<String>,
    pub proxies: Vec<ProxyStatus>,
}

impl Status {
    pub fn new(s: &Settings) -> Status {
        Status {
            server: format!("{}:{}", s.server_addr, s.server_port),
            tls: super::tls::mode(s),
            connected: false,
            since: unix_now(),
            last_error: None,
            rtt_ms: None,
            reconnects: 0,
            wire: String::new(),
            aead: None,
            proxies: s
                .proxies
                .iter()
                .map(|p| ProxyStatus {
                    name: p.name.clone(),
                    kind: p.kind,
                    local: format!("{}:{}", p.local_ip, p.local_port),
                    remote_port: p.remote_port,
                    state: ProxyState::Offline,
                    error: None,
                })
                .collect(),
        }
    }

    pub fn failed(&mut self, e: String) {
        self.last_error = Some(e);
    }

    pub fn wire_in_use(&mut self, w: super::msg::Wire, aead: Option<&str>) {
        self.wire = w.name().into();
        self.aead = aead.map(str::to_string);
    }

    /// "v2 aes-256-gcm", "v1", or "" before any login.
    pub fn wire_text(&self) -> String {
        match (&self.wire[..], &self.aead) {
            ("", _) => String::new(),
            (w, Some(a)) => format!("{w} {a}"),
            (w, None) => w.to_string(),
        }
    }

    pub fn connecting(&mut self) {
        for p in &mut self.proxies {
            p.state = ProxyState::Offline;
        }
    }

    pub fn connected(&mut self) {
        self.connected = true;
        self.since = unix_now();
    }

    pub fn disconnected(&mut self, e: Option<String>) {
        if self.connected {
            self.since = unix_now();
            self.reconnects += 1;
        }
        self.connected = false;
        self.rtt_ms = None;
        if e.is_some() {
            self.last_error = e;
        }
        self.connecting();
    }

    /// Mirror the control state; log each proxy's change once.
    pub fn update(&mut self, c: &Control) {
        self.rtt_ms = c.rtt.map(|d| d.as_secs_f64() * 1000.0);
        for st in c.proxies() {
            let Some(p) = self.proxies.iter_mut().find(|p| p.name == st.proxy.name) else {
                continue;
            };
            let (state, error) = match &st.phase {
                ProxyPhase::Waiting => (ProxyState::Waiting, None),
                ProxyPhase::Running { .. } => (ProxyState::Running, None),
                ProxyPhase::Rejected { error, .. } => (ProxyState::Rejected, Some(error.clone())),
            };
            if (state, &error) != (p.state, &p.error) {
                match (&error, state) {
                    (Some(e), _) => log::warn!(
                        "tunnel: frps rejected proxy '{}' (remote port {}): {e}; retrying every {} s",
                        p.name,
                        p.remote_port,
                        super::control::PROXY_RETRY.as_secs()
                    ),
                    (None, ProxyState::Running) => log::info!(
                        "tunnel: proxy '{}' {} -> {}:{}",
                        p.name,
                        p.local,
                        self.server.rsplit_once(':').map_or("", |(h, _)| h),
                        p.remote_port
                    ),
                    _ => {}
                }
            }
            p.state = state;
            p.error = error;
        }
    }
}
