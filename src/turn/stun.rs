//! STUN messages as TURN uses them (RFC 8489, RFC 8656): the header, the
//! attributes a TURN client sends and reads, XOR-mangled addresses, and
//! MESSAGE-INTEGRITY with the long-term credential. ICE's own STUN is
//! str0m's; this is only the client's conversation with a TURN server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use aws_lc_rs::{constant_time, hmac};

pub const MAGIC: u32 = 0x2112_A442;
const HEADER: usize = 20;
const INTEGRITY_LEN: usize = 20;

/// The methods of RFC 8656 a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Allocate = 0x003,
    Refresh = 0x004,
    Send = 0x006,
    Data = 0x007,
    ChannelBind = 0x009,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// Attribute types (RFC 8489 §18.3, RFC 8656 §18).
pub mod attr {
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
}

pub type TxId = [u8; 12];

/// A message being built: attributes are appended in order, integrity last.
pub struct Builder {
    buf: Vec<u8>,
    tx: TxId,
}

impl Builder {
    pub fn new(method: Method, class: Class, tx: TxId) -> Builder {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&message_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC.to_be_bytes());
        buf.extend_from_slice(&tx);
        Builder { buf, tx }
    }

    pub fn attr(mut self, kind: u16, value: &[u8]) -> Builder {
        self.buf.extend_from_slice(&kind.to_be_bytes());
        self.buf
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
        self
    }

    pub fn u32(self, kind: u16, v: u32) -> Builder {
        self.attr(kind, &v.to_be_bytes())
    }

    pub fn addr(self, kind: u16, a: SocketAddr) -> Builder {
        let v = xor_addr(a, &self.tx);
        self.attr(kind, &v)
    }

    /// USERNAME, REALM, NONCE and MESSAGE-INTEGRITY, when authenticated.
    pub fn finish(mut self, auth: Option<&Auth>) -> Vec<u8> {
        if let Some(a) = auth {
            self = self
                .attr(attr::USERNAME, a.username.as_bytes())
                .attr(attr::REALM, a.realm.as_bytes())
                .attr(attr::NONCE, a.nonce.as_bytes());
            // The length covers the integrity attribute while it is computed.
            let len = self.buf.len() - HEADER + 4 + INTEGRITY_LEN;
            self.set_len(len);
            let tag = a.sign(&self.buf);
            self = self.attr(attr::MESSAGE_INTEGRITY, &tag);
        }
        let len = self.buf.len() - HEADER;
        self.set_len(len);
        self.buf
    }

    fn set_len(&mut self, len: usize) {
        self.buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    }
}

/// The long-term credential (RFC 8489 §9.2): key = MD5(user:realm:pass).
#[derive(Clone)]
pub struct Auth {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    key: [u8; 16],
}

impl Auth {
    pub fn new(username: &str, password: &str, realm: &str, nonce: &str) -> Auth {
        let key = crate::md5::digest(format!("{username}:{realm}:{password}").as_bytes());
        Auth {
            username: username.into(),
            realm: realm.into(),
            nonce: nonce.into(),
            key,
        }
    }

    /// The same credential under the server's new nonce (438).
    pub fn with_nonce(&self, nonce: String) -> Auth {
        Auth {
            nonce,
            ..self.clone()
        }
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.key);
        hmac::sign(&k, data).as_ref().to_vec()
    }

    /// Does `m` (a response) carry a valid MESSAGE-INTEGRITY for this key?
    pub fn verifies(&self, m: &Message) -> bool {
        let Some(at) = m.integrity_at else {
            return false;
        };
        let mut head = m.raw[..at].to_vec();
        let len = (at - HEADER + 4 + INTEGRITY_LEN) as u16;
        head[2..4].copy_from_slice(&len.to_be_bytes());
        let want = self.sign(&head);
        m.get(attr::MESSAGE_INTEGRITY)
            .is_some_and(|got| constant_time::verify_slices_are_equal(got, &want).is_ok())
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Auth({}@{})", self.username, self.realm)
    }
}

/// A parsed message: its type, transaction and attributes (in order).
#[derive(Debug)]
pub struct Message {
    pub method: u16,
    pub class: Class,
    pub tx: TxId,
    attrs: Vec<(u16, std::ops::Range<usize>)>,
    raw: Vec<u8>,
    /// Where MESSAGE-INTEGRITY starts: what it signs ends there.
    integrity_at: Option<usize>,
}

