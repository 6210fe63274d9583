//! The recorded stock frpc/frps 0.70.0 sessions (`tests/frp-vectors/`,
//! and wire v2's in `tests/frp-vectors-v2/`), for the protocol cores'
//! unit tests.

use serde_json::Value;

const FILES: &[(&str, &str)] = &[
    (
        "mux-login-proxy-workconn",
        include_str!("../../tests/frp-vectors/mux-login-proxy-workconn.json"),
    ),
    (
        "nomux-login-proxy-workconn",
        include_str!("../../tests/frp-vectors/nomux-login-proxy-workconn.json"),
    ),
    (
        "encrypted-compressed-proxy",
        include_str!("../../tests/frp-vectors/encrypted-compressed-proxy.json"),
    ),
    (
        "bad-token",
        include_str!("../../tests/frp-vectors/bad-token.json"),
    ),
    (
        "port-not-allowed",
        include_str!("../../tests/frp-vectors/port-not-allowed.json"),
    ),
    (
        "heartbeat-nomux",
        include_str!("../../tests/frp-vectors/heartbeat-nomux.json"),
    ),
    (
        "legacy-ini",
        include_str!("../../tests/frp-vectors/legacy-ini.json"),
    ),
    (
        "extra-mux-keepalive",
        include_str!("../../tests/frp-vectors/extra-mux-keepalive.json"),
    ),
];

const FILES_V2: &[(&str, &str)] = &[
    (
        "v2-mux-login-proxy-workconn",
        include_str!("../../tests/frp-vectors-v2/v2-mux-login-proxy-workconn.json"),
    ),
    (
        "v2-nomux-login-proxy-workconn",
        include_str!("../../tests/frp-vectors-v2/v2-nomux-login-proxy-workconn.json"),
    ),
    (
        "v2-encrypted-compressed-proxy",
        include_str!("../../tests/frp-vectors-v2/v2-encrypted-compressed-proxy.json"),
    ),
    (
        "v2-bad-token",
        include_str!("../../tests/frp-vectors-v2/v2-bad-token.json"),
    ),
    (
        "v2-heartbeat-nomux",
        include_str!("../../tests/frp-vectors-v2/v2-heartbeat-nomux.json"),
    ),
    (
        "v2-extra-xchacha20-nomux",
        include_str!("../../tests/frp-vectors-v2/v2-extra-xchacha20-nomux.json"),
    ),
];

pub fn load(name: &str) -> Value {
    let (_, text) = FILES
        .iter()
        .chain(FILES_V2)
        .find(|(n, _)| *n == name)
        .expect("known vector");
    serde_json::from_str(text).expect("vector JSON")
}

/// The v1 recordings.
pub fn all() -> impl Iterator<Item = (&'static str, Value)> {
    FILES.iter().map(|(n, _)| (*n, load(n)))
}

/// The wire v2 recordings.
pub fn all_v2() -> impl Iterator<Item = (&'static str, Value)> {
    FILES_V2.iter().map(|(n, _)| (*n, load(n)))
}
