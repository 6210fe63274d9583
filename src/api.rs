//! The control API (:9997) with MediaMTX's v3 JSON shapes where a route
//! exists there, so the fleet's frontends keep working. r58-only facts live
//! under an `r58` key in each item.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::http::{Resp, json, text};
use crate::media::{PathHandle, PathState};
use crate::shapes::{
    NetworkFacts, PathFacts, ProcessFacts, PublicFacts, RelayFacts, TunnelFacts, UnresolvedFacts,
};
use crate::vocab::route;
use crate::webrtc::{Cmd, EngineHandle, PathTraffic};

/// The API starts before media, so `media` is set later; until then the
/// configured paths show as starting and there are no sessions.
pub struct State {
    pub media: std::sync::OnceLock<Media>,
    pub placeholders: Vec<PathHandle>,
    pub started: SystemTime,
    /// The health loop's latest verdict (also what feeds the watchdog).
    pub health: Arc<std::sync::Mutex<crate::health::Snapshot>>,
    pub tunnel: Option<crate::tunnel::Shared>,
    pub forwards: crate::forward::Shared,
    pub access: Access,
}

/// Who may use the API: the box itself (its loopback) always; anyone else
/// only with `[api] token`. Requests through the tunnel (127.0.0.58) or a
/// configured forwarder (a stock frpc on 127.0.0.1) come from the internet.
#[derive(Debug, Clone)]
pub struct Access {
    pub token: Option<crate::config::auth::Secret>,
    pub forwarders: Vec<crate::config::Cidr>,
}

impl Access {
    pub fn check(&self, peer: IpAddr, authorization: Option<&str>) -> Result<(), &'static str> {
        let forwarded = peer == IpAddr::from(crate::tunnel::TUNNEL_SOURCE)
            || self.forwarders.iter().any(|c| c.contains(peer));
        if peer.is_loopback() && !forwarded {
            return Ok(());
        }
        match &self.token {
            None => Err("the API answers other hosts only when [api] token is set"),
            Some(t) if crate::config::auth::bearer_matches(authorization, t) => Ok(()),
            Some(_) if authorization.is_none() => Err("no token (Authorization: Bearer …)"),
            Some(_) => Err("a wrong token"),
        }
    }
}

pub struct Media {
    pub paths: Vec<PathHandle>,
    pub engine: EngineHandle,
}

impl State {
    fn paths(&self) -> &[PathHandle] {
        self.media.get().map_or(&self.placeholders, |m| &m.paths)
    }

    /// Asks the WebRTC engine; `None` while it is starting or busy.
    async fn ask<T>(&self, cmd: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Cmd) -> Option<T> {
        self.media.get()?.engine.ask(cmd).await
    }
}

/// `{"enabled": false, …}` without a tunnel, else its status.
fn tunnel_json(st: &State) -> Value {
    json!(TunnelFacts {
        enabled: st.tunnel.is_some(),
        status: st
            .tunnel
            .as_ref()
            .map(|t| t.lock().expect("tunnel lock").clone())
            .unwrap_or_default(),
    })
}

