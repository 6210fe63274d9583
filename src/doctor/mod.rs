//! `r58 doctor`: the design note's troubleshooting list, run automatically.
//! `gather` collects facts (config, the daemon's API, a real local WHEP
//! offer/answer, interfaces, clock, disk); `checks` judges them without I/O.
//!
//! `--boot-check` is the A/B boot assessment: it waits (up to a timeout) for
//! the daemon to settle and exits 0 only if nothing critical is broken, so
//! a bad update is rolled back while a missing HDMI cable is not.

mod checks;
mod forward;
mod tunnel;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client;
use crate::config::Config;
use checks::{Disk, Facts, SelfTest};

pub struct Options {
    pub ascii: bool,
    pub boot_check: bool,
    pub timeout: Duration,
}

/// Run the checks, print the screen, and return the exit code: the number
/// of failed checks, or for `--boot-check` 0 (keep this slot) or 1.
pub fn run(file: &Path, o: &Options) -> i32 {
    let deadline = Instant::now() + o.timeout;
    loop {
        let facts = gather(file);
        let list = checks::evaluate(&facts);
        if !o.boot_check {
            print!("{}", checks::render(&list, o.ascii));
            let failed = list.iter().filter(|c| c.mark == checks::Mark::Fail).count();
            return failed.min(100) as i32;
        }
        let verdict = checks::boot_verdict(&list);
        let give_up = Instant::now() >= deadline;
        if verdict.is_some() || give_up {
            print!("{}", checks::render(&list, o.ascii));
            return match verdict {
                Some(true) => {
                    println!("boot check: healthy, keep this slot");
                    0
                }
                Some(false) => {
                    println!("boot check: broken, do not mark this slot good");
                    1
                }
                None => {
                    println!(
                        "boot check: still not settled after {} s",
                        o.timeout.as_secs()
                    );
                    1
                }
            };
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// One doctor screen as text (for the support bundle).
pub fn report(file: &Path, ascii: bool) -> String {
    checks::render(&checks::evaluate(&gather(file)), ascii)
}

/// True when the terminal can show ✓/✗ (a UTF-8 locale).
pub fn locale_is_utf8() -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .map(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        })
        .unwrap_or(false)
}

fn gather(file: &Path) -> Facts {
    let config = Config::load(file).map_err(|e| e.to_string());
    let cfg = config.as_ref().ok().cloned().unwrap_or_default();
    let api = client::loopback(cfg.api.listen);
    let info = client::get_json(api, crate::vocab::route::INFO).map_err(|e| e.to_string());
    let paths = match &info {
        Ok(_) => client::get_json(api, crate::vocab::route::PATHS)
            .ok()
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let self_test = match &info {
        Ok(_) => whep_self_test(client::loopback(cfg.http.listen), &paths),
        Err(_) => SelfTest::Skipped("daemon not running".into()),
    };
    Facts {
        config_file: file.display().to_string(),
        config_present: file.exists(),
        api,
        info,
        paths,
        self_test,
        interfaces: crate::webrtc::interface_addrs(&[]),
        unresolved: unresolved_ice_hosts(&cfg),
        now_unix: crate::wallclock::unix_now(),
        disk: ["/var/lib/r58", "/"].iter().find_map(|p| disk(p)),
        config,
    }
}

/// A real WHEP round trip on the first streaming path: offer from a str0m
/// client, check the answer, then end the session.
fn whep_self_test(http: SocketAddr, paths: &[Value]) -> SelfTest {
    let Some(path) = paths
        .iter()
        .find(|p| p["ready"].as_bool() == Some(true))
        .and_then(|p| p["name"].as_str())
    else {
        return SelfTest::Skipped("no path is streaming, nothing to view".into());
    };
    let failed = |why: String| SelfTest::Failed {
        path: path.to_string(),
        why,
    };
    let offer = match crate::webrtc::probe_offer() {
        Ok(o) => o,
        Err(e) => return failed(e.to_string()),
    };
    let t0 = Instant::now();
    let r = match client::request(
        http,
        "POST",
        &format!("/{path}/whep"),
        Some("application/sdp"),
        offer.as_bytes(),
    ) {
        Ok(r) => r,
        Err(e) => return failed(e.to_string()),
    };
    let ms = t0.elapsed().as_millis() as u64;
    if r.status != 201 {
        return failed(format!("HTTP {}: {}", r.status, r.text().trim()));
    }
    if let Some(loc) = r.header("location") {
        let _ = client::request(http, "DELETE", loc, None, b"");
    }
    let answer = r.text();
    let candidates = answer
        .lines()
        .filter(|l| l.starts_with("a=candidate"))
        .count();
    if !answer.contains("m=video") || candidates == 0 {
        return failed("answer has no video or no candidates".into());
    }
    SelfTest::Passed {
        path: path.to_string(),
        ms,
        candidates,
    }
}

/// STUN/TURN host names from the config that DNS cannot resolve.
fn unresolved_ice_hosts(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for s in &cfg.webrtc.ice_servers {
        for url in s.urls.split(',') {
            // stun:host:port, turn:host:port?transport=tcp, turns:...
            let rest = url.trim().split_once(':').map(|x| x.1).unwrap_or("");
            let hostport = rest.split('?').next().unwrap_or("");
            let host = match hostport.rsplit_once(':') {
                Some((h, _)) => h,
                None => hostport,
            };
            if host.is_empty() || host.parse::<std::net::IpAddr>().is_ok() {
                continue;
            }
            if (host, 3478).to_socket_addrs().is_err() && !out.iter().any(|h| h == host) {
                out.push(host.to_string());
            }
        }
    }
    out
}

fn disk(path: &str) -> Option<Disk> {
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: statvfs fills the zeroed struct we own; the path is NUL-terminated.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    // statvfs's field widths differ between 32- and 64-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let (unit, bavail, blocks) = (s.f_frsize as u64, s.f_bavail as u64, s.f_blocks as u64);
    Some(Disk {
        path: path.to_string(),
        avail: bavail * unit,
        total: blocks * unit,
    })
}

#[cfg(test)]
mod tests;
