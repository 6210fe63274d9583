//! DTLS for every WebRTC session, on the system's OpenSSL.
//!
//! str0m's own DTLS (dimpl) speaks ECDSA only, so a peer with an RSA
//! certificate (GStreamer's webrtcbin, some SFUs) could not complete the
//! handshake: as server we asked for ECDSA signatures only and got no client
//! certificate; as client we could not verify an RSA server. OpenSSL accepts
//! both. It is used for the handshake alone: SRTP, hashes and STUN's HMAC stay
//! on aws-lc-rs (the per-packet path that was measured), and our own
//! certificate stays ECDSA P-256, which every peer accepts.
//!
//! The instance is a state machine over in-memory datagrams: str0m hands it
//! packets and asks for output; nothing here touches a socket. One impurity:
//! OpenSSL's retransmit timer reads the real clock, so the deadline handed to
//! str0m is computed from `Instant::now()` rather than str0m's `now`.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::pkey::PKey;
use openssl::srtp::SrtpProfileId;
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslStream};
use openssl::ssl::{SslVerifyMode, SslVersion};
use openssl::x509::X509;
use str0m::crypto::CryptoError;
use str0m::crypto::CryptoProvider;
use str0m::crypto::dtls::{DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider};
use str0m::crypto::dtls::{DtlsVersion, KeyingMaterial, ProtocolVersion, SrtpProfile};

/// ECDHE only (forward secrecy); ECDSA suites serve our own certificate, RSA
/// suites let us be the client of a server with an RSA certificate.
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
    ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
    ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
    ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA";
/// The SRTP profiles str0m implements, AEAD first (RFC 7714).
const SRTP_PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80";
/// RFC 5764 §4.2: the exporter label for SRTP keys.
const SRTP_LABEL: &str = "EXTRACTOR-dtls_srtp";
/// From OpenSSL's ssl.h; the openssl crate has no safe wrapper for the timer.
const DTLS_CTRL_GET_TIMEOUT: libc::c_int = 73;
const DTLS_CTRL_HANDLE_TIMEOUT: libc::c_int = 74;
/// With nothing to retransmit, str0m is told to come back this much later.
const IDLE: Duration = Duration::from_secs(3600);
/// TLS alert 40, handshake_failure.
const HANDSHAKE_FAILURE: u8 = 40;

/// The crypto provider every `Rtc` uses: OpenSSL DTLS, aws-lc-rs for the rest.
pub fn provider() -> CryptoProvider {
    let base = str0m::crypto::from_feature_flags();
    CryptoProvider {
        dtls_provider: &OpensslDtls,
        ..base
    }
}

/// Install [`provider`] as str0m's process default (idempotent), so every
/// `Rtc` built anywhere (engine, doctor's probe, fuzzing) gets it.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| provider().install_process_default());
}

#[derive(Debug)]
struct OpensslDtls;

/// One context per certificate (the engine has one for its lifetime), so a
/// new viewer does not parse the key again.
static CONTEXT: Mutex<Option<(Vec<u8>, SslContext)>> = Mutex::new(None);

fn context(cert: &DtlsCert) -> Result<SslContext, ErrorStack> {
    let mut cached = CONTEXT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((der, ctx)) = cached.as_ref()
        && *der == cert.certificate
    {
        return Ok(ctx.clone());
    }
    let mut b = SslContext::builder(SslMethod::dtls())?;
    b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
    b.set_cipher_list(CIPHERS)?;
    b.set_tlsext_use_srtp(SRTP_PROFILES)?;
    b.set_certificate(X509::from_der(&cert.certificate)?.as_ref())?;
    b.set_private_key(PKey::private_key_from_der(&cert.private_key)?.as_ref())?;
    b.check_private_key()?;
    // Certificates are self-signed: str0m checks the peer's against the SDP
    // fingerprint, so OpenSSL only has to insist that there is one.
    b.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        |_, _| true,
    );
    // The MTU is str0m's to set; no socket to ask. Every session is a new
    // handshake, so no session tickets. (Cookie exchange stays off, as
    // OpenSSL's default: ICE has already proven the peer answers.)
    b.set_options(SslOptions::NO_QUERY_MTU | SslOptions::NO_TICKET);
    let ctx = b.build();
    *cached = Some((cert.certificate.clone(), ctx.clone()));
    Ok(ctx)
}

impl DtlsProvider for OpensslDtls {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        // ECDSA P-256 from aws-lc-rs: accepted by every peer we know.
        str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        _now: Instant,
        _version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let other = |e: ErrorStack| CryptoError::Other(format!("OpenSSL DTLS setup: {e}"));
        let mut ssl = Ssl::new(context(cert).map_err(other)?.as_ref()).map_err(other)?;
        ssl.set_mtu(mtu.unwrap_or(1150) as u32).map_err(other)?;
        Ok(Box::new(Instance {
            ssl: Some(ssl),
            stream: None,
            client: false,
            connected: false,
            closed: false,
            events: VecDeque::new(),
            out: VecDeque::new(),
            deadline: None,
            never: Instant::now() + IDLE,
        }))
    }
}

