//! The engine's side of a forward: r58 as a WHIP client (RFC 9725) that
//! pushes a path to a relay. The session is a viewer in every way that
//! matters (fed from the hub, PLIs become keyframe requests, NACKs are
//! answered from the resend cache), except that r58 makes the offer and
//! runs a full, controlling ICE agent, since the relay may be ICE-lite,
//! and over ICE-TCP it is the active side (it connects). When the relay
//! is reachable only through a TURN server, the forward task allocates
//! there and hands the engine a `TurnLeg`: the relayed address becomes a
//! candidate, and packets from it go to the task's socket.
//! The HTTP signalling and the retry loop live in `crate::forward`.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, TcpType};
use str0m::{Candidate, Rtc};
use tokio::sync::mpsc;

use super::engine::Engine;
use super::layers::REPORT_EVERY;
use super::relay;
use super::session::{
    Negotiated, OfferError, Outbound, Plan, Role, Session, Ticket, encoder_codecs, negotiated,
};
use super::tcp::ACTIVE_PORT;
use super::{ForwardLink, net, random_hex};
use crate::config::Source;
use crate::media::PathState;
use crate::vocab::SessionId;

/// What a forward session keeps until the relay answers.
pub struct Leg {
    pending: Option<Box<SdpPendingOffer>>,
    mids: Vec<Mid>,
    pub turn: Option<TurnLeg>,
}

/// A TURN allocation the forward task holds for this session.
#[derive(Debug)]
pub struct TurnLeg {
    /// The address the TURN server relays for us: a `relay` candidate.
    pub relayed: SocketAddr,
    /// The task's socket towards the TURN server.
    pub local: SocketAddr,
    /// Packets for peers, (peer, datagram), to wrap and send. Dropped with
    /// the session, which ends the task's pump.
    pub tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
}

impl Leg {
    /// The TURN leg `t` leaves by, if it is sent from the relayed address.
    pub fn turn_for(&self, source: SocketAddr) -> Option<&TurnLeg> {
        self.turn.as_ref().filter(|t| t.relayed == source)
    }
}

impl Engine {
    /// What a forward of `path` would send, or why it cannot yet.
    pub(super) fn forward_plan(
        &self,
        path: &str,
    ) -> Result<(&std::sync::Arc<str>, Plan<'_>), OfferError> {
        let name = self.paths.get_key_value(path).ok_or(OfferError::NoPath)?.0;
        let entry = &self.paths[name];
        let st = entry.handle.status();
        let plan = match (&entry.carried, entry.source) {
            (Some(c), Source::Publisher) => Plan::Relay(c),
            (None, Source::Publisher) => {
                return Err(OfferError::NotReady(format!("no publisher on '{name}'")));
            }
            _ if st.state != PathState::Streaming => {
                let why = st.detail.unwrap_or_else(|| st.state.as_str().into());
                return Err(OfferError::NotReady(format!("'{name}' is {why}")));
            }
            _ => Plan::Encoder {
                profile: entry.profile,
                audio: entry.handle.status.lock().unwrap().sends_audio,
            },
        };
        Ok((name, plan))
    }

