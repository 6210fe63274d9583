//! Multi-host tests on one machine: network namespaces joined by veth
//! pairs. The layout follows the remote path of the fleet:
//!
//! ```text
//! guest (Chromium) 10.213.1.2 ── 10.213.1.1 vps (forwarder, coturn) 10.213.2.1 ── 10.213.2.2 device (r58)
//! ```
//!
//! There is no routing between guest and device: everything goes through
//! what runs in `vps`, as with FRP. Every namespace and process made here is
//! removed on drop, processes by PID.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Daemon, Setup};

pub const GUEST_IP: &str = "10.213.1.2";
pub const VPS_GUEST_SIDE: &str = "10.213.1.1";
pub const VPS_DEVICE_SIDE: &str = "10.213.2.1";
pub const DEVICE_IP: &str = "10.213.2.2";

pub const HTTP_PUBLIC: u16 = 18889;
pub const ICE_TCP_PUBLIC: u16 = 18190;

/// The FRP path with nothing but TCP: device + forwarder for HTTP and
/// ICE-TCP; the guest drops all UDP.
pub fn tcp_only_world(tag: &str, ice_tcp: bool) -> (Topo, Daemon) {
    let mut t = Topo::up(tag);
    t.block_udp(&t.guest.clone());
    // UDP is advertised too (nothing forwards it), so the guest tries it first.
    let webrtc = format!(
        "additional_hosts = [{{ host = \"{VPS_GUEST_SIDE}\", udp_port = 18189, tcp_port = {ICE_TCP_PUBLIC} }}]\n\
         forwarders = [\"{VPS_DEVICE_SIDE}\"]\n"
    );
    let d = Daemon::start_with(Setup {
        paths: "[paths.cam0]\nsource = \"test\"\nencoder = \"x264enc\"\n".into(),
        webrtc,
        netns: Some(t.device.clone()),
        no_ice_tcp: !ice_tcp,
        ..Setup::default()
    });
    d.wait_state("cam0", "streaming", Duration::from_secs(20));
    t.forward_tcp(HTTP_PUBLIC, d.http);
    t.forward_tcp(ICE_TCP_PUBLIC, if ice_tcp { d.tcp } else { 9 });
    (t, d)
}

pub fn view_from_guest(t: &Topo, d: &Daemon, secs: u32, query: &str) -> serde_json::Value {
    let base = format!("http://{VPS_GUEST_SIDE}:{HTTP_PUBLIC}");
    let v = super::browser::view(
        &base,
        "cam0",
        1,
        secs,
        &[("VIEW_QUERY", query)],
        Some(&t.guest),
    )
    .unwrap_or_else(|e| panic!("{e}\nr58 log:\n{}", d.log()));
    v["viewers"][0].clone()
}

pub struct Topo {
    pub guest: String,
    pub vps: String,
    pub device: String,
    children: Vec<Child>,
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "{}: {e} (is iproute2/nftables installed? run `make test`)",
            args[0]
        ),
    }
}

