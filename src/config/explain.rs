//! serde's words for a bad value in r58.toml, said the way a technician
//! needs them: what shape the value should have, with the unit where the
//! key has one.

pub(super) fn explain(msg: &str, key: Option<&str>) -> String {
    let k = key.map(|k| format!("{k}: ")).unwrap_or_default();
    let unit = match key {
        Some("bitrate") => " (bit/s, e.g. 4000000 for 4 Mbit/s)",
        Some("fps") => " (frames per second)",
        Some("gop") => " (frames between keyframes)",
        Some(k) if k.ends_with("port") => " (a port number)",
        _ => "",
    };
    if msg.contains("invalid socket address syntax") {
        format!("{k}expected IP:PORT, e.g. \"0.0.0.0:8889\"")
    } else if msg.contains("expected u16") {
        format!(
            "{k}expected a whole number from 0 to 65535{unit}; {}",
            got(msg)
        )
    } else if msg.contains("expected u32") {
        format!(
            "{k}expected a whole number from 0 to 4294967295{unit}; {}",
            got(msg)
        )
    } else {
        msg.to_string()
    }
}

/// What serde saw: "invalid value: integer `-5`, expected u32" → "got -5";
/// "invalid type: string \"4M\", expected u32" → "got string \"4M\"".
fn got(msg: &str) -> String {
    let seen = match msg.split('`').nth(1) {
        Some(value) => value,
        None => msg.split(", expected").next().unwrap_or(msg),
    };
    format!("got {}", seen.trim_start_matches("invalid type: "))
}
#[cfg(test)]
mod tests {
    #[test]
    fn bad_values_say_what_a_value_should_look_like() {
        let err = |t: &str| super::super::Config::parse(t).unwrap_err().to_string();
        assert_eq!(
            err("[http]\nlisten = \"8889\"\n"),
            "2: listen: expected IP:PORT, e.g. \"0.0.0.0:8889\""
        );
        assert_eq!(
            err("[paths.cam0]\nsource = \"test\"\nbitrate = -5\n"),
            "3: bitrate: expected a whole number from 0 to 4294967295 (bit/s, e.g. 4000000 for 4 Mbit/s); got -5"
        );
        assert_eq!(
            err("[webrtc]\nudp_port = 70000\n"),
            "2: udp_port: expected a whole number from 0 to 65535 (a port number); got 70000"
        );
        assert!(
            err("[paths.cam0]\nsource = \"test\"\nbitrate = \"4M\"\n")
                .contains("got string \"4M\"")
        );
        assert_eq!(
            err("[http]\nlisten = \"0.0.0.0:9997\"\n"),
            "2: http.listen 0.0.0.0:9997 and api.listen 127.0.0.1:9997 share a port; \
             give each its own (defaults 0.0.0.0:8889 and 127.0.0.1:9997)"
        );
        assert!(
            err("[webrtc]\ntcp_port = 8889\n")
                .contains("webrtc.tcp_port 8889 is http.listen's port")
        );
    }
}
