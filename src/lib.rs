//! r58: one binary that puts the R58's cameras in front of people. The
//! library holds everything; `main.rs` only starts logging and the CLI.
//! Tests, benches and fuzz targets use the crate, not copies of its files.
//! See ARCHITECTURE in the README for how a frame travels.

mod api;
mod backoff;
mod board;
pub mod cli;
mod client;
mod config;
mod daemon;
mod doctor;
mod error;
mod forward;
mod h264;
mod health;
mod hex;
mod http;
mod hub;
mod md5;
mod media;
mod metrics;
mod recent;
mod shapes;
mod status;
mod support_bundle;
pub mod tunnel;
mod turn;
mod vocab;
mod wallclock;
mod webrtc;
mod whep;

#[doc(hidden)]
pub mod fuzz;

use std::io::Write;

/// One line per event. Under systemd the journal adds the time itself.
pub fn init_logging() {
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let logger = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,str0m=warn,is=warn,dimpl=warn"),
    )
    .format(move |buf, rec| {
        if journald {
            writeln!(buf, "{:<5} {}", rec.level(), rec.args())
        } else {
            let t = buf.timestamp_millis().to_string();
            // 2026-11-24T10:07:16.123Z -> 10:07:16.123
            let short = t.get(11..23).unwrap_or(&t);
            writeln!(buf, "{short} {:<5} {}", rec.level(), rec.args())
        }
    })
    .build();
    recent::install(logger);
}
