//! `[auth]` and the per-path token keys: who may publish into a path (WHIP)
//! and who may read it (WHEP). A path's own token wins over the global one.
//! Tokens are `Secret`s, so no `Debug` print or log line can show them.

use serde::Deserialize;

pub use super::webrtc::Secret;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// `Authorization: Bearer ...` required to publish (WHIP), unless a
    /// path sets its own.
    pub publish_token: Option<Secret>,
    /// Required to read (WHEP) when set; reading is open otherwise.
    pub read_token: Option<Secret>,
}

/// Which right a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    Publish,
    Read,
}

impl Right {
    pub fn as_str(self) -> &'static str {
        match self {
            Right::Publish => "publish",
            Right::Read => "read",
        }
    }
}

impl super::Config {
    /// The token `right` on `path` needs, if any.
    pub fn token(&self, path: &str, right: Right) -> Option<&Secret> {
        let p = self.paths.get(path);
        match right {
            Right::Publish => p
                .and_then(|p| p.publish_token.as_ref())
                .or(self.auth.publish_token.as_ref()),
            Right::Read => p
                .and_then(|p| p.read_token.as_ref())
                .or(self.auth.read_token.as_ref()),
        }
    }
}

/// A token goes into an HTTP header: printable ASCII, no spaces.
pub fn check_token(t: &Secret) -> Result<(), String> {
    if t.0.len() < 8 || !t.0.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be at least 8 printable characters without spaces".into());
    }
    Ok(())
}

/// Does the request's `Authorization` header carry `want`? Once the lengths
/// match, the comparison takes the same time wherever the bytes differ.
pub fn bearer_matches(header: Option<&str>, want: &Secret) -> bool {
    let Some(given) = header.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    }) else {
        return false;
    };
    let (a, b) = (given.as_bytes(), want.0.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_must_match_exactly() {
        let t = Secret("s3cret-token".into());
        assert!(bearer_matches(Some("Bearer s3cret-token"), &t));
        assert!(bearer_matches(Some("bearer  s3cret-token "), &t));
        assert!(!bearer_matches(Some("Bearer s3cret-toke"), &t));
        assert!(!bearer_matches(Some("Bearer s3cret-tokenX"), &t));
        assert!(!bearer_matches(Some("Basic s3cret-token"), &t));
        assert!(!bearer_matches(Some("s3cret-token"), &t));
        assert!(!bearer_matches(None, &t));
        assert_eq!(format!("{t:?}"), "<secret>");
    }

    #[test]
    fn tokens_must_fit_a_header() {
        assert!(check_token(&Secret("short".into())).is_err());
        assert!(check_token(&Secret("has a space".into())).is_err());
        assert!(check_token(&Secret("good-token-1".into())).is_ok());
    }
}
