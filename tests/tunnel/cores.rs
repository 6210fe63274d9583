//! r58's sans-IO tunnel cores, as the tunnel tests' and bench's `tunnel`
//! module, so the test frps (`frps.rs`) speaks the protocol with the same
//! code that is pinned to stock frp by recorded bytes.
#![allow(unused_imports)]

pub use r58::tunnel::{aead, codec, crypto, msg, mux, snappy, v2, vectors, wire, yamux};
