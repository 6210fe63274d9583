use super::*;
use crate::tunnel::crypto::unhex;
use crate::tunnel::vectors;

fn pair(now: Instant) -> (Session, Session) {
    let c = Session::new(Config::default(), now);
    let s = Session::new(
        Config {
            client: false,
            ..Config::default()
        },
        now,
    );
    (c, s)
}

fn pump(from: &mut Session, to: &mut Session, now: Instant) -> Vec<Event> {
    let bytes = from.take_transmit();
    to.handle_input(&bytes, now).unwrap();
    std::iter::from_fn(|| to.poll_event()).collect()
}

/// Every recorded frps→frpc byte parses, in TCP-sized pieces, into the
/// frames the independent decoder found; the opens we write match stock
/// frpc's bytes.
#[test]
fn recorded_sessions_parse() {
    let t = Instant::now();
    for name in [
        "mux-login-proxy-workconn",
        "extra-mux-keepalive",
        "bad-token",
    ] {
        let v = vectors::load(name);
        let conn = &v["connections"][0];
        let mut client = Session::new(Config::default(), t);
        // Open the streams stock frpc opened (all before any ACK arrives),
        // checking that our open frames are the bytes frpc wrote.
        let chunks = conn["chunks"].as_array().unwrap();
        let c2s: Vec<u8> = chunks
            .iter()
            .filter(|c| c["dir"] == "c2s")
            .flat_map(|c| unhex(c["hex"].as_str().unwrap()))
            .collect();
        let mut p = 0;
        while p + HEADER_LEN <= c2s.len() {
            let h = &c2s[p..p + HEADER_LEN];
            if h[1] == WINDOW_UPDATE && u16::from_be_bytes([h[2], h[3]]) == SYN {
                let id = client.open();
                assert_eq!(client.take_transmit(), h, "{name}: our open of {id}");
            }
            let len = u32::from_be_bytes(h[8..12].try_into().unwrap()) as usize;
            p += HEADER_LEN + if h[1] == DATA { len } else { 0 };
        }
        let mut data = HashMap::<u32, Vec<u8>>::new();
        let mut pings = 0;
        for chunk in chunks.iter().filter(|c| c["dir"] == "s2c") {
            let bytes = unhex(chunk["hex"].as_str().unwrap());
            client.handle_input(&bytes, t).unwrap();
            while let Some(e) = client.poll_event() {
                if let Event::Data(id, d) = e {
                    data.entry(id).or_default().extend(d);
                }
            }
            let out = client.take_transmit();
            pings += out.chunks(HEADER_LEN).filter(|h| h[1] == PING).count();
        }
        // Payload per stream equals the decoder's Data frames.
        let mut want = HashMap::<u32, Vec<u8>>::new();
        let mut want_pings = 0;
        for d in v["decoded"].as_array().unwrap() {
            if d["kind"] != "yamux_frame" || d["dir"] != "s2c" {
                continue;
            }
            let id = d["stream_id"].as_u64().unwrap() as u32;
            if let Some(p) = d["payload_hex"].as_str() {
                want.entry(id).or_default().extend(unhex(p));
            }
            if d["type"] == 2 && d["flag_names"].to_string().contains("SYN") {
                want_pings += 1;
            }
        }
        want.retain(|_, v| !v.is_empty());
        assert_eq!(data, want, "{name}");
        assert_eq!(pings, want_pings, "{name}: every server ping answered");
    }
}

#[test]
fn open_send_fin_between_two_sessions() {
    let t = Instant::now();
    let (mut c, mut s) = pair(t);
    let id = c.open();
    assert_eq!(id, 1);
    assert_eq!(c.send(id, b"hello"), 5);
    let ev = pump(&mut c, &mut s, t);
    assert_eq!(ev, [Event::Opened(1), Event::Data(1, b"hello".to_vec())]);
    assert_eq!(s.send(1, b"back"), 4);
    s.close(1);
    let ev = pump(&mut s, &mut c, t);
    assert_eq!(ev, [Event::Data(1, b"back".to_vec()), Event::Finished(1)]);
    assert_eq!(c.stream_count(), 1, "half-closed until we close too");
    c.close(1);
    assert_eq!(c.stream_count(), 0);
    assert_eq!(pump(&mut c, &mut s, t), [Event::Finished(1)]);
    assert_eq!(s.stream_count(), 0);
    assert_eq!(c.open(), 3, "client ids are odd");
}

#[test]
fn window_blocks_then_reopens_after_reads() {
    let t = Instant::now();
    let (mut c, mut s) = pair(t);
    let id = c.open();
    pump(&mut c, &mut s, t);
    pump(&mut s, &mut c, t); // the ACK grows our window to 6 MiB
    let big = vec![7u8; 7 * 1024 * 1024];
    let sent = c.send(id, &big);
    assert_eq!(sent, 6 * 1024 * 1024);
    assert_eq!(c.send(id, &big[sent..]), 0, "window exhausted");
    let got: usize = pump(&mut c, &mut s, t)
        .iter()
        .map(|e| match e {
            Event::Data(_, d) => d.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(got, sent);
    s.consumed(id, 1024);
    assert!(s.take_transmit().is_empty(), "no update for a small read");
    s.consumed(id, 3 * 1024 * 1024);
    assert_eq!(pump(&mut s, &mut c, t), [Event::Writable(id)]);
    assert!(c.send(id, &big[sent..]) > 0);
}

#[test]
fn overrunning_the_window_is_a_protocol_error() {
    let t = Instant::now();
    let (mut c, mut s) = pair(t);
    let id = c.open();
    pump(&mut c, &mut s, t);
    let mut frame = Vec::new();
    header(&mut frame, DATA, 0, id, 6 * 1024 * 1024 + 1);
    frame.resize(HEADER_LEN + 6 * 1024 * 1024 + 1, 0);
    assert!(matches!(s.handle_input(&frame, t), Err(Error::Protocol(_))));
}

#[test]
fn keepalive_pings_and_times_out() {
    let t = Instant::now();
    let (mut c, mut s) = pair(t);
    assert_eq!(c.poll_timeout(), t + Duration::from_secs(30));
    let t1 = c.poll_timeout();
    c.handle_timeout(t1).unwrap();
    pump(&mut c, &mut s, t1); // server answers
    let t2 = t1 + Duration::from_millis(40);
    pump(&mut s, &mut c, t2);
    assert_eq!(c.last_rtt, Some(Duration::from_millis(40)));
    let t3 = c.poll_timeout();
    assert_eq!(t3, t2 + Duration::from_secs(30));
    c.handle_timeout(t3).unwrap();
    c.take_transmit(); // lost on a dead path
    let t4 = c.poll_timeout();
    assert_eq!(t4, t3 + Duration::from_secs(10));
    assert_eq!(c.handle_timeout(t4), Err(Error::KeepaliveTimeout));
}

#[test]
fn bad_frames_are_rejected() {
    let t = Instant::now();
    let (mut c, _) = pair(t);
    assert!(c.handle_input(&[1; 12], t).is_err(), "version");
    let mut f = Vec::new();
    header(&mut f, WINDOW_UPDATE, SYN, 3, 0);
    assert!(c.handle_input(&f, t).is_err(), "server must open even ids");
}
