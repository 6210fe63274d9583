//! Admitting a viewer: the checks before a WHEP offer is answered (path
//! ready, viewer limit, codecs), the candidates a client is told about, and
//! taking a new session (viewer or publisher) into the engine's tables.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::Candidate;

use super::engine::Engine;
use super::net;
use super::session::{OfferError, Plan, Session, Ticket};
use super::{Answer, random_hex};
use crate::config::Source;
use crate::media::PathState;
use crate::vocab::SessionId;

impl Engine {
    /// A WHEP (`publish` false) or WHIP offer for `path`: the answer, or
    /// why not.
    pub(super) fn offer(
        &mut self,
        path: &str,
        sdp: &str,
        client: SocketAddr,
        publish: bool,
        now: Instant,
    ) -> Result<Answer, OfferError> {
        let name = self.paths.get_key_value(path).ok_or(OfferError::NoPath)?.0;
        let ticket = Ticket {
            id: self.next_id,
            secret: random_hex(),
            path: name.clone(),
            offer: sdp,
            candidates: self.candidates_for(client),
            cert: self.cert.clone(),
            bwe: None,
        };
        let (s, answer) = if publish {
            self.admit_publisher(ticket, now)?
        } else {
            self.admit_viewer(ticket, now)?
        };
        Ok(self.register(s, answer, client))
    }

    fn admit_viewer(
        &mut self,
        mut t: Ticket,
        now: Instant,
    ) -> Result<(Session, String), OfferError> {
        let name = t.path.clone();
        let entry = &self.paths[&name];
        let st = entry.handle.status();
        if st.state != PathState::Streaming {
            let why = st.detail.unwrap_or_else(|| st.state.as_str().into());
            return Err(OfferError::NotReady(format!(
                "path '{name}' is not ready: {why}"
            )));
        }
        let viewers = self
            .sessions
            .values()
            .filter(|s| s.path == name && s.is_viewer())
            .count();
        if viewers >= entry.max_viewers {
            return Err(OfferError::Full(entry.max_viewers));
        }
        let plan = match (&entry.carried, entry.source) {
            (Some(c), Source::Publisher) => Plan::Relay(c),
            _ => Plan::Encoder {
                profile: entry.profile,
                audio: entry.handle.status.lock().unwrap().sends_audio,
            },
        };
        if entry.layered() {
            // Above the main stream's rate, so the first keyframe burst is
            // not paced out as if the link were that narrow.
            t.bwe = Some(entry.layers[0].bitrate / 2 * 3);
        }
        let accepted = Session::accept(t, plan, now)?;
        // Ask for a fresh IDR now, so one is cached by the time ICE+DTLS are up.
        if self.hub.keyframe_request(&name, now) {
            self.ask_keyframe(&name);
        }
        Ok(accepted)
    }

    /// The candidates a client at `client` is told about.
    pub(super) fn candidates_for(&self, client: SocketAddr) -> Vec<Candidate> {
        let reach = self.adv.reach(client.ip());
        let c = self
            .adv
            .candidates(reach, &net::interface_addrs(&self.adv.interfaces));
        if c.is_empty() {
            log::warn!(
                "webrtc: no candidate is usable by {} ({reach:?} client): set webrtc.additional_hosts",
                client.ip()
            );
        }
        c
    }

    /// Take an accepted session in; its answer for the HTTP side.
    pub(super) fn register(&mut self, mut s: Session, sdp: String, client: SocketAddr) -> Answer {
        let id = s.id;
        self.next_id = self.next_id.max(id + 1);
        s.client = Some(client);
        self.by_ufrag.insert(s.ufrag.clone(), id);
        let (what, from) = match s.kind() {
            "whip" => ("publisher", format!(" from {}", client.ip())),
            "forward" => ("forward", String::new()), // r58 is the client
            _ => ("viewer", format!(" from {}", client.ip())),
        };
        log::info!(
            "{} {id}: new {what} of {}{from} ({} candidates)",
            s.kind(),
            s.path,
            s.candidates.len()
        );
        let secret = s.secret.clone();
        self.deadlines.set(id, s.next_timeout);
        self.sessions.insert(id, s);
        Answer {
            sdp,
            secret,
            id: SessionId(id),
        }
    }
}
