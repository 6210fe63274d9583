//! The last warnings and errors the daemon logged, kept in memory so
//! `r58 status` can show a technician what went wrong without the journal.
//! A thin wrapper around env_logger: every record still goes to stderr.

use std::collections::VecDeque;
use std::sync::Mutex;

/// How many are kept: one screen's worth.
const KEEP: usize = 8;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// Unix seconds.
    pub time: u64,
    pub level: &'static str,
    pub text: String,
}

static RING: Mutex<VecDeque<Entry>> = Mutex::new(VecDeque::new());

struct Recent {
    inner: env_logger::Logger,
}

impl log::Log for Recent {
    fn enabled(&self, m: &log::Metadata) -> bool {
        self.inner.enabled(m)
    }

    fn log(&self, rec: &log::Record) {
        if !self.inner.matches(rec) {
            return;
        }
        self.inner.log(rec);
        if rec.level() <= log::Level::Warn {
            note(rec.level(), rec.args().to_string());
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

fn note(level: log::Level, text: String) {
    let level = if level == log::Level::Error {
        "ERROR"
    } else {
        "WARN"
    };
    let mut r = RING.lock().unwrap_or_else(|e| e.into_inner());
    if r.len() == KEEP {
        r.pop_front();
    }
    r.push_back(Entry {
        time: crate::wallclock::unix_now(),
        level,
        text,
    });
}

/// Make `inner` the process logger, remembering warnings and errors.
pub fn install(inner: env_logger::Logger) {
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Recent { inner })).is_ok() {
        log::set_max_level(max);
    }
}

/// Oldest first.
pub fn entries() -> Vec<Entry> {
    let r = RING.lock().unwrap_or_else(|e| e.into_inner());
    r.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_few() {
        for i in 0..KEEP + 3 {
            note(log::Level::Warn, format!("w{i}"));
        }
        note(log::Level::Error, "boom".into());
        let e = entries();
        assert_eq!(e.len(), KEEP);
        assert_eq!(e.last().unwrap().text, "boom");
        assert_eq!(e.last().unwrap().level, "ERROR");
        assert_eq!(e[0].text, format!("w{}", 4));
    }
}
