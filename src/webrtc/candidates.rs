//! Which ICE candidates a client is given, decided per request from where
//! the request came from. Sans-IO: the interface list and the client's
//! address are inputs, so every rule is unit-tested.
//!
//! - Host candidates: the box's own addresses on the UDP and TCP ports.
//! - Public candidates (`additional_hosts`): an address that forwards to
//!   the box (VPS + FRP, a 1:1 NAT), each with its own public UDP and TCP
//!   port, since a forwarder rarely keeps the local port number.
//! - Route policy: a client on a private, CGNAT (Tailscale) or loopback
//!   address gets both; any other client, and anything that came through a
//!   forwarder, gets only public addresses, so private ones never leak.

use std::net::{IpAddr, SocketAddr};

use str0m::Candidate;
use str0m::net::{Protocol, TcpType};

use crate::config::{CandidatePolicy, Cidr};

/// One address published to clients, already resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicHost {
    pub ip: IpAddr,
    /// 0: not reachable on this protocol.
    pub udp_port: u16,
    pub tcp_port: u16,
}

/// Everything needed to pick candidates, fixed at startup.
#[derive(Debug, Clone)]
pub struct Advertise {
    /// Fixed host addresses; empty means "the interfaces, asked each time".
    pub hosts: Vec<IpAddr>,
    /// Interface names to take host addresses from; empty means all.
    pub interfaces: Vec<String>,
    pub public: Vec<PublicHost>,
    pub udp_port: u16,
    /// 0: ICE-TCP disabled.
    pub tcp_port: u16,
    pub policy: CandidatePolicy,
    /// Requests from these sources came through a forwarder.
    pub forwarders: Vec<Cidr>,
}

/// Where a request came from, as far as candidates are concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reach {
    /// Same LAN, VPN/Tailscale or the box itself: every address works.
    Local,
    /// The internet or a forwarder: only public addresses are any use.
    Public,
}

/// Private, CGNAT, link-local and loopback sources count as local.
pub fn is_local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, Tailscale
        }
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            v6.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

impl Advertise {
    pub fn reach(&self, client: IpAddr) -> Reach {
        let forwarded = self.forwarders.iter().any(|c| c.contains(client));
        if self.policy == CandidatePolicy::All || (!forwarded && is_local_ip(client)) {
            Reach::Local
        } else {
            Reach::Public
        }
    }

    /// The candidates for one session, best first, without duplicates.
    /// `interfaces` is the box's current address list.
    pub fn candidates(&self, reach: Reach, interfaces: &[IpAddr]) -> Vec<Candidate> {
        let host_ips = if self.hosts.is_empty() {
            interfaces
        } else {
            &self.hosts
        };
        let mut addrs: Vec<(IpAddr, u16, u16)> = Vec::new();
        for &ip in host_ips {
            if reach == Reach::Local || !is_local_ip(ip) {
                addrs.push((ip, self.udp_port, self.tcp_port));
            }
        }
        for p in &self.public {
            addrs.push((
                p.ip,
                p.udp_port,
                if self.tcp_port == 0 { 0 } else { p.tcp_port },
            ));
        }
        let mut out: Vec<Candidate> = Vec::new();
        let mut seen: Vec<(Protocol, SocketAddr)> = Vec::new();
        // All UDP first, then TCP: the order is the order in the SDP.
        for proto in [Protocol::Udp, Protocol::Tcp] {
            for &(ip, udp, tcp) in &addrs {
                let port = if proto == Protocol::Udp { udp } else { tcp };
                let a = SocketAddr::new(ip, port);
                if port == 0 || ip.is_ipv6() || seen.contains(&(proto, a)) {
                    continue;
                }
                seen.push((proto, a));
                let c = if proto == Protocol::Udp {
                    Candidate::host(a, "udp").ok()
                } else {
                    Candidate::builder()
                        .tcp()
                        .host(a)
                        .tcptype(TcpType::Passive)
                        .build()
                        .ok()
                };
                out.extend(c);
            }
        }
        out
    }
}

