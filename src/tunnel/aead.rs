//! frp wire v2's control-channel encryption: the two AEAD algorithms, the
//! keys (HKDF-SHA256 of the token, salted with a hash of both hellos), and
//! the record stream each direction writes (its random initial nonce in
//! clear, then `u32 length ‖ ciphertext ‖ tag` records, the nonce counting
//! up big-endian, the initial nonce and the length header as AAD).
//! Sans-IO: bytes in, bytes out. All from aws-lc-rs; XChaCha20 is its
//! ChaCha20-Poly1305 under an HChaCha20 subkey, which is a few lines here.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::{digest, hkdf};

const TAG: usize = 16;
/// The largest record Go's reader takes is 64 KiB of plaintext; ours stay
/// well under it.
const RECORD: usize = 16 * 1024;
const MAX_RECORD: usize = 64 * 1024 + TAG;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Aes256Gcm,
    XChaCha20Poly1305,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Aes256Gcm => "aes-256-gcm",
            Algorithm::XChaCha20Poly1305 => "xchacha20-poly1305",
        }
    }

    pub fn from_name(n: &str) -> Option<Algorithm> {
        [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305]
            .into_iter()
            .find(|a| a.name() == n)
    }

    fn nonce_len(self) -> usize {
        match self {
            Algorithm::Aes256Gcm => 12,
            Algorithm::XChaCha20Poly1305 => 24,
        }
    }

    /// What to offer, best first, as the Go client does: AES-GCM where the
    /// CPU has AES and carry-less multiply (the RK3588 does), else XChaCha.
    pub fn preferred() -> [Algorithm; 2] {
        if aes_in_hardware() {
            [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305]
        } else {
            [Algorithm::XChaCha20Poly1305, Algorithm::Aes256Gcm]
        }
    }
}

fn aes_in_hardware() -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
    {
        false
    }
}

/// SHA-256 over both hellos' exact payloads, each labelled and length-prefixed.
pub fn transcript(client_hello: &[u8], server_hello: &[u8]) -> [u8; 32] {
    let mut h = digest::Context::new(&digest::SHA256);
    h.update(b"frp wire v2 crypto transcript");
    for (label, payload) in [
        ("client hello", client_hello),
        ("server hello", server_hello),
    ] {
        h.update(&[0]);
        h.update(label.as_bytes());
        h.update(&[0]);
        h.update(&(payload.len() as u64).to_be_bytes());
        h.update(payload);
    }
    h.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

/// One direction's key.
pub fn derive_key(token: &str, transcript: &[u8; 32], alg: Algorithm, d: Direction) -> [u8; 32] {
    let dir = match d {
        Direction::ClientToServer => "client-to-server",
        Direction::ServerToClient => "server-to-client",
    };
    let info = format!("frp wire v2 control aead {} {dir}", alg.name());
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, transcript).extract(token.as_bytes());
    let mut key = [0u8; 32];
    prk.expand(&[info.as_bytes()], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut key))
        .expect("32 bytes is a valid HKDF-SHA256 length");
    key
}

