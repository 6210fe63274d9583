//! frp's wire protocol v2 (frps ≥ 0.69), the sans-IO part: the magic that
//! opens every stream, the 8-byte frame header, the hellos that pick an
//! AEAD algorithm, and the control channel that is encrypted with it from
//! LoginResp on (`aead.rs`). Work streams are the magic and a plaintext
//! NewWorkConn frame, then raw bytes as in v1.
//!
//! Both ends are here: the client is r58's tunnel, the server is the test
//! frps. Stock frpc 0.70's bytes (`tests/frp-vectors-v2/`) pin them.

use base64ct::{Base64, Encoding};

use super::aead::{self, Algorithm, Direction, Opener, Sealer};
use super::msg::{DecodeError, Decoder, Message, Wire};
use super::wire::ControlWire;

/// Opens every v2 control and work stream: "FRP\0", version 2, CRLF.
pub const MAGIC: &[u8; 7] = b"FRP\x00\x02\r\n";
pub const CLIENT_HELLO: u16 = 1;
pub const SERVER_HELLO: u16 = 2;
pub const MESSAGE: u16 = 16;
const HEADER: usize = 8;
const MAX_FRAME: usize = 65536;

pub fn frame(t: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&t.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A message frame: id, then the same JSON as v1.
pub fn message_frame(m: &Message) -> Vec<u8> {
    let mut payload = m.v2_id().to_be_bytes().to_vec();
    payload.extend(m.body());
    frame(MESSAGE, &payload)
}

/// A work stream's first bytes: the magic and the NewWorkConn frame.
pub fn work_hello(new_work_conn: &Message) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend(message_frame(new_work_conn));
    out
}

/// Takes the next whole frame off the front of `buf`.
pub fn next_frame(buf: &mut Vec<u8>) -> Result<Option<(u16, Vec<u8>)>, DecodeError> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let t = u16::from_be_bytes([buf[0], buf[1]]);
    let flags = u16::from_be_bytes([buf[2], buf[3]]);
    let len = u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes")) as usize;
    if flags != 0 || len > MAX_FRAME {
        return Err(DecodeError::BadFrame(format!(
            "type {t}, flags {flags}, length {len}"
        )));
    }
    if buf.len() < HEADER + len {
        return Ok(None);
    }
    let payload = buf[HEADER..HEADER + len].to_vec();
    buf.drain(..HEADER + len);
    Ok(Some((t, payload)))
}

