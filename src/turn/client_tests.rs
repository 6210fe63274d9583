//! The client against a scripted server: every exchange is built here
//! from the RFC's rules, with explicit time.

use super::*;

const SERVER: &str = "198.51.100.1:3478";
const RELAYED: &str = "198.51.100.1:49160";
const PEER: &str = "203.0.113.5:5000";

fn at(ms: u64) -> Instant {
    thread_local!(static T0: Instant = Instant::now());
    T0.with(|t| *t + Duration::from_millis(ms))
}

fn server_auth(nonce: &str) -> Auth {
    Auth::new("1700000000:r58", "secret-pass", "r58.test", nonce)
}

/// The server's answer of `class` to `req`, signed when `auth` is given.
fn answer(
    req: &[u8],
    class: Class,
    auth: Option<&Auth>,
    f: impl FnOnce(Builder) -> Builder,
) -> Vec<u8> {
    let m = Message::parse(req).expect("a STUN request");
    let method = match m.method {
        0x003 => Method::Allocate,
        0x004 => Method::Refresh,
        0x009 => Method::ChannelBind,
        other => panic!("unexpected method {other:#x}"),
    };
    f(Builder::new(method, class, m.tx)).finish(auth)
}

fn challenge(req: &[u8], nonce: &str) -> Vec<u8> {
    answer(req, Class::Error, None, |b| {
        b.attr(attr::ERROR_CODE, b"\0\0\x04\x01Unauthorized")
            .attr(attr::REALM, b"r58.test")
            .attr(attr::NONCE, nonce.as_bytes())
    })
}

/// A client that went through the 401 challenge to an allocation.
fn allocated() -> Client {
    let mut c = Client::new(
        SERVER.parse().unwrap(),
        "1700000000:r58",
        "secret-pass",
        at(0),
    );
    let first = c.poll_transmit().unwrap();
    assert!(
        Message::parse(&first)
            .unwrap()
            .get(attr::USERNAME)
            .is_none()
    );
    c.handle_input(&challenge(&first, "n1"), at(10));
    let signed = c.poll_transmit().expect("the request again, signed");
    let m = Message::parse(&signed).unwrap();
    assert!(
        server_auth("n1").verifies(&m),
        "the server accepts the signature"
    );
    let ok = answer(&signed, Class::Success, Some(&server_auth("n1")), |b| {
        b.addr(attr::XOR_RELAYED_ADDRESS, RELAYED.parse().unwrap())
            .u32(attr::LIFETIME, 600)
    });
    c.handle_input(&ok, at(20));
    assert_eq!(c.relayed(), Some(RELAYED.parse().unwrap()));
    c
}

#[test]
fn allocates_after_the_servers_challenge() {
    let c = allocated();
    assert_eq!(
        c.state(),
        &State::Allocated {
            relayed: RELAYED.parse().unwrap()
        }
    );
}

#[test]
fn a_second_401_is_a_wrong_credential_not_a_loop() {
    let mut c = Client::new(SERVER.parse().unwrap(), "u", "wrong", at(0));
    let first = c.poll_transmit().unwrap();
    c.handle_input(&challenge(&first, "n1"), at(10));
    let signed = c.poll_transmit().unwrap();
    c.handle_input(&challenge(&signed, "n1"), at(20));
    assert!(c.poll_transmit().is_none());
    match c.state() {
        State::Failed(why) => {
            assert!(why.contains("wrong TURN username or credential"), "{why}");
            assert!(why.contains(SERVER), "{why}");
            assert!(
                !why.contains("wrong\""),
                "the password is never shown: {why}"
            );
        }
        s => panic!("{s:?}"),
    }
}

/// Send until it gives up: how many requests went out, and when it gave up.
fn unanswered(mut c: Client) -> (usize, Instant) {
    let (mut sent, mut now) = (0, at(0));
    while let Some(t) = c.poll_timeout() {
        while c.poll_transmit().is_some() {
            sent += 1;
        }
        now = t;
        c.handle_timeout(now);
    }
    assert!(matches!(c.state(), State::Failed(w) if w.contains("no answer")));
    (sent, now)
}

#[test]
fn an_unanswered_allocation_fails_after_retransmitting() {
    let (sent, now) = unanswered(Client::new(SERVER.parse().unwrap(), "u", "p", at(0)));
    assert_eq!(sent, TRIES as usize);
    assert!(now >= at(7_000) && now <= at(16_000), "gave up at {now:?}");
}

#[test]
fn over_a_stream_a_request_is_sent_once_and_waited_for_as_long() {
    let (sent, now) = unanswered(Client::over_stream(
        SERVER.parse().unwrap(),
        "u",
        "p",
        at(0),
    ));
    assert_eq!(sent, 1);
    assert_eq!(now, at(7_500));
}