impl Topo {
    /// Create the three namespaces; names carry the test's PID and `tag` so
    /// tests running in parallel never meet.
    pub fn up(tag: &str) -> Topo {
        let p = format!("r58-{}-{tag}", std::process::id());
        let t = Topo {
            guest: format!("{p}-guest"),
            vps: format!("{p}-vps"),
            device: format!("{p}-dev"),
            children: vec![],
        };
        for ns in [&t.guest, &t.vps, &t.device] {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
            ]);
        }
        t.link(&t.guest, "g0", GUEST_IP, &t.vps, "v0", VPS_GUEST_SIDE);
        t.link(&t.vps, "v1", VPS_DEVICE_SIDE, &t.device, "d0", DEVICE_IP);
        t
    }

    fn link(&self, a: &str, an: &str, aip: &str, b: &str, bn: &str, bip: &str) {
        sh(&[
            "ip", "-n", a, "link", "add", an, "type", "veth", "peer", "name", bn, "netns", b,
        ]);
        sh(&[
            "ip",
            "-n",
            a,
            "addr",
            "add",
            &format!("{aip}/24"),
            "dev",
            an,
        ]);
        sh(&[
            "ip",
            "-n",
            b,
            "addr",
            "add",
            &format!("{bip}/24"),
            "dev",
            bn,
        ]);
        sh(&["ip", "-n", a, "link", "set", an, "up"]);
        sh(&["ip", "-n", b, "link", "set", bn, "up"]);
    }

    /// Drop every UDP packet in and out of `ns` (a guest on a TCP-only
    /// network: corporate proxies, some hotel Wi-Fi).
    pub fn block_udp(&self, ns: &str) {
        nft(
            ns,
            "table inet r58_block {\n\
             chain in { type filter hook input priority 0; policy accept; meta l4proto udp counter drop; }\n\
             chain out { type filter hook output priority 0; policy accept; meta l4proto udp counter drop; }\n}\n",
        );
    }

    /// Drop every UDP packet in and out of `ns` but those to and from
    /// `port` (a network where a TURN server is the only way out).
    pub fn block_udp_except(&self, ns: &str, port: u16) {
        nft(
            ns,
            &format!(
                "table inet r58_block {{\n\
                 chain in {{ type filter hook input priority 0; policy accept; udp sport != {port} counter drop; }}\n\
                 chain out {{ type filter hook output priority 0; policy accept; udp dport != {port} counter drop; }}\n}}\n"
            ),
        );
    }

    /// Cut `iface` in `ns`: every packet in or out vanishes (a dead uplink),
    /// or, with `reset`, TCP is answered by resets (a restarted middlebox).
    pub fn cut(&self, ns: &str, iface: &str, reset: bool) {
        let rules = if reset {
            // Resets sent by `reject` pass the output hook: leave it open.
            format!(
                "chain in {{ type filter hook input priority 0; policy accept; \
                 iifname \"{iface}\" meta l4proto tcp reject with tcp reset; iifname \"{iface}\" drop; }}"
            )
        } else {
            format!(
                "chain in {{ type filter hook input priority 0; policy accept; iifname \"{iface}\" drop; }}\n\
                 chain out {{ type filter hook output priority 0; policy accept; oifname \"{iface}\" drop; }}"
            )
        };
        nft(ns, &format!("table inet r58_cut {{\n{rules}\n}}\n"));
    }

    pub fn restore(&self, ns: &str) {
        sh(&[
            "ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "r58_cut",
        ]);
    }

    /// UDP packets dropped by `block_udp` so far in `ns`.
    pub fn udp_dropped(&self, ns: &str) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "nft",
                "list",
                "table",
                "inet",
                "r58_block",
            ])
            .output()
            .expect("nft list");
        String::from_utf8_lossy(&out.stdout)
            .split("packets ")
            .skip(1)
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    /// A TCP port forward in `vps`: `listen_ip:listen` → `DEVICE_IP:to`,
    /// what frps + frpc amount to.
    pub fn forward_tcp(&mut self, listen: u16, to: u16) {
        let l = format!("TCP-LISTEN:{listen},bind={VPS_GUEST_SIDE},fork,reuseaddr,nodelay");
        let r = format!("TCP:{DEVICE_IP}:{to},nodelay");
        let vps = self.vps.clone();
        self.spawn(&vps, &["socat", &l, &r]);
        wait_listening(&vps, listen);
    }

    /// coturn in `vps` on both its addresses (port 3478), relaying from
    /// the device side, taking TURN REST credentials minted with
    /// `secret`. Its files are in the returned directory: remove it after.
    pub fn start_coturn(&mut self, secret: &str) -> std::path::PathBuf {
        self.start_coturn_with(secret, None)
    }

    /// The same, also taking TLS on 5349 with `cert` and `key` (PEM).
    pub fn start_coturn_with(
        &mut self,
        secret: &str,
        tls: Option<(&std::path::Path, &std::path::Path)>,
    ) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("r58-turn-{}-{}", std::process::id(), self.vps));
        std::fs::create_dir_all(&dir).unwrap();
        let tls = match tls {
            Some((cert, key)) => format!(
                "tls-listening-port=5349\ncert={}\npkey={}\n",
                cert.display(),
                key.display()
            ),
            None => "no-tls\n".into(),
        };
        let conf = dir.join("turnserver.conf");
        std::fs::write(
            &conf,
            format!(
                "listening-ip={VPS_GUEST_SIDE}\nlistening-ip={VPS_DEVICE_SIDE}\nrelay-ip={VPS_DEVICE_SIDE}\n\
                 listening-port=3478\nmin-port=49160\nmax-port=49260\nuse-auth-secret\n\
                 static-auth-secret={secret}\nrealm=r58.test\nfingerprint\n{tls}no-dtls\nno-cli\n\
                 no-rfc5780\nno-stun-backward-compatibility\nresponse-origin-only-with-rfc5780\n\
                 log-file=stdout\nsimple-log\npidfile={0}/turn.pid\nuserdb={0}/turn.db\n",
                dir.display()
            ),
        )
        .unwrap();
        let vps = self.vps.clone();
        self.spawn(&vps, &["turnserver", "-c", conf.to_str().unwrap()]);
        dir
    }

    /// Start a process in `ns`; it is killed on drop.
    pub fn spawn(&mut self, ns: &str, args: &[&str]) -> u32 {
        let c = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
        let pid = c.id();
        self.children.push(c);
        pid
    }
}

/// Load nftables `rules` into `ns`.
fn nft(ns: &str, rules: &str) {
    let mut c = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("running nft");
    use std::io::Write;
    c.stdin.take().unwrap().write_all(rules.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success(), "nft rules in {ns}: {rules}");
}

