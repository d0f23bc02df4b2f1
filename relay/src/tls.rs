//! TLS for the relay: dev certificates, PEM loading, SPKI pins, and a TLS
//! listener for `axum::serve`.
//!
//! `--dev` makes a private CA and a server certificate for `localhost`,
//! `127.0.0.1` and `::1` signed by it, and keeps them in the data directory so
//! the pin stays the same across restarts. The pin is OkHttp's form:
//! `sha256/<base64 of SHA-256 over the DER SubjectPublicKeyInfo>`.
//!
//! TLS handshakes run in their own tasks (with a timeout), so a slow or
//! hostile client cannot stall `accept` for everyone else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::RelayError;

/// Where the dev CA certificate is written.
pub const DEV_CA_FILE: &str = "dev-ca.pem";
const DEV_CA_KEY_FILE: &str = "dev-ca.key";
const DEV_CERT_FILE: &str = "dev-server.pem";
const DEV_KEY_FILE: &str = "dev-server.key";
const DEV_CA_NAME: &str = "occ relay dev CA";

/// A certificate chain and its private key.
pub struct Identity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

/// `sha256/<base64>` of the SPKI of a DER certificate.
pub fn spki_pin_of_cert(der: &[u8]) -> Result<String, RelayError> {
    let spki = spki_of_cert(der)?;
    Ok(spki_pin(&spki))
}

/// `sha256/<base64>` of a DER SubjectPublicKeyInfo.
pub fn spki_pin(spki_der: &[u8]) -> String {
    format!(
        "sha256/{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki_der))
    )
}

/// The DER SubjectPublicKeyInfo of a DER certificate.
pub fn spki_of_cert(der: &[u8]) -> Result<Vec<u8>, RelayError> {
    let cert = CertificateDer::from(der);
    let parsed = webpki::EndEntityCert::try_from(&cert)
        .map_err(|e| RelayError::Tls(format!("cannot parse certificate: {e}")))?;
    Ok(parsed.subject_public_key_info().as_ref().to_vec())
}

fn rcgen_err(e: rcgen::Error) -> RelayError {
    RelayError::Tls(format!("certificate generation failed: {e}"))
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), RelayError> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| RelayError::io("write", path, e))?;
        f.write_all(data)
            .map_err(|e| RelayError::io("write", path, e))
    }
    #[cfg(not(unix))]
    std::fs::write(path, data).map_err(|e| RelayError::io("write", path, e))
}

/// A private CA for development and tests.
pub struct DevCa {
    /// The CA certificate (DER).
    pub cert: CertificateDer<'static>,
    /// PEM of the CA certificate.
    pub cert_pem: String,
    key: KeyPair,
    params: CertificateParams,
}

impl DevCa {
    /// A new CA named `name`.
    pub fn generate(name: &str) -> Result<Self, RelayError> {
        let key = KeyPair::generate().map_err(rcgen_err)?;
        Self::from_key(name, key)
    }

    /// Loads the dev CA a relay created in `dir` (to issue further
    /// certificates from it, e.g. an impostor's for the demo).
    pub fn load_dev(dir: &Path) -> Result<Self, RelayError> {
        let key_path = dir.join(DEV_CA_KEY_FILE);
        let pem =
            std::fs::read_to_string(&key_path).map_err(|e| RelayError::io("read", &key_path, e))?;
        let key = KeyPair::from_pem(&pem).map_err(rcgen_err)?;
        let mut ca = Self::from_key(DEV_CA_NAME, key)?;
        let cert_path = dir.join(DEV_CA_FILE);
        ca.cert_pem = std::fs::read_to_string(&cert_path)
            .map_err(|e| RelayError::io("read", &cert_path, e))?;
        ca.cert = CertificateDer::from_pem_slice(ca.cert_pem.as_bytes())
            .map_err(|e| RelayError::Tls(format!("dev CA certificate: {e}")))?;
        Ok(ca)
    }

