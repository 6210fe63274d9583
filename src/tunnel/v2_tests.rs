use super::*;
use crate::tunnel::crypto::unhex;
use crate::tunnel::vectors;
use serde_json::Value;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// One direction of a recording's control stream, rebuilt from the
/// decoder's claims in order: magic, hellos, plaintext frames, the AEAD
/// nonce and records.
fn control_bytes(v: &Value, dir: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for d in v["decoded"].as_array().unwrap() {
        if d["channel"] != "control" || d["dir"] != dir {
            continue;
        }
        let hex = match s(&d["kind"]) {
            "v2_magic" | "aead_nonce" => s(&d["hex"]),
            "v2_hello" => s(&d["frame_hex"]),
            "frp_msg" if d["encrypted"] == false => s(&d["frame_hex"]),
            "aead_record" => s(&d["wire_hex"]),
            _ => continue,
        };
        out.extend(unhex(hex));
    }
    out
}

/// The control messages a recording shows in one direction, by name.
fn control_msgs(v: &Value, dir: &str) -> Vec<Message> {
    v["decoded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "frp_msg" && d["channel"] == "control" && d["dir"] == dir)
        .map(|d| decode_frame(s(&d["frame_hex"])))
        .collect()
}

fn decode_frame(hex: &str) -> Message {
    let mut d = Decoder::new(Wire::V2);
    d.feed(&unhex(hex));
    d.next().unwrap().expect("a whole frame")
}

fn algs(h: &Value) -> Vec<Algorithm> {
    h["client_algorithms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| Algorithm::from_name(s(a)).unwrap())
        .collect()
}

#[test]
fn every_recorded_frame_decodes_and_reencodes_byte_for_byte() {
    let mut n = 0;
    for (name, v) in vectors::all_v2() {
        for d in v["decoded"].as_array().unwrap() {
            if d["kind"] != "frp_msg" {
                continue;
            }
            let m = decode_frame(s(&d["frame_hex"]));
            assert_eq!(m.v2_id() as u64, d["msg_id"].as_u64().unwrap(), "{name}");
            assert_eq!(
                message_frame(&m),
                unhex(s(&d["frame_hex"])),
                "{name} {}",
                d["name"]
            );
            n += 1;
        }
    }
    assert!(n > 50, "{n} frames");
}

#[test]
fn our_client_hello_is_stock_frpcs_with_its_random() {
    for (name, v) in vectors::all_v2() {
        for h in v["verification"]["v2_handshake"].as_array().unwrap() {
            let random: [u8; 32] = unhex(s(&h["client_random_hex"])).try_into().unwrap();
            let recorded = unhex(s(&h["client_hello_payload_hex"]));
            let mux = String::from_utf8_lossy(&recorded).contains("tcpMux");
            assert_eq!(
                String::from_utf8(client_hello(false, mux, &algs(h), &random)).unwrap(),
                String::from_utf8(recorded).unwrap(),
                "{name}"
            );
        }
    }
}

#[test]
fn the_client_replays_every_recorded_control_session() {
    let mut n = 0;
    for (name, v) in vectors::all_v2() {
        let h = &v["verification"]["v2_handshake"][0];
        let token = s(&v["verification"]["v2_handshake"][0]["hkdf"]["c2s_token"]);
        let hello = unhex(s(&h["client_hello_payload_hex"]));
        let mut c = V2::client_with(token, hello, &algs(h));
        // What we write first: the magic, the hello and the Login, as frpc.
        let c2s = control_bytes(&v, "c2s");
        let sent = control_msgs(&v, "c2s");
        let first = c.seal(&sent[0]);
        assert_eq!(first, c2s[..first.len()], "{name}: magic, hello, Login");
        // Every server byte, a few at a time, gives the recorded messages.
        let mut got = Vec::new();
        for piece in control_bytes(&v, "s2c").chunks(11) {
            got.extend(c.open(piece).unwrap_or_else(|e| panic!("{name}: {e}")));
        }
        assert_eq!(got, control_msgs(&v, "s2c"), "{name}");
        let refused = matches!(&got[0], Message::LoginResp(r) if !r.error.is_empty());
        assert_eq!(name == "v2-bad-token", refused);
        if refused {
            assert!(c.opener.is_none() && c.sealer.is_none(), "stays plain");
            continue;
        }
        assert_eq!(c.aead(), Some(s(&h["selected_algorithm"])));
        // Our later messages decrypt with the recorded client key to the
        // recorded messages.
        let key: [u8; 32] = unhex(s(&h["hkdf"]["c2s_key_hex"])).try_into().unwrap();
        let mut o = Opener::new(c.alg.unwrap(), key);
        let mut d = Decoder::new(Wire::V2);
        for m in &sent[1..] {
            d.feed(&o.open(&c.seal(m)).unwrap());
            assert_eq!(d.next().unwrap().as_ref(), Some(m), "{name}");
        }
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn work_streams_start_like_frpcs() {
    for (name, v) in vectors::all_v2() {
        let work: Vec<&Value> = v["decoded"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["channel"] == "work" && d["dir"] == "c2s")
            .take(2)
            .collect();
        if work.len() < 2 {
            continue;
        }
        assert_eq!(s(&work[0]["hex"]), "46525000020d0a", "{name}");
        let m = decode_frame(s(&work[1]["frame_hex"]));
        assert!(matches!(m, Message::NewWorkConn(_)), "{name}");
        let mut want = unhex(s(&work[0]["hex"]));
        want.extend(unhex(s(&work[1]["frame_hex"])));
        assert_eq!(work_hello(&m), want, "{name}");
    }
}

#[test]
fn client_and_server_agree_from_any_split_with_either_algorithm() {
    for alg in [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305] {
        let mut c = V2::client("tok", true, true, &[alg, Algorithm::Aes256Gcm]);
        let mut srv = V2::server("tok", &[Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305]);
        let login = Message::Login(Default::default());
        let wire = c.seal(&login);
        let mut got = Vec::new();
        for p in wire.chunks(3) {
            got.extend(srv.open(p).unwrap());
        }
        assert_eq!(got, vec![login]);
        let resp = Message::LoginResp(crate::tunnel::msg::LoginResp {
            run_id: "r".into(),
            ..Default::default()
        });
        let mut back = srv.seal(&resp);
        back.extend(srv.seal(&Message::ReqWorkConn));
        let mut got = Vec::new();
        for p in back.chunks(5) {
            got.extend(c.open(p).unwrap());
        }
        assert_eq!(got, vec![resp, Message::ReqWorkConn]);
        assert_eq!((c.aead(), srv.aead()), (Some(alg.name()), Some(alg.name())));
        let ping = Message::Ping(Default::default());
        let sealed = c.seal(&ping);
        assert!(!sealed.windows(2).any(|w| w == b"{}"), "encrypted");
        assert_eq!(srv.open(&sealed).unwrap(), vec![ping]);
    }
}

#[test]
fn a_wrong_token_fails_at_the_first_record() {
    let mut c = V2::client("tok-A1", false, false, &[Algorithm::Aes256Gcm]);
    let mut srv = V2::server("tok-B2", &[Algorithm::Aes256Gcm]);
    srv.open(&c.seal(&Message::Login(Default::default())))
        .unwrap();
    let mut back = srv.seal(&Message::LoginResp(Default::default()));
    back.extend(srv.seal(&Message::ReqWorkConn));
    let e = c.open(&back).unwrap_err();
    assert!(e.contains("authentication"), "{e}");
    assert!(!e.contains("tok-"), "no token in: {e}");
}

#[test]
fn a_v1_stream_is_not_taken_for_v2() {
    let mut srv = V2::server("t", &[Algorithm::Aes256Gcm]);
    let e = srv
        .open(&Message::Login(Default::default()).encode())
        .unwrap_err();
    assert!(e.contains("no magic"), "{e}");
}
