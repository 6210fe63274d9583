//! The media HTTP server (:8889): WHEP (RFC 9725) for viewers and WHIP
//! (RFC 9725's sibling) for publishers, with MediaMTX's URL layout, bearer
//! tokens, CORS by origin allow-list, and the built-in viewer and
//! publisher pages.
//!
//! Every error is a status code plus one line of text a person can act on.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};

use crate::config::auth::{Right, bearer_matches};
use crate::config::{Config, IceServer};
use crate::http::{Resp, empty, origin_allowed, read_body, text};
use crate::webrtc::{Cmd, EngineHandle, OfferError};

/// MediaMTX's limit for an inbound SDP.
pub const MAX_SDP: usize = 128 * 1024;
const VIEWER_PAGE: &str = include_str!("../www/viewer.html");
const PUBLISHER_PAGE: &str = include_str!("../www/publish.html");
const PAGE_SCRIPT: &str = include_str!("../www/r58.js");

pub struct State {
    pub cfg: Config,
    pub engine: EngineHandle,
    /// Which refusals were logged lately (once per client and status).
    pub refusals: std::sync::Mutex<crate::http::LogLimit>,
}

/// What a URL asks for, after MediaMTX's layout.
#[derive(Debug, PartialEq)]
enum Route<'a> {
    /// POST an offer: WHEP (read) or WHIP (publish).
    Offer(&'a str, Right),
    Session(&'a str, Right, &'a str),
    Page(&'a str),
    PublishPage(&'a str),
    /// The pages' shared script, next to either page.
    Script,
    PageRedirect(&'a str),
    NotFound,
}

fn route(path: &str) -> Route<'_> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        [_, "r58.js"] => Route::Script,
        [p, "publish"] => Route::PublishPage(p),
        // Legacy aliases too: /whep/cam0, /whip/guest1.
        [p, "whep"] | ["whep", p] => Route::Offer(p, Right::Read),
        [p, "whip"] | ["whip", p] => Route::Offer(p, Right::Publish),
        [p, "whep", s] => Route::Session(p, Right::Read, s),
        [p, "whip", s] => Route::Session(p, Right::Publish, s),
        [p, ""] if !p.is_empty() => Route::Page(p),
        [p] if !p.is_empty() => Route::PageRedirect(p),
        _ => Route::NotFound,
    }
}

/// A refused offer: the reason goes to the client, and to the log once per
/// client and status every 10 s (never a token: reasons do not carry one).
fn refuse(
    st: &State,
    client: SocketAddr,
    right: Right,
    status: StatusCode,
    why: impl Into<String>,
) -> Resp {
    let why = why.into();
    let now = std::time::Instant::now();
    if st
        .refusals
        .lock()
        .expect("log limit")
        .allow(client.ip(), status, now)
    {
        log::info!(
            "{}: refused {} from {}: {why}",
            right.as_str(),
            status.as_u16(),
            client.ip()
        );
    }
    text(status, why)
}

/// 401 unless the request carries the token `right` on `path` needs.
fn authorize(
    st: &State,
    req: &Request<Incoming>,
    path: &str,
    right: Right,
    peer: SocketAddr,
) -> Option<Resp> {
    let want = st.cfg.token(path, right)?;
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if bearer_matches(given, want) {
        return None;
    }
    let what = if given.is_some() {
        "a wrong token"
    } else {
        "no token"
    };
    let mut r = refuse(
        st,
        peer,
        right,
        StatusCode::UNAUTHORIZED,
        format!(
            "{} '{path}' needs a token (Authorization: Bearer ...); this request had {what}",
            if right == Right::Publish {
                "publishing to"
            } else {
                "reading"
            }
        ),
    );
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Bearer realm=\"r58\""),
    );
    Some(r)
}

pub async fn handle(st: Arc<State>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let origin = req
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut resp = dispatch(&st, req, peer).await;
    if let Some(o) = origin.filter(|o| origin_allowed(o, &st.cfg.http.allow_origins)) {
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&o) {
            h.insert("access-control-allow-origin", v);
        }
        h.insert("vary", HeaderValue::from_static("Origin"));
        h.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("ETag, ID, Accept-Patch, Link, Location"),
        );
    }
    resp
}