/// Wait until something listens on TCP `port` in `ns`.
pub fn wait_listening(ns: &str, port: u16) {
    for _ in 0..100 {
        let up = run_in(ns, move || {
            std::net::TcpStream::connect_timeout(
                &format!("{VPS_GUEST_SIDE}:{port}").parse().unwrap(),
                Duration::from_millis(200),
            )
            .is_ok()
        });
        if up {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port} in {ns}");
}

impl Drop for Topo {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.guest, &self.vps, &self.device] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// One namespace whose loopback drops `percent` of UDP packets at random
/// (nftables; this kernel has no netem): r58, publisher and viewer all in
/// it, pages on 127.0.0.1 (a secure context), media on a dummy address.
pub struct Lossy {
    pub ns: String,
}

impl Lossy {
    pub fn up(tag: &str, percent: u32) -> Lossy {
        let l = Lossy {
            ns: format!("r58-{}-{tag}", std::process::id()),
        };
        // Made before anything can fail, so Drop removes the namespace.
        sh(&["ip", "netns", "add", &l.ns]);
        sh(&["ip", "-n", &l.ns, "link", "set", "lo", "up"]);
        // Chromium gathers no candidates on loopback: give it an address.
        // (A veth pair: this kernel has no dummy interfaces either.)
        sh(&[
            "ip", "-n", &l.ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1",
        ]);
        addr_up(&l.ns, "d0", "192.0.2.58/24");
        sh(&["ip", "-n", &l.ns, "link", "set", "d1", "up"]);
        // Firefox gathers no candidates without a default route; this one
        // leads into d1, where nothing answers.
        sh(&["ip", "-n", &l.ns, "route", "add", "default", "dev", "d0"]);
        let nft = |rule: &str| {
            let mut args = vec!["ip", "netns", "exec", &l.ns, "nft"];
            args.extend(rule.split(' '));
            sh(&args);
        };
        nft("add table inet loss");
        nft("add chain inet loss out { type filter hook output priority 0 ; }");
        // 100 % is every UDP packet: a TCP-only network.
        let random = if percent >= 100 {
            String::new()
        } else {
            format!("numgen random mod 100 < {percent} ")
        };
        nft(&format!(
            "add rule inet loss out meta l4proto udp {random}counter drop"
        ));
        l
    }

    /// UDP packets dropped so far.
    pub fn dropped(&self) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "nft", "list", "table", "inet", "loss",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.split("packets ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Lossy {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// Run `f` on a thread that has joined namespace `ns`, so its sockets live
/// there (the test process itself stays where it is).
pub fn run_in<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in(ns, f).join().expect("thread in namespace")
}

/// Like `run_in`, without waiting. Threads it starts stay in `ns` too.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: a valid namespace fd; only this thread changes namespace.
        let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// Give `iface` in `ns` an address and bring it up.
fn addr_up(ns: &str, iface: &str, cidr: &str) {
    sh(&["ip", "-n", ns, "addr", "add", cidr, "dev", iface]);
    sh(&["ip", "-n", ns, "link", "set", iface, "up"]);
}

/// Two namespaces joined by one link whose box side can be shaped with
/// `tc tbf` (this kernel has tbf, no netem): r58 in `dev` at
/// `SHAPED_DEV_IP`, the viewer in `guest`.
pub struct Shaped {
    pub dev: String,
    pub guest: String,
}

pub const SHAPED_DEV_IP: &str = "10.213.3.1";

impl Shaped {
    pub fn up(tag: &str) -> Shaped {
        let id = std::process::id();
        let s = Shaped {
            dev: format!("r58-{id}-{tag}-dev"),
            guest: format!("r58-{id}-{tag}-guest"),
        };
        for ns in [&s.dev, &s.guest] {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        sh(&[
            "ip", "-n", &s.dev, "link", "add", "sd0", "type", "veth", "peer", "name", "sg0",
            "netns", &s.guest,
        ]);
        addr_up(&s.dev, "sd0", "10.213.3.1/24");
        addr_up(&s.guest, "sg0", "10.213.3.2/24");
        s
    }

    /// Cap what the box sends to the guest at `kbit` kbit/s, with about
    /// 200 ms of queue (a home router's), or lift the cap (`None`).
    pub fn limit(&self, kbit: Option<u32>) {
        let _ = Command::new("ip")
            .args([
                "netns", "exec", &self.dev, "tc", "qdisc", "del", "dev", "sd0", "root",
            ])
            .output();
        if let Some(k) = kbit {
            let rate = format!("{k}kbit");
            sh(&[
                "ip", "netns", "exec", &self.dev, "tc", "qdisc", "add", "dev", "sd0", "root",
                "tbf", "rate", &rate, "burst", "16kb", "latency", "200ms",
            ]);
        }
    }

    /// Drop every UDP packet the guest sends: ICE-TCP only.
    pub fn block_udp(&self) {
        let nft = |rule: &str| {
            let mut args = vec!["ip", "netns", "exec", &self.guest, "nft"];
            args.extend(rule.split(' '));
            sh(&args);
        };
        nft("add table inet block");
        nft("add chain inet block out { type filter hook output priority 0 ; }");
        nft("add rule inet block out meta l4proto udp drop");
    }
}

impl Drop for Shaped {
    fn drop(&mut self) {
        for ns in [&self.dev, &self.guest] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
