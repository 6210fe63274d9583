//! `[webrtc]`: media ports, the addresses clients are given, and the ICE
//! servers handed to them.

use std::net::IpAddr;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtc {
    pub udp_port: u16,
    pub tcp_port: u16,
    /// Addresses to advertise as host candidates. Empty: every IPv4
    /// interface address that is up.
    pub hosts: Vec<IpAddr>,
    /// Interfaces whose addresses are advertised (`eth0`, `tailscale0`);
    /// empty: all that are up. Ignored when `hosts` is set.
    pub interfaces: Vec<String>,
    /// Addresses that forward to this box (VPS + FRP, 1:1 NAT), each with
    /// its own public UDP and TCP port.
    pub additional_hosts: Vec<AdditionalHost>,
    /// `route`: private addresses only for clients on private/CGNAT
    /// addresses; `all`: every candidate for everyone.
    pub candidate_policy: CandidatePolicy,
    /// Sources that are forwarders (stock frpc on 127.0.0.1, a socat on a
    /// VPS): their requests are treated as coming from the internet.
    pub forwarders: Vec<Cidr>,
    pub ice_servers: Vec<IceServer>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdditionalHost {
    /// A literal IPv4 address or a DNS name (resolved at start-up).
    pub host: String,
    /// Public ports; absent means the same as the local port, 0 means
    /// "not forwarded".
    pub udp_port: Option<u16>,
    pub tcp_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CandidatePolicy {
    #[default]
    Route,
    All,
}

/// `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl WebRtc {
    /// With the tunnel on, viewers on the internet reach us at the VPS:
    /// advertise its address with the public ICE-TCP port, and treat work
    /// connections as internet traffic.
    pub fn adopt_tunnel(&mut self, t: &super::tunnel::Settings) {
        use super::tunnel::ProxyType;
        let tcp = t.public_port(ProxyType::Tcp, self.tcp_port);
        let udp = t.public_port(ProxyType::Udp, self.udp_port);
        if (tcp.is_some() || udp.is_some())
            && !self
                .additional_hosts
                .iter()
                .any(|h| h.host == t.server_addr)
        {
            // 0: not forwarded, so not advertised there.
            self.additional_hosts.push(AdditionalHost {
                host: t.server_addr.clone(),
                udp_port: Some(udp.unwrap_or(0)),
                tcp_port: Some(tcp.unwrap_or(0)),
            });
        }
        self.forwarders.push(Cidr {
            net: crate::tunnel::TUNNEL_SOURCE.into(),
            bits: 32,
        });
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let mask = |len: u32, bits: u8| -> u128 {
            if bits == 0 {
                0
            } else {
                (!0u128 << (len - bits as u32)) & (!0u128 >> (128 - len))
            }
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = mask(32, self.bits);
                (u32::from(n) as u128 & m) == (u32::from(a) as u128 & m)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = mask(128, self.bits);
                (u128::from(n) & m) == (u128::from(a) & m)
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("\"{s}\" is not an address or address/prefix");
        let (ip, bits) = s.split_once('/').unwrap_or((s, ""));
        let net: IpAddr = ip.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = if bits.is_empty() {
            max
        } else {
            bits.parse().map_err(|_| bad())?
        };
        if bits > max {
            return Err(bad());
        }
        Ok(Cidr { net, bits })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    pub urls: String,
    pub username: Option<String>,
    pub credential: Option<Secret>,
    /// coturn's `static-auth-secret`: mint a time-limited TURN REST
    /// credential per session instead of handing out a fixed one.
    pub secret: Option<Secret>,
    /// The name part of minted usernames (`expiry:user`).
    #[serde(default = "default_turn_user")]
    pub user: String,
    /// Lifetime of minted credentials.
    #[serde(default = "default_turn_ttl")]
    pub ttl_secs: u64,
}

fn default_turn_user() -> String {
    "r58".into()
}

fn default_turn_ttl() -> u64 {
    24 * 3600
}

pub use super::secret::Secret;

impl Default for WebRtc {
    fn default() -> Self {
        WebRtc {
            udp_port: 8189,
            tcp_port: 8190,
            hosts: vec![],
            interfaces: vec![],
            additional_hosts: vec![],
            candidate_policy: CandidatePolicy::Route,
            forwarders: vec![],
            ice_servers: vec![],
        }
    }
}

impl WebRtc {
    /// Checks serde cannot do; errors are (key, message).
    pub(super) fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        for (i, s) in self.ice_servers.iter().enumerate() {
            let ok = ["stun:", "turn:", "turns:"]
                .iter()
                .any(|p| s.urls.starts_with(p));
            if !ok {
                return Err((
                    "ice_servers",
                    format!(
                        "ice_servers[{i}]: url \"{}\" must start with stun:, turn: or turns:",
                        s.urls
                    ),
                ));
            }
            if s.secret.is_some() && (s.credential.is_some() || s.urls.starts_with("stun:")) {
                return Err((
                    "ice_servers",
                    format!(
                        "ice_servers[{i}]: secret mints TURN credentials; use it on a turn: url without credential"
                    ),
                ));
            }
        }
        for h in &self.additional_hosts {
            let why = match h.host.parse::<IpAddr>() {
                Ok(IpAddr::V6(_)) => Some("IPv6 is not supported yet (media sockets are IPv4)"),
                Err(_) if h.host.is_empty() || h.host.contains(['/', ' ', ':']) => {
                    Some("is neither an IPv4 address nor a host name")
                }
                _ => None,
            };
            if let Some(why) = why {
                return Err((
                    "additional_hosts",
                    format!("additional_hosts: \"{}\" {why}", h.host),
                ));
            }
        }
        Ok(())
    }
}
