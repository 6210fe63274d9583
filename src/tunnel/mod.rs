//! The built-in FRP client: reaches the VPS's stock `frps` and forwards
//! its public ports to services on this box (ssh, WHEP, ICE-TCP, API).
//!
//! Protocol cores are sans-IO and tested against recorded stock frp
//! sessions: `msg` (messages, v1 and v2 framing), `crypto` (token auth,
//! AES-128-CFB), `v2` and `aead` (wire v2: hellos, AEAD control channel),
//! `snappy` and `codec` (work-connection compression and encryption),
//! `yamux` (multiplexing), `control` (login, proxies, heartbeats) and `udp`
//! (datagrams over a work connection). The tokio glue is `transport` (TCP,
//! TLS, mux), `work` (one forwarded connection or udp relay) and `client`
//! (the reconnecting session loop).

pub mod aead;
mod client;
pub mod codec;
mod control;
pub mod crypto;
pub mod msg;
pub mod mux;
mod pick;
pub mod snappy;
pub mod status;
mod tls;
mod transport;
pub mod udp;
pub mod v2;
#[doc(hidden)]
pub mod vectors;
pub mod wire;
mod work;
pub mod yamux;

pub use client::{Shared, spawn};
pub use tls::mode as tls_mode;
pub use work::TUNNEL_SOURCE;
