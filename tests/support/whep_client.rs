//! A minimal WHEP viewer built on str0m (full ICE, controlling): makes real
//! offers for the bad-input tests and is the load client for `make bench`.
//! Counts whole depacketized frames and the time to the first one.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

pub fn init_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

/// A fresh client with one recvonly video m-line, and its offer SDP.
pub fn offer(sock: &UdpSocket) -> (Rtc, SdpPendingOffer, String) {
    let (rtc, pending, sdp, _) = offer_with_mid(sock);
    (rtc, pending, sdp)
}

fn offer_with_mid(sock: &UdpSocket) -> (Rtc, SdpPendingOffer, String, Mid) {
    init_crypto();
    let mut rtc = Rtc::builder().build(Instant::now());
    let addr = sock.local_addr().unwrap();
    rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    let mut api = rtc.sdp_api();
    let mid = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    (rtc, pending, offer.to_sdp_string(), mid)
}

pub struct Viewer {
    pub frames: Arc<AtomicU64>,
    pub first_frame: Arc<Mutex<Option<Duration>>>,
    pub location: String,
    /// Set to make the viewer send one PLI.
    pub pli: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Viewer {
    /// POST an offer to `/{path}/whep` on 127.0.0.1:port and start receiving.
    pub fn connect(port: u16, path: &str) -> Result<Viewer, String> {
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let (mut rtc, pending, sdp, mid) = offer_with_mid(&sock);
        let t0 = Instant::now();
        let r = super::request(
            port,
            "POST",
            &format!("/{path}/whep"),
            &[("Content-Type", "application/sdp")],
            sdp.as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        if r.status != 201 {
            return Err(format!("{} {}", r.status, r.text()));
        }
        let answer = SdpAnswer::from_sdp_string(&r.text()).map_err(|e| e.to_string())?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| e.to_string())?;
        let frames = Arc::new(AtomicU64::new(0));
        let first_frame = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let pli = Arc::new(AtomicBool::new(false));
        let flags = Flags {
            frames: frames.clone(),
            first: first_frame.clone(),
            stop: stop.clone(),
            pli: pli.clone(),
        };
        let thread = std::thread::spawn(move || run(rtc, sock, mid, t0, flags));
        let location = r.header("location").unwrap_or("").to_string();
        Ok(Viewer {
            frames,
            first_frame,
            location,
            pli,
            stop,
            thread: Some(thread),
        })
    }

    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Flags {
    frames: Arc<AtomicU64>,
    first: Arc<Mutex<Option<Duration>>>,
    stop: Arc<AtomicBool>,
    pli: Arc<AtomicBool>,
}

fn run(mut rtc: Rtc, sock: UdpSocket, mid: Mid, t0: Instant, f: Flags) {
    let Flags {
        frames,
        first,
        stop,
        pli,
    } = f;
    let local = sock.local_addr().unwrap();
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) && rtc.is_alive() {
        if pli.swap(false, Ordering::Relaxed)
            && let Some(mut w) = rtc.writer(mid)
        {
            let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
        }
        let timeout = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    let _ = sock.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::MediaData(_))) => {
                    if frames.fetch_add(1, Ordering::Relaxed) == 0 {
                        *first.lock().unwrap() = Some(t0.elapsed());
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(_) => return,
            }
        };
        let wait = timeout
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        sock.set_read_timeout(Some(wait)).unwrap();
        let input = match sock.recv_from(&mut buf) {
            Ok((n, source)) => match buf[..n].try_into() {
                Ok(contents) => Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: local,
                        contents,
                    },
                ),
                Err(_) => continue,
            },
            Err(_) => Input::Timeout(Instant::now()),
        };
        if rtc.handle_input(input).is_err() {
            return;
        }
    }
}