#[test]
fn data_goes_by_send_indication_until_the_channel_is_bound_then_as_channel_data() {
    let mut c = allocated();
    let peer: SocketAddr = PEER.parse().unwrap();
    let first = c.wrap(peer, b"check", at(30)).unwrap();
    let m = Message::parse(&first).unwrap();
    assert!(m.is(Method::Send, Class::Indication));
    assert_eq!(m.addr(attr::XOR_PEER_ADDRESS), Some(peer));
    assert_eq!(m.get(attr::DATA), Some(&b"check"[..]));
    let bind = c.poll_transmit().expect("a ChannelBind");
    let bm = Message::parse(&bind).unwrap();
    assert!(bm.is(Method::ChannelBind, Class::Request));
    assert_eq!(bm.u32(attr::CHANNEL_NUMBER), Some(0x4000 << 16));
    // Still unbound: a second packet does not bind again.
    c.wrap(peer, b"again", at(40)).unwrap();
    assert!(c.poll_transmit().is_none());
    c.handle_input(
        &answer(&bind, Class::Success, Some(&server_auth("n1")), |b| b),
        at(50),
    );
    assert_eq!(
        c.wrap(peer, b"media", at(60)).unwrap(),
        stun::channel_data(0x4000, b"media")
    );
    // The peer's data arrives both ways a server may send it.
    let back = stun::channel_data(0x4000, b"reply");
    assert_eq!(
        c.handle_input(&back, at(70)),
        Some((peer, b"reply".to_vec()))
    );
    let ind = Builder::new(Method::Data, Class::Indication, [9; 12])
        .addr(attr::XOR_PEER_ADDRESS, peer)
        .attr(attr::DATA, b"old style")
        .finish(None);
    assert_eq!(
        c.handle_input(&ind, at(80)),
        Some((peer, b"old style".to_vec()))
    );
    // An unknown channel is nobody's.
    assert_eq!(
        c.handle_input(&stun::channel_data(0x4001, b"x"), at(90)),
        None
    );
}

#[test]
fn the_allocation_and_channels_are_refreshed_in_time_and_a_stale_nonce_is_followed() {
    let mut c = allocated();
    let peer: SocketAddr = PEER.parse().unwrap();
    c.wrap(peer, b"x", at(30)).unwrap();
    let bind = c.poll_transmit().unwrap();
    c.handle_input(
        &answer(&bind, Class::Success, Some(&server_auth("n1")), |b| b),
        at(40),
    );
    // Rebind every 4 minutes keeps the 5-minute permission.
    let t = c.poll_timeout().unwrap();
    assert!(t <= at(30 + 240_000), "{t:?}");
    c.handle_timeout(at(240_030));
    let rebind = c.poll_transmit().expect("rebind");
    assert!(
        Message::parse(&rebind)
            .unwrap()
            .is(Method::ChannelBind, Class::Request)
    );
    let bound = answer(&rebind, Class::Success, Some(&server_auth("n1")), |b| b);
    c.handle_input(&bound, at(240_040));
    // The allocation 60 s before its 600 s end (the channel rebinds at the
    // same time); the server wants a new nonce.
    c.handle_timeout(at(540_020));
    let sent: Vec<Vec<u8>> = std::iter::from_fn(|| c.poll_transmit()).collect();
    let is = |m, raw: &Vec<u8>| Message::parse(raw).unwrap().is(m, Class::Request);
    assert!(sent.iter().any(|r| is(Method::ChannelBind, r)), "rebinds");
    let refresh = sent
        .into_iter()
        .find(|r| is(Method::Refresh, r))
        .expect("refresh");
    let m = Message::parse(&refresh).unwrap();
    assert!(m.is(Method::Refresh, Class::Request));
    let stale = answer(&refresh, Class::Error, None, |b| {
        b.attr(attr::ERROR_CODE, b"\0\0\x04\x26Stale Nonce")
            .attr(attr::REALM, b"r58.test")
            .attr(attr::NONCE, b"n2")
    });
    c.handle_input(&stale, at(540_030));
    let again = c.poll_transmit().expect("refresh with the new nonce");
    let m = Message::parse(&again).unwrap();
    assert_eq!(m.text(attr::NONCE).as_deref(), Some("n2"));
    assert!(server_auth("n2").verifies(&m));
    // A success the shared key did not sign is ignored: the request is
    // still pending and goes out again.
    let forged = answer(
        &again,
        Class::Success,
        Some(&Auth::new("x", "y", "z", "n2")),
        |b| b,
    );
    assert!(c.handle_input(&forged, at(540_040)).is_none());
    c.handle_timeout(at(540_030) + RTO);
    let resent: Vec<Vec<u8>> = std::iter::from_fn(|| c.poll_transmit()).collect();
    assert!(resent.contains(&again), "the refresh is retransmitted");
    let ok = answer(&again, Class::Success, Some(&server_auth("n2")), |b| {
        b.u32(attr::LIFETIME, 600)
    });
    c.handle_input(&ok, at(541_000));
    assert!(c.relayed().is_some());
    assert_eq!(c.refresh_at, Some(at(541_000) + Duration::from_secs(540)));
}

#[test]
fn closing_releases_the_allocation_once() {
    let mut c = allocated();
    c.close(at(100));
    let r = Message::parse(&c.poll_transmit().unwrap()).unwrap();
    assert!(r.is(Method::Refresh, Class::Request));
    assert_eq!(r.u32(attr::LIFETIME), Some(0));
    assert_eq!(c.poll_timeout(), None);
    assert!(c.wrap(PEER.parse().unwrap(), b"x", at(110)).is_none());
}
