//! occ-relay: the reference store-and-forward relay.
//!
//! An axum service over rustls (ring provider) with its data in SQLite
//! (`--data DIR`). It implements the API in [`occ_protocol::api`]: device
//! registration with keys and push endpoint, session start with a signed
//! acknowledgement (its Ed25519 service key over the client's nonce, the
//! session id and the server time), device authentication by a signed
//! challenge giving a bearer token, prekey bundles (each one-time prekey handed
//! out once), idempotent batched sends with a TTL, a long-polled inbox with a
//! cursor, acknowledgement, fetching one message (410 Gone once expired), a
//! scheduled purge of expired envelopes, and a signed push notice (metadata
//! only) POSTed to each recipient's push endpoint.
//!
//! Abuse limits ([`limits`]): per-device and per-address token buckets
//! (`429` + `Retry-After`), per-inbox quotas in count and bytes with a
//! per-sender share (`507`), inbox pages bounded in bytes (the client's own
//! bound or the relay's, whichever is smaller), bounded token and spent-
//! challenge stores with expiry, stateless per-request challenges that nobody
//! can displace, registrations signed over their whole content with the
//! relay's time (stale or replayed ones refused), one-time prekey hand-out
//! limited per requester, and push endpoints limited to `https://` on
//! operator-listed gateway hosts with redirects never followed. Health and
//! Prometheus metrics are served on a separate listener ([`metrics`]).
//!
//! Identities: answers that carry them (a user's devices, a device's owner, a
//! prekey bundle) are signed by the service key over the client's nonce and
//! the exact body. Each device may install its organisation certificate
//! (checked only for naming the device and its user: the relay never holds
//! the organisation key and clients verify); given the organisation's public
//! key, the relay accepts only newer revocation lists it signed, never queues
//! envelopes for a revoked device and refuses it tokens.
//!
//! Invariants:
//! - The relay sees only ciphertext envelopes and routing metadata.
//! - Every route but session start, registration and the challenge needs a
//!   valid bearer token; every error is JSON `{"error": ...}` with a 4xx/5xx
//!   status, and a refused request changes nothing.
//! - Request bodies are size-limited ([`MAX_BODY`]); envelopes are parsed and
//!   refused if malformed; identity and prekey signatures are verified.
//! - One party's abuse is refused and counted without slowing or blocking
//!   anyone else: every per-party store is bounded, and a full one refuses
//!   the newcomer rather than evicting someone else's state.
//!
//! Several devices per user: a user's first device registers freely; a
//! further one only with a device link signed by one of the user's
//! registered, unrevoked devices (409 otherwise), stored and served with the
//! directory so clients can check it themselves. A device of a user removes
//! another (it never registers again). A send that declares the device list
//! it was sealed for is refused (409 `StaleDevices`, nothing queued) when an
//! addressed user, or the sender's own, has a device outside it.
//!
//! Push notices are coalesced (`push.rs`): one per device per burst (0.5 s),
//! naming the newest message, counting the burst and urgent if any of it
//! was. The organisation's policy and device commands are stored by
//! [`admin`] (signed in the administrator's process with the organisation
//! key file) and served as they are (`GET /v1/policy`, `GET /v1/commands`);
//! the relay cannot make or change them. Each device's audit chain head is
//! countersigned (`POST /v1/audit/head`: the service key over device,
//! sequence, hash and relay time) and kept; a head behind the held one, or
//! the same sequence with another hash, is refused (409), so a device holder
//! cannot make the relay forget what the trail already showed.
//!
//! Attachments (`attachments.rs`): encrypted
//! blobs uploaded in resumable pieces by the device that announced them
//! (within a per-device quota of live bytes), streamed to any authenticated
//! device that knows the id (with `Range` to resume), 410 once their TTL
//! passed and their file deleted by the purge task.
//!
//! The API is described in OpenAPI 3.1, generated from the code
//! ([`openapi`]; `occ-relay --openapi`, `docs/openapi.json`), and exercised by
//! schemathesis in the test command.

