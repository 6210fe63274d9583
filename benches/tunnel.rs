//! `make bench`: what the built-in FRP client costs, printed, never asserted.
//!
//! On loopback, r58 (release build) tunnels to the test frps
//! (`tests/tunnel/frps.rs`) and a user reaches a local service through the
//! public port, compared with reaching the service directly:
//! - throughput (MB/s) of a 128 MiB download, per transport setting and
//!   frp wire protocol (v1, v2);
//! - round-trip time of 1-byte ping-pongs (p50/p99 of 2000);
//! - r58's RSS while it tunnels.

#[allow(dead_code)]
#[path = "../tests/tunnel/frps.rs"]
mod frps;
#[path = "../tests/support/mod.rs"]
mod support;
#[path = "../tests/tunnel/cores.rs"]
mod tunnel;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use frps::{Frps, Opts};
use support::{Daemon, Setup, free_port, percentile as pct, rss_mib};

const TOKEN: &str = "bench-token";
const DOWNLOAD: usize = 128 << 20;
const PINGS: usize = 2000;

/// A local service: after a 1-byte request, `d` sends DOWNLOAD bytes and
/// closes; `p` echoes single bytes until the user closes.
fn service() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = c;
                let _ = c.set_nodelay(true);
                let mut b = [0u8; 1];
                if c.read_exact(&mut b).is_err() {
                    return;
                }
                if b[0] == b'd' {
                    let chunk = vec![0x5au8; 64 * 1024];
                    for _ in 0..DOWNLOAD / chunk.len() {
                        if c.write_all(&chunk).is_err() {
                            return;
                        }
                    }
                    return;
                }
                while c.write_all(&b).is_ok() && c.read_exact(&mut b).is_ok() {}
            });
        }
    });
    port
}

/// MB/s of one download, and r58's RSS (MiB) sampled as it ran.
fn download(port: u16, pid: Option<u32>) -> (f64, f64) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"d").unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let (t0, mut got, mut rss) = (Instant::now(), 0usize, 0f64);
    let mut next_sample = 0usize;
    while got < DOWNLOAD {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "download ended after {got} bytes");
        got += n;
        if got >= next_sample {
            rss = rss.max(pid.map_or(0.0, rss_mib));
            next_sample += 16 << 20;
        }
    }
    (got as f64 / 1e6 / t0.elapsed().as_secs_f64(), rss)
}

/// Round-trip times (µs, sorted) of 1-byte ping-pongs.
fn pings(port: u16) -> Vec<u64> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_nodelay(true).unwrap();
    c.write_all(b"p").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    let mut rtts: Vec<u64> = (0..PINGS)
        .map(|_| {
            let t0 = Instant::now();
            c.write_all(b"p").unwrap();
            c.read_exact(&mut b).unwrap();
            t0.elapsed().as_micros() as u64
        })
        .collect();
    rtts.sort_unstable();
    rtts
}

fn main() {
    let local = service();
    println!(
        "r58 tunnel bench: loopback, test frps, {} MiB download, {PINGS} pings",
        DOWNLOAD >> 20
    );
    println!(
        "{:<32} {:>9} {:>10} {:>10} {:>10}",
        "path", "MB/s", "rtt p50", "rtt p99", "r58 MiB"
    );
    let (mbs, _) = download(local, None);
    let rtt = pings(local);
    println!(
        "{:<32} {mbs:>9.0} {:>7} µs {:>7} µs {:>9}",
        "direct",
        pct(&rtt, 50),
        pct(&rtt, 99),
        "-"
    );
    let settings = [
        ("yamux", true, ""),
        ("no mux", false, ""),
        ("yamux, encryption", true, "use_encryption = true"),
        (
            "yamux, enc+snappy",
            true,
            "use_encryption = true\nuse_compression = true",
        ),
    ];
    for ((setting, mux, extra), wire) in settings
        .into_iter()
        .flat_map(|s| ["v1", "v2"].map(|w| (s, w)))
    {
        let name = format!("tunnel {wire}, {setting}");
        let frps = Frps::start(Opts {
            mux,
            ..Opts::new(TOKEN)
        });
        let (remote, dir) = (
            free_port(),
            std::env::temp_dir().join(format!("r58-bench-{}", free_port())),
        );
        std::fs::create_dir_all(&dir).unwrap();
        let d = Daemon::start_with(Setup {
            paths: format!(
                "[paths.cam0]\nsource = \"test\"\nwidth = 320\nheight = 180\n\
                 [tunnel]\nserver_addr = \"127.0.0.1\"\nserver_port = {}\ntoken = \"{TOKEN}\"\n\
                 tls = false\ntcp_mux = {mux}\nwire_protocol = \"{wire}\"\nauto_proxies = false\nrun_id_file = \"{}/run-id\"\n\
                 [[tunnel.proxies]]\nname = \"bench\"\nlocal_port = {local}\nremote_port = {remote}\n{extra}\n",
                frps.port,
                dir.display()
            ),
            ..Setup::default()
        });
        let t0 = Instant::now();
        while d.api_json("/v3/tunnel")["proxies"][0]["state"] != "running" {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "proxy did not start:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let idle = rss_mib(d.child.id());
        let (mbs, rss) = download(remote, Some(d.child.id()));
        let rtt = pings(remote);
        println!(
            "{name:<32} {mbs:>9.0} {:>7} µs {:>7} µs {idle:>5.1}/{rss:.1}",
            pct(&rtt, 50),
            pct(&rtt, 99)
        );
        drop(d);
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!();
    println!("v1/v2: frp's wire protocol (v2: AEAD control channel; the proxied bytes are");
    println!("framed alike). MB/s: 10^6 bytes/s received by the user; rtt: user → service → user,");
    println!("1 byte each way; r58 MiB: VmRSS before / peak during the download (the");
    println!("test pattern pipeline included). The test frps shares the machine.");
}