/// The candidate address a packet "arrived on", as the ICE agent must be
/// told it. A packet that came through a forwarder arrives on a local
/// address the session was never given; it belongs to the public
/// candidate of the same protocol instead.
pub fn local_for(
    candidates: &[Candidate],
    proto: Protocol,
    arrived: SocketAddr,
) -> Option<SocketAddr> {
    let same_proto = || candidates.iter().filter(|c| c.proto() == proto);
    same_proto()
        .find(|c| c.addr() == arrived)
        .or_else(|| same_proto().find(|c| !is_local_ip(c.addr().ip())))
        .or_else(|| same_proto().next())
        .map(|c| c.addr())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adv() -> Advertise {
        Advertise {
            hosts: vec![],
            interfaces: vec![],
            public: vec![PublicHost {
                ip: "65.109.32.111".parse().unwrap(),
                udp_port: 18189,
                tcp_port: 18190,
            }],
            udp_port: 8189,
            tcp_port: 8190,
            policy: CandidatePolicy::Route,
            forwarders: vec!["10.213.2.1/32".parse().unwrap()],
        }
    }

    fn lines(c: &[Candidate]) -> Vec<String> {
        c.iter()
            .map(|c| format!("{} {}", c.proto(), c.addr()))
            .collect()
    }

    fn ifaces() -> Vec<IpAddr> {
        vec![
            "192.168.1.20".parse().unwrap(),
            "100.101.1.2".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        ]
    }

    #[test]
    fn classifies_sources() {
        for local in [
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.5",
            "100.64.0.1",
            "100.127.255.1",
            "127.0.0.1",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
            "::1",
        ] {
            assert!(is_local_ip(local.parse().unwrap()), "{local}");
        }
        for public in [
            "8.8.8.8",
            "65.109.32.111",
            "100.128.0.1",
            "172.32.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_local_ip(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn lan_client_gets_host_and_public_with_per_protocol_ports() {
        let a = adv();
        let c = a.candidates(a.reach("192.168.1.50".parse().unwrap()), &ifaces());
        assert_eq!(
            lines(&c),
            [
                "udp 192.168.1.20:8189",
                "udp 100.101.1.2:8189",
                "udp 127.0.0.1:8189",
                "udp 65.109.32.111:18189",
                "tcp 192.168.1.20:8190",
                "tcp 100.101.1.2:8190",
                "tcp 127.0.0.1:8190",
                "tcp 65.109.32.111:18190",
            ]
        );
        assert!(c[4].to_sdp_string().contains("tcptype passive"));
    }

    #[test]
    fn public_and_forwarded_clients_never_see_private_addresses() {
        let a = adv();
        for client in ["8.8.8.8", "10.213.2.1"] {
            let c = a.candidates(a.reach(client.parse().unwrap()), &ifaces());
            assert_eq!(
                lines(&c),
                ["udp 65.109.32.111:18189", "tcp 65.109.32.111:18190"],
                "{client}"
            );
        }
        // A box with a public interface address may show it to anyone.
        let c = a.candidates(Reach::Public, &["80.1.2.3".parse().unwrap()]);
        assert_eq!(lines(&c)[0], "udp 80.1.2.3:8189");
    }

    #[test]
    fn policy_all_and_disabled_tcp_and_duplicates() {
        let mut a = adv();
        a.policy = CandidatePolicy::All;
        a.tcp_port = 0;
        // An additional host that is also an interface address is listed once.
        a.public.push(PublicHost {
            ip: "192.168.1.20".parse().unwrap(),
            udp_port: 8189,
            tcp_port: 8190,
        });
        let c = a.candidates(a.reach("8.8.8.8".parse().unwrap()), &ifaces());
        assert_eq!(
            lines(&c),
            [
                "udp 192.168.1.20:8189",
                "udp 100.101.1.2:8189",
                "udp 127.0.0.1:8189",
                "udp 65.109.32.111:18189"
            ]
        );
    }

    #[test]
    fn forwarded_packets_map_to_the_public_candidate() {
        let a = adv();
        let c = a.candidates(Reach::Public, &ifaces());
        let arrived: SocketAddr = "10.213.2.2:8190".parse().unwrap();
        assert_eq!(
            local_for(&c, Protocol::Tcp, arrived),
            Some("65.109.32.111:18190".parse().unwrap())
        );
        let c = a.candidates(Reach::Local, &ifaces());
        let direct: SocketAddr = "192.168.1.20:8189".parse().unwrap();
        assert_eq!(local_for(&c, Protocol::Udp, direct), Some(direct));
        let only_udp: Vec<Candidate> = c
            .into_iter()
            .filter(|c| c.proto() == Protocol::Udp)
            .collect();
        assert_eq!(local_for(&only_udp, Protocol::Tcp, arrived), None);
    }
}
