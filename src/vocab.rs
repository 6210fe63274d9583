//! Terms more than one part of r58 speaks: defined once here, so health,
//! the LED, the doctor and the API cannot drift apart on a string.

use serde::{Deserialize, Serialize};

/// The API's routes, for the server (`api`) and its clients on the box
/// (`status`, `doctor`, `support-bundle`).
pub mod route {
    pub const INFO: &str = "/v3/info";
    pub const PATHS: &str = "/v3/paths/list";
    /// Followed by a path name.
    pub const PATH: &str = "/v3/paths/get/";
    pub const SESSIONS: &str = "/v3/webrtcsessions/list";
    /// Followed by a session id.
    pub const SESSION: &str = "/v3/webrtcsessions/get/";
    pub const TUNNEL: &str = "/v3/tunnel";
    pub const FORWARDS: &str = "/v3/forwards";
    /// Followed by a path name; POST {"bps": N}.
    pub const BITRATE: &str = "/v3/r58/bitrate/";
    pub const METRICS: &str = "/metrics";
}

/// A WebRTC session as the API, the log and the `ID` header name it: 16
/// hex digits of the engine's number for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where a path is, as the API (`r58.state`), status, doctor, health and
/// the LED see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathState {
    Idle,
    NoSignal,
    /// Also what a client assumes when it cannot tell.
    #[default]
    Starting,
    Streaming,
    Error,
}

impl PathState {
    pub fn as_str(self) -> &'static str {
        match self {
            PathState::Idle => "idle",
            PathState::NoSignal => "no_signal",
            PathState::Starting => "starting",
            PathState::Streaming => "streaming",
            PathState::Error => "error",
        }
    }
}

impl std::str::FromStr for PathState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            PathState::Idle,
            PathState::NoSignal,
            PathState::Starting,
            PathState::Streaming,
            PathState::Error,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| format!("unknown path state '{s}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_sixteen_hex_digits_everywhere() {
        let id = SessionId(0x2a);
        assert_eq!(id.to_string(), "000000000000002a");
        assert_eq!(serde_json::to_value(id).unwrap(), "000000000000002a");
    }

    #[test]
    fn path_states_read_back_what_they_write() {
        for p in [
            PathState::Idle,
            PathState::NoSignal,
            PathState::Starting,
            PathState::Streaming,
            PathState::Error,
        ] {
            assert_eq!(p.as_str().parse::<PathState>(), Ok(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert!("live".parse::<PathState>().is_err());
    }
}

/// How the tunnel checks frps's certificate (`/v3/tunnel` `tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    #[default]
    Off,
    /// TLS without checking who answers: the doctor warns.
    Unverified,
    Pinned,
    Ca,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Off => "off",
            TlsMode::Unverified => "unverified",
            TlsMode::Pinned => "pinned",
            TlsMode::Ca => "ca",
        }
    }
}

/// Where one forwarded port stands with frps (`/v3/tunnel` proxies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyState {
    /// Not logged in.
    #[default]
    Offline,
    /// Asked for, no answer yet.
    Waiting,
    Running,
    /// frps said no (the reason is beside it).
    Rejected,
}

impl ProxyState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyState::Offline => "offline",
            ProxyState::Waiting => "waiting",
            ProxyState::Running => "running",
            ProxyState::Rejected => "rejected",
        }
    }
}

/// Which encode of a path a viewer gets: 0 is the main stream, 1.. the
/// configured renditions in order (each smaller than the one before).
/// The API shows it as a number and `r58 status` as "main" or "r1".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
pub struct Layer(pub u8);

impl Layer {
    pub const MAIN: Layer = Layer(0);

    pub fn is_main(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_main() {
            f.write_str("main")
        } else {
            write!(f, "r{}", self.0)
        }
    }
}

/// Where one `[[forward]]` stands (`/v3/forwards` `state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardState {
    /// The path is not streaming (yet): nothing to send.
    #[default]
    Waiting,
    /// Offer posted, ICE and DTLS under way.
    Connecting,
    Forwarding,
    /// The last try failed (`lastError`); the next comes after a backoff.
    Retrying,
}

impl ForwardState {
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardState::Waiting => "waiting",
            ForwardState::Connecting => "connecting",
            ForwardState::Forwarding => "forwarding",
            ForwardState::Retrying => "retrying",
        }
    }
}
