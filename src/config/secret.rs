//! A secret string (tokens, TURN secrets, credentials): `Debug` never
//! shows the value, so it cannot reach a log line or an error by accident;
//! `expose` is the one way to read it.

use serde::Deserialize;

#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_never_shows_the_value() {
        let s = super::Secret::new("hunter2-token");
        assert_eq!(format!("{s:?} {:?}", Some(&s)), "<secret> Some(<secret>)");
        assert_eq!(s.expose(), "hunter2-token");
    }
}
