//! One HTTP/1.1 request to a WHIP endpoint, over TCP or TLS (rustls on
//! aws-lc-rs, the system's CA bundle), with a deadline. hyper does the
//! framing; nothing here knows about WHIP.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use crate::config::auth::Secret;
use crate::config::forward::Url;

/// Where Debian, Yocto and most distributions keep the CA bundle.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// A request and its reply, whole.
const DEADLINE: Duration = Duration::from_secs(10);
/// An answer SDP is a few KB; an error page should not be megabytes.
const BODY_MAX: usize = 256 * 1024;

pub struct Response {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

/// A TLS client trusting the system's CA bundle (read once per forward,
/// so a bundle updated by an OTA is picked up at the next start).
pub fn tls() -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    if let Ok(certs) = CertificateDer::pem_file_iter(CA_BUNDLE) {
        for c in certs.flatten() {
            let _ = roots.add(c);
        }
    }
    if roots.is_empty() {
        return Err(format!("no CA certificates in {CA_BUNDLE}"));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// `method url` with an optional SDP body. Errors say what failed, never
/// the token.
pub async fn request(
    method: &str,
    url: &Url,
    token: Option<&Secret>,
    content_type: Option<&str>,
    body: String,
) -> Result<Response, String> {
    let at = url.authority();
    // The whole exchange, connect to last body byte, under one deadline.
    let exchange = async {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| format!("connecting to {at}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let mut req = Request::builder()
            .method(method)
            .uri(&url.target)
            .header("host", &at)
            .header("user-agent", concat!("r58/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {}", t.expose()));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| format!("{method} to {at}: not a valid request"))?;
        if url.https {
            let name = ServerName::try_from(url.host.clone())
                .map_err(|_| format!("{}: not a valid TLS server name", url.host))?;
            let stream = tls()?
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {at}: {e}"))?;
            send(TokioIo::new(stream), req, &at).await
        } else {
            send(TokioIo::new(tcp), req, &at).await
        }
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no reply from {at} within {DEADLINE:?}")))
}

async fn send<S>(io: S, req: Request<Full<Bytes>>, at: &str) -> Result<Response, String>
where
    S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut tx, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP with {at}: {e}"))?;
    let conn = tokio::spawn(conn);
    let res = tx
        .send_request(req)
        .await
        .map_err(|e| format!("HTTP with {at}: {e}"))?;
    let status = res.status().as_u16();
    let (parts, body) = res.into_parts();
    let body = Limited::new(body, BODY_MAX)
        .collect()
        .await
        .map_err(|e| format!("reading the reply from {at}: {e}"))?
        .to_bytes();
    conn.abort();
    Ok(Response {
        status,
        headers: parts.headers,
        body,
    })
}
