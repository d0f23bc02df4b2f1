//! The relay API client.
//!
//! One `reqwest::Client` per relay, built on a preconfigured rustls
//! `ClientConfig` (see [`super::pinning::client_config`]). Requests that need
//! a device token carry `Authorization: Bearer`; a 401 clears the token so the
//! caller re-authenticates. Errors are mapped to [`TransportError`], a pin
//! failure recorded by the verifier taking precedence over reqwest's generic
//! connect error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::{Signature, VerifyingKey};
use occ_protocol::api::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::TransportError;
use super::pinning::{PinFailure, PinSet, client_config};

/// Where and how to reach a relay.
#[derive(Clone, Debug)]
pub struct RelayEndpoint {
    /// Base URL, `https://host:port`.
    pub url: String,
    /// Pins (primary and backups).
    pub pins: PinSet,
    /// A private CA (PEM) to validate against instead of the Mozilla roots.
    pub ca_pem: Option<Vec<u8>>,
}

/// A verified session acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The relay's session id.
    pub session_id: String,
    /// Relay time (signed), ms.
    pub server_time_ms: i64,
    /// The relay's service key.
    pub service_key: [u8; 32],
}

/// A client for one relay.
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    failure: Arc<Mutex<Option<PinFailure>>>,
    token: Mutex<Option<String>>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        src = s.source();
    }
    out
}