pub async fn handle(st: Arc<State>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let auth = req.headers().get(hyper::header::AUTHORIZATION);
    if let Err(why) = st
        .access
        .check(peer.ip(), auth.and_then(|v| v.to_str().ok()))
    {
        let mut r = text(StatusCode::UNAUTHORIZED, format!("api: {why}"));
        r.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    let path = req.uri().path().to_string();
    if let Some(name) = path.strip_prefix(route::BITRATE) {
        if req.method() != Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "use POST with {\"bps\": N}");
        }
        let name = name.to_string();
        return set_bitrate(&st, &name, req).await;
    }
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET");
    }
    match path.as_str() {
        route::PATHS => {
            let items = path_items(&st).await;
            json(
                StatusCode::OK,
                &json!({"itemCount": items.len(), "pageCount": 1, "items": items}),
            )
        }
        route::INFO => json(StatusCode::OK, &info_json(&st).await),
        route::METRICS => {
            let body = crate::metrics::render(
                &path_items(&st).await,
                &session_items(&st).await,
                &info_json(&st).await,
            );
            let mut r = text(StatusCode::OK, body);
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        route::TUNNEL => json(StatusCode::OK, &tunnel_json(&st)),
        route::FORWARDS => {
            let items = st.forwards.facts();
            json(
                StatusCode::OK,
                &json!({"itemCount": items.len(), "pageCount": 1, "items": items}),
            )
        }
        route::SESSIONS => {
            let items = session_items(&st).await;
            json(
                StatusCode::OK,
                &json!({"itemCount": items.len(), "pageCount": 1, "items": items}),
            )
        }
        p if p.starts_with(route::SESSION) => {
            let id = &p[route::SESSION.len()..];
            match session_items(&st).await.into_iter().find(|i| i["id"] == id) {
                Some(item) => json(StatusCode::OK, &item),
                None => json(
                    StatusCode::NOT_FOUND,
                    &json!({"status": "error", "error": "session not found"}),
                ),
            }
        }
        p if p.starts_with(route::PATH) => {
            let name = &p[route::PATH.len()..];
            match path_items(&st)
                .await
                .into_iter()
                .find(|i| i["name"] == name)
            {
                Some(item) => json(StatusCode::OK, &item),
                None => json(
                    StatusCode::NOT_FOUND,
                    &json!({"status": "error", "error": "path not found"}),
                ),
            }
        }
        _ => json(
            StatusCode::NOT_FOUND,
            &json!({"status": "error", "error": format!("no route {path}")}),
        ),
    }
}

/// `/v3/info`: version, uptime and r58's facts (also what `/metrics` reads).
async fn info_json(st: &State) -> Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started": rfc3339(st.started),
        "uptimeSeconds": st.started.elapsed().map(|d| d.as_secs()).unwrap_or(0),
        "r58": {
            "health": &*st.health.lock().expect("health lock"),
            "tunnel": tunnel_json(st),
            "forwards": st.forwards.facts(),
            "process": process_json(),
            "relay": relay_json(st).await,
            "webrtc": network_json(st).await,
            "errors": crate::recent::entries(),
        },
    })
}

/// Ports, advertised addresses and session counts, for `r58 status`.
async fn network_json(st: &State) -> Value {
    let Some(n) = st.ask(|reply| Cmd::Network { reply }).await else {
        return Value::Null;
    };
    json!(NetworkFacts {
        udp_port: n.udp_port,
        tcp_port: n.tcp_port,
        hosts: n.hosts.iter().map(|a| a.to_string()).collect(),
        public: n
            .public
            .iter()
            .map(|p| PublicFacts {
                ip: p.ip.to_string(),
                udp_port: p.udp_port,
                tcp_port: p.tcp_port,
            })
            .collect(),
        unresolved: n
            .unresolved
            .iter()
            .map(|u| UnresolvedFacts {
                host: u.host.clone(),
                error: u.error.clone(),
            })
            .collect(),
        viewers: n.viewers,
        publishers: n.publishers,
        send: n.send,
    })
}

/// WHIP → WHEP relay latency inside r58, for `make bench` and technicians.
async fn relay_json(st: &State) -> Value {
    match st.ask(|reply| Cmd::RelayLatency { reply }).await.flatten() {
        Some(l) => json!(RelayFacts {
            p50_us: l.p50_us,
            p99_us: l.p99_us,
            packets: l.packets,
        }),
        None => Value::Null,
    }
}

/// Resource use, so leaks show in the field (and in the fault tests).
fn process_json() -> serde_json::Value {
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    // statm's second field: resident pages.
    let rss_pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    json!(ProcessFacts {
        tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        open_fds: fds,
        rss_kib: rss_pages * page / 1024,
    })
}

/// Change a path's encoder bitrate at runtime (`bps` on MPP, `bitrate` on x264).
async fn set_bitrate(st: &State, name: &str, req: Request<Incoming>) -> Resp {
    let err = |code, msg: String| json(code, &json!({"status": "error", "error": msg}));
    let Some(h) = st.paths().iter().find(|h| &*h.name == name) else {
        return err(
            StatusCode::NOT_FOUND,
            format!("path '{name}' is not configured"),
        );
    };
    if !h.has_encoder() {
        return err(
            StatusCode::CONFLICT,
            format!("path '{name}' has no running encoder"),
        );
    }
    let body = match crate::http::read_body(req, 4096).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let bps = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["bps"].as_u64());
    match bps {
        Some(b) if (100_000..=100_000_000).contains(&b) => {
            h.send(crate::media::Control::Bitrate(b as u32));
            json(StatusCode::OK, &json!({"status": "ok", "bps": b}))
        }
        _ => err(
            StatusCode::BAD_REQUEST,
            "body must be {\"bps\": N} with N in 100000..100000000".into(),
        ),
    }
}

