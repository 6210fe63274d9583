//! The built-in FRP client: reaches the VPS's stock `frps` and forwards
//! its public ports to services on this box (ssh, WHEP, ICE-TCP, API).
//!
//! Protocol cores are sans-IO and tested against recorded stock frp
//! sessions: `msg` (v1 framing), `crypto` (token auth, AES-128-CFB),
//! `snappy` and `codec` (work-connection compression and encryption),
//! `yamux` (multiplexing), `control` (login, proxies, heartbeats) and `udp`
//! (datagrams over a work connection). The tokio glue is `transport` (TCP,
//! TLS, mux), `work` (one forwarded connection or udp relay) and `client`
//! (the reconnecting session loop).

mod client;
pub mod codec;
mod control;
pub mod crypto;
pub mod md5;
pub mod msg;
pub mod mux;
pub mod snappy;
pub mod status;
mod tls;
mod transport;
pub mod udp;
#[doc(hidden)]
pub mod vectors;
mod wire;
mod work;
pub mod yamux;

pub use client::{Shared, spawn};
pub use tls::mode as tls_mode;
pub use work::TUNNEL_SOURCE;
