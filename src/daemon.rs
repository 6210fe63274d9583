//! `r58 run`: start the subsystems in an order that keeps the box reachable
//! (API first, media after, each path on its own), then wait for a signal.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::error::{Context, Result};
use crate::health::{self, Notifier};
use crate::media::{self, Control, PathHandle, PathState};
use crate::webrtc::{Cmd, EngineHandle};
use crate::{api, http, webrtc, whep};

/// A streaming path whose frame count has not moved for this long has a
/// wedged pipeline thread (its own supervisor would have restarted it).
const WEDGED: Duration = Duration::from_secs(20);

pub fn run(cfg: Config) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("r58-rt")
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(cfg))
}

async fn serve(cfg: Config) -> Result<()> {
    let (frames_tx, frames_rx) = tokio::sync::mpsc::channel(256);
    let paths = media::start(&cfg, frames_tx)?;
    let engine = webrtc::start(&cfg, &paths, frames_rx)?;

    let api_state = Arc::new(api::State {
        paths: paths.clone(),
        engine: engine.clone(),
        started: SystemTime::now(),
    });
    http::serve(cfg.api.listen, "api", api_state, api::handle).await?;
    let listen = cfg.http.listen;
    let first_path = cfg.paths.keys().next().cloned();
    let whep_state = Arc::new(whep::State {
        cfg,
        engine: engine.clone(),
    });
    http::serve(listen, "whep", whep_state, whep::handle).await?;
    if let Some(p) = first_path {
        let host = if listen.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            listen.ip().to_string()
        };
        log::info!("view {p} at http://{host}:{}/{p}/", listen.port());
    }

    let notifier = Notifier::from_env().map(Arc::new);
    if let Some(n) = &notifier {
        n.send("READY=1");
        tokio::spawn(health_loop(n.clone(), paths.clone(), engine));
    }

    wait_for_signal().await;
    log::info!("stopping");
    if let Some(n) = &notifier {
        n.send("STOPPING=1");
    }
    for p in &paths {
        p.send(Control::Stop);
    }
    // Give pipelines a moment to reach NULL so devices are released cleanly.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// Feed the systemd watchdog only while healthy; keep STATUS= current.
async fn health_loop(n: Arc<Notifier>, paths: Vec<PathHandle>, engine: EngineHandle) {
    let watchdog = health::watchdog_interval();
    let tick = watchdog
        .unwrap_or(Duration::from_secs(5))
        .min(Duration::from_secs(5));
    let mut progress: Vec<(u64, std::time::Instant)> = paths
        .iter()
        .map(|_| (0, std::time::Instant::now()))
        .collect();
    let mut was_healthy = true;
    loop {
        tokio::time::sleep(tick).await;
        let traffic = tokio::time::timeout(
            Duration::from_secs(1),
            engine.ask(|reply| Cmd::Traffic { reply }),
        )
        .await;
        let engine_ok = matches!(traffic, Ok(Some(_)));
        let traffic = traffic.ok().flatten().unwrap_or_default();
        let mut wedged = Vec::new();
        let mut summary = Vec::new();
        for (p, seen) in paths.iter().zip(progress.iter_mut()) {
            let st = p.status();
            if st.frames != seen.0 || st.state != PathState::Streaming {
                *seen = (st.frames, std::time::Instant::now());
            } else if seen.1.elapsed() > WEDGED {
                wedged.push(p.name.to_string());
            }
            let viewers = traffic
                .iter()
                .find(|t| t.name == p.name)
                .map(|t| t.readers.len())
                .unwrap_or(0);
            summary.push((p.name.to_string(), st.state.as_str(), viewers));
        }
        let healthy = engine_ok && wedged.is_empty();
        let mut status = health::status_line(&summary);
        if !engine_ok {
            status = format!("webrtc engine not responding; {status}");
        }
        if !wedged.is_empty() {
            status = format!("wedged: {}; {status}", wedged.join(", "));
        }
        if healthy != was_healthy {
            log::warn!(
                "health: {}",
                if healthy {
                    "recovered"
                } else {
                    status.as_str()
                }
            );
            was_healthy = healthy;
        }
        let mut msg = format!("STATUS={status}");
        if healthy && watchdog.is_some() {
            msg.push_str("\nWATCHDOG=1");
        }
        n.send(&msg);
    }
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