/// MediaMTX's session item; candidates read `type/proto/ip/port`.
async fn session_items(st: &State) -> Vec<Value> {
    let sessions = st
        .ask(|reply| Cmd::Sessions { reply })
        .await
        .unwrap_or_default();
    sessions
        .into_iter()
        .map(|s| {
            let cand = |kind: &str, proto: &str, a: SocketAddr| {
                format!("{kind}/{proto}/{}/{}", a.ip(), a.port())
            };
            let (local, remote) = match &s.pair {
                Some(p) => (
                    cand("host", p.proto, p.local),
                    cand(p.remote_kind, p.proto, p.remote),
                ),
                None => (String::new(), String::new()),
            };
            json!({
                "id": s.id,
                "created": rfc3339(s.created),
                "remoteAddr": s.client.to_string(),
                "peerConnectionEstablished": s.connected,
                "localCandidate": local,
                "remoteCandidate": remote,
                "state": match (s.connected, s.publishing) {
                    (false, _) => "connecting",
                    (true, false) => "read",
                    (true, true) => "publish",
                },
                "path": &*s.path,
                "query": "",
                "inboundBytes": s.bytes_received,
                "outboundBytes": s.bytes_sent,
                "bytesReceived": s.bytes_received,
                "bytesSent": s.bytes_sent,
                "outboundRTPPackets": s.rtp.sent,
                "inboundRTPPackets": s.rtp.received,
                "inboundRTPPacketsLost": s.rtp.lost,
                "outboundFramesDiscarded": s.view.as_ref().map_or(0, |v| v.frames_discarded),
                "userAgent": s.user_agent.as_deref().unwrap_or(""),
                "r58": s.view,
            })
        })
        .collect()
}

async fn path_items(st: &State) -> Vec<Value> {
    let traffic = st
        .ask(|reply| Cmd::Traffic { reply })
        .await
        .unwrap_or_default();
    st.paths()
        .iter()
        .map(|h| path_item(h, traffic.iter().find(|t| t.name == h.name)))
        .collect()
}

fn path_item(h: &PathHandle, t: Option<&PathTraffic>) -> Value {
    let s = h.status();
    let ready = s.state == PathState::Streaming;
    let since = ready.then(|| rfc3339(SystemTime::now() - Instant::now().duration_since(s.since)));
    let bytes = t.map(|t| t.bytes_sent).unwrap_or(0);
    let readers: Vec<Value> = t
        .map(|t| {
            t.readers
                .iter()
                .map(|id| json!({"type": "webRTCSession", "id": id}))
                .collect()
        })
        .unwrap_or_default();
    let profile = t.and_then(|t| t.profile);
    // A published path carries what its publisher sends; others H.264.
    let relayed = t.filter(|t| !t.tracks.is_empty());
    let (source, tracks, tracks2) = match relayed {
        Some(t) => (
            json!({"type": "webRTCSession", "id": t.publisher}),
            json!(t.tracks),
            json!(
                t.tracks
                    .iter()
                    .map(|c| json!({"codec": c}))
                    .collect::<Vec<_>>()
            ),
        ),
        None => {
            let h264 =
                json!({"codec": "H264", "codecProps": {"profile": profile.map(profile_name)}});
            let opus = json!({"codec": "Opus", "codecProps": {"channelCount": 2}});
            let (names, props) = if s.sends_audio {
                (json!(["H264", "Opus"]), json!([h264, opus]))
            } else {
                (json!(["H264"]), json!([h264]))
            };
            (json!({"type": "r58Source", "id": s.source}), names, props)
        }
    };
    json!({
        "name": &*h.name,
        "confName": &*h.name,
        "source": if ready { source } else { Value::Null },
        "ready": ready, "readyTime": since,
        "available": ready, "availableTime": since,
        "online": ready, "onlineTime": since,
        "tracks": if ready { tracks } else { json!([]) },
        "tracks2": if ready { tracks2 } else { json!([]) },
        "readers": readers,
        "inboundBytes": 0, "bytesReceived": 0,
        "outboundBytes": bytes, "bytesSent": bytes,
        "inboundFramesInError": 0,
        "r58": PathFacts {
            state: s.state,
            detail: s.detail.clone(),
            encoder: s.encoder.map(String::from),
            frames: s.frames,
            restarts: s.restarts,
            source: s.source.to_string(),
            bitrate: s.bitrate,
            keyframes_forced: s.keyframes_forced,
            format: s.format.clone(),
            signal: s.signal.clone(),
            fps: (f64::from(s.fps) * 10.0).round() / 10.0,
            since_seconds: s.since.elapsed().as_secs(),
            audio: s.audio.clone(),
            audio_missing: s.audio_missing,
        },
    })
}

