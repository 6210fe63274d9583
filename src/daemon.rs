//! `r58 run`: start the subsystems in an order that keeps the box reachable
//! (API first, media after, each path on its own), then wait for a signal.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::error::{Context, Result};
use crate::media::{self, Control};
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

async fn serve(cfg: Config) -> Result<()> {
    let (frames_tx, frames_rx) = tokio::sync::mpsc::channel(256);
    let paths = media::start(&cfg, frames_tx)?;
    let engine = webrtc::start(&cfg, &paths, frames_rx)?;

    let api_state = Arc::new(api::State { paths: paths.clone(), engine: engine.clone(), started: SystemTime::now() });
    http::serve(cfg.api.listen, "api", api_state, api::handle).await?;
    let listen = cfg.http.listen;
    let first_path = cfg.paths.keys().next().cloned();
    let whep_state = Arc::new(whep::State { cfg, engine });
    http::serve(listen, "whep", whep_state, whep::handle).await?;
    if let Some(p) = first_path {
        let host = if listen.ip().is_unspecified() { "127.0.0.1".to_string() } else { listen.ip().to_string() };
        log::info!("view {p} at http://{host}:{}/{p}/", listen.port());
    }

    wait_for_signal().await;
    log::info!("stopping");
    for p in &paths {
        p.send(Control::Stop);
    }
    // Give pipelines a moment to reach NULL so devices are released cleanly.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
