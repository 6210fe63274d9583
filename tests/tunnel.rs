//! The built-in FRP client, end to end: the real r58 binary against a small
//! frps-compatible server (`tunnel/frps.rs`) on loopback, with a local TCP
//! service behind the proxies and users connecting to the public ports.

// First: its `each_wire!` is used by the modules below.
#[macro_use]
#[path = "tunnel/wires.rs"]
mod wires;
#[path = "tunnel/faults.rs"]
mod faults;
#[path = "tunnel/frps.rs"]
mod frps;
mod support;
#[path = "tunnel/cores.rs"]
mod tunnel;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use frps::{Frps, Opts};
use support::{Daemon, Setup, free_port};
use wires::{wire, with_wire};

const TOKEN: &str = "tunnel-test-token-5f2c";

/// A local service: echoes every byte back.
fn echo_server() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = c;
                let mut b = [0u8; 16384];
                while let Ok(n) = c.read(&mut b) {
                    if n == 0 || c.write_all(&b[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// A local UDP service: echoes each datagram to its sender and records
/// where datagrams came from.
fn udp_echo_server() -> (
    u16,
    std::sync::Arc<std::sync::Mutex<Vec<std::net::SocketAddr>>>,
) {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    let from = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = from.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 65536];
        while let Ok((n, peer)) = s.recv_from(&mut b) {
            seen.lock().unwrap().push(peer);
            let _ = s.send_to(&b[..n], peer);
        }
    });
    (port, from)
}

fn daemon(tunnel_toml: &str) -> Daemon {
    Daemon::start_with(setup(tunnel_toml))
}

/// A small test-pattern path plus the given `[tunnel]` section.
fn setup(tunnel_toml: &str) -> Setup {
    Setup {
        paths: format!("[paths.cam0]\nsource = \"test\"\nwidth = 320\nheight = 180\n{tunnel_toml}"),
        ..Setup::default()
    }
}

fn tunnel_section(
    d_dir: &str,
    frps: u16,
    extra: &str,
    proxies: &[(&str, &str, u16, &str)],
) -> String {
    let mut s = format!(
        "[tunnel]\nserver_addr = \"127.0.0.1\"\nserver_port = {frps}\ntoken = \"{TOKEN}\"\n\
         run_id_file = \"{d_dir}/run-id\"\nauto_proxies = false\n{extra}\n"
    );
    if wire() == "v1" {
        s += "wire_protocol = \"v1\"\n";
    }
    for (name, local, remote, more) in proxies {
        s += &format!(
            "[[tunnel.proxies]]\nname = \"{name}\"\nlocal_port = {local}\nremote_port = {remote}\n{more}\n"
        );
    }
    s
}

fn wait_for(what: &str, within: Duration, f: impl FnMut() -> bool) -> Duration {
    poll(within, f).unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// How long until `f` held, polled every 50 ms; `None` past `within`.
fn poll(within: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while !f() {
        if t0.elapsed() >= within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(t0.elapsed())
}

/// `size` bytes through the public port and back, compared.
fn echo_through(port: u16, size: usize) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let w = {
        let mut c = c.try_clone().unwrap();
        let data = data.clone();
        std::thread::spawn(move || c.write_all(&data).unwrap())
    };
    let mut got = vec![0u8; size];
    c.read_exact(&mut got).unwrap();
    w.join().unwrap();
    assert!(got == data, "echoed bytes differ");
}

fn running(d: &Daemon, name: &str) {
    wait_for(
        &format!("proxy {name} to run"),
        Duration::from_secs(10),
        || proxy_state(d, name)["state"] == "running",
    );
    let t = d.api_json("/v3/tunnel");
    if !wire().is_empty() {
        assert_eq!(t["wire"], wire(), "{t}");
    }
    if wire() == "v2" {
        assert!(
            t["aead"]
                .as_str()
                .is_some_and(|a| a.ends_with("poly1305") || a.starts_with("aes")),
            "{t}"
        );
    }
}

fn scratch() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("r58-tunnel-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn plain_frps(mux: bool) -> Frps {
    Frps::start(Opts {
        mux,
        ..Opts::new(TOKEN)
    })
}

fn proxy_state(d: &Daemon, name: &str) -> serde_json::Value {
    let t = d.api_json("/v3/tunnel");
    t["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no proxy {name} in {t}"))
}

struct Certs {
    ca: String,
    chain: String,
    key: String,
    sha256: String,
}

