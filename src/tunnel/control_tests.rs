use super::*;
use crate::config::tunnel::{ProxyType, Secret};
use crate::tunnel::crypto::unhex;
use crate::tunnel::msg::{Decoder, LoginResp, NewProxyResp, Pong};
use crate::tunnel::vectors;

fn settings(proxies: &[(&str, u16)]) -> Settings {
    Settings {
        server_addr: "127.0.0.1".into(),
        token: Secret::new("r58-test-token"),
        proxies: proxies
            .iter()
            .map(|(name, remote)| Proxy {
                name: name.to_string(),
                kind: ProxyType::Tcp,
                local_ip: "127.0.0.1".into(),
                local_port: 18080,
                remote_port: *remote,
                use_encryption: false,
                use_compression: false,
            })
            .collect(),
        ..Settings::default()
    }
}

fn frames(v: &serde_json::Value, name: &str) -> Vec<Vec<u8>> {
    v["decoded"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "frp_msg" && d["name"] == name)
        .map(|d| unhex(d["frame_hex"].as_str().unwrap()))
        .collect()
}

fn decode(frame: &[u8]) -> Message {
    let mut d = Decoder::default();
    d.feed(frame);
    d.next().unwrap().unwrap()
}

/// Our Login, NewProxy and NewWorkConn are the bytes stock frpc sent, given
/// the same timestamp and host; the server's replies drive the same state.
#[test]
fn replays_the_recorded_session() {
    let v = vectors::load("mux-login-proxy-workconn");
    let t = Instant::now();
    let Message::Login(rec) = decode(&frames(&v, "Login")[0]) else {
        panic!()
    };
    let mut c = Control::new(&settings(&[("web", 16000)]), String::new(), t);
    let host = Host {
        hostname: rec.hostname.clone(),
        os: "linux",
        arch: "amd64",
    };
    assert_eq!(
        c.login(&host, rec.timestamp).encode(),
        frames(&v, "Login")[0]
    );
    let Message::LoginResp(resp) = decode(&frames(&v, "LoginResp")[0]) else {
        panic!()
    };
    c.handle_login_resp(resp.clone(), t).unwrap();
    assert_eq!(c.run_id, resp.run_id);
    assert_eq!(
        c.poll_message().unwrap().encode(),
        frames(&v, "NewProxy")[0]
    );
    c.handle(Message::ReqWorkConn, t).unwrap();
    assert!(c.take_work_request() && !c.take_work_request());
    assert_eq!(c.new_work_conn(0).encode(), frames(&v, "NewWorkConn")[0]);
    assert_eq!(c.proxies()[0].phase, ProxyPhase::Waiting);
    c.handle(decode(&frames(&v, "NewProxyResp")[0]), t).unwrap();
    assert_eq!(
        c.proxies()[0].phase,
        ProxyPhase::Running {
            remote_addr: ":16000".into()
        }
    );
    c.close_all();
    let close: Vec<_> = std::iter::from_fn(|| c.poll_message()).collect();
    assert_eq!(close.last().unwrap().encode(), frames(&v, "CloseProxy")[0]);
}

#[test]
fn a_rejected_proxy_keeps_the_reason_and_is_retried_alone() {
    let v = vectors::load("port-not-allowed");
    let t = Instant::now();
    let mut c = Control::new(
        &settings(&[("web", 16500), ("ssh", 10022)]),
        String::new(),
        t,
    );
    c.handle_login_resp(LoginResp::default(), t).unwrap();
    while c.poll_message().is_some() {}
    c.handle(decode(&frames(&v, "NewProxyResp")[0]), t).unwrap();
    c.handle(
        Message::NewProxyResp(NewProxyResp {
            proxy_name: "ssh".into(),
            remote_addr: ":10022".into(),
            ..Default::default()
        }),
        t,
    )
    .unwrap();
    let ProxyPhase::Rejected { error, retry_at } = &c.proxies()[0].phase else {
        panic!("{:?}", c.proxies()[0].phase)
    };
    assert_eq!(error, "port not allowed");
    assert_eq!(*retry_at, t + PROXY_RETRY);
    assert!(matches!(c.proxies()[1].phase, ProxyPhase::Running { .. }));
    // Keep the session alive with pongs until the retry.
    let mut now = t;
    let mut resent = Vec::new();
    while now < t + PROXY_RETRY {
        now = c.poll_timeout();
        c.handle(Message::Pong(Pong::default()), now).unwrap();
        c.handle_timeout(now, 0).unwrap();
        while let Some(m) = c.poll_message() {
            if let Message::NewProxy(p) = m {
                resent.push((now - t, p.proxy_name));
            }
        }
    }
    assert_eq!(resent, [(PROXY_RETRY, "web".to_string())]);
}

#[test]
fn bad_token_is_a_clear_error() {
    let v = vectors::load("bad-token");
    let t = Instant::now();
    let mut c = Control::new(&settings(&[]), String::new(), t);
    let Message::LoginResp(r) = decode(&frames(&v, "LoginResp")[0]) else {
        panic!()
    };
    let e = c.handle_login_resp(r, t).unwrap_err();
    assert_eq!(
        e.to_string(),
        "frps refused the login: token in login doesn't match token from configuration"
    );
}

#[test]
fn login_times_out() {
    let t = Instant::now();
    let mut c = Control::new(&settings(&[]), "abc".into(), t);
    assert_eq!(c.poll_timeout(), t + LOGIN_TIMEOUT);
    c.handle_timeout(t + Duration::from_secs(9), 0).unwrap();
    assert_eq!(
        c.handle_timeout(t + LOGIN_TIMEOUT, 0),
        Err(Error::LoginTimeout)
    );
}

/// Pings every 3 s; an answered ping measures the RTT; 10 s of silence
/// ends the session.
#[test]
fn heartbeats_measure_and_detect_silence() {
    let t = Instant::now();
    let s = Settings {
        auth_heartbeats: true,
        ..settings(&[])
    };
    let mut c = Control::new(&s, String::new(), t);
    c.handle_login_resp(LoginResp::default(), t).unwrap();
    c.handle_timeout(t, 1795512628).unwrap();
    let Some(Message::Ping(p)) = c.poll_message() else {
        panic!("ping at once")
    };
    assert_eq!(
        p.privilege_key,
        crypto::privilege_key("r58-test-token", 1795512628)
    );
    c.handle(
        Message::Pong(Pong::default()),
        t + Duration::from_millis(25),
    )
    .unwrap();
    assert_eq!(c.rtt, Some(Duration::from_millis(25)));
    let mut pings = 0;
    let mut now;
    let err = loop {
        now = c.poll_timeout();
        match c.handle_timeout(now, 0) {
            Ok(()) => pings += std::iter::from_fn(|| c.poll_message()).count(),
            Err(e) => break e,
        }
    };
    assert_eq!(now - t, Duration::from_millis(10_025));
    assert_eq!(err, Error::Silent(Duration::from_secs(10)));
    assert_eq!(pings, 3, "at 3, 6 and 9 s");
    let mut c = Control::new(&s, String::new(), t);
    c.handle_login_resp(LoginResp::default(), t).unwrap();
    let e = c.handle(
        Message::Pong(Pong {
            error: "token in heartbeat doesn't match".into(),
        }),
        t,
    );
    assert!(matches!(e, Err(Error::HeartbeatRefused(_))));
}
