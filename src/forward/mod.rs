//! Forwards (`[[forward]]`): each entry pushes one path, already encoded,
//! to a WHIP relay on the VPS that fans it out to guests, so the box's
//! uplink carries one stream however many watch (issue 18).
//!
//! One task per entry runs the loop: ask the engine for an offer (it
//! waits while the path is not streaming), POST it (following
//! redirects), hand the answer back, watch the link, and when anything
//! fails, DELETE what is left and try again after a capped, jittered
//! backoff. It never gives up. `whip.rs` reads replies, `http.rs` talks.
//! TURN servers the relay names in its `Link` headers are kept, and every
//! later try offers a relayed candidate on one of them (`turn.rs`), so a
//! relay that nothing reaches directly still gets the stream.

pub mod http;
pub mod turn;
pub mod whip;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::config::forward::{Forward, Url};
use crate::shapes::ForwardFacts;
use crate::vocab::{ForwardState, SessionId};
use crate::webrtc::{Cmd, EngineHandle, ForwardLink, OfferError};
use turn::Allocation;
use whip::{LinkServer, MAX_REDIRECTS, Reply, Retry};

/// How often a live forward's link is looked at.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// Nothing from the relay (RTCP, consent replies) this long: it is gone.
const SILENT_FOR: Duration = Duration::from_secs(6);
/// How often a path that is not streaming is asked about again.
const WAIT_EVERY: Duration = Duration::from_secs(1);
/// Forwarding this long makes the next failure start the backoff anew.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// One entry's facts, with the instants they are computed from.
#[derive(Debug, Clone)]
struct Entry {
    facts: ForwardFacts,
    since: Instant,
    retry_at: Option<Instant>,
}

/// Every forward's status, for the API.
#[derive(Clone, Default)]
pub struct Shared(Arc<Mutex<Vec<Entry>>>);

impl Shared {
    pub fn facts(&self) -> Vec<ForwardFacts> {
        let now = Instant::now();
        self.0
            .lock()
            .expect("forward status lock")
            .iter()
            .map(|e| ForwardFacts {
                since_seconds: now.saturating_duration_since(e.since).as_secs(),
                retry_in_seconds: e
                    .retry_at
                    .map(|t| t.saturating_duration_since(now).as_secs()),
                ..e.facts.clone()
            })
            .collect()
    }

    fn update(&self, i: usize, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.0.lock().expect("forward status lock").get_mut(i) {
            f(e);
        }
    }

    fn set_state(&self, i: usize, state: ForwardState, error: Option<String>) {
        self.update(i, |e| {
            if e.facts.state != state {
                e.since = Instant::now();
            }
            e.facts.state = state;
            if error.is_some() || state == ForwardState::Forwarding {
                e.facts.last_error = error;
            }
            e.retry_at = None;
            if state != ForwardState::Forwarding {
                e.facts.bitrate_bps = 0;
                e.facts.rtt_ms = None;
                e.facts.pair = None;
            }
        });
    }
}

impl Shared {
    /// Every entry, waiting: the API can show them before media is up.
    pub fn new(cfg: &Config) -> Shared {
        let now = Instant::now();
        Shared(Arc::new(Mutex::new(
            cfg.forward
                .iter()
                .map(|f| Entry {
                    facts: ForwardFacts {
                        path: f.path.clone(),
                        url: shown(&f.url),
                        ..Default::default()
                    },
                    since: now,
                    retry_at: None,
                })
                .collect(),
        )))
    }
}

/// Start one task per entry. They end when `stop` turns true, after a
/// DELETE for a live session.
pub fn start(
    cfg: &Config,
    shared: &Shared,
    engine: &EngineHandle,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    cfg.forward
        .iter()
        .enumerate()
        .map(|(i, f)| {
            log::info!("forward {}: to {}", f.path, shown(&f.url));
            tokio::spawn(run(
                i,
                f.clone(),
                engine.clone(),
                shared.clone(),
                stop.clone(),
            ))
        })
        .collect()
}

/// How one try ended.
enum End {
    /// Try again after the backoff; the reason goes to status.
    Failed(String),
    /// The path is not streaming; ask again shortly.
    NotReady(String),
    /// r58 is stopping (or the engine is gone).
    Stop,
}

