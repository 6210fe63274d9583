//! `[tunnel]`: the FRP client's settings, either inline or read from an
//! existing `frpc.ini`/`frpc.toml` (`frpc_config`), with inline keys
//! overriding the file. `resolve` turns the section into `Settings`, adds
//! the proxies r58's own services need and collects warnings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::frpc;

pub use super::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyType {
    #[default]
    Tcp,
    Udp,
}

impl ProxyType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyType::Tcp => "tcp",
            ProxyType::Udp => "udp",
        }
    }
}

/// Which frp wire protocol to speak. `Auto` tries v2 (frps ≥ 0.69) and
/// falls back to v1 for a server that hangs up at v2's magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireChoice {
    #[default]
    Auto,
    V1,
    V2,
}

impl WireChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            WireChoice::Auto => "auto",
            WireChoice::V1 => "v1",
            WireChoice::V2 => "v2",
        }
    }

    pub fn parse(v: &str) -> Result<WireChoice, String> {
        match v {
            "auto" => Ok(WireChoice::Auto),
            "v1" => Ok(WireChoice::V1),
            "v2" => Ok(WireChoice::V2),
            _ => Err(format!(
                "wire protocol \"{v}\": expected \"auto\", \"v1\" or \"v2\""
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    pub name: String,
    #[serde(rename = "type", default = "tcp")]
    pub kind: ProxyType,
    #[serde(default = "loopback")]
    pub local_ip: String,
    pub local_port: u16,
    /// 0: frps picks one.
    #[serde(default)]
    pub remote_port: u16,
    #[serde(default)]
    pub use_encryption: bool,
    #[serde(default)]
    pub use_compression: bool,
}

fn tcp() -> ProxyType {
    ProxyType::Tcp
}
fn loopback() -> String {
    "127.0.0.1".into()
}

/// The section as written in r58.toml: every key optional, so that the
/// ones given override an imported frpc file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Section {
    pub enabled: Option<bool>,
    pub frpc_config: Option<PathBuf>,
    pub server_addr: Option<String>,
    pub server_port: Option<u16>,
    pub token: Option<Secret>,
    pub user: Option<String>,
    pub tls: Option<bool>,
    pub tls_server_name: Option<String>,
    pub tls_trusted_ca_file: Option<PathBuf>,
    /// SHA-256 of the server certificate (hex, colons allowed).
    pub tls_cert_sha256: Option<String>,
    pub tls_first_byte: Option<bool>,
    pub tcp_mux: Option<bool>,
    /// "auto" (default), "v1" or "v2".
    pub wire_protocol: Option<WireChoice>,
    pub pool_count: Option<u32>,
    /// App-level Ping interval (always sent, even with tcp_mux).
    pub heartbeat_secs: Option<u64>,
    /// No Pong (or yamux ping answer) for this long: the path is dead.
    pub dead_after_secs: Option<u64>,
    /// Add proxies for the WHEP HTTP and ICE-TCP ports (default true).
    pub auto_proxies: Option<bool>,
    pub run_id_file: Option<PathBuf>,
    pub proxies: Option<Vec<Proxy>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    pub enable: bool,
    pub server_name: Option<String>,
    pub trusted_ca_file: Option<PathBuf>,
    pub cert_sha256: Option<[u8; 32]>,
    pub first_byte: bool,
}

/// Everything the tunnel needs, resolved and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub server_addr: String,
    pub server_port: u16,
    pub token: Secret,
    pub user: String,
    pub tls: Tls,
    pub tcp_mux: bool,
    pub wire: WireChoice,
    pub pool_count: u32,
    pub heartbeat: Duration,
    pub dead_after: Duration,
    pub auth_heartbeats: bool,
    pub auth_new_work_conns: bool,
    pub proxies: Vec<Proxy>,
    pub run_id_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server_addr: "0.0.0.0".into(),
            server_port: 7000,
            token: Secret::default(),
            user: String::new(),
            tls: Tls {
                enable: true,
                server_name: None,
                trusted_ca_file: None,
                cert_sha256: None,
                first_byte: false,
            },
            tcp_mux: true,
            wire: WireChoice::Auto,
            pool_count: 1,
            heartbeat: Duration::from_secs(3),
            dead_after: Duration::from_secs(10),
            auth_heartbeats: false,
            auth_new_work_conns: false,
            proxies: Vec::new(),
            run_id_file: Some(PathBuf::from("/var/lib/r58/frp-run-id")),
        }
    }
}

/// The local ports r58 serves that a remote viewer needs.
pub struct OwnPorts {
    pub whep_http: u16,
    pub ice_tcp: u16,
}

/// Auto-added proxies use the fleet's convention: remote = local + 10000
/// (ssh 22→10022, WHEP 8889→18889).
const REMOTE_OFFSET: u16 = 10000;

