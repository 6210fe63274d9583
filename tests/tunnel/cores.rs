//! r58's sans-IO tunnel cores, compiled into the tunnel tests and bench as
//! their `tunnel` module, so the test frps (`frps.rs`) speaks the protocol
//! with the same code that is pinned to stock frp by recorded bytes.
#![allow(dead_code, unused_imports)]

#[path = "../../src/tunnel/codec.rs"]
pub mod codec;
#[path = "../../src/tunnel/crypto.rs"]
pub mod crypto;
#[path = "../../src/tunnel/md5.rs"]
pub mod md5;
#[path = "../../src/tunnel/msg.rs"]
pub mod msg;
#[path = "../../src/tunnel/mux.rs"]
pub mod mux;
#[path = "../../src/tunnel/snappy.rs"]
pub mod snappy;
#[path = "../../src/tunnel/vectors.rs"]
pub mod vectors;
#[path = "../../src/tunnel/yamux.rs"]
pub mod yamux;