/// HChaCha20 (draft-irtf-cfrg-xchacha §2.2): XChaCha's subkey from the
/// key and the nonce's first 16 bytes.
fn hchacha20(key: &[u8; 32], nonce: &[u8]) -> [u8; 32] {
    let word = |b: &[u8], i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
    let mut s = [0u32; 16];
    s[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    for i in 0..8 {
        s[4 + i] = word(key, i);
    }
    for i in 0..4 {
        s[12 + i] = word(nonce, i);
    }
    let qr = |s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize| {
        s[a] = s[a].wrapping_add(s[b]);
        s[d] = (s[d] ^ s[a]).rotate_left(16);
        s[c] = s[c].wrapping_add(s[d]);
        s[b] = (s[b] ^ s[c]).rotate_left(12);
        s[a] = s[a].wrapping_add(s[b]);
        s[d] = (s[d] ^ s[a]).rotate_left(8);
        s[c] = s[c].wrapping_add(s[d]);
        s[b] = (s[b] ^ s[c]).rotate_left(7);
    };
    for _ in 0..10 {
        qr(&mut s, 0, 4, 8, 12);
        qr(&mut s, 1, 5, 9, 13);
        qr(&mut s, 2, 6, 10, 14);
        qr(&mut s, 3, 7, 11, 15);
        qr(&mut s, 0, 5, 10, 15);
        qr(&mut s, 1, 6, 11, 12);
        qr(&mut s, 2, 7, 8, 13);
        qr(&mut s, 3, 4, 9, 14);
    }
    let mut out = [0u8; 32];
    for (i, w) in s[..4].iter().chain(&s[12..]).enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// A key and the record nonce of one direction.
struct Records {
    alg: Algorithm,
    key: [u8; 32],
    /// The initial nonce (part of every record's AAD) and the next one.
    initial: Vec<u8>,
    nonce: Vec<u8>,
}

impl Records {
    /// The cipher and 12-byte nonce for the current record.
    fn cipher(&self) -> (LessSafeKey, Nonce) {
        let (key, n12) = match self.alg {
            Algorithm::Aes256Gcm => ((&aead::AES_256_GCM, self.key), self.nonce.clone()),
            Algorithm::XChaCha20Poly1305 => {
                let sub = hchacha20(&self.key, &self.nonce[..16]);
                let mut n = vec![0u8; 4];
                n.extend_from_slice(&self.nonce[16..]);
                ((&aead::CHACHA20_POLY1305, sub), n)
            }
        };
        let k = UnboundKey::new(key.0, &key.1).expect("a 32-byte key");
        let n = Nonce::try_assume_unique_for_key(&n12).expect("a 12-byte nonce");
        (LessSafeKey::new(k), n)
    }

    fn aad(&self, len: [u8; 4]) -> Vec<u8> {
        let mut a = self.initial.clone();
        a.extend_from_slice(&len);
        a
    }

    fn advance(&mut self) {
        for b in self.nonce.iter_mut().rev() {
            *b = b.wrapping_add(1);
            if *b != 0 {
                break;
            }
        }
    }
}

/// Our direction: the initial nonce goes out with the first bytes.
pub struct Sealer {
    r: Records,
    sent_nonce: bool,
}

impl Sealer {
    pub fn new(alg: Algorithm, key: [u8; 32]) -> Sealer {
        let mut nonce = vec![0u8; alg.nonce_len()];
        aws_lc_rs::rand::fill(&mut nonce).expect("the system RNG");
        Sealer::with_nonce(alg, key, nonce)
    }

    pub fn with_nonce(alg: Algorithm, key: [u8; 32], nonce: Vec<u8>) -> Sealer {
        let r = Records {
            alg,
            key,
            initial: nonce.clone(),
            nonce,
        };
        Sealer {
            r,
            sent_nonce: false,
        }
    }

    pub fn seal(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + 64);
        if !std::mem::replace(&mut self.sent_nonce, true) {
            out.extend_from_slice(&self.r.initial);
        }
        for chunk in plain.chunks(RECORD) {
            let len = ((chunk.len() + TAG) as u32).to_be_bytes();
            let (key, nonce) = self.r.cipher();
            let mut buf = chunk.to_vec();
            key.seal_in_place_append_tag(nonce, Aad::from(self.r.aad(len)), &mut buf)
                .expect("sealing a short record");
            out.extend_from_slice(&len);
            out.extend_from_slice(&buf);
            self.r.advance();
        }
        out
    }
}

/// The peer's direction: its initial nonce first, then records.
pub struct Opener {
    alg: Algorithm,
    key: [u8; 32],
    r: Option<Records>,
    buf: Vec<u8>,
}

impl Opener {
    pub fn new(alg: Algorithm, key: [u8; 32]) -> Opener {
        Opener {
            alg,
            key,
            r: None,
            buf: Vec::new(),
        }
    }

    /// Received bytes → the plaintext of every record they complete.
    pub fn open(&mut self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        if self.r.is_none() {
            let n = self.alg.nonce_len();
            if self.buf.len() < n {
                return Ok(Vec::new());
            }
            let nonce = self.buf[..n].to_vec();
            self.r = Some(Records {
                alg: self.alg,
                key: self.key,
                initial: nonce.clone(),
                nonce,
            });
            at = n;
        }
        let r = self.r.as_mut().expect("set above");
        let mut out = Vec::new();
        while let Some(len) = self.buf.get(at..at + 4) {
            let len: [u8; 4] = len.try_into().expect("4 bytes");
            let n = u32::from_be_bytes(len) as usize;
            if !(TAG..=MAX_RECORD).contains(&n) {
                return Err(format!("control channel record of {n} bytes"));
            }
            let Some(sealed) = self.buf.get(at + 4..at + 4 + n) else {
                break;
            };
            let (key, nonce) = r.cipher();
            let mut rec = sealed.to_vec();
            let plain = key
                .open_in_place(nonce, Aad::from(r.aad(len)), &mut rec)
                .map_err(|_| "a control channel record failed authentication (wrong token?)")?;
            out.extend_from_slice(plain);
            r.advance();
            at += 4 + n;
        }
        self.buf.drain(..at);
        Ok(out)
    }
}

#[cfg(test)]
#[path = "aead_tests.rs"]
mod tests;
