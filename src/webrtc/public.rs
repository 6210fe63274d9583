//! The public addresses clients are told about (`additional_hosts`, the
//! tunnel's server). Literal addresses count at once; DNS names are looked
//! up in the background, retried while they fail and refreshed while they
//! work, so a box that boots before DNS does serves LAN viewers and its API
//! at once and adds the public candidate when the name resolves.
//!
//! `Names` decides what to look up when (sans-IO, explicit time);
//! `resolve_forever` is the thin task around it.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Cmd;
use super::candidates::PublicHost;
use crate::config::WebRtc;

/// First retry of a name that failed; doubles up to `RETRY_MAX`.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// A name that resolved is looked up again this often (a VPS may move).
const REFRESH: Duration = Duration::from_secs(600);
/// One lookup may take this long before it counts as failed.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A configured name that has no address (yet), and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unresolved {
    pub host: String,
    pub error: String,
}

#[derive(Debug)]
struct Entry {
    host: String,
    udp_port: u16,
    tcp_port: u16,
    ip: Option<IpAddr>,
    error: Option<String>,
    /// When to look it up; None for literal addresses.
    next: Option<Instant>,
    retry: Duration,
}

#[derive(Debug)]
pub struct Names {
    entries: Vec<Entry>,
}

impl Names {
    /// The configured hosts; absent ports mean the local ones.
    pub fn new(w: &WebRtc, udp_port: u16, tcp_port: u16, now: Instant) -> Names {
        let entries = w
            .additional_hosts
            .iter()
            .map(|h| {
                let ip = h.host.parse::<IpAddr>().ok();
                Entry {
                    host: h.host.clone(),
                    udp_port: h.udp_port.unwrap_or(udp_port),
                    tcp_port: h.tcp_port.unwrap_or(tcp_port),
                    ip,
                    error: None,
                    next: if ip.is_some() { None } else { Some(now) },
                    retry: RETRY_MIN,
                }
            })
            .collect();
        Names { entries }
    }

    /// Names to look up now.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.next.is_some_and(|t| t <= now))
            .map(|e| e.host.clone())
            .collect()
    }

    /// When the next lookup is due; None when every host is a literal.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries.iter().filter_map(|e| e.next).min()
    }

    /// The outcome of looking `host` up. A failed refresh keeps the last
    /// address (it most likely still works) but reports the error.
    /// Returns whether what clients are told, or the errors, changed.
    pub fn resolved(&mut self, host: &str, r: Result<IpAddr, String>, now: Instant) -> bool {
        let Some(e) = self.entries.iter_mut().find(|e| e.host == host) else {
            return false;
        };
        let before = (e.ip, e.error.clone());
        match r {
            Ok(ip) => {
                e.ip = Some(ip);
                e.error = None;
                e.retry = RETRY_MIN;
                e.next = Some(now + REFRESH);
            }
            Err(why) => {
                e.error = Some(why);
                e.next = Some(now + e.retry);
                e.retry = (e.retry * 2).min(RETRY_MAX);
            }
        }
        before != (e.ip, e.error.clone())
    }

    /// Addresses to advertise now: every host that has one.
    pub fn hosts(&self) -> Vec<PublicHost> {
        self.entries
            .iter()
            .filter_map(|e| {
                Some(PublicHost {
                    ip: e.ip?,
                    udp_port: e.udp_port,
                    tcp_port: e.tcp_port,
                })
            })
            .collect()
    }

    pub fn unresolved(&self) -> Vec<Unresolved> {
        self.entries
            .iter()
            .filter_map(|e| {
                Some(Unresolved {
                    host: e.host.clone(),
                    error: e.error.clone()?,
                })
            })
            .collect()
    }
}

/// The first IPv4 address of `host` now, blocking (for `config check`).
pub fn resolve_now(host: &str) -> Result<IpAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(ip) = host.parse() {
        return Ok(ip);
    }
    first_ipv4((host, 0).to_socket_addrs().map_err(|e| e.to_string())?)
}

fn first_ipv4(mut addrs: impl Iterator<Item = std::net::SocketAddr>) -> Result<IpAddr, String> {
    addrs
        .find(|a| a.is_ipv4())
        .map(|a| a.ip())
        .ok_or_else(|| "no IPv4 address".to_string())
}

