//! Shared by the integration tests and benches: run the real `r58` binary on
//! loopback with its own config and ports, talk plain HTTP/1.1 to it, and
//! stop it (by PID) when dropped.
#![allow(dead_code)]

pub mod adapt;
pub mod browser;
pub mod netns;
pub mod whep_client;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub child: Child,
    pub http: u16,
    pub api: u16,
    pub udp: u16,
    pub tcp: u16,
    pub dir: PathBuf,
    /// The network namespace the daemon runs in, if not the test's own.
    pub netns: Option<String>,
}

/// How to run one daemon: its `[paths.*]`, extra `[webrtc]` lines, extra
/// environment, and optionally a network namespace (then HTTP listens on
/// every address so other namespaces can reach it).
#[derive(Default, Clone)]
pub struct Setup {
    pub paths: String,
    pub webrtc: String,
    /// Extra `[api]` lines (a token).
    pub api: String,
    pub env: Vec<(String, String)>,
    pub netns: Option<String>,
    /// Run without the ICE-TCP listener (`tcp_port = 0`).
    pub no_ice_tcp: bool,
    /// This HTTP port instead of a free one (a restart on the same URL).
    pub http_port: Option<u16>,
}

/// A TCP and a UDP port that are both free right now, and not handed out
/// before in this test process (one daemon's HTTP, API and media ports must
/// differ). They come from below the kernel's ephemeral range: a port from
/// `bind(:0)` is one that any outbound connection (r58's own tunnel to frps,
/// say) may take as its source port before the daemon binds it, which made
/// "Address already in use" a rare CI failure.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (base, span) = (10_000u32, low.saturating_sub(10_000).max(1000));
    // Test binaries may run side by side (native and qemu): start apart.
    let start = std::process::id().wrapping_mul(7919) % span;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < span, "no free test port below {low}");
        let p = (base + (start + n) % span) as u16;
        if TcpListener::bind(("0.0.0.0", p)).is_ok() && UdpSocket::bind(("0.0.0.0", p)).is_ok() {
            return p;
        }
    }
}

/// A process's resident memory (VmRSS) in MiB; 0 when it is gone.
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The `p`th percentile (nearest rank) of sorted, non-empty samples.
pub fn percentile(sorted: &[u64], p: usize) -> u64 {
    sorted[(sorted.len() * p)
        .div_ceil(100)
        .saturating_sub(1)
        .min(sorted.len() - 1)]
}

/// The binary under test: this build's, or `R58_TEST_BIN` (the aarch64
/// one for `make cross-test`, run through `R58_TEST_RUNNER`, e.g. qemu).
pub fn bin() -> PathBuf {
    std::env::var_os("R58_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_r58")))
}

/// r58 runs emulated (`make cross-test`): its speed is the emulator's.
pub fn emulated() -> bool {
    std::env::var_os("R58_TEST_RUNNER").is_some()
}

/// A command that runs r58, through the runner when one is set.
pub fn r58_command() -> Command {
    match std::env::var_os("R58_TEST_RUNNER") {
        Some(r) => {
            let mut c = Command::new(r);
            c.arg(bin());
            c
        }
        None => Command::new(bin()),
    }
}

impl Daemon {
    /// Start r58 with `paths_toml` (the `[paths.*]` part of a config).
    pub fn start(paths_toml: &str) -> Daemon {
        Daemon::start_env(paths_toml, &[])
    }

    /// Like `start`, with extra environment for the daemon.
    pub fn start_env(paths_toml: &str, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with(Setup {
            paths: paths_toml.into(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Setup::default()
        })
    }

    /// Like `start`, on a given HTTP port.
    pub fn start_on(paths_toml: &str, http: u16) -> Daemon {
        Daemon::start_with(Setup {
            paths: paths_toml.into(),
            http_port: Some(http),
            ..Setup::default()
        })
    }

    pub fn start_with(setup: Setup) -> Daemon {
        let http = setup.http_port.unwrap_or_else(free_port);
        let (api, udp) = (free_port(), free_port());
        let tcp = if setup.no_ice_tcp { 0 } else { free_port() };
        let dir = std::env::temp_dir().join(format!("r58-test-{}-{http}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let http_host = if setup.netns.is_some() {
            "0.0.0.0"
        } else {
            "127.0.0.1"
        };
        let cfg = format!(
            "[http]\nlisten = \"{http_host}:{http}\"\nallow_origins = [\"http://localhost:*\", \"https://*.example.no\"]\n\
             [api]\nlisten = \"127.0.0.1:{api}\"\n{}\n\
             [webrtc]\nudp_port = {udp}\ntcp_port = {tcp}\n{}\n\
             {}",
            setup.api,
            if setup.webrtc.is_empty() {
                "ice_servers = [{ urls = \"stun:stun.example.net:3478\" }]"
            } else {
                &setup.webrtc
            },
            // Extra sections may name the daemon's own ports.
            setup
                .paths
                .replace("{HTTP_PORT}", &http.to_string())
                .replace("{ICE_TCP_PORT}", &tcp.to_string())
        );
        let file = dir.join("r58.toml");
        std::fs::write(&file, cfg).unwrap();
        let log = std::fs::File::create(dir.join("r58.log")).unwrap();
        // `ip netns exec` execs r58 in place, so the child PID is r58's.
        let mut cmd = match &setup.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin());
                c
            }
            None => r58_command(),
        };
        let child = cmd
            .args(["run", "--config"])
            .arg(&file)
            .env("RUST_LOG", "info")
            .envs(setup.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting r58");
        let d = Daemon {
            child,
            http,
            api,
            udp,
            tcp,
            dir,
            netns: setup.netns,
        };
        d.wait_api();
        d
    }