fn profile_name(p: u32) -> &'static str {
    let (idc, flags) = (p >> 16, (p >> 8) & 0xff);
    match idc {
        0x42 if flags & 0x40 != 0 => "Constrained Baseline",
        0x42 => "Baseline",
        0x4d => "Main",
        0x64 => "High",
        _ => "Other",
    }
}

/// UTC timestamp in RFC 3339 with nanoseconds, as MediaMTX writes them.
pub fn rfc3339(t: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("{ts:.9}")
}

#[cfg(test)]
mod access_tests {
    use super::*;
    use crate::config::auth::Secret;

    #[test]
    fn the_box_itself_needs_no_token_the_tunnel_and_the_lan_do() {
        let open = Access {
            token: None,
            forwarders: vec!["127.0.0.1".parse().unwrap()],
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(open.check(ip("127.0.0.2"), None).is_ok());
        assert!(open.check(ip("::1"), None).is_ok());
        assert!(
            open.check(ip("127.0.0.58"), None).is_err(),
            "the tunnel is the internet"
        );
        assert!(
            open.check(ip("127.0.0.1"), None).is_err(),
            "a stock frpc forwards from here"
        );
        assert!(open.check(ip("192.168.1.5"), None).is_err());
        let locked = Access {
            token: Some(Secret::new("api-token-123")),
            forwarders: vec![],
        };
        assert!(
            locked
                .check(ip("192.168.1.5"), Some("Bearer api-token-123"))
                .is_ok()
        );
        assert_eq!(
            locked.check(ip("192.168.1.5"), Some("Bearer nope")),
            Err("a wrong token")
        );
        assert!(
            locked
                .check(ip("127.0.0.58"), None)
                .unwrap_err()
                .starts_with("no token")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_509_965, 646_314_765);
        assert_eq!(rfc3339(t), "2026-11-24T08:46:05.646314765Z");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(rfc3339(leap).starts_with("2000-02-29T00:00:00"));
    }

    /// Before media is up the API answers, with the configured paths as
    /// starting and no sessions.
    #[test]
    fn before_media_paths_show_as_starting() {
        let st = State {
            media: std::sync::OnceLock::new(),
            placeholders: crate::media::placeholders(&crate::config::Config::default()),
            started: SystemTime::now(),
            health: Default::default(),
            tunnel: None,
            forwards: Default::default(),
            access: Access {
                token: None,
                forwarders: vec![],
            },
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (paths, sessions) =
            rt.block_on(async { (path_items(&st).await, session_items(&st).await) });
        assert_eq!(paths.len(), 1);
        assert_eq!(paths[0]["name"], "cam0");
        assert_eq!(paths[0]["ready"], false);
        assert_eq!(paths[0]["r58"]["state"], "starting");
        assert!(sessions.is_empty());
    }

    #[test]
    fn profile_names() {
        assert_eq!(profile_name(0x42e01f), "Constrained Baseline");
        assert_eq!(profile_name(0x42c01f), "Constrained Baseline");
        assert_eq!(profile_name(0x42001f), "Baseline");
        assert_eq!(profile_name(0x64001f), "High");
    }
}
