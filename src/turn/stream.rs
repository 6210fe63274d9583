//! TURN over a byte stream (TCP or TLS to the server, RFC 8656 §3.1): the
//! messages are the datagrams' own, back to back, so the reader must find
//! where each ends. A STUN message says its length in its header; a
//! ChannelData message too, padded to four bytes on a stream (§12.5).

/// STUN messages start with the two top bits 00, ChannelData with 01.
const STUN_HEADER: usize = 20;
/// A message longer than this is a broken stream, not a big packet
/// (ChannelData's length field allows 64 KiB; media packets are ~1.2 KB).
const MAX_MESSAGE: usize = 4 + 65535 + 3;

/// Collects what the stream gives and hands out whole messages.
#[derive(Default)]
pub struct Deframer {
    buf: Vec<u8>,
}

impl Deframer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole message; `Err` when the stream cannot be TURN (the
    /// caller drops the connection).
    pub fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        let Some(n) = frame_len(&self.buf)? else {
            return Ok(None);
        };
        if self.buf.len() < n {
            return Ok(None);
        }
        let rest = self.buf.split_off(n);
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }
}

/// The length of the message at the start of `buf`, once its header is
/// there.
fn frame_len(buf: &[u8]) -> Result<Option<usize>, String> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let n = match buf[0] {
        // A STUN header's magic cookie follows its length.
        0x00..=0x3f if buf.len() >= 8 && buf[4..8] != super::stun::MAGIC.to_be_bytes() => {
            return Err("not TURN on the stream (no STUN magic cookie)".into());
        }
        0x00..=0x3f => STUN_HEADER + len,
        // Channels 0x4000-0x4fff; 0x5000-0x7fff are reserved.
        0x40..=0x4f => (4 + len).next_multiple_of(4),
        b => return Err(format!("not TURN on the stream (first byte {b:#04x})")),
    };
    match n <= MAX_MESSAGE {
        true => Ok(Some(n)),
        false => Err(format!("a {n}-byte TURN message")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn::stun::{Builder, Class, Method, channel_data};

    #[test]
    fn messages_come_out_whole_from_any_split() {
        let stun = Builder::new(Method::Allocate, Class::Request, [7; 12])
            .u32(0x0019, 17 << 24)
            .finish(None);
        // 5 bytes of data: padded to 12 on the stream.
        let chan = channel_data(0x4001, b"hello");
        assert_eq!(chan.len(), 12);
        let mut stream = stun.clone();
        stream.extend_from_slice(&chan);
        stream.extend_from_slice(&stun);
        for step in 1..stream.len() {
            let mut d = Deframer::default();
            let mut got = Vec::new();
            for piece in stream.chunks(step) {
                d.push(piece);
                while let Some(m) = d.next().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(
                got,
                vec![stun.clone(), chan.clone(), stun.clone()],
                "{step}"
            );
        }
    }

    #[test]
    fn a_stream_that_is_not_turn_is_refused() {
        let mut d = Deframer::default();
        d.push(b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03"); // TLS on a TCP port
        assert!(d.next().is_err());
        let mut d = Deframer::default();
        d.push(b"\x01\x01\x00\x00NOPE");
        assert!(d.next().is_err(), "a STUN type without the cookie");
        let mut d = Deframer::default();
        d.push(b"\x60\x00\x00\x04");
        assert!(d.next().is_err(), "a reserved channel number");
        let mut d = Deframer::default();
        d.push(&[0x40, 0x00, 0x00]);
        assert_eq!(d.next(), Ok(None), "a header not yet whole waits");
    }
}
