//! Small HTTP/1.1 plumbing shared by the WHEP server and the API: serving a
//! listener with hyper (with the limits an internet-facing port needs),
//! building responses, CORS origin patterns.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::error::{Context, Result};

pub type Resp = Response<Full<Bytes>>;

/// A request's headers must arrive within this (slow-loris clients hold
/// a connection, and a file descriptor, for as long as they like otherwise).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// And its body within this.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections a listener keeps open at once, and how many one
/// source may hold. Sources in `shared` are forwarders (the tunnel, a
/// VPS): many clients behind one address, so they may use all but
/// `reserve`, which stays for everyone else (the LAN, the technician).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max: usize,
    pub per_source: usize,
    pub reserve: usize,
    pub shared: Vec<crate::config::Cidr>,
}

impl Limits {
    /// The WHEP/WHIP port, forwarded to the internet by default.
    pub fn public(shared: Vec<crate::config::Cidr>) -> Limits {
        Limits {
            max: 512,
            per_source: 32,
            reserve: 64,
            shared,
        }
    }

    /// The API port.
    pub fn api() -> Limits {
        Limits {
            max: 64,
            per_source: 16,
            reserve: 8,
            shared: vec![],
        }
    }
}

/// Counts open connections per source against `Limits`. No I/O: `admit`
/// says yes or no, the caller `release`s what it was given.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    open: usize,
    by_source: HashMap<IpAddr, usize>,
}

impl Gate {
    pub fn new(limits: Limits) -> Gate {
        Gate {
            limits,
            open: 0,
            by_source: HashMap::new(),
        }
    }

    pub fn admit(&mut self, ip: IpAddr) -> bool {
        let l = &self.limits;
        let held = self.by_source.get(&ip).copied().unwrap_or(0);
        let (cap_source, cap_all) = if l.shared.iter().any(|c| c.contains(ip)) {
            (l.max - l.reserve, l.max - l.reserve)
        } else {
            (l.per_source, l.max)
        };
        if held >= cap_source || self.open >= cap_all {
            return false;
        }
        self.open += 1;
        *self.by_source.entry(ip).or_default() += 1;
        true
    }

    pub fn release(&mut self, ip: IpAddr) {
        self.open = self.open.saturating_sub(1);
        if let Some(n) = self.by_source.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_source.remove(&ip);
            }
        }
    }
}

/// Whether to log a refusal: once per client and status every 10 s, so a
/// script retrying in a loop cannot flood the log (or the serial console).
#[derive(Debug, Default)]
pub struct LogLimit {
    seen: HashMap<(IpAddr, u16), Instant>,
}

impl LogLimit {
    const EVERY: Duration = Duration::from_secs(10);

    pub fn allow(&mut self, ip: IpAddr, status: StatusCode, now: Instant) -> bool {
        if self.seen.len() > 4096 {
            self.seen
                .retain(|_, t| now.duration_since(*t) < Self::EVERY);
        }
        let key = (ip, status.as_u16());
        match self.seen.get(&key) {
            Some(t) if now.duration_since(*t) < Self::EVERY => false,
            _ => {
                self.seen.insert(key, now);
                true
            }
        }
    }
}

/// Logs a repeated complaint once a minute with how often it happened.
#[derive(Default)]
struct Quiet {
    last: Option<Instant>,
    skipped: u64,
}

impl Quiet {
    fn say(&mut self, what: &str, text: std::fmt::Arguments) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t < Duration::from_secs(60)) {
            self.skipped += 1;
            return;
        }
        let more = std::mem::take(&mut self.skipped);
        let more = if more > 0 {
            format!(" ({more} more in the last minute)")
        } else {
            String::new()
        };
        log::warn!("{what}: {text}{more}");
        self.last = Some(now);
    }
}

/// Bind `addr` and serve every connection with `handle` on its own task,
/// within `limits` and the header timeout.
pub async fn serve<S, F>(
    addr: SocketAddr,
    what: &'static str,
    limits: Limits,
    state: Arc<S>,
    handle: fn(Arc<S>, Request<Incoming>, SocketAddr) -> F,
) -> Result<tokio::task::JoinHandle<()>>
where
    S: Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| crate::error::Error::new(bind_error(what, addr, &e)))?;
    log::info!(
        "{what}: listening on http://{}",
        listener.local_addr().context("local address")?
    );
    let gate = Arc::new(Mutex::new(Gate::new(limits)));
    Ok(tokio::spawn(async move {
        let (mut accept_errors, mut refusals) = (Quiet::default(), Quiet::default());
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors: wait for some to close.
                    accept_errors.say(what, format_args!("accept: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let ip = peer.ip();
            if !gate.lock().expect("gate").admit(ip) {
                refusals.say(
                    what,
                    format_args!("too many connections, closing one from {ip}"),
                );
                drop(stream);
                continue;
            }
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let fut = handle(state.clone(), req, peer);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
                gate.lock().expect("gate").release(ip);
            });
        }
    }))
}

