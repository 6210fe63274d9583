use super::*;

const OWN: OwnPorts = OwnPorts {
    whep_http: 8889,
    ice_tcp: 8190,
};

/// The design note's fleet frpc.ini, and the same in today's TOML.
const FLEET_INI: &str = "[common]
server_addr = 65.109.32.111
server_port = 7000
token = fleet-secret
log_file = /var/log/frpc.log

[ssh]
type = tcp
local_ip = 127.0.0.1
local_port = 22
remote_port = 10022

[mediamtx]
type = tcp
local_ip = 127.0.0.1
local_port = 8889
remote_port = 18889

[webrtc-udp]
type = udp
local_port = 8189
remote_port = 18189

[web]
type = http
local_port = 80
custom_domains = a.example
";

const FLEET_TOML: &str = r#"serverAddr = "65.109.32.111"
serverPort = 7000
auth.method = "token"
auth.token = "fleet-secret"
log.to = "/var/log/frpc.log"

[[proxies]]
name = "ssh"
type = "tcp"
localIP = "127.0.0.1"
localPort = 22
remotePort = 10022

[[proxies]]
name = "mediamtx"
type = "tcp"
localPort = 8889
remotePort = 18889

[[proxies]]
name = "webrtc-udp"
type = "udp"
localPort = 8189
remotePort = 18189

[[proxies]]
name = "web"
type = "http"
localPort = 80
customDomains = ["a.example"]
"#;

fn from_file(name: &str, text: &str) -> (Settings, Vec<String>) {
    // Unique per call: tests run in parallel and read the same names.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("r58-frpc-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
    let sec = Section {
        frpc_config: Some(name.into()),
        ..Section::default()
    };
    let r = resolve(&sec, &OWN, &dir).unwrap().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    r
}

#[test]
fn ini_and_toml_give_the_same_model() {
    let (ini, ini_w) = from_file("frpc.ini", FLEET_INI);
    let (toml, toml_w) = from_file("frpc.toml", FLEET_TOML);
    assert_eq!(ini, toml);
    assert_eq!(ini.server_addr, "65.109.32.111");
    assert_eq!(ini.token.expose(), "fleet-secret");
    assert!(ini.tls.enable && ini.tcp_mux, "frpc's defaults");
    let names: Vec<_> = ini.proxies.iter().map(|p| p.name.as_str()).collect();
    // WHEP is already forwarded by "mediamtx"; ICE-TCP is added.
    assert_eq!(names, ["ssh", "mediamtx", "webrtc-udp", "r58-ice-tcp"]);
    assert_eq!(ini.public_port(ProxyType::Tcp, 8190), Some(18190));
    assert_eq!(ini.public_port(ProxyType::Udp, 8189), Some(18189));
    assert_eq!(ini.public_port(ProxyType::Tcp, 8189), None);
    assert_eq!(ini.proxies[2].kind, ProxyType::Udp);
    // The WebRTC layer advertises the VPS with both forwarded media ports.
    let mut w = crate::config::webrtc::WebRtc::default();
    w.adopt_tunnel(&ini);
    let h = &w.additional_hosts[0];
    assert_eq!(h.host, "65.109.32.111");
    assert_eq!((h.udp_port, h.tcp_port), (Some(18189), Some(18190)));
    assert!(w.forwarders[0].contains(crate::tunnel::TUNNEL_SOURCE.into()));
    for w in [&ini_w, &toml_w] {
        assert!(
            w.iter()
                .any(|w| w.contains("type \"http\" is not supported")),
            "{w:?}"
        );
        assert!(
            w.iter().any(|w| w.contains("ignored") && w.contains("log")),
            "{w:?}"
        );
    }
    assert!(
        ini_w.iter().any(|w| w.contains("web.custom_domains")),
        "{ini_w:?}"
    );
}

