//! Snappy framing format, for work connections with `use_compression`.
//! frp's Go side uses an unbuffered framing writer, so every write becomes
//! complete chunks at once; we do the same (no added latency for ssh).
//!
//! Chunks: `ff 06 00 00 "sNaPpY"` once, then `00` (compressed) or `01`
//! (stored) chunks of at most 64 KiB of data, each with a masked CRC-32C of
//! the uncompressed bytes.

const STREAM_ID: &[u8] = b"\xff\x06\x00\x00sNaPpY";
const MAX_BLOCK: usize = 65536;
/// The longest chunk a conforming writer emits (compressed worst case).
const MAX_CHUNK: usize = 4 + 32 + MAX_BLOCK + MAX_BLOCK / 6;

fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| {
        t[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Block compression: greedy matching over a 4-byte hash table. Simple,
/// and good enough for text protocols; video passes through stored.
fn compress_block(src: &[u8], out: &mut Vec<u8>) {
    let mut n = src.len();
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    // Sized to the input: an ssh keystroke must not zero 64 KiB.
    let bits = src
        .len()
        .next_power_of_two()
        .clamp(256, 1 << 14)
        .trailing_zeros();
    let mut table = vec![0u32; 1 << bits];
    let hash = |p: usize| {
        let v = u32::from_le_bytes(src[p..p + 4].try_into().unwrap());
        (v.wrapping_mul(0x1e35_a7bd) >> (32 - bits)) as usize
    };
    let (mut lit_start, mut i) = (0usize, 0usize);
    while i + 4 <= src.len() {
        let h = hash(i);
        let cand = table[h] as usize;
        table[h] = i as u32;
        if cand < i && src[cand..cand + 4] == src[i..i + 4] {
            emit_literal(&src[lit_start..i], out);
            let mut len = 4;
            while i + len < src.len() && src[cand + len] == src[i + len] {
                len += 1;
            }
            emit_copy(i - cand, len, out);
            i += len;
            lit_start = i;
        } else {
            i += 1;
        }
    }
    emit_literal(&src[lit_start..], out);
}

fn emit_literal(lit: &[u8], out: &mut Vec<u8>) {
    if lit.is_empty() {
        return;
    }
    let n = lit.len() - 1;
    if n < 60 {
        out.push((n as u8) << 2);
    } else {
        let bytes = n.to_le_bytes();
        let width = if n < 1 << 8 {
            1
        } else if n < 1 << 16 {
            2
        } else {
            3
        };
        out.push(((59 + width) as u8) << 2);
        out.extend_from_slice(&bytes[..width]);
    }
    out.extend_from_slice(lit);
}

/// Copies with a 2-byte offset (blocks are ≤ 64 KiB), 1..=64 bytes each.
fn emit_copy(offset: usize, mut len: usize, out: &mut Vec<u8>) {
    while len > 0 {
        let take = len.min(64);
        out.push((((take - 1) as u8) << 2) | 2);
        out.extend_from_slice(&(offset as u16).to_le_bytes());
        len -= take;
    }
}

fn decompress_block(src: &[u8]) -> Result<Vec<u8>, &'static str> {
    let (mut want, mut shift, mut i) = (0usize, 0, 0);
    loop {
        let b = *src.get(i).ok_or("truncated length")?;
        want |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b < 0x80 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return Err("bad length");
        }
    }
    if want > MAX_BLOCK {
        return Err("block too large");
    }
    let mut out = Vec::with_capacity(want);
    let get = |i: usize, n: usize| -> Result<usize, &'static str> {
        let b = src.get(i..i + n).ok_or("truncated element")?;
        Ok(b.iter().rev().fold(0usize, |a, &x| (a << 8) | x as usize))
    };
    while i < src.len() {
        let tag = src[i];
        i += 1;
        let (len, offset) = match tag & 3 {
            0 => {
                let mut n = (tag >> 2) as usize;
                if n >= 60 {
                    let w = n - 59;
                    n = get(i, w)?;
                    i += w;
                }
                let lit = src.get(i..i + n + 1).ok_or("truncated literal")?;
                out.extend_from_slice(lit);
                i += n + 1;
                continue;
            }
            1 => {
                let o = ((tag as usize >> 5) << 8) | get(i, 1)?;
                i += 1;
                (4 + ((tag >> 2) & 7) as usize, o)
            }
            2 => {
                i += 2;
                (1 + (tag >> 2) as usize, get(i - 2, 2)?)
            }
            _ => {
                i += 4;
                (1 + (tag >> 2) as usize, get(i - 4, 4)?)
            }
        };
        if offset == 0 || offset > out.len() || out.len() + len > want {
            return Err("bad copy");
        }
        let start = out.len() - offset;
        for k in 0..len {
            out.push(out[start + k]);
        }
    }
    if out.len() != want {
        return Err("length mismatch");
    }
    Ok(out)
}

