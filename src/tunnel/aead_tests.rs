use super::*;
use crate::tunnel::crypto::unhex;
use crate::tunnel::vectors;

fn hex32(v: &serde_json::Value) -> [u8; 32] {
    unhex(v.as_str().unwrap()).try_into().unwrap()
}

#[test]
fn hchacha20_matches_the_drafts_vector() {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let nonce = unhex("000000090000004a0000000031415927");
    assert_eq!(
        hchacha20(&key, &nonce).to_vec(),
        unhex("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")
    );
}

#[test]
fn transcript_and_keys_match_every_recorded_handshake() {
    let mut n = 0;
    for (name, v) in vectors::all_v2() {
        for h in v["verification"]["v2_handshake"].as_array().unwrap() {
            let ch = unhex(h["client_hello_payload_hex"].as_str().unwrap());
            let sh = unhex(h["server_hello_payload_hex"].as_str().unwrap());
            let t = transcript(&ch, &sh);
            assert_eq!(t, hex32(&h["transcript_sha256"]), "{name}");
            let alg = Algorithm::from_name(h["selected_algorithm"].as_str().unwrap()).unwrap();
            let k = &h["hkdf"];
            // Each side keys with its own token (they differ in bad-token).
            let c2s = derive_key(
                k["c2s_token"].as_str().unwrap(),
                &t,
                alg,
                Direction::ClientToServer,
            );
            let s2c = derive_key(
                k["s2c_token"].as_str().unwrap(),
                &t,
                alg,
                Direction::ServerToClient,
            );
            assert_eq!(c2s, hex32(&k["c2s_key_hex"]), "{name}");
            assert_eq!(s2c, hex32(&k["s2c_key_hex"]), "{name}");
            n += 1;
        }
    }
    assert!(n >= 6, "{n} handshakes");
}

#[test]
fn every_recorded_stream_opens_from_any_split_and_seals_to_the_same_bytes() {
    let mut algs = std::collections::HashSet::new();
    for (name, v) in vectors::all_v2() {
        for s in v["verification"]["aead_streams"].as_array().unwrap() {
            let alg = Algorithm::from_name(s["algorithm"].as_str().unwrap()).unwrap();
            algs.insert(alg.name());
            let key = hex32(&s["key_hex"]);
            let nonce = unhex(s["initial_nonce_hex"].as_str().unwrap());
            let mut wire = nonce.clone();
            let mut sealer = Sealer::with_nonce(alg, key, nonce);
            let mut sealed = Vec::new();
            for r in s["records"].as_array().unwrap() {
                let mut rec = unhex(r["length_header_hex"].as_str().unwrap());
                rec.extend(unhex(r["ciphertext_hex"].as_str().unwrap()));
                rec.extend(unhex(r["tag_hex"].as_str().unwrap()));
                wire.extend(&rec);
                sealed.extend(sealer.seal(&unhex(r["plaintext_hex"].as_str().unwrap())));
            }
            assert_eq!(sealed, wire, "{name} {}: our records", s["where"]);
            let plain = unhex(s["plaintext_stream_hex"].as_str().unwrap());
            for split in [1, 7, 29, wire.len()] {
                let mut o = Opener::new(alg, key);
                let mut got = Vec::new();
                for piece in wire.chunks(split) {
                    got.extend(o.open(piece).unwrap());
                }
                assert_eq!(got, plain, "{name} {} split {split}", s["where"]);
            }
            // The other direction's key, or a flipped bit, does not open.
            let mut wrong = key;
            wrong[0] ^= 1;
            assert!(Opener::new(alg, wrong).open(&wire).is_err(), "{name}");
            let mut bad = wire.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert!(Opener::new(alg, key).open(&bad).is_err(), "{name}");
        }
    }
    assert_eq!(algs.len(), 2, "both algorithms recorded: {algs:?}");
}

#[test]
fn a_long_message_is_split_into_records_the_peer_opens() {
    for alg in Algorithm::preferred() {
        let key = [7u8; 32];
        let mut s = Sealer::new(alg, key);
        let big = vec![0x5a; 40_000];
        let wire = s.seal(&big);
        assert_eq!(wire.len(), alg.nonce_len() + big.len() + 3 * (4 + TAG));
        let mut o = Opener::new(alg, key);
        assert_eq!(o.open(&wire).unwrap(), big);
        assert_eq!(o.open(&s.seal(b"next")).unwrap(), b"next");
    }
}
