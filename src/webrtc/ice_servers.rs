//! The ICE servers handed to clients in `Link` headers (RFC 9725 §4.6).
//!
//! A TURN entry with a `secret` gets a fresh credential per request in the
//! TURN REST API form coturn's `use-auth-secret` checks: username
//! `expiry:user`, password base64(HMAC-SHA1(secret, username)). The box
//! itself never contacts these servers, so answers never wait on them.

use aws_lc_rs::hmac;

use crate::config::IceServer;

/// A credential valid until `expiry` (unix seconds).
pub fn rest_credential(secret: &str, user: &str, expiry: u64) -> (String, String) {
    let username = format!("{expiry}:{user}");
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = hmac::sign(&key, username.as_bytes());
    (username, base64(tag.as_ref()))
}

/// The `Link` header values for these servers at time `now_unix`.
pub fn link_values(servers: &[IceServer], now_unix: u64) -> Vec<String> {
    servers
        .iter()
        .map(|s| {
            let cred = match (&s.secret, &s.username, &s.credential) {
                (Some(secret), _, _) => Some(rest_credential(
                    secret.expose(),
                    &s.user,
                    now_unix + s.ttl_secs,
                )),
                (None, Some(u), Some(c)) => Some((u.clone(), c.expose().to_string())),
                _ => None,
            };
            let mut v = format!("<{}>; rel=\"ice-server\"", s.urls);
            if let Some((u, c)) = cred {
                v.push_str(&format!(
                    "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                    quote_safe(&u),
                    quote_safe(&c)
                ));
            }
            v
        })
        .collect()
}

/// Header quoted-strings cannot hold `"` or `\` unescaped.
fn quote_safe(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Standard base64 with padding (RFC 4648 §4), what coturn compares.
pub fn base64(data: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::webrtc::Secret;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn rest_credential_matches_coturn_formula() {
        // openssl: printf %s "1700000000:harness" | openssl dgst -sha1 -hmac harness-secret-not-for-prod -binary | base64
        let (u, p) = rest_credential("harness-secret-not-for-prod", "harness", 1_700_000_000);
        assert_eq!(u, "1700000000:harness");
        assert_eq!(p, "dXKQ7sWW531mbqzO5hC5ezyDfi8=");
    }

    #[test]
    fn link_values_mint_fixed_and_none() {
        let turn = IceServer {
            urls: "turn:10.0.0.1:3478?transport=udp".into(),
            username: None,
            credential: None,
            secret: Some(Secret::new("s")),
            user: "box".into(),
            ttl_secs: 600,
        };
        let stun = IceServer {
            urls: "stun:stun.example:3478".into(),
            secret: None,
            ..turn.clone()
        };
        let fixed = IceServer {
            username: Some("u".into()),
            credential: Some(Secret::new("p")),
            secret: None,
            ..turn.clone()
        };
        let v = link_values(&[turn, stun, fixed], 1000);
        let (_, p) = rest_credential("s", "box", 1600);
        assert_eq!(
            v[0],
            format!(
                "<turn:10.0.0.1:3478?transport=udp>; rel=\"ice-server\"; username=\"1600:box\"; credential=\"{p}\"; credential-type=\"password\""
            )
        );
        assert_eq!(v[1], "<stun:stun.example:3478>; rel=\"ice-server\"");
        assert!(v[2].contains("username=\"u\"; credential=\"p\""));
    }
}
