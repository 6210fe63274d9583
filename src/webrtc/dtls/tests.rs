//! Handshakes between in-memory DTLS instances: ours against ours, against
//! an RSA-certificate peer in both roles, and against str0m's own dimpl.

use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};
use str0m::crypto::dtls::{DtlsCert, DtlsInstance, DtlsOutput, DtlsVersion};

use super::{OpensslDtls, provider};
use str0m::crypto::dtls::DtlsProvider;

/// A self-signed RSA-2048 certificate, as GStreamer's webrtcbin makes.
fn rsa_cert() -> DtlsCert {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "webrtcbin").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(Asn1Time::days_from_now(0).unwrap().as_ref())
        .unwrap();
    b.set_not_after(Asn1Time::days_from_now(30).unwrap().as_ref())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    DtlsCert {
        certificate: b.build().to_der().unwrap(),
        private_key: key.private_key_to_der().unwrap(),
    }
}

fn ecdsa_cert() -> DtlsCert {
    provider().dtls_provider.generate_certificate().unwrap()
}

fn ours(cert: &DtlsCert) -> Box<dyn DtlsInstance> {
    OpensslDtls
        .new_dtls(cert, Instant::now(), DtlsVersion::Dtls12, Some(1150))
        .unwrap()
}

fn dimpl(cert: &DtlsCert) -> Box<dyn DtlsInstance> {
    str0m::crypto::from_feature_flags()
        .dtls_provider
        .new_dtls(cert, Instant::now(), DtlsVersion::Dtls12, Some(1150))
        .unwrap()
}

/// What one side reported while the handshake ran.
#[derive(Default, Debug)]
struct Seen {
    connected: bool,
    peer_cert: Option<Vec<u8>>,
    keys: Option<Vec<u8>>,
    data: Vec<Vec<u8>>,
}

/// Drain `from`'s output: datagrams go to `to`, events into `seen`.
/// Returns how many datagrams moved, or the first error `to` raised.
fn drain(
    from: &mut dyn DtlsInstance,
    to: &mut dyn DtlsInstance,
    seen: &mut Seen,
) -> Result<usize, String> {
    let mut moved = 0;
    let mut buf = vec![0u8; 2048];
    loop {
        match from.poll_output(&mut buf) {
            DtlsOutput::Packet(p) => {
                let p = p.to_vec();
                to.handle_packet(&p).map_err(|e| e.to_string())?;
                moved += 1;
            }
            DtlsOutput::Connected => seen.connected = true,
            DtlsOutput::PeerCert(c) => seen.peer_cert = Some(c.to_vec()),
            DtlsOutput::KeyingMaterial(km, _) => seen.keys = Some(km.to_vec()),
            DtlsOutput::ApplicationData(d) => seen.data.push(d.to_vec()),
            DtlsOutput::Timeout(_) => return Ok(moved),
            other => panic!("unexpected output {other:?}"),
        }
    }
}

/// Run a handshake to its end; `Err` names the side that failed and why.
fn handshake(
    client: &mut dyn DtlsInstance,
    server: &mut dyn DtlsInstance,
) -> Result<(Seen, Seen), String> {
    let (mut c, mut s) = (Seen::default(), Seen::default());
    server.set_active(false);
    client.set_active(true);
    // str0m's first poll: dimpl sets itself up (and sends) from a timeout.
    server.handle_timeout(Instant::now()).unwrap();
    client.handle_timeout(Instant::now()).unwrap();
    for _ in 0..20 {
        let a = drain(client, server, &mut c).map_err(|e| format!("server: {e}"))?;
        let b = drain(server, client, &mut s).map_err(|e| format!("client: {e}"))?;
        if a + b == 0 {
            break;
        }
    }
    Ok((c, s))
}