async fn dispatch(st: &State, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let uri_path = req.uri().path().to_string();
    let is_preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key("access-control-request-method");
    if is_preflight {
        let mut r = empty(StatusCode::NO_CONTENT);
        let h = r.headers_mut();
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("OPTIONS, GET, POST, PATCH, DELETE"),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("Authorization, Content-Type, If-Match"),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("86400"));
        return r;
    }
    let known = |p: &str| st.cfg.paths.contains_key(p);
    let route = route(&uri_path);
    if let (&Method::POST | &Method::OPTIONS, Route::Offer(p, r)) = (req.method(), &route)
        && known(p)
        && let Some(denied) = authorize(st, &req, p, *r, peer)
    {
        return denied;
    }
    match (req.method().clone(), route) {
        (_, Route::Offer(p, _))
        | (_, Route::Session(p, ..))
        | (_, Route::Page(p))
        | (_, Route::PublishPage(p))
        | (_, Route::PageRedirect(p))
            if !known(p) =>
        {
            text(
                StatusCode::NOT_FOUND,
                format!("path '{p}' is not configured"),
            )
        }
        (Method::POST, Route::Offer(p, r)) => offer(st, p.to_string(), r, req, peer).await,
        (Method::OPTIONS, Route::Offer(..)) => {
            let mut r = empty(StatusCode::NO_CONTENT);
            r.headers_mut()
                .insert("accept-post", HeaderValue::from_static("application/sdp"));
            add_links(&mut r, &st.cfg.webrtc.ice_servers);
            r
        }
        (_, Route::Offer(..)) => text(StatusCode::METHOD_NOT_ALLOWED, "use POST with an SDP offer"),
        (Method::DELETE, Route::Session(p, _, s)) => {
            let (path, secret) = (p.to_string(), s.to_string());
            match st
                .engine
                .ask(|reply| Cmd::Delete {
                    path,
                    secret,
                    reply,
                })
                .await
            {
                Some(true) => text(StatusCode::OK, "session ended"),
                _ => text(StatusCode::NOT_FOUND, "no such session"),
            }
        }
        (Method::PATCH, Route::Session(p, _, s)) => {
            patch(st, p.to_string(), s.to_string(), req).await
        }
        (_, Route::Session(..)) => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "use PATCH or DELETE on a session",
        ),
        (
            Method::GET | Method::HEAD,
            page @ (Route::Page(_) | Route::PublishPage(_) | Route::Script),
        ) => {
            let (body, kind) = match page {
                Route::PublishPage(_) => (PUBLISHER_PAGE, "text/html; charset=utf-8"),
                Route::Script => (PAGE_SCRIPT, "text/javascript; charset=utf-8"),
                _ => (VIEWER_PAGE, "text/html; charset=utf-8"),
            };
            let mut r = crate::http::text(StatusCode::OK, body);
            let h = r.headers_mut();
            h.insert("content-type", HeaderValue::from_static(kind));
            h.insert("cache-control", HeaderValue::from_static("no-cache"));
            r
        }
        (Method::GET, Route::PageRedirect(p)) => {
            let mut r = empty(StatusCode::FOUND);
            if let Ok(v) = HeaderValue::from_str(&format!("/{p}/")) {
                r.headers_mut().insert("location", v);
            }
            r
        }
        _ => text(StatusCode::NOT_FOUND, format!("nothing at {uri_path}")),
    }
}

fn content_type_is(req: &Request<Incoming>, want: &str) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case(want)
        })
        .unwrap_or(false)
}