impl Message {
    /// A STUN message, or None for anything else (ChannelData, garbage).
    pub fn parse(data: &[u8]) -> Option<Message> {
        if data.len() < HEADER || data[0] & 0xC0 != 0 {
            return None;
        }
        let ty = u16::from_be_bytes([data[0], data[1]]);
        let len = u16::from_be_bytes([data[2], data[3]]) as usize;
        if u32::from_be_bytes(data[4..8].try_into().ok()?) != MAGIC
            || !len.is_multiple_of(4)
            || HEADER + len > data.len()
        {
            return None;
        }
        let raw = data[..HEADER + len].to_vec();
        let mut attrs = Vec::new();
        let mut integrity_at = None;
        let mut at = HEADER;
        while at + 4 <= raw.len() {
            let kind = u16::from_be_bytes([raw[at], raw[at + 1]]);
            let n = u16::from_be_bytes([raw[at + 2], raw[at + 3]]) as usize;
            let v = at + 4..at + 4 + n;
            if v.end > raw.len() {
                return None;
            }
            if kind == attr::MESSAGE_INTEGRITY && integrity_at.is_none() {
                integrity_at = Some(at);
            }
            // Only FINGERPRINT may follow the integrity (RFC 8489 §14.5).
            if integrity_at.is_none() || kind == attr::MESSAGE_INTEGRITY {
                attrs.push((kind, v));
            }
            at += 4 + n.div_ceil(4) * 4;
        }
        let class = match ty & 0x0110 {
            0x0000 => Class::Request,
            0x0010 => Class::Indication,
            0x0100 => Class::Success,
            _ => Class::Error,
        };
        let method = (ty & 0x000F) | ((ty & 0x00E0) >> 1) | ((ty & 0x3E00) >> 2);
        Some(Message {
            method,
            class,
            tx: raw[8..20].try_into().ok()?,
            attrs,
            raw,
            integrity_at,
        })
    }

    pub fn is(&self, m: Method, c: Class) -> bool {
        self.method == m as u16 && self.class == c
    }

    pub fn get(&self, kind: u16) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, r)| &self.raw[r.clone()])
    }

    pub fn text(&self, kind: u16) -> Option<String> {
        self.get(kind)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn u32(&self, kind: u16) -> Option<u32> {
        Some(u32::from_be_bytes(
            self.get(kind)?.get(..4)?.try_into().ok()?,
        ))
    }

    pub fn addr(&self, kind: u16) -> Option<SocketAddr> {
        unxor_addr(self.get(kind)?, &self.tx)
    }

    /// ERROR-CODE as (code, reason).
    pub fn error(&self) -> Option<(u16, String)> {
        let v = self.get(attr::ERROR_CODE)?;
        let code = u16::from(*v.get(2)? & 0x7) * 100 + u16::from(*v.get(3)?);
        Some((code, String::from_utf8_lossy(&v[4..]).into_owned()))
    }
}

/// The 14-bit type: method bits around the two class bits (RFC 8489 §5).
fn message_type(m: Method, c: Class) -> u16 {
    let m = m as u16;
    let c = match c {
        Class::Request => 0x0000,
        Class::Indication => 0x0010,
        Class::Success => 0x0100,
        Class::Error => 0x0110,
    };
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | c
}

fn xor_addr(a: SocketAddr, tx: &TxId) -> Vec<u8> {
    let port = a.port() ^ (MAGIC >> 16) as u16;
    let mut v = vec![0];
    match a.ip() {
        IpAddr::V4(ip) => {
            v.push(1);
            v.extend_from_slice(&port.to_be_bytes());
            v.extend_from_slice(&(u32::from(ip) ^ MAGIC).to_be_bytes());
        }
        IpAddr::V6(ip) => {
            v.push(2);
            v.extend_from_slice(&port.to_be_bytes());
            let pad = xor_pad(tx);
            v.extend(ip.octets().iter().zip(pad).map(|(a, b)| a ^ b));
        }
    }
    v
}

