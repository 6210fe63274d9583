//! A blocking HTTP/1.1 client for the CLI (`status`, `doctor`): one request
//! per connection to the daemon on this box, so no async runtime and no
//! HTTP library are needed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::error::{Context, Error, Result};

pub struct Response {
    pub status: u16,
    head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Where to reach a local listener: `0.0.0.0:p` means loopback.
pub fn loopback(mut listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        listen.set_ip([127, 0, 0, 1].into());
    }
    listen
}

/// Send one request and read the whole answer (the server closes).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .context("setting a read timeout")?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes())
        .and_then(|_| s.write_all(body))
        .with_context(|| format!("sending {method} {path} to {addr}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .with_context(|| format!("reading the answer to {method} {path} from {addr}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| Error::new(format!("malformed HTTP answer from {addr}")))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| Error::new(format!("malformed HTTP status line from {addr}")))?;
    // r58's server always sends whole bodies with Content-Length.
    let body = raw[split + 4..].to_vec();
    Ok(Response { status, head, body })
}

/// GET a JSON document; anything but 200 is an error naming the status.
pub fn get_json(addr: SocketAddr, path: &str) -> Result<Value> {
    let r = request(addr, "GET", path, None, b"")?;
    if r.status != 200 {
        return Err(Error::new(format!("GET {path}: HTTP {}", r.status)));
    }
    serde_json::from_slice(&r.body).map_err(|e| Error::new(format!("bad JSON from {path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_case_insensitive() {
        let r = Response {
            status: 201,
            head: "HTTP/1.1 201 Created\r\nLocation: /cam0/whep/ab\r\nX: y".into(),
            body: vec![],
        };
        assert_eq!(r.header("location"), Some("/cam0/whep/ab"));
        assert_eq!(r.header("missing"), None);
    }
}