#[derive(Default)]
pub struct Encoder {
    started: bool,
}

impl Encoder {
    /// Frames `data` completely: nothing is held back.
    pub fn encode(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 32);
        if !self.started {
            out.extend_from_slice(STREAM_ID);
            self.started = true;
        }
        for block in data.chunks(MAX_BLOCK) {
            let mut c = Vec::new();
            compress_block(block, &mut c);
            // Store when compression saves less than 1/8, as snappy does.
            let (kind, body) = if c.len() < block.len() - block.len() / 8 {
                (0u8, &c[..])
            } else {
                (1u8, block)
            };
            let len = body.len() + 4;
            out.push(kind);
            out.extend_from_slice(&(len as u32).to_le_bytes()[..3]);
            out.extend_from_slice(&masked_crc(block).to_le_bytes());
            out.extend_from_slice(body);
        }
        out
    }
}

#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
    started: bool,
}

impl Decoder {
    /// Everything decodable so far; partial chunks wait for more input.
    pub fn decode(&mut self, input: &[u8]) -> Result<Vec<u8>, String> {
        self.buf.extend_from_slice(input);
        let mut out = Vec::new();
        let mut pos = 0;
        while self.buf.len() - pos >= 4 {
            let h = &self.buf[pos..pos + 4];
            let len = h[1] as usize | (h[2] as usize) << 8 | (h[3] as usize) << 16;
            if len > MAX_CHUNK {
                return Err(format!("snappy chunk of {len} bytes"));
            }
            if self.buf.len() - pos < 4 + len {
                break;
            }
            let kind = h[0];
            let body = &self.buf[pos + 4..pos + 4 + len];
            pos += 4 + len;
            if kind == 0xff {
                if body != &STREAM_ID[4..] {
                    return Err("bad snappy stream identifier".into());
                }
                self.started = true;
                continue;
            }
            if !self.started {
                return Err("snappy data before the stream identifier".into());
            }
            let data = match kind {
                0x00 | 0x01 if len < 4 => return Err("short snappy chunk".into()),
                0x00 => decompress_block(&body[4..]).map_err(|e| format!("snappy: {e}"))?,
                0x01 => body[4..].to_vec(),
                0x02..=0x7f => return Err(format!("reserved snappy chunk 0x{kind:02x}")),
                _ => continue, // skippable chunks and padding
            };
            let crc = u32::from_le_bytes(body[..4].try_into().unwrap());
            if crc != masked_crc(&data) {
                return Err("snappy checksum mismatch".into());
            }
            out.extend_from_slice(&data);
        }
        self.buf.drain(..pos);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::crypto::unhex;

    /// The recorded frps→frpc request (stored chunk) and frpc→frps
    /// response (compressed chunk) from stock frp 0.70.0.
    #[test]
    fn decodes_recorded_chunks() {
        let v = crate::tunnel::vectors::load("encrypted-compressed-proxy");
        let user = &v["user_connection"];
        let mut seen = 0;
        for s in v["verification"]["aes_cfb_streams"].as_array().unwrap() {
            if s["plaintext_is"] != "snappy framing stream" {
                continue;
            }
            let want = if s["where"].as_str().unwrap().ends_with("s2c") {
                &user["request_hex"]
            } else {
                &user["response_hex"]
            };
            let plain = unhex(s["plaintext_hex"].as_str().unwrap());
            let mut d = Decoder::default();
            let mut got = Vec::new();
            for piece in plain.chunks(5) {
                got.extend(d.decode(piece).unwrap());
            }
            assert_eq!(got, unhex(want.as_str().unwrap()));
            seen += 1;
        }
        assert_eq!(seen, 2);
    }

    #[test]
    fn round_trips_and_compresses_text() {
        let text = "GET /cam0/whep HTTP/1.1\r\nHost: r58\r\n".repeat(400);
        let noise: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for data in [text.as_bytes(), &noise[..], b"", b"abc"] {
            let mut e = Encoder::default();
            let wire = [e.encode(data), e.encode(data)].concat();
            let got = Decoder::default().decode(&wire).unwrap();
            assert_eq!(got, [data, data].concat());
        }
        let wire = Encoder::default().encode(text.as_bytes());
        assert!(
            wire.len() < text.len() / 10,
            "{} of {}",
            wire.len(),
            text.len()
        );
    }

    #[test]
    fn corruption_is_an_error() {
        let mut wire = Encoder::default().encode(b"hello hello hello hello");
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert!(Decoder::default().decode(&wire).is_err());
        assert!(Decoder::default().decode(b"\x01\x05\x00\x00abcde").is_err());
    }
}
