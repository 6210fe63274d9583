//! `/etc/r58/r58.toml`: the daemon's configuration.
//!
//! Every key is optional and the built-in defaults work on any Linux (one
//! `cam0` path from a test pattern). Errors name the file and line, so a
//! technician can fix a typo over a serial console without guessing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

pub mod audio;
pub mod auth;
mod explain;
use explain::explain;
mod text;
use text::{has_table, line_at, line_of_entry_key, line_of_key};
pub mod board;
pub mod forward;
pub mod frpc;
pub mod import;
pub mod rendition;
pub mod secret;
pub mod tunnel;
pub mod webrtc;
mod yaml;
pub use webrtc::{CandidatePolicy, Cidr, IceServer, WebRtc};

pub const DEFAULT_PATH: &str = "/etc/r58/r58.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: Http,
    pub api: Api,
    pub webrtc: WebRtc,
    /// Hardware encoder sessions the RK3588 VPU is trusted with at once.
    pub max_hw_encoders: usize,
    pub paths: BTreeMap<String, PathConfig>,
    /// The FRP client; absent means no tunnel.
    pub tunnel: Option<tunnel::Section>,
    pub watchdog: board::Watchdog,
    pub leds: board::Leds,
    pub auth: auth::Auth,
    /// Paths pushed to WHIP endpoints (`[[forward]]`).
    pub forward: Vec<forward::Forward>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    pub listen: SocketAddr,
    /// Origin patterns allowed by CORS, e.g. `https://*.example.no`,
    /// `http://localhost:*`. Empty means no cross-origin access.
    pub allow_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Api {
    pub listen: SocketAddr,
    /// Bearer token for requests that do not come from this box's own
    /// loopback (the LAN, the tunnel). Without one, only the box itself
    /// may use the API.
    pub token: Option<auth::Secret>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Test,
    Hdmi,
    V4l2,
    Publisher,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PathConfig {
    pub source: Source,
    pub device: Option<String>,
    /// `hdmi` through an LT6911 bridge: its subdev (`/dev/v4l-subdev2`);
    /// `device` is then the bridge's `rkcif` node.
    pub subdev: Option<String>,
    /// Bridge inputs: the fourcc the node is set to (default UYVY).
    pub pixel_format: Option<String>,
    /// `hdmi` on the RK3588's receiver: an EDID file loaded at start.
    pub edid: Option<std::path::PathBuf>,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Bits per second.
    pub bitrate: u32,
    /// Frames between IDRs.
    pub gop: u32,
    pub encoder: String,
    pub max_viewers: usize,
    /// `publisher` paths: a new WHIP publisher replaces the current one
    /// (a guest reconnecting) instead of getting 409.
    pub override_publisher: bool,
    /// This path's tokens, instead of `[auth]`'s.
    pub publish_token: Option<auth::Secret>,
    pub read_token: Option<auth::Secret>,
    /// Smaller encodes for viewers on weak links, largest first.
    pub renditions: Vec<rendition::Rendition>,
    /// `test` paths: what the pattern shows (`TEST_PATTERNS`).
    pub pattern: Option<String>,
    /// Sound for viewers, as Opus (`audio.rs`).
    pub audio: audio::Audio,
    pub audio_bitrate: u32,
}

impl Default for Config {
    fn default() -> Self {
        let mut paths = BTreeMap::new();
        paths.insert("cam0".to_string(), PathConfig::default());
        Config {
            http: Http::default(),
            api: Api::default(),
            webrtc: WebRtc::default(),
            max_hw_encoders: 4,
            paths,
            tunnel: None,
            watchdog: board::Watchdog::default(),
            leds: board::Leds::default(),
            auth: auth::Auth::default(),
            forward: Vec::new(),
        }
    }
}

impl Default for Http {
    fn default() -> Self {
        Http {
            listen: "0.0.0.0:8889".parse().unwrap(),
            allow_origins: vec![
                "http://localhost:*".into(),
                "http://127.0.0.1:*".into(),
                "http://192.168.*.*:*".into(),
                "http://100.*.*.*:*".into(),
            ],
        }
    }
}

impl Default for Api {
    fn default() -> Self {
        Api {
            listen: "127.0.0.1:9997".parse().unwrap(),
            token: None,
        }
    }
}

impl Default for PathConfig {
    fn default() -> Self {
        PathConfig {
            source: Source::Test,
            device: None,
            subdev: None,
            pixel_format: None,
            edid: None,
            width: 1280,
            height: 720,
            fps: 30,
            bitrate: 2_000_000,
            gop: 30,
            encoder: "auto".into(),
            max_viewers: 32,
            override_publisher: false,
            publish_token: None,
            read_token: None,
            renditions: Vec::new(),
            pattern: None,
            audio: audio::Audio::Auto,
            audio_bitrate: audio::DEFAULT_BITRATE,
        }
    }
}

pub const ENCODERS: &[&str] = &["auto", "mpph264enc", "x264enc", "openh264enc"];

impl Config {
    /// Load `file`; a missing default file means "use the defaults".
    pub fn load(file: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && file == Path::new(DEFAULT_PATH) =>
            {
                return Ok(Config::default());
            }
            Err(e) => return Err(Error::new(format!("reading {}: {e}", file.display()))),
        };
        Config::parse(&text).map_err(|e| Error::new(format!("{}:{e}", file.display())))
    }

    /// The tunnel's resolved settings (reads `frpc_config` if set); `None`
    /// when there is no enabled `[tunnel]`.
    pub fn tunnel_settings(&self) -> Result<Option<(tunnel::Settings, Vec<String>)>, String> {
        let Some(sec) = &self.tunnel else {
            return Ok(None);
        };
        let own = tunnel::OwnPorts {
            whep_http: self.http.listen.port(),
            ice_tcp: self.webrtc.tcp_port,
        };
        tunnel::resolve(sec, &own, Path::new(""))
    }

    /// Parse and validate. Errors read `LINE: message`.
    pub fn parse(text: &str) -> Result<Config> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_at(text, s.start)).unwrap_or(1);
            let key = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim());
            Error::new(format!("{line}: {}", explain(e.message().trim(), key)))
        })?;
        // A file that names no paths keeps the default test path; one that
        // names some gets exactly those.
        if !has_table(text, "paths") {
            cfg.paths = Config::default().paths;
        }
        cfg.validate(text)?;
        Ok(cfg)
    }

    fn validate(&self, text: &str) -> Result<()> {
        let fail = |section: &str, key: &str, msg: String| -> Error {
            Error::new(format!("{}: {msg}", line_of_key(text, section, key)))
        };
        for (name, p) in &self.paths {
            let sec = format!("paths.{name}");
            if !valid_path_name(name) {
                return Err(fail(
                    &sec,
                    "",
                    format!(
                        "path name '{name}' must be letters, digits, '_' or '-' and not a reserved word"
                    ),
                ));
            }
            if p.source == Source::V4l2 && p.device.is_none() {
                return Err(fail(
                    &sec,
                    "source",
                    format!("path '{name}': source \"v4l2\" needs device = \"/dev/videoN\""),
                ));
            }
            board::check_input(name, p).map_err(|(key, msg)| fail(&sec, key, msg))?;
            audio::check(name, p).map_err(|(key, msg)| fail(&sec, key, msg))?;
            if p.width < 16 || p.width > 4096 || p.width % 2 != 0 {
                return Err(fail(
                    &sec,
                    "width",
                    format!("path '{name}': width {} must be even, 16..4096", p.width),
                ));
            }
            if p.height < 16 || p.height > 4096 || p.height % 2 != 0 {
                return Err(fail(
                    &sec,
                    "height",
                    format!("path '{name}': height {} must be even, 16..4096", p.height),
                ));
            }
            if !(1..=120).contains(&p.fps) {
                return Err(fail(
                    &sec,
                    "fps",
                    format!("path '{name}': fps {} must be 1..120", p.fps),
                ));
            }
            if !(100_000..=100_000_000).contains(&p.bitrate) {
                return Err(fail(
                    &sec,
                    "bitrate",
                    format!(
                        "path '{name}': bitrate {} bit/s must be 100000..100000000",
                        p.bitrate
                    ),
                ));
            }
            if !(1..=600).contains(&p.gop) {
                return Err(fail(
                    &sec,
                    "gop",
                    format!("path '{name}': gop {} must be 1..600 frames", p.gop),
                ));
            }
            if !ENCODERS.contains(&p.encoder.as_str()) {
                return Err(fail(
                    &sec,
                    "encoder",
                    format!(
                        "path '{name}': unknown encoder \"{}\" (one of: {})",
                        p.encoder,
                        ENCODERS.join(", ")
                    ),
                ));
            }
            if p.override_publisher && p.source != Source::Publisher {
                return Err(fail(
                    &sec,
                    "override_publisher",
                    format!("path '{name}': override_publisher needs source = \"publisher\""),
                ));
            }
            for (key, t) in [
                ("publish_token", &p.publish_token),
                ("read_token", &p.read_token),
            ] {
                if let Some(Err(e)) = t.as_ref().map(auth::check_token) {
                    return Err(fail(&sec, key, format!("path '{name}': {key} {e}")));
                }
            }
            rendition::check(name, p).map_err(|msg| fail(&sec, "renditions", msg))?;
            if p.max_viewers == 0 {
                return Err(fail(
                    &sec,
                    "max_viewers",
                    format!("path '{name}': max_viewers must be at least 1"),
                ));
            }
        }
        let names: Vec<&str> = self.paths.keys().map(String::as_str).collect();
        forward::check(&self.forward, &names).map_err(|(n, key, msg)| {
            Error::new(format!(
                "{}: {msg}",
                line_of_entry_key(text, "forward", n, key)
            ))
        })?;
        self.webrtc
            .validate()
            .map_err(|(key, msg)| fail("webrtc", key, msg))?;
        self.watchdog
            .validate()
            .map_err(|(key, msg)| fail("watchdog", key, msg))?;
        if self.webrtc.udp_port == 0 {
            return Err(fail("webrtc", "udp_port", "udp_port must not be 0".into()));
        }
        for (sec, key, t) in [
            ("auth", "publish_token", &self.auth.publish_token),
            ("auth", "read_token", &self.auth.read_token),
            ("api", "token", &self.api.token),
        ] {
            if let Some(Err(e)) = t.as_ref().map(auth::check_token) {
                return Err(fail(sec, key, format!("{key} {e}")));
            }
        }
        // One port, one server: the second would fail to bind at start.
        let (http, api) = (self.http.listen, self.api.listen);
        if http.port() != 0
            && http.port() == api.port()
            && (http.ip() == api.ip() || http.ip().is_unspecified() || api.ip().is_unspecified())
        {
            let sec = if has_table(text, "api") {
                "api"
            } else {
                "http"
            };
            return Err(fail(
                sec,
                "listen",
                format!(
                    "http.listen {http} and api.listen {api} share a port; give each its own \
                     (defaults 0.0.0.0:8889 and 127.0.0.1:9997)"
                ),
            ));
        }
        for (what, port) in [("http.listen", http.port()), ("api.listen", api.port())] {
            if port != 0 && (port == self.webrtc.tcp_port) {
                return Err(fail(
                    "webrtc",
                    "tcp_port",
                    format!(
                        "webrtc.tcp_port {port} is {what}'s port; ICE-TCP needs its own (default 8190)"
                    ),
                ));
            }
        }
        for o in &self.http.allow_origins {
            if !(o.starts_with("http://") || o.starts_with("https://") || o == "*") {
                return Err(fail(
                    "http",
                    "allow_origins",
                    format!("allow_origins entry \"{o}\" must start with http:// or https://"),
                ));
            }
        }
        Ok(())
    }
}

