//! The control channel's bytes: message framing and, once logged in,
//! encryption. The session loop only sees `ControlWire`: frp's v1 here,
//! v2 (magic + hellos, u16-typed frames, AEAD after LoginResp; frps ≥
//! 0.69) in `v2.rs`.

use super::crypto::{Decryptor, Encryptor, Key};
use super::msg::{Decoder, Message, Wire};

pub trait ControlWire: Send {
    /// One message → the bytes to send (the Login included).
    fn seal(&mut self, m: &Message) -> Vec<u8>;
    /// Received bytes → the whole messages they complete, in order.
    fn open(&mut self, bytes: &[u8]) -> Result<Vec<Message>, String>;
    fn wire(&self) -> Wire;
    /// The control channel's AEAD algorithm, once chosen (v2 only).
    fn aead(&self) -> Option<&'static str> {
        None
    }
}

/// frp's v1: plaintext frames up to a successful LoginResp, then
/// AES-128-CFB (IV first) in both directions. The server does not wait:
/// LoginResp, its IV and ciphertext may share one read.
pub struct V1 {
    enc: Encryptor,
    dec: Decryptor,
    plain: Decoder,
    msgs: Decoder,
    secured: bool,
}

impl V1 {
    pub fn new(key: &Key) -> V1 {
        V1 {
            enc: Encryptor::new(key),
            dec: Decryptor::new(key),
            plain: Decoder::default(),
            msgs: Decoder::default(),
            secured: false,
        }
    }
}

impl ControlWire for V1 {
    fn seal(&mut self, m: &Message) -> Vec<u8> {
        if self.secured {
            self.enc.seal(&m.encode())
        } else {
            m.encode()
        }
    }

    fn open(&mut self, bytes: &[u8]) -> Result<Vec<Message>, String> {
        let mut out = Vec::new();
        if self.secured {
            self.msgs.feed(&self.dec.open(bytes));
        } else {
            self.plain.feed(bytes);
            while !self.secured {
                let Some(m) = self.plain.next().map_err(|e| e.to_string())? else {
                    break;
                };
                if matches!(&m, Message::LoginResp(r) if r.error.is_empty()) {
                    self.secured = true;
                    let rest = self.plain.take_rest();
                    self.msgs.feed(&self.dec.open(&rest));
                }
                out.push(m);
            }
        }
        while let Some(m) = self.msgs.next().map_err(|e| e.to_string())? {
            out.push(m);
        }
        Ok(out)
    }

    fn wire(&self) -> Wire {
        Wire::V1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::crypto::derive_key;
    use crate::tunnel::msg::{CloseProxy, LoginResp, Pong};

    #[test]
    fn v1_is_plain_until_login_then_encrypted_from_any_split() {
        let key = derive_key("t");
        let (mut client, mut server) = (V1::new(&key), V1::new(&key));
        let login = Message::Login(Default::default());
        let wire = client.seal(&login);
        assert_eq!(wire, login.encode(), "Login goes out in plaintext");
        assert_eq!(server.open(&wire).unwrap(), vec![login]);
        // The server's LoginResp and its first encrypted messages in one write.
        let resp = Message::LoginResp(LoginResp {
            run_id: "r".into(),
            ..Default::default()
        });
        let mut s = server.seal(&resp);
        server.secured = true;
        let pong = Message::Pong(Pong::default());
        s.extend(server.seal(&pong));
        s.extend(server.seal(&Message::ReqWorkConn));
        let mut got = Vec::new();
        for piece in s.chunks(5) {
            got.extend(client.open(piece).unwrap());
        }
        assert_eq!(got, vec![resp, pong, Message::ReqWorkConn]);
        let close = Message::CloseProxy(CloseProxy::default());
        assert_ne!(client.seal(&close), close.encode(), "encrypted after login");
    }

    #[test]
    fn a_refused_login_stays_plain() {
        let mut client = V1::new(&derive_key("t"));
        let refused = Message::LoginResp(LoginResp {
            error: "token in login doesn't match".into(),
            ..Default::default()
        });
        assert_eq!(client.open(&refused.encode()).unwrap(), vec![refused]);
        assert!(!client.secured);
    }
}