/// Why a port could not be bound, with what to do when it is taken.
pub fn bind_error(what: &str, addr: SocketAddr, e: &std::io::Error) -> String {
    let mut msg = format!("binding {what} on {addr}: {e}");
    if e.kind() == std::io::ErrorKind::AddrInUse {
        msg.push_str(&format!(
            "; is another r58 running? (systemctl status r58; ss -lntup | grep :{})",
            addr.port()
        ));
    }
    msg
}

pub fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    Response::builder()
        .status(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

pub fn json(status: StatusCode, v: &serde_json::Value) -> Resp {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("static headers are valid")
}

pub fn empty(status: StatusCode) -> Resp {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("static response")
}

/// Why a body could not be read, as a ready response.
pub async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, Resp> {
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {} KiB", limit / 1024),
        ));
    }
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(req.into_body(), limit).collect());
    let Ok(read) = read.await else {
        return Err(text(
            StatusCode::REQUEST_TIMEOUT,
            format!("body not received within {} s", BODY_TIMEOUT.as_secs()),
        ));
    };
    match read {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {} KiB", limit / 1024),
        )),
        Err(e) => Err(text(StatusCode::BAD_REQUEST, format!("reading body: {e}"))),
    }
}

/// Does `origin` (e.g. `https://app.example.no`) match one of `patterns`?
/// `*` matches any run of characters within the origin (never a `/`), and
/// a trailing `:*` also matches an origin with no explicit port.
pub fn origin_allowed(origin: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        p == "*"
            || glob(p.as_bytes(), origin.as_bytes())
            || p.strip_suffix(":*")
                .is_some_and(|base| glob(base.as_bytes(), origin.as_bytes()))
    })
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len())
            .take_while(|&i| i == 0 || s[i - 1] != b'/')
            .any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_once_per_client_and_status_every_10_s() {
        let mut l = LogLimit::default();
        let t0 = Instant::now();
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        assert!(l.allow(a, StatusCode::UNAUTHORIZED, t0));
        assert!(!l.allow(a, StatusCode::UNAUTHORIZED, t0 + Duration::from_secs(9)));
        assert!(l.allow(a, StatusCode::NOT_ACCEPTABLE, t0), "another reason");
        assert!(l.allow(b, StatusCode::UNAUTHORIZED, t0), "another client");
        assert!(l.allow(a, StatusCode::UNAUTHORIZED, t0 + Duration::from_secs(10)));
    }

    #[test]
    fn one_source_cannot_take_every_connection_and_forwarders_leave_a_reserve() {
        let tunnel: crate::config::Cidr = "127.0.0.58".parse().unwrap();
        let mut g = Gate::new(Limits {
            max: 10,
            per_source: 3,
            reserve: 4,
            shared: vec![tunnel],
        });
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let t: IpAddr = "127.0.0.58".parse().unwrap();
        assert!((0..3).all(|_| g.admit(a)));
        assert!(!g.admit(a), "per-source cap");
        // The forwarder may fill up to max - reserve in all.
        assert!((0..3).all(|_| g.admit(t)));
        assert!(!g.admit(t), "the reserve stays for direct clients");
        let lan: Vec<IpAddr> = (2..6)
            .map(|i| format!("192.168.1.{i}").parse().unwrap())
            .collect();
        assert!(
            lan.iter().all(|ip| g.admit(*ip)),
            "direct clients use the reserve"
        );
        assert!(
            !g.admit("192.168.1.9".parse().unwrap()),
            "and then it is full"
        );
        g.release(a);
        assert!(g.admit(a), "a released slot is free again");
        for _ in 0..3 {
            g.release(t);
        }
        assert!(!g.by_source.contains_key(&t));
    }

    fn pats() -> Vec<String> {
        [
            "https://*.example.no",
            "http://localhost:*",
            "http://192.168.*.*:*",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn fleet_origin_patterns() {
        let p = pats();
        assert!(origin_allowed("https://app.example.no", &p));
        assert!(origin_allowed("https://a.b.example.no", &p));
        assert!(origin_allowed("http://localhost:5173", &p));
        assert!(origin_allowed("http://localhost", &p));
        assert!(origin_allowed("http://192.168.1.24:8080", &p));
        assert!(!origin_allowed("https://example.no", &p));
        assert!(
            !origin_allowed("http://app.example.no", &p),
            "scheme matters"
        );
        assert!(!origin_allowed("https://evil.com", &p));
        assert!(!origin_allowed("https://evil.com/x.example.no", &p));
        assert!(!origin_allowed("http://10.0.0.1:80", &p));
    }
}