/// Look `host` up for an IPv4 address (candidates are IPv4).
async fn lookup(host: &str) -> Result<IpAddr, String> {
    let found = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, 0))).await;
    match found {
        Err(_) => Err(format!("no answer in {} s", LOOKUP_TIMEOUT.as_secs())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(addrs)) => first_ipv4(addrs),
    }
}

/// Keep `names` resolved and tell the engine whenever that changes. Holds
/// the engine's channel weakly, so the engine still ends when everyone
/// else has let go of it.
pub async fn resolve_forever(mut names: Names, engine: mpsc::WeakSender<Cmd>) {
    while let Some(at) = names.next_due() {
        tokio::time::sleep_until(at.into()).await;
        let mut changed = false;
        for host in names.due(Instant::now()) {
            let failing = names.unresolved().iter().any(|u| u.host == host);
            let outcome = lookup(&host).await;
            let news = names.resolved(&host, outcome.clone(), Instant::now());
            // Say what changed: a new address, or the first failure.
            match outcome {
                Ok(ip) if news => log::info!("webrtc: public address {host} is {ip}"),
                Err(e) if !failing => log::warn!(
                    "webrtc: public address {host} does not resolve ({e}); \
                     LAN viewers are served, retrying"
                ),
                Err(e) => log::debug!("webrtc: public address {host}: {e}"),
                Ok(_) => {}
            }
            changed |= news;
        }
        if changed {
            let Some(tx) = engine.upgrade() else { return };
            let cmd = Cmd::Public {
                hosts: names.hosts(),
                unresolved: names.unresolved(),
            };
            if tx.send(cmd).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::webrtc::AdditionalHost;

    fn names(now: Instant) -> Names {
        let w = WebRtc {
            additional_hosts: vec![
                AdditionalHost {
                    host: "65.109.32.111".into(),
                    udp_port: Some(0),
                    tcp_port: Some(18190),
                },
                AdditionalHost {
                    host: "vps.example.no".into(),
                    udp_port: None,
                    tcp_port: None,
                },
            ],
            ..WebRtc::default()
        };
        Names::new(&w, 8189, 8190, now)
    }

    #[test]
    fn literals_count_at_once_and_names_are_looked_up_at_start() {
        let t0 = Instant::now();
        let n = names(t0);
        assert_eq!(n.hosts().len(), 1);
        assert_eq!(n.hosts()[0].tcp_port, 18190);
        assert_eq!(n.due(t0), vec!["vps.example.no".to_string()]);
        assert_eq!(n.next_due(), Some(t0));
        assert!(n.unresolved().is_empty(), "not failed yet, only pending");
    }

    #[test]
    fn a_failing_name_is_retried_with_backoff_and_added_when_it_resolves() {
        let t0 = Instant::now();
        let mut n = names(t0);
        assert!(n.resolved("vps.example.no", Err("no DNS".into()), t0));
        assert_eq!(n.unresolved()[0].host, "vps.example.no");
        assert_eq!(n.next_due(), Some(t0 + Duration::from_secs(1)));
        let mut t = t0;
        let mut gaps = vec![];
        for _ in 0..7 {
            let next = n.next_due().unwrap();
            gaps.push((next - t).as_secs());
            t = next;
            assert!(
                !n.resolved("vps.example.no", Err("no DNS".into()), t),
                "same error: no news"
            );
        }
        assert_eq!(gaps, [1, 2, 4, 8, 16, 30, 30]);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        assert!(n.resolved("vps.example.no", Ok(ip), t));
        assert!(n.unresolved().is_empty());
        let h = n.hosts();
        assert_eq!((h[1].ip, h[1].udp_port, h[1].tcp_port), (ip, 8189, 8190));
        assert_eq!(n.next_due(), Some(t + REFRESH));
    }

    #[test]
    fn a_failed_refresh_keeps_the_address_and_reports_the_error() {
        let t0 = Instant::now();
        let mut n = names(t0);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        n.resolved("vps.example.no", Ok(ip), t0);
        assert!(n.resolved("vps.example.no", Err("timed out".into()), t0 + REFRESH));
        assert_eq!(n.hosts().len(), 2, "still advertised");
        assert_eq!(n.unresolved()[0].error, "timed out");
        assert_eq!(n.next_due(), Some(t0 + REFRESH + RETRY_MIN));
    }
}
