//! Certificate pinning on the *validated* chain.
//!
//! The verifier first lets rustls's `WebPkiServerVerifier` validate the chain
//! against the configured roots (the relay's CA, or the Mozilla roots) with
//! name and time checks. Only then does it look at pins, and not on the
//! certificates the server *sent*: it rebuilds the path with rustls-webpki's
//! `EndEntityCert::verify_for_usage`, whose `verify_path` callback sees each
//! candidate *validated* path (end entity, the intermediates actually used,
//! the trust anchor). A pin matches if any certificate key on such a path has
//! that SPKI SHA-256. A certificate merely appended to the sent list never
//! appears on a validated path, so appending the pinned certificate to an
//! unpinned-but-trusted chain does not help an attacker (OkHttp's
//! CVE-2016-2402).
//!
//! Trust anchors carry only the *contents* of their SPKI SEQUENCE; they are
//! re-wrapped with the DER header before hashing so root pins match what
//! `openssl … | openssl dgst -sha256` prints.
//!
//! A pin set may expire; after that it either fails closed (the default) or
//! falls back to chain validation alone, as configured. Every mismatch is
//! remembered in a shared slot so the API client can report a typed
//! `PinMismatch` naming the host and the pins the server presented.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use super::TransportError;

/// A `sha256/<base64>` SPKI pin.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pin(pub [u8; 32]);

impl Pin {
    /// Parses OkHttp's form, `sha256/<standard base64 of 32 bytes>`.
    pub fn parse(s: &str) -> Result<Self, TransportError> {
        let b64 = s.trim().strip_prefix("sha256/").ok_or_else(|| {
            TransportError::InvalidConfig(format!("pin {s:?} must start with sha256/"))
        })?;
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| TransportError::InvalidConfig(format!("pin {s:?} is not valid base64")))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| TransportError::InvalidConfig(format!("pin {s:?} is not 32 bytes")))?;
        Ok(Pin(arr))
    }

    /// The pin of a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        Pin(Sha256::digest(spki_der).into())
    }
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256/{}", STANDARD.encode(self.0))
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// What to do once a pin set has expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AfterExpiry {
    /// Refuse every connection until the pins are renewed (default).
    #[default]
    FailClosed,
    /// Accept any chain the roots validate (pinning lapses).
    ValidateChainOnly,
}

/// The pins for one relay: primary and backups, optionally expiring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinSet {
    /// Any of these matches (put backup pins here too).
    pub pins: Vec<Pin>,
    /// When the set expires, ms since the epoch.
    pub expires_ms: Option<i64>,
    /// Behaviour after expiry.
    pub after_expiry: AfterExpiry,
}

impl PinSet {
    /// A non-expiring set from `sha256/...` strings.
    pub fn parse(pins: &[impl AsRef<str>]) -> Result<Self, TransportError> {
        if pins.is_empty() {
            return Err(TransportError::InvalidConfig(
                "at least one pin is required".into(),
            ));
        }
        Ok(Self {
            pins: pins
                .iter()
                .map(|p| Pin::parse(p.as_ref()))
                .collect::<Result<_, _>>()?,
            expires_ms: None,
            after_expiry: AfterExpiry::FailClosed,
        })
    }

    fn expired(&self, now: UnixTime) -> bool {
        self.expires_ms
            .is_some_and(|e| (now.as_secs() as i64).saturating_mul(1000) >= e)
    }
}

/// A refused connection: the host and the pins its validated chain carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinFailure {
    /// The server name.
    pub host: String,
    /// Pins of the keys on the validated path(s), leaf first; empty when the
    /// pin set had expired and fails closed.
    pub presented: Vec<String>,
}

/// The rustls verifier: chain validation, then pins on the validated path.
pub struct PinnedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
    pins: PinSet,
    failure: Arc<Mutex<Option<PinFailure>>>,
}

impl std::fmt::Debug for PinnedVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedVerifier")
            .field("pins", &self.pins)
            .finish_non_exhaustive()
    }
}

