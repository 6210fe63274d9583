//! The engine's once-a-second round over every session: close the ones
//! that are gone, and hand str0m stand-in consent checks for peers that
//! send media but no checks, and drop TCP connections that never named
//! their session. Per-packet work never scans all sessions;
//! this does, so it runs on its own timer.

use std::time::{Duration, Instant};

use str0m::Input;
use str0m::net::{Protocol, Receive};

use super::engine::Engine;

/// A session that has not connected by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// A TCP connection must prove which session it is for this quickly.
const TCP_BIND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the round runs.
const EVERY: Duration = Duration::from_secs(1);

impl Engine {
    /// The round: due when `now` reaches `self.housekeeping`.
    pub(super) fn housekeep(&mut self, now: Instant) {
        self.housekeeping = now + EVERY;
        self.keep_alive(now);
        self.close_dead(now);
        self.net.close_unbound(now, TCP_BIND_TIMEOUT);
        self.idle_renditions(now);
        self.rank_simulcast(now);
    }

    /// Stand-in consent checks for peers that send media but no checks
    /// (liveness.rs says why).
    fn keep_alive(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| s.connected && s.forward.is_none() && s.liveness.due(now))
            .map(|s| s.id)
            .collect();
        for id in due {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            let Some(pair) = s.pair.clone() else {
                continue;
            };
            let creds = s.rtc.direct_api().local_ice_credentials();
            let Some(check) = s.liveness.stand_in(&creds, now) else {
                continue;
            };
            let Ok(contents) = check.as_slice().try_into() else {
                continue;
            };
            let proto = if pair.proto == "tcp" {
                Protocol::Tcp
            } else {
                Protocol::Udp
            };
            let recv = Receive {
                proto,
                source: pair.remote,
                destination: pair.local,
                contents,
            };
            if let Err(e) = s.rtc.handle_input(Input::Receive(now, recv)) {
                log::debug!("{} {id}: stand-in check rejected: {e}", s.kind());
            }
            self.drive(id, now);
        }
    }

    /// Close sessions that are gone, never connected, or (publishers) idle.
    fn close_dead(&mut self, now: Instant) {
        let dead: Vec<(u64, &str)> = self
            .sessions
            .values()
            .filter_map(|s| {
                let why = if !s.rtc.is_alive() {
                    "disconnected"
                } else if !s.connected && now.duration_since(s.created) > HANDSHAKE_TIMEOUT {
                    "never connected"
                } else {
                    super::publish::idle(s, now)?
                };
                Some((s.id, why))
            })
            .collect();
        for (id, why) in dead {
            log::info!("webrtc {id}: {why}; closing");
            self.close(id);
        }
    }
}
