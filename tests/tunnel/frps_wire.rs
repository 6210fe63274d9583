//! The test frps's wire protocols: which one a stream speaks (or, as an
//! frps before 0.69, hanging up at v2's magic), and the server's end of a
//! control stream: v1 (plaintext frames until its LoginResp, then
//! AES-128-CFB each way) or v2 (r58's own `V2` core in the server role).

use super::{Chan, Server};
use crate::tunnel::crypto;
use crate::tunnel::msg::{Decoder, Message, Wire};
use crate::tunnel::v2::{MAGIC, V2};
use crate::tunnel::wire::ControlWire;

/// The stream's first bytes: v2's magic or a v1 frame. None: hang up.
pub async fn which_wire(srv: &Server, ch: &mut Chan) -> Option<(Wire, Vec<u8>)> {
    let mut first = Vec::new();
    while first.len() < MAGIC.len() && MAGIC.starts_with(&first) {
        first.extend(ch.recv().await?);
    }
    if !first.starts_with(MAGIC) {
        // An frps that has dropped v1 (frp plans it for 0.78 or later).
        return (!srv.opts.v2_only).then_some((Wire::V1, first));
    }
    if srv.opts.v1_only {
        srv.seen.lock().unwrap().hung_up_v2 += 1;
        return None;
    }
    Some((Wire::V2, first))
}

/// The server's end of a control stream.
pub enum Ctl {
    /// v1 before LoginResp: plaintext frames.
    Plain(Decoder),
    /// v1 after it: AES-128-CFB each way.
    V1 {
        enc: crypto::Encryptor,
        dec: crypto::Decryptor,
        msgs: Decoder,
    },
    V2(Box<V2>),
}

impl Ctl {
    pub fn seal(&mut self, m: &Message) -> Vec<u8> {
        match self {
            Ctl::Plain(_) => m.encode(),
            Ctl::V1 { enc, .. } => enc.seal(&m.encode()),
            Ctl::V2(w) => w.seal(m),
        }
    }

    /// After a successful LoginResp went out (v2 switches by itself).
    pub fn secure(&mut self, key: &crypto::Key) {
        if let Ctl::Plain(plain) = self {
            let mut dec = crypto::Decryptor::new(key);
            let mut msgs = Decoder::default();
            msgs.feed(&dec.open(&plain.take_rest()));
            let enc = crypto::Encryptor::new(key);
            *self = Ctl::V1 { enc, dec, msgs };
        }
    }

    pub fn open(&mut self, bytes: &[u8]) -> Vec<Message> {
        let d = match self {
            Ctl::V2(w) => return w.open(bytes).unwrap_or_default(),
            Ctl::Plain(d) => {
                d.feed(bytes);
                d
            }
            Ctl::V1 { dec, msgs, .. } => {
                msgs.feed(&dec.open(bytes));
                msgs
            }
        };
        let mut out = Vec::new();
        while let Ok(Some(m)) = d.next() {
            out.push(m);
        }
        out
    }
}
