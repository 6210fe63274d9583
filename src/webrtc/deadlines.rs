//! When each session next wants `handle_input(Timeout)`: ordered, so the
//! engine finds the due ones without looking at every session on every
//! wake-up (a frame for 100 viewers used to mean 100 scans of 100).

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

#[derive(Default)]
pub struct Deadlines {
    order: BTreeSet<(Instant, u64)>,
    by_id: HashMap<u64, Instant>,
}

impl Deadlines {
    /// Session `id` next wants its timeout at `at` (replaces the old one).
    pub fn set(&mut self, id: u64, at: Instant) {
        match self.by_id.insert(id, at) {
            Some(old) if old == at => return,
            Some(old) => {
                self.order.remove(&(old, id));
            }
            None => {}
        }
        self.order.insert((at, id));
    }

    pub fn remove(&mut self, id: u64) {
        if let Some(at) = self.by_id.remove(&id) {
            self.order.remove(&(at, id));
        }
    }

    /// The earliest deadline, if any session has one.
    pub fn next(&self) -> Option<Instant> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Take every session due at `now` into `out`, earliest first. Each is
    /// forgotten until it is `set` again (driving it does that).
    pub fn pop_due(&mut self, now: Instant, out: &mut Vec<u64>) {
        while let Some(&(at, id)) = self.order.first() {
            if at > now {
                break;
            }
            self.order.pop_first();
            self.by_id.remove(&id);
            out.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_sessions_come_out_in_order_and_once() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut d = Deadlines::default();
        d.set(1, ms(30));
        d.set(2, ms(10));
        d.set(3, ms(50));
        d.set(1, ms(20)); // moved earlier: the old entry must go
        assert_eq!(d.next(), Some(ms(10)));
        let mut out = vec![];
        d.pop_due(ms(25), &mut out);
        assert_eq!(out, vec![2, 1]);
        out.clear();
        d.pop_due(ms(25), &mut out);
        assert!(out.is_empty(), "popped sessions are not due again");
        d.remove(3);
        assert_eq!(d.next(), None);
    }
}
