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

/// Envelope bytes the client asks for in one inbox page (the relay may
/// send fewer; it always sends at least one envelope).
pub const PAGE_MAX_BYTES: usize = 2 << 20;
/// Largest inbox page or fetched message the client reads: the page bound,
/// plus one envelope past it, in base64 with JSON around it.
pub const MAX_PAGE_ANSWER_BYTES: usize =
    (PAGE_MAX_BYTES + occ_protocol::MAX_ENVELOPE_LEN) / 3 * 4 + (256 << 10);
/// Largest other answer the client reads (directories, bundles, receipts).
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

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
    /// The service key whose signed acknowledgement this client verified.
    service_key: Mutex<Option<[u8; 32]>>,
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

/// Reads a body of at most `cap` bytes, chunk by chunk.
async fn body(resp: &mut reqwest::Response, cap: usize) -> Result<Vec<u8>, TransportError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| TransportError::Network(error_chain(&e)))?
    {
        if bytes.len() + chunk.len() > cap {
            return Err(TransportError::InvalidResponse(format!(
                "the answer is larger than {cap} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
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
            service_key: Mutex::new(None),
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

    /// Reads an answer of at most `cap` bytes, chunk by chunk: a relay (or
    /// anyone past the pins) cannot make the client buffer more than that.
    async fn read<R: DeserializeOwned>(
        &self,
        mut resp: reqwest::Response,
        cap: usize,
    ) -> Result<R, TransportError> {
        let status = resp.status();
        if resp.content_length().is_some_and(|n| n > cap as u64) {
            return Err(TransportError::InvalidResponse(format!(
                "the answer is larger than {cap} bytes"
            )));
        }
        let retry_after_ms = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|secs| secs.saturating_mul(1000).min(3_600_000));
        let bytes = body(&mut resp, cap).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| TransportError::InvalidResponse(e.to_string()));
        }
        if status.as_u16() == 409
            && let Ok(stale) = serde_json::from_slice::<StaleDevices>(&bytes)
            && !stale.missing_devices.is_empty()
        {
            return Err(TransportError::StaleDevices {
                missing: stale.missing_devices,
            });
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
            429 => TransportError::RateLimited {
                retry_after_ms: retry_after_ms.unwrap_or(1000),
            },
            410 => TransportError::Gone,
            s @ 400..=499 => TransportError::Rejected { status: s, message },
            s => TransportError::Server { status: s, message },
        })
    }

    /// GETs an answer that carries identities, with a fresh nonce, and
    /// accepts it only if the service key verified at session start signed
    /// it (see [`signed_answer_message`]).
    async fn get_signed<R: DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
        subject: &str,
        post: bool,
    ) -> Result<R, TransportError> {
        let key = self
            .service_key
            .lock()
            .ok()
            .and_then(|k| *k)
            .ok_or_else(|| {
                TransportError::Unauthorized("no verified session yet; connect first".into())
            })?;
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce)
            .map_err(|_| TransportError::InvalidConfig("no randomness".into()))?;
        let url = self.url_for(path);
        let req = if post {
            self.http.post(url)
        } else {
            self.http.get(url)
        };
        let req = self.bearer(
            req.header(ANSWER_NONCE_HEADER, hex::encode(nonce))
                .timeout(Duration::from_secs(30)),
        )?;
        let mut resp = req.send().await.map_err(|e| self.map_send_error(e))?;
        if !resp.status().is_success() {
            return self.read(resp, MAX_ANSWER_BYTES).await;
        }
        let forged = |why: &str| {
            TransportError::ForgedAcknowledgement(format!(
                "the relay's {what} answer for {subject} {why}"
            ))
        };
        let sig: [u8; 64] = resp
            .headers()
            .get(ANSWER_SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, v).ok()
            })
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| forged("is not signed"))?;
        let bytes = body(&mut resp, MAX_ANSWER_BYTES).await?;
        let vk = VerifyingKey::from_bytes(&key).map_err(|_| forged("names an invalid key"))?;
        vk.verify_strict(
            &signed_answer_message(&nonce, what, subject, &bytes),
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| forged("is not signed by the relay's service key"))?;
        serde_json::from_slice(&bytes).map_err(|e| TransportError::InvalidResponse(e.to_string()))
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
        self.read(resp, MAX_ANSWER_BYTES).await
    }

    async fn get<R: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
        cap: usize,
    ) -> Result<R, TransportError> {
        let req = self.bearer(self.http.get(self.url_for(path)).timeout(timeout))?;
        let resp = req.send().await.map_err(|e| self.map_send_error(e))?;
        self.read(resp, cap).await
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
        if let Ok(mut k) = self.service_key.lock() {
            *k = Some(key);
        }
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
        let ch = self.challenge(device_id).await?;
        let signature = sign(&auth_message(ch.challenge.as_slice(), device_id));
        self.redeem(device_id, ch.challenge, signature).await
    }

    /// Asks for an authentication challenge for `device_id`.
    pub async fn challenge(&self, device_id: &str) -> Result<ChallengeResponse, TransportError> {
        self.post(
            "/auth/challenge",
            &ChallengeRequest {
                device_id: device_id.to_string(),
            },
            false,
        )
        .await
    }

    /// Redeems a signed challenge for a bearer token, which is kept.
    pub async fn redeem(
        &self,
        device_id: &str,
        challenge: B64,
        signature: [u8; 64],
    ) -> Result<(), TransportError> {
        let tok: TokenResponse = self
            .post(
                "/auth/token",
                &TokenRequest {
                    device_id: device_id.to_string(),
                    challenge,
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
        self.get_signed(&format!("/users/{user}/devices"), "devices", user, false)
            .await
    }

    /// One device's user and identity (signed by the service key).
    pub async fn device(&self, device_id: &str) -> Result<DeviceLookup, TransportError> {
        self.get_signed(&format!("/devices/{device_id}"), "device", device_id, false)
            .await
    }

    /// Claims a device's prekey bundle (signed by the service key).
    pub async fn bundle(&self, device_id: &str) -> Result<Vec<u8>, TransportError> {
        let r: BundleResponse = self
            .get_signed(
                &format!("/devices/{device_id}/bundle"),
                "bundle",
                device_id,
                true,
            )
            .await?;
        Ok(r.bundle.0)
    }

    /// Installs this device's organisation certificate on the relay.
    pub async fn install_certificate(&self, certificate: &[u8]) -> Result<(), TransportError> {
        let _: serde_json::Value = self
            .post(
                "/certificate",
                &CertificateUpload {
                    certificate: certificate.to_vec().into(),
                },
                true,
            )
            .await?;
        Ok(())
    }

    /// Removes `device_id`, a device of this device's user (itself
    /// included): it receives nothing more and cannot register again.
    pub async fn remove_device(&self, device_id: &str) -> Result<(), TransportError> {
        if parse_device_id(device_id).is_none() {
            return Err(TransportError::InvalidConfig(
                "a device id is 64 hex characters".into(),
            ));
        }
        let req = self.bearer(
            self.http
                .delete(self.url_for(&format!("/devices/{device_id}")))
                .timeout(Duration::from_secs(30)),
        )?;
        let resp = req.send().await.map_err(|e| self.map_send_error(e))?;
        let _: serde_json::Value = self.read(resp, MAX_ANSWER_BYTES).await?;
        Ok(())
    }

    /// The organisation's current revocation list, if the relay has one
    /// (the caller verifies it).
    pub async fn revocations(&self) -> Result<Option<Vec<u8>>, TransportError> {
        match self
            .get::<RevocationsResponse>(
                "/revocations",
                Duration::from_secs(30),
                MAX_PAGE_ANSWER_BYTES,
            )
            .await
        {
            Ok(r) => Ok(Some(r.list.0)),
            Err(TransportError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Publishes a revocation list signed by the organisation.
    pub async fn publish_revocations(&self, list: &[u8]) -> Result<(), TransportError> {
        let _: serde_json::Value = self
            .post(
                "/revocations",
                &RevocationsResponse {
                    list: list.to_vec().into(),
                },
                true,
            )
            .await?;
        Ok(())
    }

    /// The organisation's policy document, if the relay has one (the caller
    /// verifies it).
    pub async fn policy(&self) -> Result<Option<Vec<u8>>, TransportError> {
        match self
            .get::<OrgDocResponse>("/policy", Duration::from_secs(30), MAX_ANSWER_BYTES)
            .await
        {
            Ok(r) => Ok(Some(r.doc.0)),
            Err(TransportError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The organisation's commands for this device (the caller verifies
    /// them).
    pub async fn commands(&self) -> Result<Vec<Vec<u8>>, TransportError> {
        let r: CommandsResponse = self
            .get("/commands", Duration::from_secs(30), MAX_ANSWER_BYTES)
            .await?;
        Ok(r.commands.into_iter().map(|c| c.0).collect())
    }

    /// Replaces this device's push endpoint on the relay (or clears it).
    pub async fn set_push_endpoint(&self, endpoint: Option<&str>) -> Result<(), TransportError> {
        let req = self.bearer(
            self.http
                .put(self.url_for("/push/endpoint"))
                .json(&PushEndpointRequest {
                    push_endpoint: endpoint.map(str::to_string),
                })
                .timeout(Duration::from_secs(30)),
        )?;
        let resp = req.send().await.map_err(|e| self.map_send_error(e))?;
        let _: serde_json::Value = self.read(resp, MAX_ANSWER_BYTES).await?;
        Ok(())
    }

    /// Asks the relay to countersign this device's audit chain head (the
    /// caller verifies the signature).
    pub async fn countersign_audit_head(
        &self,
        seq: u64,
        hash: &[u8; 32],
    ) -> Result<AuditHead, TransportError> {
        self.post(
            "/audit/head",
            &AuditHeadRequest {
                seq,
                hash: hash.to_vec().into(),
            },
            true,
        )
        .await
    }

    /// The newest head the relay countersigned for this device, if any.
    pub async fn audit_head(&self) -> Result<Option<AuditHead>, TransportError> {
        match self
            .get::<AuditHead>("/audit/head", Duration::from_secs(30), MAX_ANSWER_BYTES)
            .await
        {
            Ok(h) => Ok(Some(h)),
            Err(TransportError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
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
            &format!(
                "/inbox?after={after}&wait_ms={wait_ms}&limit={limit}&max_bytes={PAGE_MAX_BYTES}"
            ),
            Duration::from_millis(wait_ms) + Duration::from_secs(30),
            MAX_PAGE_ANSWER_BYTES,
        )
        .await
    }

    /// Acknowledges (deletes on the relay) everything up to `up_to_seq`.
    pub async fn ack(&self, up_to_seq: i64) -> Result<AckResponse, TransportError> {
        self.post("/inbox/ack", &AckRequest { up_to_seq }, true)
            .await
    }

    /// Announces an attachment upload (or finds where it stands).
    pub async fn create_attachment(
        &self,
        req: &AttachmentCreate,
    ) -> Result<AttachmentStatus, TransportError> {
        self.post("/attachments", req, true).await
    }

    /// Where an attachment upload stands.
    pub async fn attachment_status(&self, id: &str) -> Result<AttachmentStatus, TransportError> {
        self.get(
            &format!("/attachments/{id}/status"),
            Duration::from_secs(30),
            MAX_ANSWER_BYTES,
        )
        .await
    }

    /// Uploads one piece of an attachment at `offset`.
    pub async fn put_attachment_piece(
        &self,
        id: &str,
        offset: u64,
        piece: bytes::Bytes,
    ) -> Result<AttachmentStatus, TransportError> {
        let req = self.bearer(
            self.http
                .put(self.url_for(&format!("/attachments/{id}?offset={offset}")))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(piece)
                .timeout(Duration::from_secs(120)),
        )?;
        let resp = req.send().await.map_err(|e| self.map_send_error(e))?;
        self.read(resp, MAX_ANSWER_BYTES).await
    }

    /// Streams an attachment blob from byte `from` into `sink`, chunk by
    /// chunk, refusing more than `size - from` bytes or an answer that does
    /// not start where asked. An interrupted stream is a
    /// [`TransportError::Network`] after the bytes already handed over.
    pub async fn download_attachment(
        &self,
        id: &str,
        from: u64,
        size: u64,
        sink: &mut (dyn FnMut(&[u8]) -> Result<(), TransportError> + Send),
    ) -> Result<u64, TransportError> {
        let mut req = self
            .http
            .get(self.url_for(&format!("/attachments/{id}")))
            .timeout(Duration::from_secs(1800));
        if from > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let mut resp = self
            .bearer(req)?
            .send()
            .await
            .map_err(|e| self.map_send_error(e))?;
        let status = resp.status().as_u16();
        if !(status == 200 && from == 0 || status == 206 && from > 0) {
            if resp.status().is_success() {
                return Err(TransportError::InvalidResponse(format!(
                    "the relay answered {status} to a download from byte {from}"
                )));
            }
            return self
                .read::<serde_json::Value>(resp, MAX_ANSWER_BYTES)
                .await
                .map(|_| 0);
        }
        let expected = size.saturating_sub(from);
        let mut got = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| TransportError::Network(error_chain(&e)))?
        {
            got += chunk.len() as u64;
            if got > expected {
                return Err(TransportError::InvalidResponse(
                    "the relay sent more bytes than the attachment has".into(),
                ));
            }
            sink(&chunk)?;
        }
        Ok(got)
    }

    /// One queued message by relay id ([`TransportError::Gone`] once expired).
    pub async fn fetch(&self, id: &str) -> Result<InboxItem, TransportError> {
        self.get(
            &format!("/messages/{id}"),
            Duration::from_secs(30),
            MAX_PAGE_ANSWER_BYTES,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn client() -> ApiClient {
        let pin = format!("sha256/{}", base64_pin());
        ApiClient::new(&RelayEndpoint {
            url: "https://relay.invalid".into(),
            pins: PinSet::parse(&[pin]).unwrap(),
            ca_pem: None,
        })
        .unwrap()
    }

    fn base64_pin() -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([0u8; 32])
    }

    fn response(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> reqwest::Response {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        reqwest::Response::from(b.body(body).unwrap())
    }

    #[tokio::test]
    async fn an_answer_larger_than_its_cap_is_refused_before_it_is_parsed() {
        let c = client();
        let ok: Result<AckResponse, _> = c
            .read(response(200, &[], br#"{"removed":3}"#.to_vec()), 64)
            .await;
        assert_eq!(ok.unwrap().removed, 3);
        let mut big = br#"{"removed":3}"#.to_vec();
        big.resize(65, b' ');
        let r: Result<AckResponse, _> = c.read(response(200, &[], big), 64).await;
        match r {
            Err(TransportError::InvalidResponse(m)) => assert!(m.contains("64 bytes"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Exactly at the cap is fine.
        let mut exact = br#"{"removed":3}"#.to_vec();
        exact.resize(64, b' ');
        let r: Result<AckResponse, _> = c.read(response(200, &[], exact), 64).await;
        assert!(r.is_ok());
    }

    #[tokio::test]
    async fn a_429_carries_its_retry_after() {
        let c = client();
        let body = br#"{"error":"slow down"}"#.to_vec();
        let r: Result<AckResponse, _> = c
            .read(response(429, &[("retry-after", "7")], body.clone()), 1024)
            .await;
        assert_eq!(
            r.unwrap_err(),
            TransportError::RateLimited {
                retry_after_ms: 7000
            }
        );
        let r: Result<AckResponse, _> = c.read(response(429, &[], body), 1024).await;
        assert_eq!(
            r.unwrap_err(),
            TransportError::RateLimited {
                retry_after_ms: 1000
            }
        );
        assert!(TransportError::RateLimited { retry_after_ms: 1 }.is_transient());
    }
}