/// DER-wraps the contents of a SEQUENCE (a trust anchor's SPKI).
fn der_sequence(contents: &[u8]) -> Vec<u8> {
    let mut out = vec![0x30];
    let n = contents.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

impl PinnedVerifier {
    /// A verifier over `roots` with `pins`, recording failures in `failure`.
    pub fn new(
        roots: Arc<RootCertStore>,
        pins: PinSet,
        provider: Arc<CryptoProvider>,
        failure: Arc<Mutex<Option<PinFailure>>>,
    ) -> Result<Self, TransportError> {
        let inner = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TransportError::InvalidConfig(format!("trust roots: {e}")))?;
        Ok(Self {
            inner,
            roots,
            algorithms: provider.signature_verification_algorithms,
            pins,
            failure,
        })
    }

    fn refuse(&self, server_name: &ServerName<'_>, presented: Vec<Pin>) -> rustls::Error {
        let failure = PinFailure {
            host: server_name.to_str().into_owned(),
            presented: presented.iter().map(Pin::to_string).collect(),
        };
        tracing::warn!(host = %failure.host, presented = ?failure.presented, "certificate pin mismatch");
        if let Ok(mut slot) = self.failure.lock() {
            *slot = Some(failure);
        }
        rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // 1. The chain must validate against the roots (and the name/time).
        self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        // 2. Pins, on validated paths only.
        if self.pins.expired(now) {
            return match self.pins.after_expiry {
                AfterExpiry::ValidateChainOnly => Ok(ServerCertVerified::assertion()),
                AfterExpiry::FailClosed => Err(self.refuse(server_name, Vec::new())),
            };
        }
        let ee = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let seen: RefCell<Vec<Pin>> = RefCell::new(Vec::new());
        let check = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
            let mut keys = vec![Pin::of_spki(
                path.end_entity().subject_public_key_info().as_ref(),
            )];
            for c in path.intermediate_certificates() {
                keys.push(Pin::of_spki(c.subject_public_key_info().as_ref()));
            }
            keys.push(Pin::of_spki(&der_sequence(
                path.anchor().subject_public_key_info.as_ref(),
            )));
            let hit = keys.iter().any(|k| self.pins.pins.contains(k));
            let mut seen = seen.borrow_mut();
            for k in keys {
                if !seen.contains(&k) {
                    seen.push(k);
                }
            }
            if hit {
                Ok(())
            } else {
                Err(webpki::Error::UnknownIssuer)
            }
        };
        let result = ee.verify_for_usage(
            self.algorithms.all,
            &self.roots.roots,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            Some(&check),
        );
        match result {
            Ok(_) => Ok(ServerCertVerified::assertion()),
            Err(_) => Err(self.refuse(server_name, seen.into_inner())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Roots from a PEM bundle, or Mozilla's roots when `None`.
pub fn root_store(ca_pem: Option<&[u8]>) -> Result<RootCertStore, TransportError> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    match ca_pem {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert =
                    cert.map_err(|e| TransportError::InvalidConfig(format!("CA file: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| TransportError::InvalidConfig(format!("CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(TransportError::InvalidConfig(
                    "the CA file holds no certificate".into(),
                ));
            }
        }
    }
    Ok(roots)
}

/// A rustls client configuration with the pinned verifier, the ring provider
/// chosen explicitly, and ALPN set (reqwest does not set it on a
/// preconfigured config).
pub fn client_config(
    ca_pem: Option<&[u8]>,
    pins: PinSet,
    failure: Arc<Mutex<Option<PinFailure>>>,
) -> Result<rustls::ClientConfig, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = Arc::new(root_store(ca_pem)?);
    let verifier = PinnedVerifier::new(roots, pins, provider.clone(), failure)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::InvalidConfig(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_and_print_in_okhttp_form() {
        let p = Pin::parse("sha256/T78t1kccEYTf7VFCIvhu6CNSXrFSyzpZZdex+vtZq94=").unwrap();
        assert_eq!(
            p.to_string(),
            "sha256/T78t1kccEYTf7VFCIvhu6CNSXrFSyzpZZdex+vtZq94="
        );
        for bad in [
            "T78t1kccEYTf7VFCIvhu6CNSXrFSyzpZZdex+vtZq94=",
            "sha256/!!",
            "sha256/AAAA",
            "sha1/AAAA",
        ] {
            assert!(Pin::parse(bad).is_err(), "{bad}");
        }
        let none: [&str; 0] = [];
        assert!(PinSet::parse(&none).is_err());
    }

    #[test]
    fn der_sequence_wraps_short_and_long_contents() {
        assert_eq!(der_sequence(&[1, 2]), vec![0x30, 2, 1, 2]);
        let long = vec![7u8; 300];
        let w = der_sequence(&long);
        assert_eq!(&w[..4], &[0x30, 0x82, 0x01, 0x2c]);
        assert_eq!(w.len(), 304);
    }

    #[test]
    fn pin_sets_expire() {
        let mut s =
            PinSet::parse(&["sha256/T78t1kccEYTf7VFCIvhu6CNSXrFSyzpZZdex+vtZq94="]).unwrap();
        assert!(
            !s.expired(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                10
            )))
        );
        s.expires_ms = Some(5_000);
        assert!(
            s.expired(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                10
            )))
        );
        assert!(
            !s.expired(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                4
            )))
        );
    }
}
