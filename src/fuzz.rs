//! Entry points for the fuzz targets (`fuzz/`) and the corpus replay test:
//! every parser that bytes from the network or a user's file reach. Each
//! takes arbitrary bytes and must not panic, hang or grow without bound;
//! cargo-fuzz finds inputs that do, `fuzz/corpus/` keeps the seeds, and
//! `cargo test` replays them on stable.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::tunnel::{codec, crypto, msg, snappy, udp, yamux};
use crate::webrtc::session::{Plan, Session, Ticket};
use crate::webrtc::{net, tcp};

/// A fuzz entry point: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target, by the name its fuzz binary and corpus folder have.
pub const TARGETS: &[(&str, Target)] = &[
    ("whep_offer", whep_offer),
    ("ice_tcp", ice_tcp),
    ("stun_demux", stun_demux),
    ("turn_server", turn_server),
    ("frp_msg", frp_msg),
    ("yamux", yamux_frames),
    ("snappy", snappy_block),
    ("aes_cfb", aes_cfb),
    ("udp_packet", udp_packet),
    ("frpc_config", frpc_config),
    ("r58_toml", r58_toml),
    ("mediamtx_yml", mediamtx_yml),
];

/// A WHEP/WHIP request body: text checks, str0m's SDP parser, negotiation
/// as a viewer and as a publisher.
pub fn whep_offer(data: &[u8]) {
    let Ok(sdp) = std::str::from_utf8(data) else {
        return;
    };
    static CERT: OnceLock<str0m::config::DtlsCert> = OnceLock::new();
    let cert = CERT.get_or_init(|| {
        crate::webrtc::dtls::install();
        crate::webrtc::dtls::provider()
            .dtls_provider
            .generate_certificate()
            .expect("DTLS certificate")
    });
    let ticket = || Ticket {
        id: 1,
        secret: "fuzz".into(),
        path: Arc::from("cam0"),
        offer: sdp,
        candidates: vec![],
        cert: cert.clone(),
        bwe: None,
    };
    let now = Instant::now();
    let _ = Session::accept(
        ticket(),
        Plan::Encoder {
            profile: None,
            audio: true,
        },
        now,
    );
    let _ = Session::accept_publisher(ticket(), now);
}

/// ICE-TCP's RFC 4571 framing, fed in uneven pieces, and the STUN demux
/// on every packet it yields.
pub fn ice_tcp(data: &[u8]) {
    let mut d = tcp::Deframer::default();
    let step = 1 + data.first().copied().unwrap_or(0) as usize % 97;
    for chunk in data.chunks(step) {
        d.push(chunk);
        while let Some(p) = d.next_packet() {
            let _ = net::stun_local_ufrag(&p);
        }
    }
}

/// A UDP datagram on the shared media port.
pub fn stun_demux(data: &[u8]) {
    let _ = net::stun_local_ufrag(data);
}

/// What a TURN server (or anyone who can reach a forward's TURN socket)
/// sends, as datagrams and as a stream: each datagram carries the pending
/// request's transaction id, so answers reach the allocation, challenge
/// and refresh logic, not only the parser.
pub fn turn_server(data: &[u8]) {
    use crate::turn::{Client, stun};
    let t0 = Instant::now();
    let mut c = Client::new(([192, 0, 2, 1], 3478).into(), "u", "p", t0);
    let peer = ([198, 51, 100, 2], 5000).into();
    for (i, chunk) in data.split(|b| *b == 0xFF).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 300);
        let mut m = chunk.to_vec();
        let pending = c.poll_transmit();
        if let Some(tx) = pending.and_then(|r| stun::Message::parse(&r).map(|m| m.tx))
            && m.len() >= 20
        {
            m[8..20].copy_from_slice(&tx);
        }
        let _ = c.handle_input(&m, now);
        let _ = c.wrap(peer, chunk, now);
        c.handle_timeout(now);
    }
    // The same bytes as a TCP or TLS server's stream, 7 at a time.
    let mut frames = crate::turn::stream::Deframer::default();
    let mut s = Client::over_stream(([192, 0, 2, 1], 3478).into(), "u", "p", t0);
    for piece in data.chunks(7) {
        frames.push(piece);
        while let Ok(Some(m)) = frames.next() {
            let _ = s.handle_input(&m, t0);
        }
    }
}

/// frp control messages in pieces: v1 frames, v2 frames, and what a v2
/// server sends a client that has logged in (hellos, LoginResp, AEAD).
pub fn frp_msg(data: &[u8]) {
    use crate::tunnel::wire::ControlWire;
    for wire in [msg::Wire::V1, msg::Wire::V2] {
        let mut d = msg::Decoder::new(wire);
        for chunk in data.chunks(64) {
            d.feed(chunk);
            while let Ok(Some(_)) = d.next() {}
        }
    }
    let algs = crate::tunnel::aead::Algorithm::preferred();
    let mut c = crate::tunnel::v2::V2::client("fuzz-token", false, true, &algs);
    c.seal(&msg::Message::Login(Default::default()));
    for chunk in data.chunks(64) {
        if c.open(chunk).is_err() {
            break;
        }
    }
}

/// yamux frames from the server, with time moving on.
pub fn yamux_frames(data: &[u8]) {
    let t0 = Instant::now();
    let mut s = yamux::Session::new(yamux::Config::default(), t0);
    for (i, chunk) in data.chunks(128).enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 10);
        if s.handle_input(chunk, now).is_err() {
            return;
        }
        while s.poll_event().is_some() {}
        s.take_transmit();
    }
}

/// Snappy-framed work-connection data (frp's compression).
pub fn snappy_block(data: &[u8]) {
    let _ = snappy::Decoder::default().decode(data);
}

/// The AES-128-CFB stream (frp's encryption): IV first, then ciphertext,
/// then the same through the combined codec with compression.
pub fn aes_cfb(data: &[u8]) {
    let key = crypto::derive_key("fuzz-token");
    crypto::Decryptor::new(&key).open(data);
    let _ = codec::Codec::new(true, true, &key).inbound(data.to_vec());
}

/// UDPPacket messages on a udp proxy's work connection.
pub fn udp_packet(data: &[u8]) {
    for wire in [msg::Wire::V1, msg::Wire::V2] {
        let codec = codec::Codec::new(false, false, &[0; 16]);
        let mut r = udp::Relay::new(codec, wire, Instant::now());
        let _ = r.inbound(data.to_vec(), Instant::now());
    }
}

/// An existing frpc.ini or frpc.toml.
pub fn frpc_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::config::frpc::parse(text, "frpc.toml");
        let _ = crate::config::frpc::parse(text, "frpc.ini");
    }
}

/// /etc/r58/r58.toml.
pub fn r58_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::config::Config::parse(text);
    }
}

/// `r58 config import mediamtx.yml`, and the config it makes.
pub fn mediamtx_yml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok((toml, _)) = crate::config::import::mediamtx(text)
    {
        let _ = crate::config::Config::parse(&toml);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed in fuzz/corpus/<target>/ runs through its entry point on
    /// stable, so a crash found by fuzzing and committed stays fixed.
    #[test]
    fn the_committed_corpus_replays_without_a_panic() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (name, run) in TARGETS {
            let dir = root.join(name);
            let seeds: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            assert!(!seeds.is_empty(), "{name} has no seeds");
            for seed in seeds {
                run(&std::fs::read(&seed).unwrap());
            }
        }
    }
}