    fn from_key(name: &str, key: KeyPair) -> Result<Self, RelayError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_err)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).map_err(rcgen_err)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert: cert.der().clone(),
            key,
            params,
        })
    }

    /// Issues a certificate for `names` (DNS names or IP literals) with a new
    /// key pair. With `ca` set, the certificate is itself a (sub-)CA.
    pub fn issue(&self, names: &[&str], ca: bool) -> Result<(Identity, KeyPair), RelayError> {
        let key = KeyPair::generate().map_err(rcgen_err)?;
        let id = self.issue_with_key(names, ca, &key)?;
        Ok((id, key))
    }

    /// Issues a certificate for `names` over an existing key pair.
    pub fn issue_with_key(
        &self,
        names: &[&str],
        ca: bool,
        key: &KeyPair,
    ) -> Result<Identity, RelayError> {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map_err(rcgen_err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("occ"));
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        }
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(key, &issuer).map_err(rcgen_err)?;
        let key_der = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| RelayError::Tls(format!("bad key: {e}")))?;
        Ok(Identity {
            chain: vec![cert.der().clone(), self.cert.clone()],
            key: key_der,
        })
    }

    /// Issues an intermediate CA under this one; certificates it issues come
    /// with the chain `[leaf, intermediate]`.
    pub fn intermediate(&self, name: &str) -> Result<DevCa, RelayError> {
        let key = KeyPair::generate().map_err(rcgen_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_err)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(rcgen_err)?;
        Ok(DevCa {
            cert_pem: cert.pem(),
            cert: cert.der().clone(),
            key,
            params,
        })
    }

    /// The CA's private key (PEM).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}

/// Loads (or on first use creates) the dev CA and server certificate in
/// `dir`. Returns the server identity and the CA certificate's path.
pub fn dev_identity(dir: &Path) -> Result<(Identity, PathBuf), RelayError> {
    let ca_path = dir.join(DEV_CA_FILE);
    let cert_path = dir.join(DEV_CERT_FILE);
    let key_path = dir.join(DEV_KEY_FILE);
    if !(ca_path.exists() && cert_path.exists() && key_path.exists()) {
        let ca = DevCa::generate(DEV_CA_NAME)?;
        let (id, key) = ca.issue(&["localhost", "127.0.0.1", "::1"], false)?;
        let leaf_pem = pem_cert(&id.chain[0]);
        std::fs::write(&ca_path, &ca.cert_pem).map_err(|e| RelayError::io("write", &ca_path, e))?;
        write_private(&dir.join(DEV_CA_KEY_FILE), ca.key_pem().as_bytes())?;
        std::fs::write(&cert_path, format!("{leaf_pem}{}", ca.cert_pem))
            .map_err(|e| RelayError::io("write", &cert_path, e))?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
    }
    Ok((load_identity(&cert_path, &key_path)?, ca_path))
}

/// PEM of one DER certificate.
pub fn pem_cert(der: &CertificateDer<'_>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Loads every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, RelayError> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| RelayError::Tls(format!("cannot read {}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RelayError::Tls(format!("bad certificate in {}: {e}", path.display())))
}

/// Loads a PEM chain (leaf first) and a PEM private key.
pub fn load_identity(cert: &Path, key: &Path) -> Result<Identity, RelayError> {
    let chain = load_certs(cert)?;
    if chain.is_empty() {
        return Err(RelayError::Tls(format!(
            "no certificate in {}",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| RelayError::Tls(format!("cannot read key {}: {e}", key.display())))?;
    Ok(Identity { chain, key })
}

/// A rustls server configuration (ring provider, TLS 1.2/1.3, h2 + http/1.1).
pub fn server_config(id: Identity) -> Result<Arc<ServerConfig>, RelayError> {
    let mut cfg =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| RelayError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(id.chain, id.key)
            .map_err(|e| RelayError::Tls(format!("certificate and key do not match: {e}")))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Accepts TCP connections and completes TLS handshakes concurrently.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Closes the TCP listener, so the port can be bound again at once.
        self.acceptor.abort();
    }
}

impl TlsListener {
    /// Starts accepting on `tcp` with `config`.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(128);
        let acceptor = TlsAcceptor::from(config);
        let acceptor_task = tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    break;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {addr} failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {addr} timed out"),
                    }
                });
            }
        });
        Ok(Self {
            rx,
            local,
            acceptor: acceptor_task,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The acceptor task ended: park forever (shutdown is signalled separately).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The peer address of a TLS connection, for per-address rate limits.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_extraction_matches_the_key_pair() {
        let ca = DevCa::generate("t").unwrap();
        let (id, key) = ca.issue(&["localhost"], false).unwrap();
        let spki = spki_of_cert(&id.chain[0]).unwrap();
        assert_eq!(spki, rcgen::PublicKeyData::subject_public_key_info(&key));
        let ca_spki = spki_of_cert(&ca.cert).unwrap();
        assert_eq!(
            ca_spki,
            rcgen::PublicKeyData::subject_public_key_info(&ca.key)
        );
        assert!(spki_pin(&spki).starts_with("sha256/"));
        assert!(spki_of_cert(b"garbage").is_err());
    }
}
