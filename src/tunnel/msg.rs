//! frp's messages and their framing: v1's one ASCII type byte, a
//! big-endian i64 body length and compact JSON, or v2's 8-byte frame
//! header and u16 message id before the same JSON (`v2.rs`). Field order
//! and omitted empties follow Go's `encoding/json` on frp's structs, so
//! the bytes we write equal the ones stock frpc writes (checked against
//! recordings).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// frp refuses bodies longer than this.
pub const MAX_BODY: usize = 10240;
const HEADER: usize = 9;

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Login {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arch: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub privilege_key: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub timestamp: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metas: BTreeMap<String, String>,
    /// Go never omits a struct: always `{}` for us.
    pub client_spec: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "is_zero")]
    pub pool_count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoginResp {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewProxy {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_type: String,
    #[serde(skip_serializing_if = "is_false")]
    pub use_encryption: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub use_compression: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metas: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub remote_port: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewProxyResp {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_addr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CloseProxy {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
}

/// Also the shape of Ping: auth fields only with the matching scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewWorkConn {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub privilege_key: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub timestamp: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ping {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub privilege_key: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub timestamp: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StartWorkConn {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub src_addr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dst_addr: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub src_port: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub dst_port: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// Pong, and any reply that only carries an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pong {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// One datagram of a udp proxy, on its work connection. Go's JSON for
/// `[]byte` is base64 and for `*net.UDPAddr` is `{"IP","Port","Zone"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UdpPacket {
    #[serde(rename = "c", skip_serializing_if = "String::is_empty")]
    pub content: String,
    #[serde(rename = "l", skip_serializing_if = "Option::is_none")]
    pub local_addr: Option<UdpAddr>,
    #[serde(rename = "r", skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<UdpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UdpAddr {
    #[serde(rename = "IP")]
    pub ip: String,
    #[serde(rename = "Port")]
    pub port: i64,
    #[serde(rename = "Zone")]
    pub zone: String,
}

impl UdpAddr {
    pub fn from_socket(a: std::net::SocketAddr) -> UdpAddr {
        UdpAddr {
            ip: a.ip().to_canonical().to_string(),
            port: a.port() as i64,
            zone: String::new(),
        }
    }

    pub fn to_socket(&self) -> Option<std::net::SocketAddr> {
        let ip: std::net::IpAddr = self.ip.parse().ok()?;
        Some(std::net::SocketAddr::new(
            ip,
            u16::try_from(self.port).ok()?,
        ))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Login(Login),
    LoginResp(LoginResp),
    NewProxy(NewProxy),
    NewProxyResp(NewProxyResp),
    CloseProxy(CloseProxy),
    NewWorkConn(NewWorkConn),
    ReqWorkConn,
    StartWorkConn(StartWorkConn),
    Ping(Ping),
    Pong(Pong),
    UdpPacket(UdpPacket),
    /// A registered type we have no use for (visitors, NAT hole punching);
    /// decoded so the stream stays in sync, then ignored.
    Other(u8),
}

/// Every type byte frp registers; anything else is a protocol error.
/// In this order, their v2 message ids are 1, 2, 3...
const KNOWN: &[u8] = b"o1p2cwrsv3h4uinm56";

/// Which of frp's wire protocols frames the messages of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wire {
    #[default]
    V1,
    V2,
}

impl Wire {
    pub fn name(self) -> &'static str {
        match self {
            Wire::V1 => "v1",
            Wire::V2 => "v2",
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum DecodeError {
    UnknownType(u8),
    BadLength(i64),
    BadJson(u8, String),
    /// A v2 frame that is not a message where one was due, or malformed.
    BadFrame(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::UnknownType(t) => write!(f, "unknown frp message type 0x{t:02x}"),
            DecodeError::BadLength(n) => write!(f, "frp message length {n} out of range"),
            DecodeError::BadJson(t, e) => write!(f, "bad frp message '{}': {e}", *t as char),
            DecodeError::BadFrame(e) => write!(f, "bad frp v2 frame: {e}"),
        }
    }
}

impl Message {
    pub fn type_byte(&self) -> u8 {
        match self {
            Message::Login(_) => b'o',
            Message::LoginResp(_) => b'1',
            Message::NewProxy(_) => b'p',
            Message::NewProxyResp(_) => b'2',
            Message::CloseProxy(_) => b'c',
            Message::NewWorkConn(_) => b'w',
            Message::ReqWorkConn => b'r',
            Message::StartWorkConn(_) => b's',
            Message::Ping(_) => b'h',
            Message::Pong(_) => b'4',
            Message::UdpPacket(_) => b'u',
            Message::Other(t) => *t,
        }
    }

    /// The v2 message id.
    pub fn v2_id(&self) -> u16 {
        KNOWN
            .iter()
            .position(|&t| t == self.type_byte())
            .map_or(0, |i| i as u16 + 1)
    }

    /// A v2 message payload (id, JSON) back to a message.
    pub fn from_v2(payload: &[u8]) -> Result<Message, DecodeError> {
        let [a, b, body @ ..] = payload else {
            return Err(DecodeError::BadFrame("a message without its id".into()));
        };
        let id = u16::from_be_bytes([*a, *b]) as usize;
        let t = *KNOWN
            .get(id.wrapping_sub(1))
            .ok_or_else(|| DecodeError::BadFrame(format!("unknown message id {id}")))?;
        Message::decode(t, body)
    }

    /// The message framed for `wire`.
    pub fn frame(&self, wire: Wire) -> Vec<u8> {
        match wire {
            Wire::V1 => self.encode(),
            Wire::V2 => super::v2::message_frame(self),
        }
    }

    pub(super) fn body(&self) -> Vec<u8> {
        let r = match self {
            Message::Login(m) => serde_json::to_vec(m),
            Message::LoginResp(m) => serde_json::to_vec(m),
            Message::NewProxy(m) => serde_json::to_vec(m),
            Message::NewProxyResp(m) => serde_json::to_vec(m),
            Message::CloseProxy(m) => serde_json::to_vec(m),
            Message::NewWorkConn(m) => serde_json::to_vec(m),
            Message::StartWorkConn(m) => serde_json::to_vec(m),
            Message::Ping(m) => serde_json::to_vec(m),
            Message::Pong(m) => serde_json::to_vec(m),
            Message::UdpPacket(m) => serde_json::to_vec(m),
            Message::ReqWorkConn | Message::Other(_) => Ok(b"{}".to_vec()),
        };
        r.expect("frp messages always serialise")
    }

    /// The full v1 frame.
    pub fn encode(&self) -> Vec<u8> {
        let body = self.body();
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.push(self.type_byte());
        out.extend_from_slice(&(body.len() as i64).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode(t: u8, body: &[u8]) -> Result<Message, DecodeError> {
        fn j<T: for<'a> Deserialize<'a>>(t: u8, b: &[u8]) -> Result<T, DecodeError> {
            serde_json::from_slice(b).map_err(|e| DecodeError::BadJson(t, e.to_string()))
        }
        Ok(match t {
            b'o' => Message::Login(j(t, body)?),
            b'1' => Message::LoginResp(j(t, body)?),
            b'p' => Message::NewProxy(j(t, body)?),
            b'2' => Message::NewProxyResp(j(t, body)?),
            b'c' => Message::CloseProxy(j(t, body)?),
            b'w' => Message::NewWorkConn(j(t, body)?),
            b'r' => Message::ReqWorkConn,
            b's' => Message::StartWorkConn(j(t, body)?),
            b'h' => Message::Ping(j(t, body)?),
            b'4' => Message::Pong(j(t, body)?),
            b'u' => Message::UdpPacket(j(t, body)?),
            t if KNOWN.contains(&t) => Message::Other(t),
            t => return Err(DecodeError::UnknownType(t)),
        })
    }
}

/// Reassembles frames from arbitrary pieces; leftover bytes after a frame
/// stay buffered (the server never waits for us, so a LoginResp, the IV
/// and ciphertext can share one read).
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
    wire: Wire,
}

impl Decoder {
    pub fn new(wire: Wire) -> Decoder {
        Decoder {
            buf: Vec::new(),
            wire,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole v2 frame (type, payload), hellos included.
    pub fn next_frame(&mut self) -> Result<Option<(u16, Vec<u8>)>, DecodeError> {
        super::v2::next_frame(&mut self.buf)
    }

    /// The next whole message, if one is buffered. Not an `Iterator`: a
    /// decode error is an answer of its own, not the end.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Message>, DecodeError> {
        if self.wire == Wire::V2 {
            return match self.next_frame()? {
                Some((super::v2::MESSAGE, payload)) => Message::from_v2(&payload).map(Some),
                Some((t, _)) => Err(DecodeError::BadFrame(format!("frame type {t} here"))),
                None => Ok(None),
            };
        }
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let t = self.buf[0];
        if !KNOWN.contains(&t) {
            return Err(DecodeError::UnknownType(t));
        }
        let len = i64::from_be_bytes(self.buf[1..HEADER].try_into().unwrap());
        if !(0..=MAX_BODY as i64).contains(&len) {
            return Err(DecodeError::BadLength(len));
        }
        let end = HEADER + len as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        let msg = Message::decode(t, &self.buf[HEADER..end]);
        self.buf.drain(..end);
        msg.map(Some)
    }

    /// Bytes received after the last whole frame (e.g. the peer's IV).
    pub fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::crypto::unhex;
    use crate::tunnel::vectors;

    #[test]
    fn every_recorded_message_decodes_and_reencodes_byte_for_byte() {
        let mut n = 0;
        for (name, v) in vectors::all() {
            for item in v["decoded"].as_array().unwrap() {
                if item["kind"] != "frp_msg" {
                    continue;
                }
                let frame = unhex(item["frame_hex"].as_str().unwrap());
                let mut d = Decoder::default();
                // One byte at a time: framing must not depend on reads.
                let mut got = None;
                for b in &frame {
                    d.feed(&[*b]);
                    if let Some(m) = d.next().unwrap() {
                        got = Some(m);
                    }
                }
                let msg = got.unwrap_or_else(|| panic!("{name}: no message from {frame:?}"));
                assert_eq!(
                    msg.type_byte(),
                    item["type_hex"].as_str().map(unhex).unwrap()[0]
                );
                let show = |b: &[u8]| String::from_utf8_lossy(&b[9..]).into_owned();
                assert_eq!(show(&msg.encode()), show(&frame), "{name} {}", item["name"]);
                assert_eq!(msg.encode(), frame);
                n += 1;
            }
        }
        assert!(n > 60, "only {n} recorded messages");
    }

    #[test]
    fn limits_are_enforced() {
        let mut d = Decoder::default();
        d.feed(b"x\0\0\0\0\0\0\0\x02{}");
        assert_eq!(d.next(), Err(DecodeError::UnknownType(b'x')));
        let mut d = Decoder::default();
        d.feed(&[b'r', 0, 0, 0, 0, 0, 0, 0x28, 1]);
        assert_eq!(d.next(), Err(DecodeError::BadLength(10241)));
        let mut d = Decoder::default();
        d.feed(b"r\0\0\0\0\0\0\0\x02{}rest");
        assert_eq!(d.next(), Ok(Some(Message::ReqWorkConn)));
        assert_eq!(d.next(), Ok(None));
        assert_eq!(d.take_rest(), b"rest");
    }

    #[test]
    fn udp_packet_has_go_field_names() {
        // What frpc writes for a reply to 203.0.113.7:5000 (Go omits `l`).
        let go = br#"{"c":"aGk=","r":{"IP":"203.0.113.7","Port":5000,"Zone":""}}"#;
        let mut d = Decoder::default();
        d.feed(b"u\0\0\0\0\0\0\0");
        d.feed(&[go.len() as u8]);
        d.feed(go);
        let Some(Message::UdpPacket(p)) = d.next().unwrap() else {
            panic!("not a UDPPacket");
        };
        assert_eq!(p.content, "aGk=");
        let r = p.remote_addr.as_ref().unwrap();
        assert_eq!(r.to_socket(), Some("203.0.113.7:5000".parse().unwrap()));
        assert_eq!(&Message::UdpPacket(p).encode()[9..], go);
        let v6 = UdpAddr::from_socket("[::ffff:10.0.0.1]:9".parse().unwrap());
        assert_eq!(v6.ip, "10.0.0.1");
        let bad = UdpAddr {
            ip: "x".into(),
            port: 1,
            zone: String::new(),
        };
        assert_eq!(bad.to_socket(), None);
    }
}
