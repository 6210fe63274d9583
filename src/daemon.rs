//! `r58 run`: start the subsystems in an order that keeps the box reachable
//! (tunnel, then API, media after, each path on its own), then wait for a
//! signal.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::error::{Context, Result};
use crate::health::{self, Notifier};
use crate::media::{self, Control, PathHandle};
use crate::webrtc::{Cmd, EngineHandle};
use crate::{api, http, webrtc, whep};

pub fn run(cfg: Config) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("r58-rt")
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(cfg))
}

async fn serve(mut cfg: Config) -> Result<()> {
    // The tunnel first: the box must be reachable even when media is not.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let tunnel = start_tunnel(&mut cfg, stop_rx);
    // Then the API, so status and doctor work while media comes up (a
    // first boot's GStreamer registry scan takes seconds).
    let health = Arc::new(Mutex::new(health::Snapshot::default()));
    let api_state = Arc::new(api::State {
        media: std::sync::OnceLock::new(),
        placeholders: media::placeholders(&cfg),
        started: SystemTime::now(),
        health: health.clone(),
        tunnel: tunnel.as_ref().map(|(status, _)| status.clone()),
        forwards: crate::forward::Shared::new(&cfg),
        access: api::Access {
            token: cfg.api.token.clone(),
            forwarders: cfg.webrtc.forwarders.clone(),
        },
    });
    http::serve(
        cfg.api.listen,
        "api",
        http::Limits::api(),
        api_state.clone(),
        api::handle,
    )
    .await?;
    crate::board::bring_up(
        std::path::Path::new("/"),
        media::element_installed("mpph264enc"),
    );
    let (frames_tx, frames_rx) = tokio::sync::mpsc::channel(256);
    let paths = media::start(&cfg, frames_tx)?;
    let engine = webrtc::start(&cfg, &paths, frames_rx)?;
    let _ = api_state.media.set(api::Media {
        paths: paths.clone(),
        engine: engine.clone(),
    });
    let (forward_stop, forward_stop_rx) = tokio::sync::watch::channel(false);
    let forwards = crate::forward::start(&cfg, &api_state.forwards, &engine, &forward_stop_rx);
    // The watchdog and LED are set up before the config moves to the WHEP
    // server; READY=1 still waits for both HTTP ports.
    let notifier = Notifier::from_env().map(Arc::new);
    let glue = Arc::new(Mutex::new(crate::board::Glue::start(
        &cfg,
        notifier.as_ref().map(|_| health::watchdog_interval()),
    )));
    let listen = cfg.http.listen;
    let limits = http::Limits::public(cfg.webrtc.forwarders.clone());
    let first_path = cfg.paths.keys().next().cloned();
    let whep_state = Arc::new(whep::State {
        cfg,
        engine: engine.clone(),
        refusals: Default::default(),
    });
    http::serve(listen, "whep", limits, whep_state, whep::handle).await?;
    if let Some(p) = first_path {
        let host = if listen.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            listen.ip().to_string()
        };
        log::info!("view {p} at http://{host}:{}/{p}/", listen.port());
    }

    if let Some(n) = &notifier {
        n.send("READY=1");
    }
    tokio::spawn(health_loop(
        notifier.clone(),
        paths.clone(),
        engine.clone(),
        health,
        glue.clone(),
        tunnel.as_ref().map(|(status, _)| status.clone()),
    ));

    wait_for_signal().await;
    log::info!("stopping");
    if let Some(n) = &notifier {
        n.send("STOPPING=1");
    }
    // Forwards first: each DELETEs its relay session while the engine
    // still holds it.
    let _ = forward_stop.send(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    for t in forwards {
        let _ = tokio::time::timeout_at(deadline, t).await;
    }
    // Viewers and publishers next, so their pages leave "connected" at
    // once instead of after ICE's ~16 s (then a raw fetch error).
    match tokio::time::timeout(
        Duration::from_secs(1),
        engine.ask(|reply| Cmd::Shutdown { reply }),
    )
    .await
    {
        Ok(Some(n)) if n > 0 => log::info!("told {n} WebRTC session(s) goodbye"),
        Ok(_) => {}
        Err(_) => log::warn!("the WebRTC engine did not answer the shutdown in 1 s"),
    }
    glue.lock().expect("board lock").stop();
    let _ = stop_tx.send(true);
    if let Some((_, task)) = tunnel {
        // CloseProxy goes out so frps frees the public ports at once.
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    for p in &paths {
        p.send(Control::Stop);
    }
    // Give pipelines a moment to reach NULL so devices are released cleanly
    // (and ICE-TCP writers to flush the goodbyes).
    tokio::time::sleep(Duration::from_millis(300)).await;
    log::info!("stopped");
    Ok(())
}

/// Judge health every few seconds: publish the verdict for the API and,
/// under systemd, keep `STATUS=` current and feed the watchdog only while
/// healthy.
async fn health_loop(
    n: Option<Arc<Notifier>>,
    paths: Vec<PathHandle>,
    engine: EngineHandle,
    shared: Arc<Mutex<health::Snapshot>>,
    glue: Arc<Mutex<crate::board::Glue>>,
    tunnel: Option<crate::tunnel::Shared>,
) {
    let watchdog = health::watchdog_interval();
    let device_tick = glue.lock().expect("board lock").max_tick();
    let tick = [watchdog, device_tick]
        .into_iter()
        .flatten()
        .fold(Duration::from_secs(5), Duration::min);
    let mut monitor = health::Monitor::new(paths.len(), Instant::now());
    let mut was_healthy = true;
    let mut pings = 0u64;
    loop {
        let traffic = tokio::time::timeout(
            Duration::from_secs(1),
            engine.ask(|reply| Cmd::Traffic { reply }),
        )
        .await;
        let engine_ok = matches!(traffic, Ok(Some(_)));
        let traffic = traffic.ok().flatten().unwrap_or_default();
        let now = Instant::now();
        let statuses: Vec<_> = paths
            .iter()
            .map(|p| {
                let mut st = p.status.lock().expect("path status lock");
                st.measure_fps(now);
                st.clone()
            })
            .collect();
        let samples: Vec<health::PathSample> = paths
            .iter()
            .zip(&statuses)
            .map(|(p, st)| health::PathSample {
                name: &p.name,
                state: st.state,
                frames: st.frames,
                viewers: traffic
                    .iter()
                    .find(|t| t.name == p.name)
                    .map(|t| t.readers.len())
                    .unwrap_or(0),
                signal: st.signal.as_deref(),
            })
            .collect();
        let mut snap = monitor.observe(now, engine_ok, &samples);
        {
            let mut g = glue.lock().expect("board lock");
            let states: Vec<_> = samples.iter().map(|s| s.state).collect();
            let tunnel_down = tunnel
                .as_ref()
                .is_some_and(|t| !t.lock().expect("tunnel lock").connected);
            g.tick(snap.healthy, &states, tunnel_down);
            snap.watchdog = g.watchdog.clone();
            if tunnel.is_some() {
                snap.status += if tunnel_down {
                    "; tunnel down"
                } else {
                    "; tunnel up"
                };
            }
        }
        if snap.healthy != was_healthy {
            if snap.healthy {
                log::warn!("health: recovered");
            } else {
                log::warn!("health: {}", snap.status);
            }
            was_healthy = snap.healthy;
        }
        if let Some(n) = &n {
            let mut msg = format!("STATUS={}", snap.status);
            if snap.healthy && watchdog.is_some() {
                msg.push_str("\nWATCHDOG=1");
                pings += 1;
            }
            n.send(&msg);
        }
        snap.watchdog_pings = pings;
        *shared.lock().expect("health lock") = snap;
        tokio::time::sleep(tick).await;
    }
}

/// Resolve `[tunnel]`, point the WebRTC layer at the public addresses it
/// creates, and start it. A broken tunnel config is logged, not fatal:
/// media and the LAN must keep working.
fn start_tunnel(
    cfg: &mut Config,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<(crate::tunnel::Shared, tokio::task::JoinHandle<()>)> {
    let settings = match cfg.tunnel_settings() {
        Ok(Some((s, warnings))) => {
            for w in warnings {
                log::warn!("tunnel: {w}");
            }
            s
        }
        Ok(None) => return None,
        Err(e) => {
            log::error!("tunnel: {e}; the tunnel stays off");
            return None;
        }
    };
    cfg.webrtc.adopt_tunnel(&settings);
    log::info!(
        "tunnel: {} proxies via {}:{}",
        settings.proxies.len(),
        settings.server_addr,
        settings.server_port
    );
    Some(crate::tunnel::spawn(settings, stop))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
