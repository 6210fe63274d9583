//! A work connection's byte transforms: frp compresses (snappy framing)
//! then encrypts (AES-128-CFB, IV first) toward the other side, and undoes
//! them in reverse on the way back. Sans-IO, shared by tcp and udp relays.

use super::crypto::{Decryptor, Encryptor, Key};
use super::snappy;

pub struct Codec {
    enc: Option<Encryptor>,
    dec: Option<Decryptor>,
    comp: Option<snappy::Encoder>,
    decomp: Option<snappy::Decoder>,
}

impl Codec {
    pub fn new(encryption: bool, compression: bool, key: &Key) -> Codec {
        Codec {
            enc: encryption.then(|| Encryptor::new(key)),
            dec: encryption.then(|| Decryptor::new(key)),
            comp: compression.then(snappy::Encoder::default),
            decomp: compression.then(snappy::Decoder::default),
        }
    }

    /// One owned buffer out per write: a plain proxy copies once, here.
    pub fn outbound(&mut self, data: &[u8]) -> Vec<u8> {
        match (&mut self.comp, &mut self.enc) {
            (Some(c), Some(e)) => e.seal(&c.encode(data)),
            (Some(c), None) => c.encode(data),
            (None, Some(e)) => e.seal(data),
            (None, None) => data.to_vec(),
        }
    }

    /// `outbound` for a buffer that is already owned (a message just
    /// encoded): a plain proxy sends it as it is, without a copy.
    pub fn outbound_owned(&mut self, data: Vec<u8>) -> Vec<u8> {
        if self.comp.is_none() && self.enc.is_none() {
            return data;
        }
        self.outbound(&data)
    }

    /// A plain proxy passes the received buffer through untouched.
    pub fn inbound(&mut self, data: Vec<u8>) -> Result<Vec<u8>, String> {
        let data = match &mut self.dec {
            Some(d) => d.open(&data),
            None => data,
        };
        match &mut self.decomp {
            Some(d) => d.decode(&data),
            None => Ok(data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_round_trips_between_two_ends() {
        let key = super::super::crypto::derive_key("t");
        let text = b"hello hello hello hello hello".repeat(20);
        for (e, c) in [(false, false), (true, false), (false, true), (true, true)] {
            let (mut a, mut b) = (Codec::new(e, c, &key), Codec::new(e, c, &key));
            for _ in 0..3 {
                let wire = a.outbound(&text);
                assert_eq!(wire == text, !e && !c, "mode enc={e} comp={c}");
                assert_eq!(b.inbound(wire).unwrap(), text);
                let wire = a.outbound_owned(text.clone());
                assert_eq!(b.inbound(wire).unwrap(), text);
            }
        }
    }
}
