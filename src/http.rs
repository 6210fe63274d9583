//! Small HTTP/1.1 plumbing shared by the WHEP server and the API: serving a
//! listener with hyper, building responses, CORS origin patterns.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::error::{Context, Result};

pub type Resp = Response<Full<Bytes>>;

/// Bind `addr` and serve every connection with `handle` on its own task.
pub async fn serve<S, F>(
    addr: SocketAddr,
    what: &'static str,
    state: Arc<S>,
    handle: fn(Arc<S>, Request<Incoming>, SocketAddr) -> F,
) -> Result<tokio::task::JoinHandle<()>>
where
    S: Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} on {addr}"))?;
    log::info!(
        "{what}: listening on http://{}",
        listener.local_addr().context("local address")?
    );
    Ok(tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    log::warn!("{what}: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let fut = handle(state.clone(), req, peer);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    }))
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
    match Limited::new(req.into_body(), limit).collect().await {
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