async fn offer(
    st: &State,
    path: String,
    right: Right,
    req: Request<Incoming>,
    client: SocketAddr,
) -> Resp {
    if !content_type_is(&req, "application/sdp") {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/sdp",
        );
    }
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(200).collect());
    let body = match read_body(req, MAX_SDP).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Ok(sdp) = String::from_utf8(body.to_vec()) else {
        return text(StatusCode::BAD_REQUEST, "SDP offer is not UTF-8 text");
    };
    let p = path.clone();
    let Some(result) = st
        .engine
        .ask(|reply| Cmd::Offer {
            path: p,
            sdp,
            client,
            user_agent,
            publish: right == Right::Publish,
            reply,
        })
        .await
    else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "WebRTC engine is not running",
        );
    };
    match result {
        Ok(a) => {
            let mut r = text(StatusCode::CREATED, a.sdp);
            let h = r.headers_mut();
            h.insert("content-type", HeaderValue::from_static("application/sdp"));
            h.insert("etag", HeaderValue::from_static("*"));
            h.insert(
                "accept-patch",
                HeaderValue::from_static("application/trickle-ice-sdpfrag"),
            );
            // Relative: the box sits behind reverse proxies and the tunnel.
            h.insert(
                "location",
                HeaderValue::from_str(&format!(
                    "/{path}/{}/{}",
                    if right == Right::Publish {
                        "whip"
                    } else {
                        "whep"
                    },
                    a.secret
                ))
                .expect("hex is a valid header"),
            );
            h.insert(
                "id",
                HeaderValue::from_str(&a.id.to_string()).expect("hex is a valid header"),
            );
            add_links(&mut r, &st.cfg.webrtc.ice_servers);
            r
        }
        Err(OfferError::BadSdp(why)) => refuse(st, client, right, StatusCode::BAD_REQUEST, why),
        Err(OfferError::Codec(why)) => refuse(st, client, right, StatusCode::NOT_ACCEPTABLE, why),
        Err(OfferError::Conflict(why)) => refuse(st, client, right, StatusCode::CONFLICT, why),
        Err(OfferError::NoPath) => refuse(
            st,
            client,
            right,
            StatusCode::NOT_FOUND,
            format!("path '{path}' is not configured"),
        ),
        Err(OfferError::NotReady(why)) => {
            let mut r = refuse(st, client, right, StatusCode::SERVICE_UNAVAILABLE, why);
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("2"));
            r
        }
        Err(OfferError::Full(n)) => {
            let mut r = refuse(
                st,
                client,
                right,
                StatusCode::SERVICE_UNAVAILABLE,
                format!("path '{path}' already has {n} viewers (max_viewers)"),
            );
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("10"));
            r
        }
    }
}

async fn patch(st: &State, path: String, secret: String, req: Request<Incoming>) -> Resp {
    if !content_type_is(&req, "application/trickle-ice-sdpfrag") {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/trickle-ice-sdpfrag",
        );
    }
    let body = match read_body(req, MAX_SDP).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let frag = String::from_utf8_lossy(&body).into_owned();
    match st
        .engine
        .ask(|reply| Cmd::Patch {
            path,
            secret,
            frag,
            reply,
        })
        .await
    {
        Some(true) => empty(StatusCode::NO_CONTENT),
        _ => text(StatusCode::NOT_FOUND, "no such session"),
    }
}

/// `Link: <turn:...>; rel="ice-server"; ...` per configured ICE server,
/// with freshly minted TURN credentials where a secret is configured.
fn add_links(r: &mut Resp, servers: &[IceServer]) {
    let now = crate::wallclock::unix_now();
    for v in crate::webrtc::ice_servers::link_values(servers, now) {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().append("link", v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mediamtx_url_layout() {
        assert_eq!(route("/cam0/whep"), Route::Offer("cam0", Right::Read));
        assert_eq!(route("/whep/cam0"), Route::Offer("cam0", Right::Read));
        assert_eq!(
            route("/cam0/whep/abc"),
            Route::Session("cam0", Right::Read, "abc")
        );
        assert_eq!(
            route("/guest1/whip"),
            Route::Offer("guest1", Right::Publish)
        );
        assert_eq!(
            route("/whip/guest1"),
            Route::Offer("guest1", Right::Publish)
        );
        assert_eq!(
            route("/guest1/whip/abc"),
            Route::Session("guest1", Right::Publish, "abc")
        );
        assert_eq!(route("/guest1/publish"), Route::PublishPage("guest1"));
        assert_eq!(route("/guest1/r58.js"), Route::Script);
        assert_eq!(route("/cam0/"), Route::Page("cam0"));
        assert_eq!(route("/cam0"), Route::PageRedirect("cam0"));
        assert_eq!(route("/"), Route::NotFound);
        assert_eq!(route("/a/b/c/d"), Route::NotFound);
    }
}