/// `None` when the tunnel is off. Warnings name ignored keys.
pub fn resolve(
    sec: &Section,
    own: &OwnPorts,
    base_dir: &Path,
) -> Result<Option<(Settings, Vec<String>)>, String> {
    if sec.enabled == Some(false) {
        return Ok(None);
    }
    let mut warnings = Vec::new();
    let mut s = match &sec.frpc_config {
        Some(file) => {
            let file = base_dir.join(file);
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("reading frpc config {}: {e}", file.display()))?;
            let (s, w) = frpc::parse(&text, &file.display().to_string())
                .map_err(|e| format!("{}: {e}", file.display()))?;
            warnings.extend(w);
            s
        }
        None => Settings::default(),
    };
    macro_rules! take {
        ($field:ident => $($dst:tt)+) => {
            if let Some(v) = &sec.$field {
                s.$($dst)+ = v.clone();
            }
        };
    }
    take!(server_addr => server_addr);
    take!(server_port => server_port);
    take!(token => token);
    take!(user => user);
    take!(tls => tls.enable);
    take!(tls_first_byte => tls.first_byte);
    take!(tcp_mux => tcp_mux);
    take!(wire_protocol => wire);
    take!(pool_count => pool_count);
    if let Some(v) = &sec.tls_server_name {
        s.tls.server_name = Some(v.clone());
    }
    if let Some(v) = &sec.tls_trusted_ca_file {
        s.tls.trusted_ca_file = Some(base_dir.join(v));
    }
    if let Some(pin) = &sec.tls_cert_sha256 {
        s.tls.cert_sha256 = Some(parse_pin(pin)?);
    }
    if let Some(v) = sec.heartbeat_secs {
        s.heartbeat = Duration::from_secs(v);
    }
    if let Some(v) = sec.dead_after_secs {
        s.dead_after = Duration::from_secs(v);
    }
    if sec.run_id_file.is_some() {
        s.run_id_file = sec.run_id_file.clone();
    }
    if let Some(p) = &sec.proxies {
        s.proxies = p.clone();
    }
    if sec.frpc_config.is_none() && sec.server_addr.is_none() {
        return Err("[tunnel] needs server_addr (or frpc_config = \"/etc/frp/frpc.toml\")".into());
    }
    if sec.auto_proxies != Some(false) {
        for (name, port) in [("r58-whep", own.whep_http), ("r58-ice-tcp", own.ice_tcp)] {
            let covered = s
                .proxies
                .iter()
                .any(|p| p.kind == ProxyType::Tcp && p.local_port == port);
            if port != 0 && !covered {
                s.proxies.push(Proxy {
                    name: name.into(),
                    kind: ProxyType::Tcp,
                    local_ip: loopback(),
                    local_port: port,
                    // Past 65535: frps picks one (then it is not advertised).
                    remote_port: port.checked_add(REMOTE_OFFSET).unwrap_or(0),
                    use_encryption: false,
                    use_compression: false,
                });
            }
        }
    }
    s.validate()?;
    Ok(Some((s, warnings)))
}

/// The name frps knows a proxy by: `user.name` when a user is set.
pub fn wire_name(user: &str, name: &str) -> String {
    if user.is_empty() {
        name.to_string()
    } else {
        format!("{user}.{name}")
    }
}

fn parse_pin(pin: &str) -> Result<[u8; 32], String> {
    let hex: String = pin.chars().filter(|c| *c != ':').collect();
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect();
    bytes
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "tls_cert_sha256 must be 64 hex digits (colons allowed)".into())
}

impl Settings {
    fn validate(&self) -> Result<(), String> {
        if self.server_addr.is_empty() || self.server_addr == "0.0.0.0" {
            return Err("the tunnel needs a server address (server_addr)".into());
        }
        if self.server_port == 0 {
            return Err("server_port must not be 0".into());
        }
        if self.heartbeat.is_zero() || self.dead_after <= self.heartbeat {
            return Err(format!(
                "dead_after_secs ({}) must be longer than heartbeat_secs ({}), which must be > 0",
                self.dead_after.as_secs(),
                self.heartbeat.as_secs()
            ));
        }
        if !(1..=50).contains(&self.pool_count) {
            return Err(format!("pool_count {} must be 1..50", self.pool_count));
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.proxies {
            if p.name.is_empty() || !names.insert(p.name.as_str()) {
                return Err(format!(
                    "proxy names must be unique and non-empty: '{}'",
                    p.name
                ));
            }
            if p.local_port == 0 {
                return Err(format!("proxy '{}' needs local_port", p.name));
            }
        }
        Ok(())
    }

    pub fn wire_name(&self, name: &str) -> String {
        wire_name(&self.user, name)
    }

    /// The public address of the proxy forwarding local TCP `port`, if any.
    pub fn public_port(&self, kind: ProxyType, port: u16) -> Option<u16> {
        self.proxies
            .iter()
            .find(|p| p.kind == kind && p.local_port == port && p.remote_port != 0)
            .map(|p| p.remote_port)
    }
}

#[cfg(test)]
#[path = "tunnel_tests.rs"]
mod tests;