async fn run(
    i: usize,
    f: Forward,
    engine: EngineHandle,
    shared: Shared,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(url) = Url::parse(&f.url) else {
        return; // `config check` refuses these; nothing to do
    };
    let mut retry = Retry::default();
    let mut waiting_logged = false;
    let mut turn_servers = Vec::new();
    loop {
        shared.update(i, |e| e.facts.attempts += 1);
        let started = Instant::now();
        let end = attempt(i, &f, &url, &engine, &shared, &mut stop, &mut turn_servers).await;
        if started.elapsed() >= STABLE_AFTER {
            retry.reset();
        }
        let pause = match end {
            End::Stop => return,
            End::NotReady(why) => {
                shared.update(i, |e| e.facts.attempts -= 1);
                if !waiting_logged {
                    log::info!("forward {}: waiting: {why}", f.path);
                    waiting_logged = true;
                }
                shared.set_state(i, ForwardState::Waiting, Some(why));
                WAIT_EVERY
            }
            End::Failed(why) => {
                waiting_logged = false;
                let d = retry.delay(random_unit());
                log::warn!(
                    "forward {} to {}: {why}; next try in {:.1} s",
                    f.path,
                    shown(&f.url),
                    d.as_secs_f64()
                );
                shared.set_state(i, ForwardState::Retrying, Some(why));
                shared.update(i, |e| e.retry_at = Some(Instant::now() + d));
                d
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One try: offer, POST, answer, then watch until the link is gone.
/// `turn_servers`: what the relay's last `Link` headers named.
async fn attempt(
    i: usize,
    f: &Forward,
    url: &Url,
    engine: &EngineHandle,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
    turn_servers: &mut Vec<LinkServer>,
) -> End {
    let path = f.path.clone();
    match engine.ask(|reply| Cmd::ForwardReady { path, reply }).await {
        None => return End::Stop,
        Some(Err(OfferError::NotReady(why))) => return End::NotReady(why),
        Some(_) => {}
    }
    // Why TURN did not help, for the failure's text (status, doctor).
    let mut trouble = None;
    let mut allocation = relayed_candidate(f, turn_servers, &mut trouble).await;
    let turn = allocation.as_mut().and_then(Allocation::take_leg);
    let path = f.path.clone();
    let offer = engine
        .ask(|reply| Cmd::ForwardOffer { path, turn, reply })
        .await;
    let (id, offer) = match offer {
        Some(Ok(o)) => o,
        other => {
            if let Some(a) = allocation {
                a.close().await;
            }
            return match other {
                None => End::Stop,
                Some(Err(OfferError::NotReady(why))) => End::NotReady(why),
                Some(Err(e)) => End::Failed(format!("no offer for '{}': {e:?}", f.path)),
                Some(Ok(_)) => unreachable!(),
            };
        }
    };
    // The pump lives as long as the engine's session (its sender).
    let mut pump = allocation.map(|a| tokio::spawn(a.run(id, engine.clone())));
    shared.set_state(i, ForwardState::Connecting, None);
    let end = match post(url, f, &offer).await {
        Ok((resource, answer, servers)) => {
            learn_turn_servers(f, turn_servers, servers);
            let answered = engine
                .ask(|reply| Cmd::ForwardAnswer {
                    id,
                    sdp: answer,
                    reply,
                })
                .await;
            let end = match answered {
                None => End::Stop,
                Some(Err(why)) => End::Failed(format!("the relay's answer: {why}")),
                Some(Ok(())) => {
                    if pump.is_none() && !turn_servers.is_empty() {
                        let servers = &turn_servers[..];
                        pump =
                            trickle_turn(f, id, &resource, &offer, servers, engine, &mut trouble)
                                .await;
                    }
                    watch_link(i, f, id, engine, shared, stop).await
                }
            };
            stop_session(engine, id).await;
            delete(&resource, f).await;
            end
        }
        Err(why) => {
            stop_session(engine, id).await;
            End::Failed(why)
        }
    };
    if let Some(p) = pump {
        let _ = tokio::time::timeout(Duration::from_secs(1), p).await;
    }
    match (end, trouble) {
        (End::Failed(why), Some(t)) => End::Failed(format!("{why}; TURN: {t}")),
        (end, _) => end,
    }
}

/// A TURN allocation for this try's offer, when the relay named servers.
async fn relayed_candidate(
    f: &Forward,
    servers: &[LinkServer],
    trouble: &mut Option<String>,
) -> Option<Allocation> {
    if servers.is_empty() {
        return None;
    }
    match Allocation::on_first(servers).await {
        Ok(a) => {
            log::info!(
                "forward {}: TURN allocation {} on {}",
                f.path,
                a.relayed(),
                a.server()
            );
            Some(a)
        }
        Err(why) => {
            log::warn!("forward {}: offering no relayed candidate: {why}", f.path);
            *trouble = Some(why);
            None
        }
    }
}

/// The relay named TURN servers only in its answer: allocate now and
/// trickle the relayed candidate (RFC 9725 §4.4, PATCH), so this try need
/// not fail first. A relay that takes no PATCH gets it in the next offer.
async fn trickle_turn(
    f: &Forward,
    id: SessionId,
    resource: &Url,
    offer: &str,
    servers: &[LinkServer],
    engine: &EngineHandle,
    trouble: &mut Option<String>,
) -> Option<JoinHandle<()>> {
    let mut a = relayed_candidate(f, servers, trouble).await?;
    let turn = a.take_leg()?;
    let line = match engine
        .ask(|reply| Cmd::ForwardTrickle { id, turn, reply })
        .await
    {
        Some(Ok(line)) => line,
        _ => {
            a.close().await;
            return None;
        }
    };
    let ctype = Some("application/trickle-ice-sdpfrag");
    let frag = whip::trickle_frag(offer, &line).unwrap_or_default();
    match http::request("PATCH", resource, f.token.as_ref(), ctype, frag).await {
        Ok(r) if (200..300).contains(&r.status) => {}
        Ok(r) => log::info!(
            "forward {}: the relay takes no trickled candidate (HTTP {}); the next try offers it",
            f.path,
            r.status
        ),
        Err(e) => log::info!("forward {}: PATCH: {e}", f.path),
    }
    // Even unannounced, the candidate may be found (peer-reflexive).
    Some(tokio::spawn(a.run(id, engine.clone())))
}

/// Keep the TURN servers of the relay's `Link` headers for later tries.
fn learn_turn_servers(f: &Forward, known: &mut Vec<LinkServer>, named: Vec<LinkServer>) {
    let turn: Vec<LinkServer> = named
        .into_iter()
        .filter(|s| turn::Server::parse(&s.url).is_some())
        .collect();
    if !turn.is_empty() && known.is_empty() {
        log::info!(
            "forward {}: the relay names {} TURN server(s) r58 can use",
            f.path,
            turn.len()
        );
    }
    *known = turn;
}

/// POST the offer, following redirects: the resource, the answer and
/// the ICE servers the relay named.
async fn post(
    url: &Url,
    f: &Forward,
    offer: &str,
) -> Result<(Url, String, Vec<LinkServer>), String> {
    let mut at = url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let r = http::request(
            "POST",
            &at,
            f.token.as_ref(),
            Some("application/sdp"),
            offer.to_string(),
        )
        .await?;
        let links = r.all("link");
        match whip::read_reply(&at, r.status, r.header("location"), &links, &r.body) {
            Reply::Created {
                resource,
                answer,
                ice_servers,
            } => return Ok((resource, answer, ice_servers)),
            Reply::Redirect(to) => {
                log::info!(
                    "forward {}: {} redirects to {}",
                    f.path,
                    shown(&at.to_string()),
                    shown(&to.to_string())
                );
                at = to;
            }
            Reply::Refused { status, text } => return Err(whip::refusal_text(status, &text)),
        }
    }
    Err(format!(
        "more than {MAX_REDIRECTS} redirects from {}",
        shown(&url.to_string())
    ))
}

/// Watch a session until it is gone or r58 stops; keeps status current.
async fn watch_link(
    i: usize,
    f: &Forward,
    id: SessionId,
    engine: &EngineHandle,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let mut last: Option<(Instant, ForwardLink)> = None;
    let mut heard = Instant::now();
    let mut forwarding = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(WATCH_EVERY) => {}
            _ = stop.wait_for(|s| *s) => return End::Stop,
        }
        let Some(link) = engine.ask(|reply| Cmd::ForwardLink { id, reply }).await else {
            return End::Stop;
        };
        let Some(link) = link else {
            return End::Failed(if forwarding {
                "the relay stopped answering (ICE or DTLS lost)".into()
            } else {
                "ICE/DTLS with the relay did not complete".into()
            });
        };
        let now = Instant::now();
        let (t, prev) = last.as_ref().map_or((now, None), |(t, l)| (*t, Some(l)));
        if prev.is_none_or(|p| link.bytes_received > p.bytes_received) {
            heard = now;
        } else if link.connected && now.duration_since(heard) >= SILENT_FOR {
            return End::Failed(format!(
                "nothing from the relay for {} s",
                SILENT_FOR.as_secs()
            ));
        }
        if link.connected && !forwarding {
            forwarding = true;
            log::info!(
                "forward {}: forwarding to {}, {}",
                f.path,
                shown(&f.url),
                pair_text(&link)
            );
            shared.set_state(i, ForwardState::Forwarding, None);
        }
        if link.connected {
            let sent = link.bytes_sent - prev.map_or(link.bytes_sent, |p| p.bytes_sent);
            let dt = now.duration_since(t).as_secs_f64().max(0.1);
            shared.update(i, |e| {
                e.facts.bitrate_bps = (sent as f64 * 8.0 / dt) as u64;
                e.facts.rtt_ms = link.rtt_ms;
                e.facts.pair = Some(pair_text(&link));
            });
        }
        last = Some((now, link));
    }
}

fn pair_text(l: &ForwardLink) -> String {
    match &l.pair {
        Some(p) if l.via_turn => format!("{} {} <-> {} (via TURN)", p.proto, p.local, p.remote),
        Some(p) => format!("{} {} <-> {}", p.proto, p.local, p.remote),
        None => "no pair yet".into(),
    }
}

async fn stop_session(engine: &EngineHandle, id: SessionId) {
    engine.tell(Cmd::ForwardStop { id }).await;
}

/// Tell the relay the session is over (best effort: it may be gone).
async fn delete(resource: &Url, f: &Forward) {
    if let Err(e) = http::request("DELETE", resource, f.token.as_ref(), None, String::new()).await {
        log::debug!("forward {}: DELETE {resource}: {e}", f.path);
    }
}

/// The URL for logs and status: a query may carry a credential (some
/// servers take `?token=`), so it is never shown.
pub fn shown(url: &str) -> String {
    match url.split_once('?') {
        Some((u, _)) => format!("{u}?…"),
        None => url.to_string(),
    }
}

/// A random number in 0..1 for jitter.
fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    let _ = aws_lc_rs::rand::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}
