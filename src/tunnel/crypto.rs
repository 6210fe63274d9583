//! frp's v1 crypto: token auth keys and the AES-128-CFB stream used on the
//! control channel after login and on work connections with
//! `use_encryption`. Sans-IO: bytes in, bytes out.
//!
//! Each direction is an independent stream: the writer sends a random
//! 16-byte IV in clear before its first ciphertext, the reader takes the
//! first 16 bytes it receives as the IV. No MAC, no padding (frp's design).

use std::num::NonZeroU32;

use aws_lc_rs::cipher::{
    AES_128, DecryptionContext, EncryptionContext, StreamingDecryptingKey, StreamingEncryptingKey,
    UnboundCipherKey,
};

use crate::md5;

pub type Key = [u8; 16];
const IV_LEN: usize = 16;

/// PBKDF2-HMAC-SHA1(token, salt "frp", 64 rounds, 16 bytes). frp overrides
/// its crypto library's default salt ("crypto") with "frp".
pub fn derive_key(token: &str) -> Key {
    let mut key = [0u8; 16];
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA1,
        NonZeroU32::new(64).unwrap(),
        b"frp",
        token.as_bytes(),
        &mut key,
    );
    key
}

/// `privilege_key` for Login (and Ping/NewWorkConn with extra scopes).
pub fn privilege_key(token: &str, timestamp: i64) -> String {
    md5::hex(&md5::digest(format!("{token}{timestamp}").as_bytes()))
}

fn random_iv() -> [u8; IV_LEN] {
    let mut iv = [0u8; IV_LEN];
    aws_lc_rs::rand::fill(&mut iv).expect("system random source");
    iv
}

/// The writing half: the first `seal` output starts with the IV.
pub struct Encryptor {
    key: StreamingEncryptingKey,
    iv_pending: Option<[u8; IV_LEN]>,
}

impl Encryptor {
    pub fn new(key: &Key) -> Self {
        Self::with_iv(key, random_iv())
    }

    /// A fixed IV, for reproducing recorded bytes in tests.
    pub fn with_iv(key: &Key, iv: [u8; IV_LEN]) -> Self {
        let unbound = UnboundCipherKey::new(&AES_128, key).expect("16-byte AES key");
        let ctx = EncryptionContext::Iv128(iv.into());
        Encryptor {
            key: StreamingEncryptingKey::less_safe_cfb128(unbound, ctx).expect("AES-128-CFB"),
            iv_pending: Some(iv),
        }
    }

    pub fn seal(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(IV_LEN + plain.len());
        if let Some(iv) = self.iv_pending.take() {
            out.extend_from_slice(&iv);
        }
        let start = out.len();
        out.resize(start + plain.len() + IV_LEN - 1, 0);
        let n = self
            .key
            .update(plain, &mut out[start..])
            .expect("CFB output buffer sized by contract")
            .written()
            .len();
        debug_assert_eq!(n, plain.len(), "CFB-128 is a stream mode");
        out.truncate(start + n);
        out
    }
}

/// The reading half: swallows the peer's IV, then decrypts continuously.
pub struct Decryptor {
    key: Key,
    iv: Vec<u8>,
    stream: Option<StreamingDecryptingKey>,
}

impl Decryptor {
    pub fn new(key: &Key) -> Self {
        Decryptor {
            key: *key,
            iv: Vec::with_capacity(IV_LEN),
            stream: None,
        }
    }

    pub fn open(&mut self, mut cipher: &[u8]) -> Vec<u8> {
        if self.stream.is_none() {
            let take = (IV_LEN - self.iv.len()).min(cipher.len());
            self.iv.extend_from_slice(&cipher[..take]);
            cipher = &cipher[take..];
            if self.iv.len() < IV_LEN {
                return Vec::new();
            }
            let iv: [u8; IV_LEN] = self.iv[..].try_into().unwrap();
            let unbound = UnboundCipherKey::new(&AES_128, &self.key).expect("16-byte AES key");
            let ctx = DecryptionContext::Iv128(iv.into());
            self.stream = Some(StreamingDecryptingKey::cfb128(unbound, ctx).expect("AES-128-CFB"));
        }
        let stream = self.stream.as_mut().unwrap();
        let mut out = vec![0u8; cipher.len() + IV_LEN - 1];
        let n = stream
            .update(cipher, &mut out)
            .expect("CFB output buffer sized by contract")
            .written()
            .len();
        out.truncate(n);
        out
    }
}

#[cfg(test)]
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    crate::hex::decode(s).expect("hex in a test vector")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::vectors;

    #[test]
    fn keys_match_the_protocol_notes() {
        assert_eq!(
            md5::hex(&derive_key("smoketoken")),
            "ae9f7eddc75f5d48e38aa275a7937b70"
        );
        assert_eq!(
            md5::hex(&derive_key("r58-test-token")),
            "ce0bc46fd0caede0d28e9f30760e0172"
        );
        assert_eq!(
            privilege_key("smoketoken", 1795509693),
            "c2f983a615575278dd48c5ce4763a0ff"
        );
    }

    #[test]
    fn every_recorded_cfb_stream_decrypts_and_reencrypts() {
        let mut seen = 0;
        for (name, v) in vectors::all() {
            for check in v["verification"]["privilege_key_checks"]
                .as_array()
                .unwrap()
            {
                let token = check["token_used_by_sender"].as_str().unwrap();
                let ts = check["timestamp"].as_i64().unwrap();
                assert_eq!(privilege_key(token, ts), check["privilege_key"], "{name}");
            }
            for s in v["verification"]["aes_cfb_streams"].as_array().unwrap() {
                let key: Key = unhex(s["key_hex"].as_str().unwrap()).try_into().unwrap();
                let iv = unhex(s["iv_hex"].as_str().unwrap());
                let cipher = unhex(s["ciphertext_hex"].as_str().unwrap());
                let plain = unhex(s["plaintext_hex"].as_str().unwrap());
                // Fed in uneven pieces, as TCP delivers it.
                let mut d = Decryptor::new(&key);
                let mut got = d.open(&iv[..5]);
                for piece in [&iv[5..], &cipher[..7]]
                    .into_iter()
                    .chain(cipher[7..].chunks(13))
                {
                    got.extend(d.open(piece));
                }
                assert_eq!(got, plain, "{name} {}", s["where"]);
                let mut e = Encryptor::with_iv(&key, iv.clone().try_into().unwrap());
                let mut wire = e.seal(&plain[..3]);
                wire.extend(e.seal(&plain[3..]));
                assert_eq!(wire[..16], iv[..]);
                assert_eq!(wire[16..], cipher[..], "{name} {}", s["where"]);
                seen += 1;
            }
        }
        assert!(seen >= 10, "only {seen} recorded streams");
    }
}
