//! A minimal WHEP viewer built on str0m (full ICE, controlling): makes real
//! offers for the bad-input tests and is the load client for `make bench`.
//! Counts whole depacketized frames and the time to the first one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
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
    /// RTP and RTCP packets received (ICE-TCP viewers only).
    pub packets: Arc<AtomicU64>,
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
        let r = post_offer(port, path, &sdp)?;
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
            packets: Arc::default(),
            pli,
            stop,
            thread: Some(thread),
        })
    }

    /// Like `connect`, over ICE-TCP only: the offer has one TCP candidate,
    /// the answer is cut down to r58's loopback TCP candidate, and media
    /// comes over one RFC 4571-framed connection to it.
    pub fn connect_tcp(port: u16, path: &str) -> Result<Viewer, String> {
        Self::connect_tcp_with(port, path, Decode::All)
    }

    /// `connect_tcp`, choosing what happens to media once it flows.
    pub fn connect_tcp_with(port: u16, path: &str, decode: Decode) -> Result<Viewer, String> {
        init_crypto();
        let mut rtc = Rtc::builder().build(Instant::now());
        let local = SocketAddr::from(([127, 0, 0, 1], 9));
        rtc.add_local_candidate(Candidate::host(local, "tcp").map_err(|e| e.to_string())?);
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let (offer, pending) = api.apply().ok_or("no offer")?;
        let t0 = Instant::now();
        let r = post_offer(port, path, &offer.to_sdp_string())?;
        let text = r.text();
        let keep = |l: &&str| {
            !l.starts_with("a=candidate") || (l.contains(" tcp ") && l.contains(" 127.0.0.1 "))
        };
        let sdp: Vec<&str> = text.lines().filter(keep).collect();
        let tcp_port: u16 = sdp
            .iter()
            .find(|l| l.starts_with("a=candidate"))
            .and_then(|l| l.split_whitespace().nth(5)?.parse().ok())
            .ok_or("answer has no loopback TCP candidate")?;
        let answer =
            SdpAnswer::from_sdp_string(&(sdp.join("\r\n") + "\r\n")).map_err(|e| e.to_string())?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| e.to_string())?;
        let conn = TcpStream::connect(("127.0.0.1", tcp_port)).map_err(|e| e.to_string())?;
        conn.set_nodelay(true).map_err(|e| e.to_string())?;
        let (frames, first_frame, stop, pli, packets) = Default::default();
        let flags = Flags {
            frames: Arc::clone(&frames),
            first: Arc::clone(&first_frame),
            stop: Arc::clone(&stop),
            pli: Arc::clone(&pli),
        };
        let counted = Arc::clone(&packets);
        let thread = std::thread::spawn(move || {
            run_tcp(rtc, conn, (local, mid, t0), flags, (decode, counted))
        });
        Ok(Viewer {
            frames,
            first_frame,
            location: r.header("location").unwrap_or("").to_string(),
            packets,
            pli,
            stop,
            thread: Some(thread),
        })
    }

    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Wait until `n` frames have arrived or `within` has passed; the count.
    pub fn wait_frames(&self, n: u64, within: Duration) -> u64 {
        let t0 = Instant::now();
        while self.frames() < n && t0.elapsed() < within {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.frames()
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

/// What an ICE-TCP viewer does with media.
#[derive(Clone, Copy, PartialEq)]
pub enum Decode {
    /// Decrypt and depacketize everything (str0m sees every packet).
    All,
    /// Only until the first whole frame; after that SRTP is counted and
    /// dropped while STUN still reaches str0m, so the session stays
    /// alive. For the cost bench: a load client that decrypts 50,000
    /// packets a second competes for the two cores with the server it
    /// measures.
    UntilFirstFrame,
}

struct Flags {
    frames: Arc<AtomicU64>,
    first: Arc<Mutex<Option<Duration>>>,
    stop: Arc<AtomicBool>,
    pli: Arc<AtomicBool>,
}

/// Ask for a keyframe if told to, then drain `rtc`: packets to `send`,
/// frames counted. The next timeout, or None when the session is over.
fn poll(
    rtc: &mut Rtc,
    mid: Mid,
    t0: Instant,
    f: &Flags,
    mut send: impl FnMut(&[u8], SocketAddr) -> bool,
) -> Option<Instant> {
    if f.pli.swap(false, Ordering::Relaxed)
        && let Some(mut w) = rtc.writer(mid)
    {
        let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
    }
    loop {
        match rtc.poll_output() {
            Ok(Output::Timeout(t)) => return Some(t),
            Ok(Output::Transmit(t)) => {
                if !send(&t.contents, t.destination) {
                    return None;
                }
            }
            Ok(Output::Event(Event::MediaData(_))) => {
                if f.frames.fetch_add(1, Ordering::Relaxed) == 0 {
                    *f.first.lock().unwrap() = Some(t0.elapsed());
                }
            }
            Ok(Output::Event(_)) => {}
            Err(_) => return None,
        }
    }
}

/// POST `sdp` to `/{path}/whep`; the 201, or what came instead.
fn post_offer(port: u16, path: &str, sdp: &str) -> Result<super::HttpResponse, String> {
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
    Ok(r)
}

/// How long a read may block: until str0m's timeout, within 1–50 ms.
fn read_wait(timeout: Instant) -> Duration {
    timeout
        .saturating_duration_since(Instant::now())
        .clamp(Duration::from_millis(1), Duration::from_millis(50))
}

fn run(mut rtc: Rtc, sock: UdpSocket, mid: Mid, t0: Instant, f: Flags) {
    let local = sock.local_addr().unwrap();
    let mut buf = vec![0u8; 2048];
    while !f.stop.load(Ordering::Relaxed) && rtc.is_alive() {
        let sent = |d: &[u8], to: SocketAddr| {
            let _ = sock.send_to(d, to);
            true
        };
        let Some(timeout) = poll(&mut rtc, mid, t0, &f, sent) else {
            return;
        };
        sock.set_read_timeout(Some(read_wait(timeout))).unwrap();
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

/// `run` over one ICE-TCP connection: RFC 4571 framing (a 16-bit length
/// before each packet), reads with a timeout.
fn run_tcp(
    mut rtc: Rtc,
    mut conn: TcpStream,
    (local, mid, t0): (SocketAddr, Mid, Instant),
    f: Flags,
    (decode, packets): (Decode, Arc<AtomicU64>),
) {
    let remote = conn.peer_addr().unwrap();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !f.stop.load(Ordering::Relaxed) && rtc.is_alive() {
        let framed = |d: &[u8], _: SocketAddr| {
            let mut out = (d.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(d);
            conn.write_all(&out).is_ok()
        };
        let Some(timeout) = poll(&mut rtc, mid, t0, &f, framed) else {
            return;
        };
        conn.set_read_timeout(Some(read_wait(timeout))).unwrap();
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(_) => {
                if rtc.handle_input(Input::Timeout(Instant::now())).is_err() {
                    return;
                }
                continue;
            }
        }
        let skip_media = decode == Decode::UntilFirstFrame && f.frames.load(Ordering::Relaxed) > 0;
        let mut at = 0;
        while let Some(len) = pending
            .get(at..at + 2)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
            .filter(|len| pending.len() >= at + 2 + len)
        {
            let packet = &pending[at + 2..at + 2 + len];
            at += 2 + len;
            // RFC 7983: 128..=191 is RTP or RTCP.
            let media = matches!(packet.first(), Some(128..=191));
            packets.fetch_add(media as u64, Ordering::Relaxed);
            if media && skip_media {
                continue;
            }
            let Ok(contents) = packet.try_into() else {
                continue;
            };
            let input = Input::Receive(
                Instant::now(),
                Receive {
                    proto: Protocol::Tcp,
                    source: remote,
                    destination: local,
                    contents,
                },
            );
            if rtc.handle_input(input).is_err() {
                return;
            }
        }
        pending.drain(..at);
    }
}