pub mod admin;
mod api;
mod attachments;
mod challenge;
pub mod db;
pub mod limits;
pub mod metrics;
pub mod openapi;
mod push;
pub mod push_sink;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tokio::sync::{Notify, oneshot};

pub use api::router;
pub use limits::{Limits, Rate};
pub use metrics::Metrics;
pub use tls::TlsListener;
pub use tls::{DevCa, Identity, spki_pin, spki_pin_of_cert};

/// Largest request body accepted (a full batch of large envelopes).
pub const MAX_BODY: usize = 4 << 20;
/// Bearer token lifetime.
pub const TOKEN_TTL_MS: i64 = 3600 * 1000;
/// Challenge lifetime.
pub const CHALLENGE_TTL_MS: i64 = 60 * 1000;

/// Relay failures (startup and request handling).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// File-system failure.
    #[error("could not {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Database failure.
    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    /// Certificate or key problem.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// Malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// Missing or invalid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Unknown resource.
    #[error("{0}")]
    NotFound(String),
    /// Expired message.
    #[error("the message has expired")]
    Gone,
    /// Conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// Request body too large.
    #[error("{0}")]
    TooLarge(String),
    /// A rate limit was hit (429 with `Retry-After`).
    #[error("too many requests; retry in {retry_after_ms} ms")]
    RateLimited {
        /// When a retry can succeed.
        retry_after_ms: u64,
    },
    /// A send sealed with a stale device list: these registered devices of
    /// the addressed users were not listed (409 with [`StaleDevices`]).
    ///
    /// [`StaleDevices`]: occ_protocol::api::StaleDevices
    #[error("the sender's device list is stale")]
    StaleDevices(Vec<String>),
    /// A recipient's inbox is full (507).
    #[error("{0}")]
    QuotaExceeded(String),
    /// A bounded store is full (503 with `Retry-After`).
    #[error("{0}")]
    Busy(String),
    /// A should-not-happen condition (poisoned lock, corrupt stored row).
    #[error("internal error: {0}")]
    Internal(String),
}

impl RelayError {
    /// A file-system failure at `path`.
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        RelayError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where the server certificate comes from.
pub enum TlsSource {
    /// Generate (once) a private CA and a `localhost` certificate in the data
    /// directory.
    Dev,
    /// PEM files: chain (leaf first) and private key.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// A ready identity (tests: unusual chains).
    Identity(Identity),
}

/// Test-only switches. Production code never sets them.
#[derive(Default)]
pub struct Hooks {
    /// When set, `POST /messages` commits the batch and then never answers:
    /// it simulates a client killed between its send and the relay's answer.
    pub stall_after_send: AtomicBool,
    /// When set, `POST /audit/head` countersigns the head one entry before
    /// the one asked (validly signed): a relay that vouches for less than
    /// the device believes.
    pub countersign_older_head: AtomicBool,
    /// When set, `POST /audit/head` countersigns the asked sequence number
    /// with another hash (validly signed).
    pub countersign_other_hash: AtomicBool,
    /// When non-zero, an attachment download ends abruptly after this many
    /// bytes (a connection lost mid-download), once; then it resets.
    pub attachment_cut_after: AtomicU64,
    /// When non-zero, the N-th next attachment piece is answered 503 (a lost
    /// answer): after storing it when `attachment_fail_stored` is set,
    /// without storing it otherwise.
    pub attachment_fail_piece: AtomicU64,
    /// See `attachment_fail_piece`.
    pub attachment_fail_stored: AtomicBool,
    /// When set, announcing an upload answers that the relay already holds
    /// every byte (a lying relay).
    pub attachment_claim_all: AtomicBool,
}

/// How to run a relay.
pub struct RelayConfig {
    /// Data directory (database, service key, dev certificates).
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Server certificate.
    pub tls: TlsSource,
    /// How often expired envelopes are purged.
    pub purge_interval: Duration,
    /// Test switches.
    pub hooks: Arc<Hooks>,
    /// Abuse limits (rates, quotas, bounded stores, push gateways).
    pub limits: Limits,
    /// Where to serve `/health` and `/metrics` (plain HTTP), if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Extra trust anchors (DER) for push gateways, besides the Mozilla
    /// roots (a private push gateway; the dev push sink).
    pub push_roots: Vec<Vec<u8>>,
    /// The organisation's public key, to accept only its revocation lists
    /// (the relay never holds the private key).
    pub org_key: Option<[u8; 32]>,
    /// The push burst window: envelopes queued for one device within it
    /// share one notice (zero: a notice per batch at once).
    pub push_coalesce: Duration,
}

impl RelayConfig {
    /// Dev defaults: loopback, dev certificate, purge every 5 s, the default
    /// limits with `localhost` as the one push gateway, and the dev CA (once
    /// generated in `data_dir`) trusted for push.
    pub fn dev(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: TlsSource::Dev,
            purge_interval: Duration::from_secs(5),
            hooks: Arc::default(),
            limits: Limits {
                push_gateways: vec!["localhost".into()],
                ..Limits::default()
            },
            metrics_listen: None,
            push_roots: Vec::new(),
            org_key: None,
            push_coalesce: push::DEFAULT_COALESCE,
        }
    }
}