/// The transport OpenSSL sees: each write is one datagram out, each read
/// one datagram in.
#[derive(Default)]
struct Datagrams {
    incoming: VecDeque<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
}

impl fmt::Debug for Datagrams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Datagrams({} in, {} out)",
            self.incoming.len(),
            self.outgoing.len()
        )
    }
}

impl Read for Datagrams {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(d) = self.incoming.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
        Ok(n)
    }
}

impl Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push_back(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the instance has to tell str0m, besides datagrams.
enum Event {
    PeerCert(Vec<u8>),
    Keys(KeyingMaterial, SrtpProfile),
    Connected,
    Data(Vec<u8>),
    CloseNotify,
}

struct Instance {
    /// Until `set_active` gives it a role.
    ssl: Option<Ssl>,
    /// From `set_active` on: the handshake may run.
    stream: Option<SslStream<Datagrams>>,
    /// We are the DTLS client.
    client: bool,
    connected: bool,
    closed: bool,
    events: VecDeque<Event>,
    /// Datagrams for str0m, taken from the BIO after each OpenSSL call.
    out: VecDeque<Vec<u8>>,
    /// When OpenSSL wants to retransmit its last flight.
    deadline: Option<Instant>,
    /// The timeout reported when nothing is pending, pushed on as it nears.
    never: Instant,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpensslDtls")
            .field("connected", &self.connected)
            .field("closed", &self.closed)
            .finish()
    }
}

/// str0m's DTLS error type (dimpl's) has no free-text variant: a fatal
/// handshake_failure alert is the closest honest description of "OpenSSL
/// said no", and the OpenSSL reason goes to the debug log.
fn failure(what: &str, e: impl fmt::Display) -> DtlsImplError {
    log::debug!("dtls: {what}: {e}");
    DtlsImplError::SecurityError(dimpl::SecurityError::FatalAlert {
        description: HANDSHAKE_FAILURE,
    })
}

impl Instance {
    /// Run the handshake or read records, whatever the state allows; then
    /// take what OpenSSL wrote (an alert, on failure).
    fn advance(&mut self) -> Result<(), DtlsImplError> {
        let r = self.step();
        self.collect();
        r
    }

    fn step(&mut self) -> Result<(), DtlsImplError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        if self.closed {
            return Ok(());
        }
        if !self.connected {
            match stream.do_handshake() {
                Ok(()) => self.on_connected()?,
                Err(e) if wants_io(e.code()) => {}
                Err(e) => return Err(failure("handshake failed", e)),
            }
        }
        if self.connected {
            self.read_records()?;
        }
        self.deadline = self.retransmit_in().map(|d| Instant::now() + d);
        Ok(())
    }

    fn on_connected(&mut self) -> Result<(), DtlsImplError> {
        self.connected = true;
        let Some(ssl) = self.stream.as_ref().map(|s| s.ssl()) else {
            return Ok(());
        };
        let Some(cert) = ssl.peer_certificate() else {
            return Err(DtlsImplError::CertificateError(if self.client {
                dimpl::CertificateError::NoServerCertificateReceived
            } else {
                dimpl::CertificateError::NoClientCertificateReceived
            }));
        };
        let der = cert.to_der().map_err(|e| failure("peer certificate", e))?;
        let (profile, len) = match ssl.selected_srtp_profile().map(|p| p.id()) {
            Some(SrtpProfileId::SRTP_AEAD_AES_128_GCM) => (SrtpProfile::AEAD_AES_128_GCM, 56),
            Some(SrtpProfileId::SRTP_AEAD_AES_256_GCM) => (SrtpProfile::AEAD_AES_256_GCM, 88),
            Some(SrtpProfileId::SRTP_AES128_CM_SHA1_80) => (SrtpProfile::AES128_CM_SHA1_80, 60),
            _ => return Err(failure("handshake", "no SRTP profile in common")),
        };
        let mut km = vec![0u8; len];
        ssl.export_keying_material(&mut km, SRTP_LABEL, None)
            .map_err(|e| failure("exporting SRTP keys", e))?;
        self.events.push_back(Event::PeerCert(der));
        self.events
            .push_back(Event::Keys(KeyingMaterial::new(&km), profile));
        self.events.push_back(Event::Connected);
        Ok(())
    }

    fn read_records(&mut self) -> Result<(), DtlsImplError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.ssl_read(&mut buf) {
                Ok(n) if n > 0 => self.events.push_back(Event::Data(buf[..n].to_vec())),
                Ok(_) => return Ok(()),
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    self.closed = true;
                    self.events.push_back(Event::CloseNotify);
                    return Ok(());
                }
                Err(e) if wants_io(e.code()) => return Ok(()),
                Err(e) => return Err(failure("reading a record", e)),
            }
        }
    }

    /// OpenSSL's retransmit timer, if it is running.
    fn retransmit_in(&self) -> Option<Duration> {
        let stream = self.stream.as_ref().filter(|_| !self.connected)?;
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        // SAFETY: DTLSv1_get_timeout as OpenSSL's macro spells it; the SSL
        // is live for the call and `tv` is the timeval it fills.
        let running = unsafe {
            openssl_sys::SSL_ctrl(
                stream.ssl().as_ptr(),
                DTLS_CTRL_GET_TIMEOUT,
                0,
                (&raw mut tv).cast::<libc::c_void>(),
            )
        };
        (running == 1).then(|| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
    }

    /// Take what OpenSSL wrote out of the BIO, once per OpenSSL call, so
    /// str0m's frequent polls touch no FFI (they showed in profiles).
    fn collect(&mut self) {
        if let Some(s) = self.stream.as_mut() {
            self.out.extend(s.get_mut().outgoing.drain(..));
        }
    }
}