    /// A new forward of `path`: the offer to POST, or why not yet.
    pub(super) fn forward_offer(
        &mut self,
        path: &str,
        turn: Option<TurnLeg>,
        now: Instant,
    ) -> Result<(SessionId, String), OfferError> {
        let (name, plan) = self.forward_plan(path)?;
        let name = name.clone();
        let sends_audio = match &plan {
            Plan::Encoder { audio, .. } => *audio,
            Plan::Relay(c) => c.audio.is_some(),
        };
        let mut cfg = Rtc::builder()
            .set_ice_lite(false)
            .set_rtp_mode(true)
            .set_stats_interval(Some(REPORT_EVERY))
            .set_dtls_cert(self.cert.clone())
            .clear_codecs();
        match plan {
            Plan::Encoder { profile, audio } => encoder_codecs(cfg.codec_config(), profile, audio),
            Plan::Relay(c) => relay::viewer_codecs(cfg.codec_config(), c),
        }
        let mut rtc = cfg.build(now);
        // Our own addresses as host candidates on the shared UDP socket
        // (the relay learns the NAT's address from our checks, prflx),
        // then as active ICE-TCP candidates for a relay that only TCP
        // reaches: UDP's higher priority makes it the choice when both work.
        // A TURN allocation's relayed address comes last: ICE ranks it
        // lowest, so it carries media only when nothing direct works.
        let ips = net::interface_addrs(&self.adv.interfaces);
        let udp = ips
            .iter()
            .filter_map(|&ip| Candidate::host(SocketAddr::new(ip, self.adv.udp_port), "udp").ok());
        let tcp = ips.iter().filter_map(|&ip| {
            Candidate::builder()
                .tcp()
                .host(SocketAddr::new(ip, ACTIVE_PORT))
                .tcptype(TcpType::Active)
                .build()
                .ok()
        });
        let relayed = turn
            .as_ref()
            .and_then(|t| Candidate::relayed(t.relayed, t.local, "udp").ok());
        let candidates: Vec<Candidate> = udp.chain(tcp).chain(relayed).collect();
        for c in &candidates {
            rtc.add_local_candidate(c.clone());
        }
        let mut api = rtc.sdp_api();
        let stream = Some(format!("r58-{name}"));
        let mut mids = vec![api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            stream.clone(),
            None,
            None,
        )];
        if sends_audio {
            mids.push(api.add_media(MediaKind::Audio, Direction::SendOnly, stream, None, None));
        }
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| OfferError::BadSdp("str0m made no offer".into()))?;
        let video_pt = rtc
            .codec_config()
            .params()
            .first()
            .map(|p| p.pt())
            .ok_or_else(|| OfferError::Codec("no codec for this path".into()))?;
        let id = self.next_id;
        let t = Ticket {
            id,
            secret: random_hex(),
            path: name.clone(),
            offer: "",
            candidates,
            cert: self.cert.clone(),
            bwe: None,
        };
        let n = Negotiated {
            rtc,
            answer: offer.to_sdp_string(),
            mids: mids.clone(),
        };
        let role = Role::Viewer(Outbound::new(id, (mids[0], video_pt), None));
        let (mut s, sdp) = Session::new(t, n, role, now);
        s.forward = Some(Leg {
            pending: Some(Box::new(pending)),
            mids,
            turn,
        });
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        let answer = self.register(s, sdp, local);
        Ok((answer.id, answer.sdp))
    }

    /// The relay's answer to forward `id`'s offer.
    pub(super) fn forward_answer(
        &mut self,
        id: u64,
        sdp: &str,
        now: Instant,
    ) -> Result<(), String> {
        let s = self
            .sessions
            .get_mut(&id)
            .ok_or("the forward session is gone")?;
        let leg = s.forward.as_mut().ok_or("not a forward")?;
        let pending = leg.pending.take().ok_or("answered already")?;
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| format!("unparsable SDP answer: {e}"))?;
        s.rtc
            .sdp_api()
            .accept_answer(*pending, answer)
            .map_err(|e| format!("answer not acceptable: {e}"))?;
        let mids = leg.mids.clone();
        let video = negotiated(&s.rtc, &mids, MediaKind::Video)
            .ok_or("the answer takes no video in a codec this path carries")?;
        let audio = negotiated(&s.rtc, &mids, MediaKind::Audio);
        s.role = Role::Viewer(Outbound::new(id, video, audio));
        // Replies to our checks come from the relay's candidates and carry
        // no ufrag of ours: route UDP ones to this session by address.
        // TCP ones are dialled when str0m first checks them (tcp::dial).
        let remote: Vec<Candidate> = sdp
            .lines()
            .filter_map(|l| l.trim().strip_prefix("a="))
            .filter_map(|l| Candidate::from_sdp_string(l).ok())
            .filter(|c| !unusable(c.addr().ip()))
            .filter(|c| c.proto() == Protocol::Udp || c.tcptype() != Some(TcpType::Active))
            .collect();
        if remote.is_empty() {
            return Err("the answer lists no candidate r58 can reach (UDP or passive TCP)".into());
        }
        for c in remote.iter().filter(|c| c.proto() == Protocol::Udp) {
            s.offered.push((c.addr(), "host"));
            self.by_addr.insert(c.addr(), id);
        }
        log::info!("forward {id}: {} answered, connecting", s.path);
        self.drive(id, now);
        Ok(())
    }

    /// A relayed candidate for a forward already answered (the relay named
    /// its TURN servers only in the answer): its SDP line, to trickle.
    pub(super) fn forward_trickle(
        &mut self,
        id: u64,
        turn: TurnLeg,
        now: Instant,
    ) -> Result<String, String> {
        let s = self
            .sessions
            .get_mut(&id)
            .ok_or("the forward session is gone")?;
        let leg = s.forward.as_mut().ok_or("not a forward")?;
        let c = Candidate::relayed(turn.relayed, turn.local, "udp").map_err(|e| e.to_string())?;
        let line = s
            .rtc
            .add_local_candidate(c.clone())
            .map(|c| c.to_sdp_string())
            .ok_or("str0m refused the relayed candidate")?;
        s.candidates.push(c);
        leg.turn = Some(turn);
        self.drive(id, now);
        Ok(line)
    }

    /// A datagram a forward's TURN server relayed to us from `peer`.
    pub(super) fn forward_relayed(&mut self, id: u64, peer: SocketAddr, data: &[u8], now: Instant) {
        let relayed = self
            .sessions
            .get(&id)
            .and_then(|s| s.forward.as_ref()?.turn.as_ref())
            .map(|t| t.relayed);
        if let Some(relayed) = relayed {
            self.on_packet(id, Protocol::Udp, data, peer, relayed, now);
        }
    }

    /// How forward `id` is doing; None once it is closed.
    pub(super) fn forward_link(&self, id: u64) -> Option<ForwardLink> {
        let s = self.sessions.get(&id)?;
        let r = s.view.report.as_ref();
        Some(ForwardLink {
            connected: s.connected,
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            rtt_ms: r.and_then(|r| r.rtt).map(|d| d.as_millis() as u32),
            pair: s.pair.clone(),
            via_turn: s
                .pair
                .as_ref()
                .zip(s.forward.as_ref())
                .is_some_and(|(p, l)| l.turn_for(p.local).is_some()),
        })
    }
}

/// Candidates nobody can send to (unspecified, multicast).
fn unusable(ip: IpAddr) -> bool {
    ip.is_unspecified() || ip.is_multicast()
}