/// A CA and a leaf for 127.0.0.1, made by the openssl CLI.
fn certs(dir: &std::path::Path) -> Certs {
    let run = |args: &str| {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("cd {} && openssl {args}", dir.display()))
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "openssl {args}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        String::from_utf8_lossy(&ok.stdout).into_owned()
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    run(&format!(
        "req -x509 {ec} -keyout ca.key -out ca.pem -subj /CN=r58-test-ca -days 2"
    ));
    run(&format!(
        "req {ec} -keyout leaf.key -out leaf.csr -subj /CN=frps.test"
    ));
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(
        "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile ext",
    );
    let fp = run("x509 -in leaf.pem -noout -fingerprint -sha256");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    Certs {
        ca: dir.join("ca.pem").display().to_string(),
        chain: read("leaf.pem") + &read("ca.pem"),
        key: read("leaf.key"),
        sha256: fp.trim().rsplit('=').next().unwrap().to_string(),
    }
}

/// TLS (pinned), yamux, a proxy carrying 2 MB both ways, Ping on the
/// control channel, CloseProxy on shutdown, and no token anywhere visible.
fn tls_mux_proxy_carries_data_both_ways() {
    let dir = scratch();
    let c = certs(&dir);
    let frps = Frps::start(Opts {
        tls: Some((c.chain.clone(), c.key.clone())),
        ..Opts::new(TOKEN)
    });
    let (echo, remote) = (echo_server(), free_port());
    let mut d = daemon(&tunnel_section(
        &dir.display().to_string(),
        frps.port,
        &format!("tls_cert_sha256 = \"{}\"", c.sha256),
        &[("echo", &echo.to_string(), remote, "")],
    ));
    running(&d, "echo");
    echo_through(remote, 2 * 1024 * 1024);
    echo_through(remote, 10);
    let t = d.api_json("/v3/tunnel");
    assert_eq!(t["connected"], true, "{t}");
    assert_eq!(t["tls"], "pinned");
    wait_for("a Ping", Duration::from_secs(8), || {
        frps.seen.lock().unwrap().pings >= 2
    });
    assert!(d.api_json("/v3/tunnel")["rttMs"].as_f64().is_some());
    assert_eq!(frps.seen.lock().unwrap().tls, [true]);
    let log = d.log();
    let _ = d.stop();
    wait_for("CloseProxy", Duration::from_secs(2), || {
        frps.seen.lock().unwrap().closed_proxies == ["echo"]
    });
    assert!(log.contains("proxy 'echo'"), "{log}");
    assert!(!log.contains(TOKEN), "token in the log");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CA file verifies the chain and the address; a wrong pin is refused
/// with both fingerprints' meaning spelled out.
fn tls_verification_by_ca_and_refusal_by_pin() {
    let dir = scratch();
    let c = certs(&dir);
    let frps = Frps::start(Opts {
        tls: Some((c.chain.clone(), c.key.clone())),
        ..Opts::new(TOKEN)
    });
    let (echo, remote) = (echo_server(), free_port());
    let d = daemon(&tunnel_section(
        &dir.display().to_string(),
        frps.port,
        &format!("tls_trusted_ca_file = \"{}\"\ntls_first_byte = true", c.ca),
        &[("echo", &echo.to_string(), remote, "")],
    ));
    running(&d, "echo");
    assert_eq!(d.api_json("/v3/tunnel")["tls"], "ca");
    echo_through(remote, 1000);
    drop(d);
    let d = daemon(&tunnel_section(
        &dir.display().to_string(),
        frps.port,
        &format!("tls_cert_sha256 = \"{}\"", "00".repeat(32)),
        &[("echo", &echo.to_string(), free_port(), "")],
    ));
    wait_for("the pin refusal", Duration::from_secs(10), || {
        d.api_json("/v3/tunnel")["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("does not match tls_cert_sha256"))
    });
    assert_eq!(d.api_json("/v3/tunnel")["connected"], false);
    let _ = std::fs::remove_dir_all(&dir);
}

/// WHEP through the tunnel: the offer reaches r58 via frps, and the answer
/// advertises the VPS address with the public ICE-TCP port, so a remote
/// browser can connect with no extra configuration.
fn whep_through_the_tunnel_advertises_the_public_ice_tcp_port() {
    let dir = scratch();
    let frps = plain_frps(true);
    let (whep_remote, ice_remote) = (free_port(), free_port());
    let d = daemon(&tunnel_section(
        &dir.display().to_string(),
        frps.port,
        "tls = false",
        &[
            ("whep", "{HTTP_PORT}", whep_remote, ""),
            ("ice", "{ICE_TCP_PORT}", ice_remote, ""),
        ],
    ));
    running(&d, "whep");
    running(&d, "ice");
    let t = d.api_json("/v3/tunnel");
    assert_eq!(
        t["proxies"].as_array().unwrap().len(),
        2,
        "nothing auto-added: {t}"
    );
    let (whep, ice) = (whep_remote, ice_remote);
    // The WHEP port listens before the test pattern's first frame (slow under qemu).
    d.wait_state("cam0", "streaming", Duration::from_secs(30));
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_rtc, _pending, sdp) = support::whep_client::offer(&sock);
    let r = support::request(
        whep,
        "POST",
        "/cam0/whep",
        &[("Content-Type", "application/sdp")],
        sdp.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let answer = r.text();
    let want = format!("127.0.0.1 {ice} typ host tcptype passive");
    assert!(answer.contains(&want), "no '{want}' in:\n{answer}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without mux every channel is its own connection; the proxy encrypts
/// and compresses (the server undoes both, so the echo proves them).
fn encrypted_compressed_proxy_without_mux() {
    let dir = scratch();
    let frps = plain_frps(false);
    let (echo, remote) = (echo_server(), free_port());
    let d = daemon(&tunnel_section(
        &dir.display().to_string(),
        frps.port,
        "tls = false\ntcp_mux = false",
        &[(
            "echo",
            &echo.to_string(),
            remote,
            "use_encryption = true\nuse_compression = true",
        )],
    ));
    running(&d, "echo");
    echo_through(remote, 300_000);
    for _ in 0..3 {
        echo_through(remote, 1000);
    }
    assert!(!frps.seen.lock().unwrap().tls[0], "plain TCP");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A wrong token and a refused port are reported with frps's own words;
/// the other proxy keeps working; the token never shows.
fn wrong_token_and_refused_port_are_clear_errors() {
    let dir = scratch();
    let good = free_port();
    let frps = Frps::start(Opts {
        allow_ports: Some((good, good)),
        ..Opts::new("the-other-token")
    });
    let echo = echo_server();
    let sec = tunnel_section(
        &dir.display().to_string(),
        frps.port,
        "tls = false",
        &[
            ("good", &echo.to_string(), good, ""),
            ("bad", &echo.to_string(), good.wrapping_add(1).max(1024), ""),
        ],
    );
    let d = daemon(&sec);
    wait_for("the login error", Duration::from_secs(10), || {
        d.api_json("/v3/tunnel")["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("token in login doesn't match"))
    });
    let status = support::r58_command()
        .args(["status", "--config"])
        .arg(d.dir.join("r58.toml"))
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&status.stdout);
    assert!(
        screen.contains("tunnel") && screen.contains("token in login"),
        "{screen}"
    );
    assert!(screen.lines().all(|l| l.chars().count() <= 80), "{screen}");
    assert!(!screen.contains(TOKEN) && !d.log().contains(TOKEN));
    drop(d);

    let frps = Frps::start(Opts {
        allow_ports: Some((good, good)),
        ..Opts::new(TOKEN)
    });
    let sec = tunnel_section(
        &dir.display().to_string(),
        frps.port,
        "tls = false",
        &[
            ("good", &echo.to_string(), good, ""),
            ("bad", &echo.to_string(), good.wrapping_add(1).max(1024), ""),
        ],
    );
    let d = daemon(&sec);
    wait_for("the refusal", Duration::from_secs(10), || {
        proxy_state(&d, "bad")["error"] == "port not allowed"
    });
    assert_eq!(proxy_state(&d, "bad")["state"], "rejected");
    wait_for("the good proxy", Duration::from_secs(5), || {
        proxy_state(&d, "good")["state"] == "running"
    });
    echo_through(good, 1000);
    // The doctor names the refused proxy and frps's reason.
    let doctor = support::r58_command()
        .args(["doctor", "--ascii", "--config"])
        .arg(d.dir.join("r58.toml"))
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        screen.contains("ok tunnel  logged in to 127.0.0.1:"),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("ok proxy   registered: good :{good}")),
        "{screen}"
    );
    assert!(screen.contains("XX proxy   bad (remote port"), "{screen}");
    assert!(screen.contains("port not allowed"), "{screen}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// frps goes away and comes back on the same port: r58 notices, reconnects
/// with the same run id (so frps replaces the old session) and the proxy
/// works again.
fn reconnects_with_the_same_run_id_after_frps_restarts() {
    let dir = scratch();
    let opts = Opts::new(TOKEN);
    let frps = Frps::start(opts.clone());
    let port = frps.port;
    let (echo, remote) = (echo_server(), free_port());
    let d = daemon(&tunnel_section(
        &dir.display().to_string(),
        port,
        "tls = false",
        &[("echo", &echo.to_string(), remote, "")],
    ));
    running(&d, "echo");
    let first_run_id = std::fs::read_to_string(dir.join("run-id")).unwrap();
    assert_eq!(first_run_id.len(), 16);
    drop(frps);
    wait_for("the disconnect", Duration::from_secs(10), || {
        d.api_json("/v3/tunnel")["connected"] == false
    });
    let frps = Frps::start_on(opts, port);
    let took = wait_for("the proxy again", Duration::from_secs(15), || {
        proxy_state(&d, "echo")["state"] == "running"
    });
    echo_through(remote, 5000);
    assert_eq!(frps.seen.lock().unwrap().logins[0], first_run_id);
    let t = d.api_json("/v3/tunnel");
    assert_eq!(t["reconnects"], 1, "{t}");
    eprintln!("reconnected {took:?} after frps came back");
    let _ = std::fs::remove_dir_all(&dir);
}

/// frps with `auth.additionalScopes`: r58, configured by an unchanged
/// frpc.toml that asks for both scopes, signs every Ping and NewWorkConn.
fn pings_and_work_conns_are_signed_when_frpc_toml_asks() {
    let dir = scratch();
    let frps = Frps::start(Opts {
        scopes: true,
        ..Opts::new(TOKEN)
    });
    let (echo, remote) = (echo_server(), free_port());
    let frpc = format!(
        "serverAddr = \"127.0.0.1\"\nserverPort = {}\nauth.token = \"{TOKEN}\"\n\
         auth.additionalScopes = [\"HeartBeats\", \"NewWorkConns\"]\n\
         transport.tls.enable = false\ntransport.heartbeatInterval = 1\n\
         transport.wireProtocol = \"{}\"\n\n\
         [[proxies]]\nname = \"echo\"\ntype = \"tcp\"\nlocalPort = {echo}\nremotePort = {remote}\n",
        frps.port,
        if wire() == "v1" { "v1" } else { "auto" }
    );
    std::fs::write(dir.join("frpc.toml"), frpc).unwrap();
    let d = daemon(&format!(
        "[tunnel]\nfrpc_config = \"{0}/frpc.toml\"\nrun_id_file = \"{0}/run-id\"\nauto_proxies = false\n",
        dir.display()
    ));
    running(&d, "echo");
    echo_through(remote, 10_000);
    wait_for("two signed Pings", Duration::from_secs(10), || {
        frps.seen.lock().unwrap().pings >= 2
    });
    let seen = frps.seen.lock().unwrap();
    assert_eq!(seen.unsigned, 0);
    assert!(seen.signed >= 3, "signed: {}", seen.signed);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A udp proxy (the fleet forwards WebRTC's UDP port this way): two public
/// users' datagrams reach the local service from two distinct tunnel
/// sockets, and each user gets only its own answers, encrypted and
/// compressed on the work connection.
fn udp_proxy_keeps_public_peers_apart() {
    let dir = scratch();
    let frps = plain_frps(true);
    let ((echo, sources), remote) = (udp_echo_server(), free_port());
    let d = daemon(&tunnel_section(
        &dir.display().to_string(),
        frps.port,
        "tls = false",
        &[(
            "media-udp",
            &echo.to_string(),
            remote,
            "type = \"udp\"\nuse_encryption = true\nuse_compression = true",
        )],
    ));
    running(&d, "media-udp");
    assert_eq!(proxy_state(&d, "media-udp")["type"], "udp");
    let users: Vec<_> = (0..2)
        .map(|_| {
            let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            u.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            u.connect(("127.0.0.1", remote)).unwrap();
            u
        })
        .collect();
    let mut b = [0u8; 2048];
    // The first datagram may race frps taking its work connection: retry.
    wait_for(
        "a first datagram through the tunnel",
        Duration::from_secs(10),
        || {
            users[0].send(b"hello").unwrap();
            users[0].recv(&mut b).is_ok_and(|n| &b[..n] == b"hello")
        },
    );
    while users[0].recv(&mut b).is_ok() {}
    for i in 0..50 {
        for (u, user) in users.iter().enumerate() {
            let msg = format!("user {u} datagram {i} ").repeat(1 + i * 2);
            user.send(msg.as_bytes()).unwrap();
            let n = user.recv(&mut b).expect("an echo within 200 ms");
            assert_eq!(&b[..n], msg.as_bytes());
        }
    }
    let sources = sources.lock().unwrap().clone();
    let distinct: std::collections::HashSet<_> = sources.iter().collect();
    assert_eq!(
        distinct.len(),
        2,
        "one local socket per public user: {distinct:?}"
    );
    assert!(sources.iter().all(|s| s.ip().to_string() == "127.0.0.58"));
    assert_eq!(frps.seen.lock().unwrap().udp_work_conns.len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

each_wire!(
    tls_mux_proxy_carries_data_both_ways,
    tls_verification_by_ca_and_refusal_by_pin,
    whep_through_the_tunnel_advertises_the_public_ice_tcp_port,
    encrypted_compressed_proxy_without_mux,
    wrong_token_and_refused_port_are_clear_errors,
    reconnects_with_the_same_run_id_after_frps_restarts,
    pings_and_work_conns_are_signed_when_frpc_toml_asks,
    udp_proxy_keeps_public_peers_apart,
);