fn wants_io(code: ErrorCode) -> bool {
    code == ErrorCode::WANT_READ || code == ErrorCode::WANT_WRITE
}

/// Copy `data` into str0m's buffer, or say how big it must be.
fn hand_over<'a>(
    buf: &'a mut [u8],
    data: &[u8],
    wrap: fn(&'a [u8]) -> DtlsOutput<'a>,
) -> Result<DtlsOutput<'a>, usize> {
    if data.len() > buf.len() {
        return Err(data.len());
    }
    buf[..data.len()].copy_from_slice(data);
    Ok(wrap(&buf[..data.len()]))
}

impl DtlsInstance for Instance {
    fn set_active(&mut self, active: bool) {
        let Some(mut ssl) = self.ssl.take() else {
            return;
        };
        if active {
            ssl.set_connect_state();
        } else {
            ssl.set_accept_state();
        }
        self.client = active;
        match SslStream::new(ssl, Datagrams::default()) {
            Ok(stream) => self.stream = Some(stream),
            Err(e) => {
                // Every later call then fails the session instead.
                log::debug!("dtls: setting up the stream: {e}");
                self.closed = true;
                return;
            }
        }
        // The client speaks first; a failure shows up on the next input.
        if let Err(e) = self.advance() {
            log::debug!("dtls: starting the handshake: {e}");
        }
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(failure("datagram before set-up", "no stream"));
        };
        stream.get_mut().incoming.push_back(packet.to_vec());
        self.advance()
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        if let Some(d) = self.out.pop_front() {
            return match hand_over(buf, &d, DtlsOutput::Packet) {
                Ok(out) => out,
                Err(needed) => {
                    self.out.push_front(d);
                    DtlsOutput::BufferTooSmall { needed }
                }
            };
        }
        let event = self.events.pop_front();
        let (data, wrap): (_, fn(&'a [u8]) -> DtlsOutput<'a>) = match event {
            Some(Event::PeerCert(ref der)) => (der, DtlsOutput::PeerCert),
            Some(Event::Data(ref d)) => (d, DtlsOutput::ApplicationData),
            Some(Event::Keys(km, profile)) => return DtlsOutput::KeyingMaterial(km, profile),
            Some(Event::Connected) => return DtlsOutput::Connected,
            Some(Event::CloseNotify) => return DtlsOutput::CloseNotify,
            None => return DtlsOutput::Timeout(self.deadline.unwrap_or(self.never)),
        };
        match hand_over(buf, data, wrap) {
            Ok(out) => out,
            Err(needed) => {
                self.events.push_front(event.expect("matched above"));
                DtlsOutput::BufferTooSmall { needed }
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        if now >= self.never {
            self.never = now + IDLE;
        }
        let Some(stream) = self.stream.as_ref() else {
            return Ok(());
        };
        if self.deadline.is_none_or(|d| d > now) {
            return Ok(());
        }
        // SAFETY: DTLSv1_handle_timeout as OpenSSL's macro spells it; it
        // retransmits through our BIO, which only queues the datagram.
        let r = unsafe {
            openssl_sys::SSL_ctrl(
                stream.ssl().as_ptr(),
                DTLS_CTRL_HANDLE_TIMEOUT,
                0,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            log::debug!("dtls: no answer to OpenSSL's retransmits, giving up");
            return Err(DtlsImplError::Timeout(dimpl::TimeoutError::Handshake));
        }
        self.collect();
        self.deadline = self.retransmit_in().map(|d| Instant::now() + d);
        Ok(())
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        let Some(stream) = self.stream.as_mut().filter(|_| self.connected) else {
            return Ok(0);
        };
        if data.is_empty() {
            return Ok(0);
        }
        let r = match stream.ssl_write(data) {
            Ok(n) => Ok(n),
            Err(e) if wants_io(e.code()) => Ok(0),
            Err(e) => Err(failure("writing a record", e)),
        };
        self.collect();
        r
    }

    fn is_active(&self) -> bool {
        self.client
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.connected.then_some(ProtocolVersion::DTLS1_2)
    }

    fn is_closing(&self) -> bool {
        self.closed && !self.out.is_empty()
    }

    fn is_closed(&self) -> bool {
        self.closed && self.out.is_empty()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        if let Some(stream) = self
            .stream
            .as_mut()
            .filter(|_| self.connected && !self.closed)
        {
            // close_notify goes out through the BIO; the peer need not answer.
            let _ = stream.shutdown();
        }
        self.collect();
        self.closed = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
