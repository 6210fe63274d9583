//! TLS to frps. Three modes:
//! - `tls_trusted_ca_file` (frp's `trustedCaFile`): full chain and name
//!   verification against that CA;
//! - `tls_cert_sha256`: the server certificate must have this SHA-256
//!   (fits frps's self-signed certificates; no CA needed);
//! - neither: like stock frpc, any certificate is accepted, which stops
//!   eavesdroppers but not a man in the middle. Said once in the log.
//!
//! Handshake signatures are always checked, so a pinned certificate
//! cannot be replayed without its key.

use std::sync::{Arc, Once};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::tunnel::Settings;

/// Accepts the server's certificate by pin, or any certificate.
#[derive(Debug)]
struct Unchained {
    pin: Option<[u8; 32]>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Unchained {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            None => Ok(ServerCertVerified::assertion()),
            Some(pin) => {
                let got = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, end_entity);
                if got.as_ref() == pin {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::General(format!(
                        "server certificate SHA-256 {} does not match tls_cert_sha256",
                        crate::md5::hex(got.as_ref())
                    )))
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// How the server is checked, for status output.
pub fn mode(s: &Settings) -> crate::vocab::TlsMode {
    use crate::vocab::TlsMode;
    if !s.tls.enable {
        TlsMode::Off
    } else if s.tls.trusted_ca_file.is_some() {
        TlsMode::Ca
    } else if s.tls.cert_sha256.is_some() {
        TlsMode::Pinned
    } else {
        TlsMode::Unverified
    }
}

pub fn connector(
    s: &Settings,
) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let algs = provider.signature_verification_algorithms;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = if let Some(ca) = &s.tls.trusted_ca_file {
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca)
            .map_err(|e| format!("reading tls_trusted_ca_file {}: {e}", ca.display()))?;
        for c in certs {
            let c = c.map_err(|e| format!("reading tls_trusted_ca_file {}: {e}", ca.display()))?;
            roots
                .add(c)
                .map_err(|e| format!("tls_trusted_ca_file {}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!(
                "tls_trusted_ca_file {}: no certificates",
                ca.display()
            ));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        if s.tls.cert_sha256.is_none() {
            static ONCE: Once = Once::new();
            ONCE.call_once(|| {
                log::warn!(
                    "tunnel: the server certificate is not verified (like stock frpc); \
                     set tls_trusted_ca_file or tls_cert_sha256 to stop a man in the middle"
                )
            });
        }
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchained {
                pin: s.tls.cert_sha256,
                algs,
            }))
            .with_no_client_auth()
    };
    let name = s.tls.server_name.as_deref().unwrap_or(&s.server_addr);
    let name = ServerName::try_from(name.to_string())
        .map_err(|e| format!("TLS server name '{name}': {e}"))?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
}