impl ApiClient {
    /// A client for `endpoint`. Only `https://` URLs are accepted.
    pub fn new(endpoint: &RelayEndpoint) -> Result<Self, TransportError> {
        let base = endpoint.url.trim_end_matches('/').to_string();
        if !base.starts_with("https://") {
            return Err(TransportError::InvalidConfig(
                "the relay URL must start with https://".into(),
            ));
        }
        let failure = Arc::new(Mutex::new(None));
        let tls = client_config(
            endpoint.ca_pem.as_deref(),
            endpoint.pins.clone(),
            failure.clone(),
        )?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| {
                TransportError::InvalidConfig(format!("HTTP client: {}", error_chain(&e)))
            })?;
        Ok(Self {
            http,
            base,
            failure,
            token: Mutex::new(None),
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn url_for(&self, path: &str) -> String {
        format!("{}{PREFIX}{path}", self.base)
    }

    fn map_send_error(&self, e: reqwest::Error) -> TransportError {
        if let Some(f) = self.failure.lock().ok().and_then(|mut s| s.take()) {
            return TransportError::PinMismatch {
                host: f.host,
                presented: f.presented,
            };
        }
        let text = error_chain(&e);
        if text.contains("certificate") || text.contains("TLS") || text.contains("tls") {
            TransportError::Tls(text)
        } else {
            TransportError::Network(text)
        }
    }

    async fn read<R: DeserializeOwned>(
        &self,
        resp: reqwest::Response,
    ) -> Result<R, TransportError> {
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| TransportError::Network(error_chain(&e)))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| TransportError::InvalidResponse(e.to_string()));
        }
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| b.error)
            .unwrap_or_else(|_| format!("HTTP {status}"));
        Err(match status.as_u16() {
            401 => {
                if let Ok(mut t) = self.token.lock() {
                    *t = None;
                }
                TransportError::Unauthorized(message)
            }
            404 => TransportError::NotFound(message),
            410 => TransportError::Gone,
            s @ 400..=499 => TransportError::Rejected { status: s, message },
            s => TransportError::Server { status: s, message },
        })
    }

    fn bearer(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, TransportError> {
        let token = self
            .token
            .lock()
            .ok()
            .and_then(|t| t.clone())
            .ok_or_else(|| {
                TransportError::Unauthorized("no token yet; authenticate first".into())
            })?;
        Ok(req.bearer_auth(token))
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        auth: bool,
    ) -> Result<R, TransportError> {
        let mut req = self
            .http
            .post(self.url_for(path))
            .json(body)
            .timeout(Duration::from_secs(30));
        if auth {
            req = self.bearer(req)?;
        }
        let resp = req.send().await.map_err(|e| self.map_send_error(e))?;
        self.read(resp).await
    }

    async fn get<R: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<R, TransportError> {
        let req = self.bearer(self.http.get(self.url_for(path)).timeout(timeout))?;
        let resp = req.send().await.map_err(|e| self.map_send_error(e))?;
        self.read(resp).await
    }

    /// Starts a session and verifies the relay's signed acknowledgement over
    /// our fresh nonce. With `expected` (the service key learned at
    /// enrolment) the acknowledgement must be signed by exactly that key.
    pub async fn start_session(
        &self,
        expected: Option<&[u8; 32]>,
    ) -> Result<SessionInfo, TransportError> {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce)
            .map_err(|_| TransportError::InvalidConfig("no randomness".into()))?;
        let resp: SessionStartResponse = self
            .post(
                "/session",
                &SessionStartRequest {
                    nonce: B64(nonce.to_vec()),
                },
                false,
            )
            .await?;
        let key: [u8; 32] = resp
            .service_key
            .array()
            .ok_or_else(|| TransportError::ForgedAcknowledgement("malformed service key".into()))?;
        if let Some(expected) = expected
            && &key != expected
        {
            return Err(TransportError::ForgedAcknowledgement(
                "signed by a different service key than the one learned at enrolment".into(),
            ));
        }
        let sig: [u8; 64] = resp
            .signature
            .array()
            .ok_or_else(|| TransportError::ForgedAcknowledgement("malformed signature".into()))?;
        let vk = VerifyingKey::from_bytes(&key)
            .map_err(|_| TransportError::ForgedAcknowledgement("invalid service key".into()))?;
        vk.verify_strict(
            &ack_message(&nonce, &resp.session_id, resp.server_time_ms),
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| {
            TransportError::ForgedAcknowledgement("bad signature over our nonce".into())
        })?;
        Ok(SessionInfo {
            session_id: resp.session_id,
            server_time_ms: resp.server_time_ms,
            service_key: key,
        })
    }

    /// Registers this device.
    pub async fn register(
        &self,
        req: &RegisterRequest,
    ) -> Result<RegisterResponse, TransportError> {
        self.post("/devices", req, false).await
    }

    /// Proves possession of the device key and stores the bearer token.
    pub async fn authenticate(
        &self,
        device_id: &str,
        sign: impl Fn(&[u8]) -> [u8; 64],
    ) -> Result<(), TransportError> {
        let ch: ChallengeResponse = self
            .post(
                "/auth/challenge",
                &ChallengeRequest {
                    device_id: device_id.to_string(),
                },
                false,
            )
            .await?;
        let signature = sign(&auth_message(ch.challenge.as_slice(), device_id));
        let tok: TokenResponse = self
            .post(
                "/auth/token",
                &TokenRequest {
                    device_id: device_id.to_string(),
                    challenge: ch.challenge,
                    signature: B64(signature.to_vec()),
                },
                false,
            )
            .await?;
        if let Ok(mut t) = self.token.lock() {
            *t = Some(tok.token);
        }
        Ok(())
    }

    /// Forgets the token (before re-authenticating).
    pub fn clear_token(&self) {
        if let Ok(mut t) = self.token.lock() {
            *t = None;
        }
    }

    /// Whether a token is held.
    pub fn has_token(&self) -> bool {
        self.token.lock().is_ok_and(|t| t.is_some())
    }

    /// A user's devices.
    pub async fn devices(&self, user: &str) -> Result<DevicesResponse, TransportError> {
        self.get(&format!("/users/{user}/devices"), Duration::from_secs(30))
            .await
    }

    /// Which user a device belongs to.
    pub async fn device(&self, device_id: &str) -> Result<DeviceLookup, TransportError> {
        self.get(&format!("/devices/{device_id}"), Duration::from_secs(30))
            .await
    }

    /// Claims a prekey bundle of a device (consumes one one-time prekey).
    pub async fn bundle(&self, device_id: &str) -> Result<Vec<u8>, TransportError> {
        let r: BundleResponse = self
            .post(&format!("/devices/{device_id}/bundle"), &(), true)
            .await?;
        Ok(r.bundle.0)
    }

    /// Uploads prekeys.
    pub async fn upload_prekeys(&self, up: &PreKeyUpload) -> Result<PreKeyCount, TransportError> {
        self.post("/prekeys", up, true).await
    }

    /// Sends a batch (idempotent per key).
    pub async fn send(&self, req: &SendRequest) -> Result<SendResponse, TransportError> {
        self.post("/messages", req, true).await
    }

    /// Long-polls the inbox.
    pub async fn inbox(
        &self,
        after: i64,
        wait_ms: u64,
        limit: usize,
    ) -> Result<InboxResponse, TransportError> {
        self.get(
            &format!("/inbox?after={after}&wait_ms={wait_ms}&limit={limit}"),
            Duration::from_millis(wait_ms) + Duration::from_secs(30),
        )
        .await
    }

    /// Acknowledges (deletes on the relay) everything up to `up_to_seq`.
    pub async fn ack(&self, up_to_seq: i64) -> Result<AckResponse, TransportError> {
        self.post("/inbox/ack", &AckRequest { up_to_seq }, true)
            .await
    }

    /// One queued message by relay id ([`TransportError::Gone`] once expired).
    pub async fn fetch(&self, id: &str) -> Result<InboxItem, TransportError> {
        self.get(&format!("/messages/{id}"), Duration::from_secs(30))
            .await
    }
}
