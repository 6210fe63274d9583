//! TURN (RFC 8656) for forwards: when the only way to a relay is through
//! a TURN server it names in its `Link` headers, r58 allocates there and
//! offers the relayed address as an ICE candidate. `stun` reads and writes
//! the messages, `client` is the allocation's state machine (no I/O);
//! `stream` finds the messages' ends when the server is reached over TCP
//! or TLS; the socket around it is `crate::forward::turn`.

pub mod client;
pub mod stream;
pub mod stun;

pub use client::{Client, State};
