//! The engine's answers to commands from the HTTP side (offers, DELETE,
//! PATCH, the API's questions, shutdown): the part of the engine loop that
//! does not touch media.

use std::time::Instant;

use str0m::Candidate;

use super::engine::Engine;
use super::relay::Carried;
use super::{Cmd, PathTraffic, RelayLatency, SessionInfo, net};
use crate::vocab::SessionId;

impl Engine {
    pub(super) fn on_cmd(&mut self, cmd: Cmd, now: Instant) {
        match cmd {
            Cmd::ForwardReady { path, reply } => {
                let _ = reply.send(self.forward_plan(&path).map(|_| ()));
            }
            Cmd::ForwardOffer { path, turn, reply } => {
                let offer = if self.stopping {
                    Err(super::OfferError::NotReady("r58 is stopping".into()))
                } else {
                    self.forward_offer(&path, turn, now)
                };
                let _ = reply.send(offer);
            }
            Cmd::ForwardTrickle { id, turn, reply } => {
                let _ = reply.send(self.forward_trickle(id.0, turn, now));
            }
            Cmd::ForwardRelayed { id, peer, data } => {
                self.forward_relayed(id.0, peer, &data, now);
            }
            Cmd::ForwardAnswer { id, sdp, reply } => {
                let r = self.forward_answer(id.0, &sdp, now);
                if r.is_err() {
                    self.close(id.0);
                }
                let _ = reply.send(r);
            }
            Cmd::ForwardLink { id, reply } => {
                let _ = reply.send(self.forward_link(id.0));
            }
            Cmd::ForwardStop { id } => self.close(id.0),
            Cmd::Offer {
                path,
                sdp,
                client,
                user_agent,
                publish,
                reply,
            } => {
                let answer = if self.stopping {
                    Err(super::OfferError::NotReady("r58 is stopping".into()))
                } else {
                    self.offer(&path, &sdp, client, publish, now).inspect(|a| {
                        if let Some(s) = self.sessions.get_mut(&a.id.0) {
                            s.user_agent = user_agent;
                        }
                    })
                };
                let _ = reply.send(answer);
            }
            Cmd::Shutdown { reply } => {
                self.stopping = true;
                let ids: Vec<u64> = self.sessions.keys().copied().collect();
                for &id in &ids {
                    self.close(id);
                }
                let _ = reply.send(ids.len());
            }
            Cmd::Delete {
                path,
                secret,
                reply,
            } => {
                let id = self.find(&path, &secret);
                if let Some(s) = id.and_then(|id| self.sessions.get(&id)) {
                    let who = if s.is_publisher() {
                        "publisher"
                    } else {
                        "viewer"
                    };
                    log::info!("{} {}: deleted by {who}", s.kind(), s.id);
                    self.close(s.id);
                }
                let _ = reply.send(id.is_some());
            }
            Cmd::Patch {
                path,
                secret,
                frag,
                reply,
            } => {
                let id = self.find(&path, &secret);
                if let Some(s) = id.and_then(|id| self.sessions.get_mut(&id)) {
                    for line in frag.lines().filter_map(|l| l.trim().strip_prefix("a=")) {
                        if line.starts_with("candidate:") {
                            match Candidate::from_sdp_string(line) {
                                Ok(c) => s.add_remote_candidate(c),
                                Err(e) => {
                                    log::debug!("{} {}: ignoring candidate: {e}", s.kind(), s.id)
                                }
                            }
                        }
                    }
                }
                let _ = reply.send(id.is_some());
            }
            Cmd::Traffic { reply } => {
                let _ = reply.send(self.traffic());
            }
            Cmd::RelayLatency { reply } => {
                let l = &self.latency;
                let _ = reply.send(l.percentiles().map(|(p50_us, p99_us)| RelayLatency {
                    p50_us,
                    p99_us,
                    packets: l.count,
                }));
            }
            Cmd::Network { reply } => {
                let a = &self.adv;
                let publishers = self.sessions.values().filter(|s| s.is_publisher()).count();
                let forwards = self
                    .sessions
                    .values()
                    .filter(|s| s.forward.is_some())
                    .count();
                let _ = reply.send(super::Network {
                    udp_port: a.udp_port,
                    tcp_port: a.tcp_port,
                    hosts: if a.hosts.is_empty() {
                        net::interface_addrs(&a.interfaces)
                    } else {
                        a.hosts.clone()
                    },
                    public: a.public.clone(),
                    unresolved: self.unresolved.clone(),
                    viewers: self.sessions.len() - publishers - forwards,
                    publishers,
                    send: self.net.facts(),
                });
            }
            Cmd::Public { hosts, unresolved } => {
                self.adv.public = hosts;
                self.unresolved = unresolved;
            }
            Cmd::Sessions { reply } => {
                let mut v: Vec<SessionInfo> = self
                    .sessions
                    .values()
                    .filter(|s| s.forward.is_none())
                    .map(|s| {
                        let mut i = s.info();
                        i.view = self.view_facts(s);
                        i
                    })
                    .collect();
                v.sort_by_key(|s| s.created);
                let _ = reply.send(v);
            }
        }
    }

    fn traffic(&self) -> Vec<PathTraffic> {
        let mut out: Vec<PathTraffic> = self
            .paths
            .iter()
            .map(|(name, p)| PathTraffic {
                name: name.clone(),
                readers: vec![],
                bytes_sent: p.bytes_sent,
                profile: p.profile,
                publisher: p.publisher.map(SessionId),
                tracks: p.carried.as_ref().map(Carried::names).unwrap_or_default(),
            })
            .collect();
        for s in self
            .sessions
            .values()
            .filter(|s| s.reading && s.forward.is_none())
        {
            if let Some(t) = out.iter_mut().find(|t| t.name == s.path) {
                t.readers.push(SessionId(s.id));
            }
        }
        out
    }

    fn find(&self, path: &str, secret: &str) -> Option<u64> {
        self.sessions
            .values()
            .find(|s| &*s.path == path && s.secret == secret)
            .map(|s| s.id)
    }
}