/// What stock frpc's ClientHello says, byte for byte (false flags are
/// left out, as Go's omitempty does).
pub fn client_hello(tls: bool, mux: bool, algs: &[Algorithm], random: &[u8; 32]) -> Vec<u8> {
    let mut boot = r#""transport":"tcp""#.to_string();
    if tls {
        boot.push_str(r#","tls":true"#);
    }
    if mux {
        boot.push_str(r#","tcpMux":true"#);
    }
    let names: Vec<String> = algs.iter().map(|a| format!("\"{}\"", a.name())).collect();
    format!(
        r#"{{"bootstrap":{{{boot}}},"capabilities":{{"message":{{"codecs":["json"]}},"crypto":{{"algorithms":[{}],"clientRandom":"{}"}}}}}}"#,
        names.join(","),
        Base64::encode_string(random)
    )
    .into_bytes()
}

pub fn server_hello(alg: Algorithm, random: &[u8; 32]) -> Vec<u8> {
    format!(
        r#"{{"selected":{{"message":{{"codec":"json"}},"crypto":{{"algorithm":"{}","serverRandom":"{}"}}}}}}"#,
        alg.name(),
        Base64::encode_string(random)
    )
    .into_bytes()
}

fn random32() -> [u8; 32] {
    let mut r = [0u8; 32];
    aws_lc_rs::rand::fill(&mut r).expect("the system RNG");
    r
}

fn json(payload: &[u8], what: &str) -> Result<serde_json::Value, String> {
    serde_json::from_slice(payload).map_err(|e| format!("frps's v2 {what}: {e}"))
}

/// The algorithm the server picked, or the error it gave.
fn selected(server_hello: &[u8], offered: &[Algorithm]) -> Result<Algorithm, String> {
    let v = json(server_hello, "ServerHello")?;
    if let Some(e) = v["error"].as_str().filter(|e| !e.is_empty()) {
        return Err(format!("frps refused the v2 hello: {e}"));
    }
    let name = v["selected"]["crypto"]["algorithm"].as_str().unwrap_or("");
    Algorithm::from_name(name)
        .filter(|a| offered.contains(a))
        .ok_or_else(|| format!("frps chose an algorithm r58 did not offer: '{name}'"))
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Client,
    Server,
}

/// One control stream in v2, either end. Until the server's successful
/// LoginResp, frames are plaintext; from then on each direction is an
/// AEAD stream keyed by the token and both hellos.
pub struct V2 {
    role: Role,
    token: String,
    /// The client's offer (client) or what the server supports (server).
    algs: Vec<Algorithm>,
    /// Our hello frame, written before our first message.
    hello_out: Option<Vec<u8>>,
    our_hello: Vec<u8>,
    /// Bytes until the magic has been checked (server).
    magic: Option<Vec<u8>>,
    frames: Decoder,
    alg: Option<Algorithm>,
    keys: Option<([u8; 32], [u8; 32])>,
    sealer: Option<Sealer>,
    opener: Option<Opener>,
}

impl V2 {
    /// r58's end: offers `algs`, best first.
    pub fn client(token: &str, tls: bool, mux: bool, algs: &[Algorithm]) -> V2 {
        Self::client_with(token, client_hello(tls, mux, algs, &random32()), algs)
    }

    fn client_with(token: &str, hello: Vec<u8>, algs: &[Algorithm]) -> V2 {
        let mut out = MAGIC.to_vec();
        out.extend(frame(CLIENT_HELLO, &hello));
        V2 {
            role: Role::Client,
            token: token.into(),
            algs: algs.to_vec(),
            hello_out: Some(out),
            our_hello: hello,
            magic: None,
            frames: Decoder::new(Wire::V2),
            alg: None,
            keys: None,
            sealer: None,
            opener: None,
        }
    }

    /// frps's end (the magic not yet read), supporting `algs`.
    pub fn server(token: &str, algs: &[Algorithm]) -> V2 {
        V2 {
            role: Role::Server,
            magic: Some(Vec::new()),
            hello_out: None,
            our_hello: Vec::new(),
            ..Self::client_with(token, Vec::new(), algs)
        }
    }

    /// Both hellos known: the algorithm and the two directions' keys.
    fn keyed(&mut self, alg: Algorithm, client_hello: &[u8], server_hello: &[u8]) {
        let t = aead::transcript(client_hello, server_hello);
        let c2s = aead::derive_key(&self.token, &t, alg, Direction::ClientToServer);
        let s2c = aead::derive_key(&self.token, &t, alg, Direction::ServerToClient);
        let (ours, theirs) = match self.role {
            Role::Client => (c2s, s2c),
            Role::Server => (s2c, c2s),
        };
        self.alg = Some(alg);
        self.keys = Some((ours, theirs));
    }

    fn secure_out(&mut self) {
        if let (Some(alg), Some((ours, _))) = (self.alg, self.keys) {
            self.sealer = Some(Sealer::new(alg, ours));
        }
    }

    /// The peer's direction is AEAD from here; `rest` is already its.
    fn secure_in(&mut self) -> Result<Vec<u8>, String> {
        let (Some(alg), Some((_, theirs))) = (self.alg, self.keys) else {
            return Err("frps sent LoginResp before its ServerHello".into());
        };
        let mut o = Opener::new(alg, theirs);
        let plain = o.open(&self.frames.take_rest())?;
        self.opener = Some(o);
        Ok(plain)
    }

    /// A hello from the peer.
    fn on_hello(&mut self, t: u16, payload: Vec<u8>) -> Result<(), String> {
        match (self.role, t) {
            (Role::Client, SERVER_HELLO) => {
                let alg = selected(&payload, &self.algs)?;
                let ours = self.our_hello.clone();
                self.keyed(alg, &ours, &payload);
            }
            (Role::Server, CLIENT_HELLO) => {
                let v = json(&payload, "ClientHello")?;
                let offered = v["capabilities"]["crypto"]["algorithms"].as_array();
                let alg = offered
                    .into_iter()
                    .flatten()
                    .filter_map(|a| Algorithm::from_name(a.as_str()?))
                    .find(|a| self.algs.contains(a))
                    .ok_or("no AEAD algorithm in common")?;
                let sh = server_hello(alg, &random32());
                self.hello_out = Some(frame(SERVER_HELLO, &sh));
                self.keyed(alg, &payload, &sh);
            }
            _ => return Err(format!("unexpected v2 frame type {t}")),
        }
        Ok(())
    }
}

impl ControlWire for V2 {
    fn seal(&mut self, m: &Message) -> Vec<u8> {
        let mut out = self.hello_out.take().unwrap_or_default();
        let f = message_frame(m);
        match &mut self.sealer {
            Some(s) => out.extend(s.seal(&f)),
            None => out.extend(f),
        }
        // The server's own successful LoginResp: what follows is sealed.
        if self.role == Role::Server && matches!(m, Message::LoginResp(r) if r.error.is_empty()) {
            self.secure_out();
        }
        out
    }

    fn open(&mut self, bytes: &[u8]) -> Result<Vec<Message>, String> {
        // The server's first bytes: the magic, then frames.
        let after_magic;
        let bytes = match &mut self.magic {
            None => bytes,
            Some(seen) => {
                seen.extend_from_slice(bytes);
                if seen.len() < MAGIC.len() {
                    return Ok(Vec::new());
                }
                if !seen.starts_with(MAGIC) {
                    return Err("not frp wire v2 (no magic)".into());
                }
                after_magic = seen.split_off(MAGIC.len());
                self.magic = None;
                &after_magic[..]
            }
        };
        match &mut self.opener {
            Some(o) => self.frames.feed(&o.open(bytes)?),
            None => self.frames.feed(bytes),
        }
        let mut out = Vec::new();
        while let Some((t, payload)) = self.frames.next_frame().map_err(|e| e.to_string())? {
            if t != MESSAGE {
                self.on_hello(t, payload)?;
                continue;
            }
            let m = Message::from_v2(&payload).map_err(|e| e.to_string())?;
            let switch = match (&m, self.role) {
                (Message::LoginResp(r), Role::Client) => r.error.is_empty(),
                (Message::Login(_), Role::Server) => true,
                _ => false,
            };
            out.push(m);
            if switch && self.opener.is_none() {
                let plain = self.secure_in()?;
                self.frames.feed(&plain);
                if self.role == Role::Client {
                    self.secure_out();
                }
            }
        }
        Ok(out)
    }

    fn wire(&self) -> Wire {
        Wire::V2
    }

    fn aead(&self) -> Option<&'static str> {
        self.alg.map(Algorithm::name)
    }
}

#[cfg(test)]
#[path = "v2_tests.rs"]
mod tests;