/// Shared state of a running relay.
pub struct AppState {
    pub(crate) db: Mutex<db::Db>,
    pub(crate) service_key: SigningKey,
    pub(crate) tokens: Mutex<limits::ExpiringMap<()>>,
    pub(crate) challenges: challenge::Challenges,
    /// Challenges already spent (until they expire).
    pub(crate) used_challenges: Mutex<limits::ExpiringMap<()>>,
    pub(crate) waiters: Mutex<HashMap<String, Arc<Notify>>>,
    pub(crate) push: reqwest::Client,
    pub(crate) hooks: Arc<Hooks>,
    pub(crate) limits: Limits,
    pub(crate) rates: Mutex<limits::RateLimiter>,
    pub(crate) handout: Mutex<limits::PrekeyHandout>,
    pub(crate) metrics: Metrics,
    pub(crate) org_key: Option<[u8; 32]>,
    /// Devices the organisation revoked (hex ids), from the stored list.
    pub(crate) revoked: Mutex<std::collections::HashSet<String>>,
    pub(crate) push_coalesce: Duration,
    pub(crate) push_pending: push::Pending,
    /// Where attachment blobs are kept (`<data>/attachments/<id>`).
    pub(crate) blob_dir: PathBuf,
    /// Attachment ids with an upload piece being written right now.
    pub(crate) uploading: Mutex<std::collections::HashSet<String>>,
}

/// A running relay.
pub struct RelayHandle {
    /// The bound address.
    pub addr: SocketAddr,
    /// `sha256/<base64>` pin of the server certificate's key.
    pub pin: String,
    /// The dev CA certificate (PEM path), when `--dev`.
    pub ca_path: Option<PathBuf>,
    /// The relay's Ed25519 service key (public).
    pub service_key: [u8; 32],
    /// Where `/health` and `/metrics` are served, if configured.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RelayHandle {
    /// `https://localhost:<port>` (the name the dev certificate carries).
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// Stops accepting, finishes in-flight requests, and closes the database.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn load_or_create_service_key(dir: &Path) -> Result<SigningKey, RelayError> {
    let path = dir.join("service.key");
    if let Ok(bytes) = std::fs::read(&path) {
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| RelayError::Tls(format!("{} is not a 32-byte key", path.display())))?;
        return Ok(SigningKey::from_bytes(&arr));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|_| RelayError::Internal("no randomness".into()))?;
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| RelayError::io("create", &path, e))?;
        f.write_all(&seed)
            .map_err(|e| RelayError::io("write", &path, e))?;
    }
    #[cfg(not(unix))]
    std::fs::write(&path, seed).map_err(|e| RelayError::io("write", &path, e))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The client that POSTs push notices: Mozilla roots plus `extra` anchors,
/// no redirects followed (an endpoint cannot bounce the relay elsewhere),
/// https only, short timeouts.
fn push_client(extra: &[Vec<u8>]) -> Result<reqwest::Client, RelayError> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra {
        roots
            .add(rustls_pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| RelayError::Tls(format!("push root: {e}")))?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| RelayError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .https_only(true)
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| RelayError::Tls(format!("push client: {e}")))
}

