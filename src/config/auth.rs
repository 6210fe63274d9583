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
    let t = t.expose();
    if t.len() < 8 || !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be at least 8 printable characters without spaces".into());
    }
    Ok(())
}

/// Does the request's `Authorization` header carry `want`? Compared in
/// constant time (aws-lc-rs), so timing does not tell how much matched.
pub fn bearer_matches(header: Option<&str>, want: &Secret) -> bool {
    let Some(given) = header.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    }) else {
        return false;
    };
    aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), want.expose().as_bytes())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_must_match_exactly() {
        let t = Secret::new("s3cret-token");
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
        assert!(check_token(&Secret::new("short")).is_err());
        assert!(check_token(&Secret::new("has a space")).is_err());
        assert!(check_token(&Secret::new("good-token-1")).is_ok());
    }
}