/// Path names become URL segments: keep them simple and off our own routes.
pub fn valid_path_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !matches!(name, "v3" | "whep" | "whip" | "metrics")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_one_test_path() {
        let c = Config::parse("").unwrap();
        let cam0 = &c.paths["cam0"];
        assert_eq!(cam0.source, Source::Test);
        assert_eq!((cam0.width, cam0.height, cam0.fps), (1280, 720, 30));
        assert_eq!(c.http.listen.port(), 8889);
        assert_eq!(c.api.listen.to_string(), "127.0.0.1:9997");
        assert_eq!(c.max_hw_encoders, 4);
    }

    #[test]
    fn fleet_shaped_file_parses() {
        let c = Config::parse(
            r#"
[http]
listen = "0.0.0.0:8889"
allow_origins = ["https://*.example.no", "http://localhost:*"]

[webrtc]
udp_port = 8189
ice_servers = [ { urls = "stun:stun.l.google.com:19302" } ]

[paths.cam0]
source = "hdmi"
bitrate = 4000000
encoder = "mpph264enc"

[paths.cam2]
source = "v4l2"
device = "/dev/video11"

[tunnel]
enabled = true
"#,
        )
        .unwrap();
        assert_eq!(c.paths.len(), 2);
        assert_eq!(c.paths["cam0"].bitrate, 4_000_000);
        assert_eq!(c.paths["cam2"].device.as_deref(), Some("/dev/video11"));
        assert_eq!(c.webrtc.ice_servers[0].urls, "stun:stun.l.google.com:19302");
        assert!(c.tunnel.is_some());
    }

    #[test]
    fn unknown_key_is_reported_with_its_line() {
        let e = Config::parse("[http]\nlisten = \"0.0.0.0:1\"\nlisen = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("3: "), "{e}");
        assert!(e.contains("lisen"), "{e}");
    }

    #[test]
    fn syntax_error_has_line() {
        let e = Config::parse("[paths.cam0]\nwidth = \n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("2: "), "{e}");
    }

    #[test]
    fn bad_values_name_the_key_line() {
        let e = Config::parse("[paths.cam0]\nsource = \"test\"\nwidth = 1281\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("3: ") && e.contains("width 1281"), "{e}");
        let e = Config::parse("[paths.x]\nsource = \"v4l2\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("2: ") && e.contains("needs device"), "{e}");
        let e = Config::parse("[paths.x]\nencoder = \"nvenc\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("2: ") && e.contains("unknown encoder"), "{e}");
        let e = Config::parse("[paths.x]\nsource = \"camera\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("2: ") && e.contains("unknown variant"), "{e}");
        let e = Config::parse("[webrtc]\nice_servers = [{ urls = \"http://x\" }]\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("2: ") && e.contains("stun:"), "{e}");
    }

    #[test]
    fn path_names_are_url_safe() {
        assert!(valid_path_name("cam0") && valid_path_name("mixer_program"));
        assert!(!valid_path_name("a/b") && !valid_path_name("v3") && !valid_path_name(""));
        let e = Config::parse("[paths.\"a b\"]\n").unwrap_err().to_string();
        assert!(e.contains("path name"), "{e}");
    }

    #[test]
    fn the_fleet_layout_with_publisher_slots_and_tokens() {
        let mut text = String::from("[auth]\npublish_token = \"fleet-publish-1\"\n");
        for cam in ["cam0", "cam1", "cam2", "cam3"] {
            text += &format!("[paths.{cam}]\nsource = \"test\"\n");
        }
        for slot in [
            "guest1",
            "guest2",
            "speaker0",
            "speaker1",
            "speaker2",
            "mixer_program",
        ] {
            text += &format!("[paths.{slot}]\nsource = \"publisher\"\n");
        }
        text += "override_publisher = true\npublish_token = \"mixer-only-2\"\n";
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.paths.len(), 10);
        assert_eq!(c.paths["guest2"].source, Source::Publisher);
        assert!(c.paths["mixer_program"].override_publisher);
        let tok = |p: &str| c.token(p, auth::Right::Publish).map(|t| t.expose());
        assert_eq!(tok("guest1"), Some("fleet-publish-1"));
        assert_eq!(tok("mixer_program"), Some("mixer-only-2"));
        assert_eq!(
            c.token("guest1", auth::Right::Read),
            None,
            "reading stays open"
        );
        assert!(
            !format!("{c:?}").contains("fleet-publish-1"),
            "Debug hides tokens"
        );
        let e = Config::parse("[paths.cam0]\nsource = \"hdmi\"\noverride_publisher = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("3: ") && e.contains("needs source = \"publisher\""),
            "{e}"
        );
        let e = Config::parse("[auth]\nread_token = \"short\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("2: ") && e.contains("at least 8"), "{e}");
    }

    #[test]
    fn public_addresses_forwarders_and_turn_secrets() {
        let c = Config::parse(
            r#"
[webrtc]
tcp_port = 8190
additional_hosts = [ { host = "65.109.32.111", udp_port = 18189, tcp_port = 18190 }, { host = "vps.example.no" } ]
forwarders = ["127.0.0.1", "10.0.0.0/8"]
ice_servers = [ { urls = "turn:vps.example.no:3478", secret = "hunter2" } ]
"#,
        )
        .unwrap();
        let w = &c.webrtc;
        assert_eq!(w.additional_hosts[0].tcp_port, Some(18190));
        assert_eq!(w.additional_hosts[1].udp_port, None);
        assert!(w.forwarders[1].contains("10.9.8.7".parse().unwrap()));
        assert!(!w.forwarders[1].contains("11.0.0.1".parse().unwrap()));
        assert!(w.forwarders[0].contains("127.0.0.1".parse().unwrap()));
        assert!(!w.forwarders[0].contains("127.0.0.2".parse().unwrap()));
        assert_eq!(w.ice_servers[0].ttl_secs, 86400);
        // Secrets never print, not even in debug output.
        assert!(!format!("{c:?}").contains("hunter2"));

        let e = |t: &str| Config::parse(t).unwrap_err().to_string();
        let v6 = e("[webrtc]\nadditional_hosts = [{ host = \"2001:db8::1\" }]\n");
        assert!(v6.starts_with("2: ") && v6.contains("IPv6"), "{v6}");
        let bad = e("[webrtc]\nadditional_hosts = [{ host = \"http://vps\" }]\n");
        assert!(bad.contains("neither"), "{bad}");
        let cidr = e("[webrtc]\nforwarders = [\"10.0.0.0/33\"]\n");
        assert!(
            cidr.starts_with("2: ") && cidr.contains("10.0.0.0/33"),
            "{cidr}"
        );
        let stun = e("[webrtc]\nice_servers = [{ urls = \"stun:x:3478\", secret = \"s\" }]\n");
        assert!(stun.contains("secret mints TURN"), "{stun}");
        assert!(!stun.contains("\"s\""), "{stun}");
    }
}
