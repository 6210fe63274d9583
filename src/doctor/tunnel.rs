//! The doctor's tunnel checks, pure like the rest: is the running daemon
//! logged in to frps, did frps accept every proxy, and does the config
//! forward what remote viewers need (ICE-TCP through the VPS).

use super::checks::{Check, Facts, Mark};
use crate::config::tunnel::ProxyType;
use crate::shapes::{self, TunnelFacts};
use crate::tunnel::status::Status;
use crate::vocab::{ProxyState, TlsMode};

pub fn checks(f: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    out.extend(forwarding(f));
    let Ok(info) = &f.info else {
        return out; // the daemon check already says it is down
    };
    let facts: TunnelFacts = shapes::read(&info["r58"]["tunnel"]);
    if !facts.enabled {
        return out;
    }
    let t = &facts.status;
    let server = t.server.as_str();
    if t.connected {
        let since = f.now_unix.saturating_sub(t.since);
        let mut detail = format!(
            "logged in to {server} for {}",
            crate::status::duration(since)
        );
        if let Some(ms) = t.rtt_ms {
            detail += &format!(", ping {ms:.0} ms");
        }
        match t.wire_text() {
            w if w.is_empty() => {}
            w => detail += &format!(", frp wire {w}"),
        }
        match t.reconnects {
            0 => {}
            n => detail += &format!(", {n} reconnects"),
        }
        out.push(Check::new(Mark::Ok, "tunnel", detail));
    } else {
        let why = t.last_error.as_deref().unwrap_or("connecting");
        out.push(
            Check::new(
                Mark::Fail,
                "tunnel",
                format!("not logged in to {server}: {why}"),
            )
            .hint(hint_for(why, server)),
        );
    }
    if t.tls == TlsMode::Unverified {
        out.push(
            Check::new(
                Mark::Warn,
                "tunnel",
                "frps's TLS certificate is not verified",
            )
            .hint("set tunnel.tls_cert_sha256 (openssl x509 -noout -fingerprint -sha256)"),
        );
    }
    out.extend(proxies(t));
    out
}

fn hint_for(why: &str, server: &str) -> String {
    let host = server.rsplit_once(':').map_or(server, |h| h.0);
    if why.contains("token") {
        "the token differs from frps's auth.token; check tunnel.token".into()
    } else if why.contains("TLS") || why.contains("certificate") {
        "check tunnel.tls_cert_sha256 / tls_trusted_ca_file against frps's certificate".into()
    } else {
        format!("is the VPS reachable? ping {host}; is frps running there?")
    }
}

fn proxies(t: &Status) -> Vec<Check> {
    if !t.connected {
        return Vec::new(); // the tunnel line says why nothing is registered
    }
    let mut out = Vec::new();
    let mut running = Vec::new();
    for p in &t.proxies {
        let (name, port) = (&p.name, p.remote_port);
        match p.state {
            ProxyState::Running => running.push(format!("{name} :{port}")),
            ProxyState::Rejected => out.push(
                Check::new(
                    Mark::Fail,
                    "proxy",
                    format!(
                        "{name} (remote port {port}): {}",
                        p.error.as_deref().unwrap_or("refused by frps")
                    ),
                )
                .hint("another client holds the port, or frps's allowPorts excludes it; retried every 30 s"),
            ),
            state => out.push(Check::new(
                Mark::Warn,
                "proxy",
                format!("{name}: {}", state.as_str()),
            )),
        }
    }
    if !running.is_empty() {
        out.insert(
            0,
            Check::new(
                Mark::Ok,
                "proxy",
                format!("registered: {}", running.join(", ")),
            ),
        );
    }
    out
}

/// Remote viewers reach media through the VPS only over ICE-TCP.
fn forwarding(f: &Facts) -> Option<Check> {
    let cfg = f.config.as_ref().ok()?;
    let (s, _) = cfg.tunnel_settings().ok()??;
    let tcp = cfg.webrtc.tcp_port;
    let forwarded = tcp != 0 && s.public_port(ProxyType::Tcp, tcp).is_some();
    (!forwarded).then(|| {
        Check::new(
            Mark::Warn,
            "ice",
            format!("the tunnel does not forward ICE-TCP (webrtc.tcp_port {tcp})"),
        )
        .hint("viewers through the VPS get no media; keep tunnel.auto_proxies on")
    })
}