fn unxor_addr(v: &[u8], tx: &TxId) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]) ^ (MAGIC >> 16) as u16;
    let ip = match v.get(1)? {
        1 => IpAddr::V4(Ipv4Addr::from(
            u32::from_be_bytes(v.get(4..8)?.try_into().ok()?) ^ MAGIC,
        )),
        2 => {
            let mut o = [0u8; 16];
            for (i, (a, b)) in v.get(4..20)?.iter().zip(xor_pad(tx)).enumerate() {
                o[i] = a ^ b;
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// IPv6 addresses are XORed with the magic cookie and the transaction id.
fn xor_pad(tx: &TxId) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..4].copy_from_slice(&MAGIC.to_be_bytes());
    p[4..].copy_from_slice(tx);
    p
}

/// A ChannelData message (RFC 8656 §12.4): channel, length, data, padded.
pub fn channel_data(channel: u16, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + data.len() + 3);
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

/// The channel and payload of a ChannelData message.
pub fn parse_channel_data(data: &[u8]) -> Option<(u16, &[u8])> {
    if data.len() < 4 || !(0x40..0x50).contains(&data[0]) {
        return None;
    }
    let ch = u16::from_be_bytes([data[0], data[1]]);
    let n = u16::from_be_bytes([data[2], data[3]]) as usize;
    Some((ch, data.get(4..4 + n)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_through_the_interleaved_bits() {
        // RFC 8656: Allocate request 0x0003, success 0x0103, error 0x0113;
        // Send indication 0x0016, Data indication 0x0017.
        assert_eq!(message_type(Method::Allocate, Class::Request), 0x0003);
        assert_eq!(message_type(Method::Allocate, Class::Success), 0x0103);
        assert_eq!(message_type(Method::Allocate, Class::Error), 0x0113);
        assert_eq!(message_type(Method::Send, Class::Indication), 0x0016);
        assert_eq!(message_type(Method::ChannelBind, Class::Success), 0x0109);
        let m =
            Message::parse(&Builder::new(Method::Data, Class::Indication, [7; 12]).finish(None))
                .unwrap();
        assert!(m.is(Method::Data, Class::Indication));
        assert_eq!(m.tx, [7; 12]);
    }

    #[test]
    fn xor_addresses_round_trip_for_both_families() {
        for a in ["192.0.2.1:32853", "[2001:db8::1]:443"] {
            let a: SocketAddr = a.parse().unwrap();
            let raw = Builder::new(Method::Send, Class::Indication, [3; 12])
                .addr(attr::XOR_PEER_ADDRESS, a)
                .finish(None);
            let m = Message::parse(&raw).unwrap();
            assert_eq!(m.addr(attr::XOR_PEER_ADDRESS), Some(a));
        }
        // RFC 5769 §2.2's response: 192.0.2.1:32853 as XOR-MAPPED-ADDRESS.
        let v = [0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43];
        assert_eq!(
            unxor_addr(&v, &[0; 12]),
            Some("192.0.2.1:32853".parse().unwrap())
        );
    }

    #[test]
    fn integrity_signs_what_the_server_checks_and_detects_tampering() {
        let auth = Auth::new("user", "pass", "realm", "nonce");
        let raw = Builder::new(Method::Allocate, Class::Request, [1; 12])
            .u32(attr::REQUESTED_TRANSPORT, 17 << 24)
            .finish(Some(&auth));
        let m = Message::parse(&raw).unwrap();
        assert_eq!(m.text(attr::USERNAME).as_deref(), Some("user"));
        assert!(auth.verifies(&m));
        assert!(!Auth::new("user", "other", "realm", "nonce").verifies(&m));
        let mut bad = raw.clone();
        bad[27] ^= 1; // inside REQUESTED-TRANSPORT
        assert!(!auth.verifies(&Message::parse(&bad).unwrap()));
    }

    #[test]
    fn error_codes_and_channel_data_are_read() {
        let raw = Builder::new(Method::Allocate, Class::Error, [2; 12])
            .attr(attr::ERROR_CODE, b"\0\0\x04\x01Unauthorized")
            .finish(None);
        let m = Message::parse(&raw).unwrap();
        assert_eq!(m.error(), Some((401, "Unauthorized".into())));
        let cd = channel_data(0x4001, b"abcde");
        assert_eq!(cd.len(), 12);
        assert_eq!(parse_channel_data(&cd), Some((0x4001, &b"abcde"[..])));
        assert!(Message::parse(&cd).is_none());
        assert!(parse_channel_data(&raw).is_none());
    }
}