fn assert_connected(
    client: &mut dyn DtlsInstance,
    client_cert: &DtlsCert,
    server: &mut dyn DtlsInstance,
    server_cert: &DtlsCert,
) {
    let (c, s) = handshake(client, server).expect("handshake");
    assert!(c.connected && s.connected, "client {c:?}, server {s:?}");
    assert_eq!(c.peer_cert.as_deref(), Some(&server_cert.certificate[..]));
    assert_eq!(s.peer_cert.as_deref(), Some(&client_cert.certificate[..]));
    let keys = c.keys.expect("client keys");
    assert!(
        keys.len() >= 56,
        "SRTP keying material: {} bytes",
        keys.len()
    );
    assert_eq!(Some(keys), s.keys, "both sides derive the same SRTP keys");
    // The data channel's SCTP rides on application data, both ways.
    assert_eq!(client.send_application_data(b"sctp out").unwrap(), 8);
    assert_eq!(server.send_application_data(b"sctp back").unwrap(), 9);
    let (mut c, mut s) = (Seen::default(), Seen::default());
    drain(client, server, &mut c).unwrap();
    drain(server, client, &mut s).unwrap();
    drain(client, server, &mut c).unwrap();
    assert_eq!(s.data, vec![b"sctp out".to_vec()]);
    assert_eq!(c.data, vec![b"sctp back".to_vec()]);
}

#[test]
fn ours_to_ours() {
    let (cc, sc) = (ecdsa_cert(), ecdsa_cert());
    assert_connected(&mut *ours(&cc), &cc, &mut *ours(&sc), &sc);
}

#[test]
fn rsa_client_reaches_our_server() {
    // webrtcbin answering a WHIP 201 with `setup:active`: it is the client.
    let (cc, sc) = (rsa_cert(), ecdsa_cert());
    assert_connected(&mut *ours(&cc), &cc, &mut *ours(&sc), &sc);
}

#[test]
fn we_reach_an_rsa_server() {
    // An offer saying `setup:passive` (an SFU, a relay): we are the client.
    let (cc, sc) = (ecdsa_cert(), rsa_cert());
    assert_connected(&mut *ours(&cc), &cc, &mut *ours(&sc), &sc);
}

#[test]
fn dimpl_peers_both_ways() {
    // Chromium, Firefox and pion speak ECDSA DTLS like dimpl does.
    let (a, b) = (ecdsa_cert(), ecdsa_cert());
    assert_connected(&mut *dimpl(&a), &a, &mut *ours(&b), &b);
    let (a, b) = (ecdsa_cert(), ecdsa_cert());
    assert_connected(&mut *ours(&a), &a, &mut *dimpl(&b), &b);
}

#[test]
fn dimpl_alone_locks_rsa_clients_out() {
    // Why this module exists: with dimpl as server, an RSA client gets no
    // CertificateRequest it can answer, and the handshake fails.
    let (cc, sc) = (rsa_cert(), ecdsa_cert());
    let r = handshake(&mut *ours(&cc), &mut *dimpl(&sc));
    let connected = r.as_ref().is_ok_and(|(c, s)| c.connected && s.connected);
    assert!(!connected, "dimpl accepted an RSA client: {r:?}");
}

#[test]
fn garbage_fails_the_handshake() {
    let sc = ecdsa_cert();
    let mut server = ours(&sc);
    server.set_active(false);
    let mut hello = vec![22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40];
    hello.extend_from_slice(&[0xff; 40]);
    assert!(server.handle_packet(&hello).is_err());
}

#[test]
fn lost_client_hello_is_sent_again() {
    let cc = ecdsa_cert();
    let mut client = ours(&cc);
    client.set_active(true);
    let mut buf = vec![0u8; 2048];
    let first = match client.poll_output(&mut buf) {
        DtlsOutput::Packet(p) => p.to_vec(),
        other => panic!("expected a ClientHello, got {other:?}"),
    };
    let DtlsOutput::Timeout(deadline) = client.poll_output(&mut buf) else {
        panic!("expected the retransmit deadline");
    };
    let wait = deadline.saturating_duration_since(Instant::now());
    assert!(
        wait <= Duration::from_secs(2),
        "first retransmit in {wait:?}"
    );
    // Nothing happens early.
    client.handle_timeout(Instant::now()).unwrap();
    assert!(matches!(
        client.poll_output(&mut buf),
        DtlsOutput::Timeout(_)
    ));
    // OpenSSL's timer is on the real clock: wait it out.
    std::thread::sleep(wait + Duration::from_millis(50));
    client.handle_timeout(Instant::now()).unwrap();
    match client.poll_output(&mut buf) {
        DtlsOutput::Packet(p) => assert_eq!(p[0], first[0], "a handshake record again"),
        other => panic!("expected the ClientHello again, got {other:?}"),
    }
}