#[test]
fn recorded_stock_configs_parse() {
    for name in [
        "legacy-ini",
        "mux-login-proxy-workconn",
        "encrypted-compressed-proxy",
    ] {
        let v = crate::tunnel::vectors::load(name);
        let (s, w) = frpc::parse(v["frpc_config"].as_str().unwrap(), name).unwrap();
        assert_eq!(s.server_port, 17001, "{name}");
        assert_eq!(s.token.expose(), "r58-test-token");
        assert!(!s.tls.enable, "{name}");
        assert_eq!(s.proxies[0].remote_port, 16000);
        let enc = name.starts_with("encrypted");
        assert_eq!(
            (s.proxies[0].use_encryption, s.proxies[0].use_compression),
            (enc, enc)
        );
        // The admin web server of the capture setup is not ours: named.
        assert!(
            w.iter()
                .any(|w| w.contains("admin") || w.contains("webServer")),
            "{w:?}"
        );
    }
}

#[test]
fn inline_keys_override_and_auto_proxies_can_be_off() {
    let sec = Section {
        server_addr: Some("vps.example".into()),
        token: Some(Secret::new("t")),
        tls_cert_sha256: Some("AB:".repeat(31) + "AB"),
        auto_proxies: Some(false),
        ..Section::default()
    };
    let (s, _) = resolve(&sec, &OWN, Path::new("/")).unwrap().unwrap();
    assert_eq!(s.tls.cert_sha256, Some([0xab; 32]));
    assert!(s.proxies.is_empty());
    let off = Section {
        enabled: Some(false),
        ..Section::default()
    };
    assert!(resolve(&off, &OWN, Path::new("/")).unwrap().is_none());
}

#[test]
fn bad_settings_are_explained() {
    let e = resolve(&Section::default(), &OWN, Path::new("/")).unwrap_err();
    assert!(e.contains("server_addr"), "{e}");
    let sec = Section {
        frpc_config: Some("/nonexistent/frpc.ini".into()),
        ..Section::default()
    };
    let e = resolve(&sec, &OWN, Path::new("/")).unwrap_err();
    assert!(e.contains("/nonexistent/frpc.ini"), "{e}");
    let e = frpc::parse("serverAddr = \"x\"\nserverPort = \"abc\"\n", "f").unwrap_err();
    assert!(e.contains("serverPort"), "{e}");
    let e = frpc::parse("serverAddr = \"x\"\ntransport.protocol = \"kcp\"\n", "f").unwrap_err();
    assert!(e.contains("kcp"), "{e}");
    let sec = Section {
        server_addr: Some("x".into()),
        tls_cert_sha256: Some("abc".into()),
        ..Section::default()
    };
    assert!(
        resolve(&sec, &OWN, Path::new("/"))
            .unwrap_err()
            .contains("64 hex")
    );
}

#[test]
fn the_token_never_prints() {
    let (s, w) = from_file("frpc.ini", FLEET_INI);
    let shown = format!("{s:?} {w:?}");
    assert!(!shown.contains("fleet-secret"), "{shown}");
}

#[test]
fn the_wire_protocol_is_auto_unless_a_file_or_key_says_otherwise() {
    let (s, _) = from_file("frpc.toml", FLEET_TOML);
    assert_eq!(s.wire, WireChoice::Auto, "r58's default, not frpc's v1");
    let v2 = format!("transport.wireProtocol = \"v2\"\n{FLEET_TOML}");
    assert_eq!(from_file("frpc.toml", &v2).0.wire, WireChoice::V2);
    let ini = FLEET_INI.replace("log_file", "wire_protocol = v1\nlog_file");
    assert_eq!(from_file("frpc.ini", &ini).0.wire, WireChoice::V1);
    let bad = format!("transport.wireProtocol = \"v3\"\n{FLEET_TOML}");
    let e = crate::config::frpc::parse(&bad, "frpc.toml").unwrap_err();
    assert!(
        e.contains("\"v3\"") && e.contains("\"auto\", \"v1\" or \"v2\""),
        "{e}"
    );
    let inline: Section = toml::from_str("server_addr = \"vps\"\nwire_protocol = \"v1\"").unwrap();
    let (s, _) = resolve(&inline, &OWN, Path::new("/")).unwrap().unwrap();
    assert_eq!(s.wire, WireChoice::V1);
}