/// Starts a relay; returns once it is listening.
pub async fn start(config: RelayConfig) -> Result<RelayHandle, RelayError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| RelayError::io("create", &config.data_dir, e))?;
    let (identity, ca_path) = match config.tls {
        TlsSource::Dev => {
            let (id, ca) = tls::dev_identity(&config.data_dir)?;
            (id, Some(ca))
        }
        TlsSource::Files { cert, key } => (tls::load_identity(&cert, &key)?, None),
        TlsSource::Identity(id) => (id, None),
    };
    let pin = spki_pin_of_cert(&identity.chain[0])?;
    let server_config = tls::server_config(identity)?;
    let service_key = load_or_create_service_key(&config.data_dir)?;
    let db = db::Db::open(&config.data_dir)?;
    let revoked = db
        .revocations()?
        .and_then(|(_, bytes)| occ_protocol::certificate::RevocationList::parse(&bytes).ok())
        .map(|l| l.devices.iter().map(hex::encode).collect())
        .unwrap_or_default();
    let mut push_roots = config.push_roots;
    if let Some(ca) = &ca_path {
        // Dev mode: the dev push sink's certificate comes from the dev CA.
        push_roots.extend(tls::load_certs(ca)?.into_iter().map(|c| c.to_vec()));
    }
    let limits = config.limits;
    let state = Arc::new(AppState {
        db: Mutex::new(db),
        service_key,
        tokens: Mutex::new(limits::ExpiringMap::new(
            limits.max_tokens,
            limits.tokens_per_device,
        )),
        challenges: challenge::Challenges::new({
            let mut k = [0u8; 32];
            getrandom::fill(&mut k).map_err(|_| RelayError::Internal("no randomness".into()))?;
            k
        }),
        used_challenges: Mutex::new(limits::ExpiringMap::new(
            limits.max_challenges,
            limits.challenges_per_device,
        )),
        waiters: Mutex::default(),
        push: push_client(&push_roots)?,
        hooks: config.hooks,
        rates: Mutex::new(limits::RateLimiter::new(100_000)),
        handout: Mutex::new(limits::PrekeyHandout::new()),
        limits,
        metrics: Metrics::default(),
        org_key: config.org_key,
        revoked: Mutex::new(revoked),
        push_coalesce: config.push_coalesce,
        push_pending: push::Pending::default(),
        blob_dir: attachments::blob_dir(&config.data_dir)?,
        uploading: Mutex::default(),
    });
    let metrics = match config.metrics_listen {
        Some(addr) => Some(metrics::serve(addr, state.clone()).await?),
        None => None,
    };
    let metrics_addr = metrics.as_ref().map(|(a, _)| *a);
    let tcp = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| RelayError::io("listen on", Path::new(&config.listen.to_string()), e))?;
    let listener = tls::TlsListener::new(tcp, server_config)
        .map_err(|e| RelayError::io("listen", Path::new(""), e))?;
    let addr = axum::serve::Listener::local_addr(&listener)
        .map_err(|e| RelayError::io("listen", Path::new(""), e))?;
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(state.clone()).into_make_service_with_connect_info::<tls::PeerAddr>();
    let purge_state = state.clone();
    let interval = config.purge_interval;
    let task = tokio::spawn(async move {
        let purger = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                attachments::purge(&purge_state, now_ms());
                let n = purge_state.db.lock().map(|mut db| db.purge(now_ms()));
                match n {
                    Ok(Ok(n)) if n > 0 => tracing::info!("purged {n} expired envelope(s)"),
                    Ok(Err(e)) => tracing::warn!("purge failed: {e}"),
                    _ => {}
                }
            }
        });
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::error!("relay stopped: {e}");
        }
        purger.abort();
        if let Some((_, task)) = metrics {
            task.abort();
        }
    });
    let service_key = state.service_key.verifying_key().to_bytes();
    Ok(RelayHandle {
        addr,
        pin,
        ca_path,
        service_key,
        metrics_addr,
        shutdown: Some(tx),
        task,
    })
}