    /// A request to the API port, from inside the daemon's namespace.
    pub fn api_request(&self, method: &str, path: &str) -> std::io::Result<HttpResponse> {
        let (api, method, path) = (self.api, method.to_string(), path.to_string());
        match &self.netns {
            Some(ns) => netns::run_in(ns, move || request(api, &method, &path, &[], b"")),
            None => request(api, &method, &path, &[], b""),
        }
    }

    pub fn api_json(&self, path: &str) -> serde_json::Value {
        let r = self.api_request("GET", path).unwrap();
        serde_json::from_slice(&r.body).unwrap()
    }

    /// The API comes up first, the WHEP port once media has started: wait
    /// for both, so tests may POST offers at once.
    fn wait_api(&self) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Ok(r) = self.api_request("GET", "/v3/paths/list")
                && r.status == 200
                && self.whep_listening()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("r58 API or WHEP port did not come up; log:\n{}", self.log());
    }

    fn whep_listening(&self) -> bool {
        let port = self.http;
        let probe = move || TcpStream::connect(("127.0.0.1", port)).is_ok();
        match &self.netns {
            Some(ns) => netns::run_in(ns, probe),
            None => probe(),
        }
    }

    /// Wait until `path` reports `state` in the API.
    pub fn wait_state(&self, path: &str, state: &str, within: Duration) {
        let t0 = Instant::now();
        let mut last = String::new();
        while t0.elapsed() < within {
            let v = self.api_json(&format!("/v3/paths/get/{path}"));
            last = v["r58"]["state"].as_str().unwrap_or("").to_string();
            if last == state {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{path} stayed '{last}', wanted '{state}'; log:\n{}",
            self.log()
        );
    }

    pub fn path_info(&self, path: &str) -> serde_json::Value {
        self.api_json(&format!("/v3/paths/get/{path}"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("r58.log")).unwrap_or_default()
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// SIGKILL: the process vanishes without a goodbye (a crash, a power
    /// cut, a cable pulled), and the scratch directory goes.
    pub fn kill(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Stop it (`terminate`) and remove the scratch directory.
    /// SIGTERM; the exit status when it ended by itself (see `terminate`).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let ended = terminate(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
        ended
    }
}

/// SIGTERM by PID, so a process shuts down as in production; SIGKILL if it
/// is still there after 5 s (half of systemd's `TimeoutStopSec=10s`).
/// Returns the exit status if it ended by itself.
pub fn terminate(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection to 127.0.0.1:port.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    exchange(
        TcpStream::connect(("127.0.0.1", port))?,
        port,
        method,
        path,
        headers,
        body,
    )
}

/// Like `request`, from a chosen loopback source address (127.0.0.2, …),
/// so a test can be a different client than the one flooding the port.
pub fn request_from(
    src: std::net::Ipv4Addr,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stream = rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4()?;
        s.bind((src, 0).into())?;
        let connect = s.connect(([127, 0, 0, 1], port).into());
        tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| std::io::Error::other("connect timed out"))??
            .into_std()
    })?;
    stream.set_nonblocking(false)?;
    exchange(stream, port, method, path, headers, body)
}

fn exchange(
    mut s: TcpStream,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PATCH" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    // A server may answer (413) before reading a huge body; ignore the reset.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// The pion load generator: `../shared/tools/whepbench`, or `WHEPBENCH`;
/// None when it is not on this machine.
pub fn whepbench() -> Option<PathBuf> {
    let p = std::env::var_os("WHEPBENCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/whepbench")
        });
    p.exists().then_some(p)
}

/// `n` video-only whepbench sessions on `url`, joining `interval_ms`
/// apart, each reading for `secs`; inside `netns` when given.
pub fn whepbench_command(
    bench: &std::path::Path,
    netns: Option<&str>,
    n: usize,
    secs: u64,
    interval_ms: u32,
    url: &str,
) -> Command {
    let mut c = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bench);
            c
        }
        None => Command::new(bench),
    };
    c.args(["-n", &n.to_string(), "-d", &format!("{secs}s")])
        .args(["-interval", &interval_ms.to_string()])
        .args(["-audio=false", "-url", url]);
    c
}
