//! HTTP routes. Every handler validates fully before touching state, so a
//! refused request changes nothing; every error is JSON.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use occ_protocol::api::*;
use occ_protocol::link::DeviceLink;
use occ_protocol::{Envelope, IdentityKeys, MAX_ENVELOPE_LEN, PreKeyBundle, contexts};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::db::{DeviceRow, Lookup, Quota};
use crate::limits::{Full, check_push_endpoint};
use crate::metrics::Metrics;
use crate::openapi::{ApiDoc, Refused};
use crate::{AppState, CHALLENGE_TTL_MS, MAX_BODY, RelayError, TOKEN_TTL_MS, now_ms};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Shared = Arc<AppState>;

impl IntoResponse for RelayError {
    fn into_response(self) -> Response {
        let (status, msg) = match &self {
            RelayError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            RelayError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.clone()),
            RelayError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            RelayError::Gone => (StatusCode::GONE, self.to_string()),
            RelayError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
            RelayError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m.clone()),
            RelayError::RateLimited { retry_after_ms } => {
                let secs = retry_after_ms.div_ceil(1000).max(1);
                let mut r = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(ErrorBody {
                        error: self.to_string(),
                    }),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
                return r;
            }
            RelayError::Busy(m) => {
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(ErrorBody { error: m.clone() }),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(1u32));
                return r;
            }
            RelayError::QuotaExceeded(m) => (StatusCode::INSUFFICIENT_STORAGE, m.clone()),
            RelayError::StaleDevices(missing) => {
                return (
                    StatusCode::CONFLICT,
                    Json(StaleDevices {
                        error: "the device list this batch was sealed for is stale: \
                                look the users up again and re-seal"
                            .into(),
                        missing_devices: missing.clone(),
                    }),
                )
                    .into_response();
            }
            RelayError::Storage(e) => {
                tracing::error!("storage error: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal storage error; retry later".into(),
                )
            }
            other => {
                tracing::error!("internal error: {other}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; retry later".into(),
                )
            }
        };
        (status, Json(ErrorBody { error: msg })).into_response()
    }
}

fn bad(msg: impl Into<String>) -> RelayError {
    RelayError::BadRequest(msg.into())
}

/// A JSON body whose rejections are JSON errors too.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = RelayError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        // Read the whole body first (within the size limit) even when the
        // request will be refused, so HTTP/2 clients get a clean answer.
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                RelayError::TooLarge(format!("request body exceeds {MAX_BODY} bytes"))
            } else {
                bad(format!("cannot read the request body: {}", rej.body_text()))
            }
        })?;
        if !json {
            return Err(bad("expected Content-Type: application/json"));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| bad(format!("invalid JSON body: {e}")))
    }
}

fn query_rejection(rej: QueryRejection) -> RelayError {
    bad(format!("invalid query: {}", rej.body_text()))
}

fn path_rejection(rej: PathRejection) -> RelayError {
    bad(format!("invalid path: {}", rej.body_text()))
}

/// The client's nonce for a signed answer ([`ANSWER_NONCE_HEADER`]).
pub(crate) struct AnswerNonce(Vec<u8>);

impl<S: Send + Sync> FromRequestParts<S> for AnswerNonce {
    type Rejection = RelayError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let nonce = parts
            .headers
            .get(ANSWER_NONCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| hex::decode(v).ok())
            .filter(|n| (16..=64).contains(&n.len()))
            .ok_or_else(|| {
                bad(format!(
                    "identity answers are signed: send a fresh {ANSWER_NONCE_HEADER} header (16 to 64 bytes, hex)"
                ))
            })?;
        Ok(AnswerNonce(nonce))
    }
}

/// A JSON answer signed by the service key over the client's nonce, which
/// answer it is, its subject and the exact body bytes.
fn signed_json<T: serde::Serialize>(
    s: &AppState,
    nonce: &AnswerNonce,
    what: &str,
    subject: &str,
    value: &T,
) -> Result<Response, RelayError> {
    let body = serde_json::to_vec(value).map_err(|e| RelayError::Internal(e.to_string()))?;
    let sig = s
        .service_key
        .sign(&signed_answer_message(&nonce.0, what, subject, &body));
    let sig = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sig.to_bytes());
    let mut resp = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    resp.headers_mut().insert(
        ANSWER_SIGNATURE_HEADER,
        header::HeaderValue::from_str(&sig).map_err(|e| RelayError::Internal(e.to_string()))?,
    );
    Ok(resp)
}

/// The authenticated device of a request.
pub(crate) struct AuthDevice(pub(crate) String);

impl FromRequestParts<Shared> for AuthDevice {
    type Rejection = RelayError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                RelayError::Unauthorized("missing bearer token; authenticate first".into())
            })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            RelayError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })?;
        let tokens = lock(&state.tokens)?;
        match tokens.get(token, now_ms()) {
            Some((device, ())) => Ok(AuthDevice(device.to_string())),
            None => Err(RelayError::Unauthorized(
                "unknown or expired token; authenticate again".into(),
            )),
        }
    }
}

pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, RelayError> {
    m.lock()
        .map_err(|_| RelayError::Internal("state lock poisoned".into()))
}

fn random<const N: usize>() -> Result<[u8; N], RelayError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| RelayError::Internal("no randomness".into()))?;
    Ok(b)
}

fn verifying_key(bytes: &[u8; 32]) -> Result<VerifyingKey, RelayError> {
    let k = VerifyingKey::from_bytes(bytes).map_err(|_| bad("invalid Ed25519 key"))?;
    if k.is_weak() {
        return Err(bad("weak Ed25519 key"));
    }
    Ok(k)
}

fn verify(
    key: &VerifyingKey,
    context: &[u8],
    msg: &[u8],
    sig: &B64,
    what: &str,
) -> Result<(), RelayError> {
    let sig: [u8; 64] = sig
        .array()
        .ok_or_else(|| bad(format!("{what}: a signature is 64 bytes")))?;
    let mut m = Vec::with_capacity(context.len() + msg.len());
    m.extend_from_slice(context);
    m.extend_from_slice(msg);
    key.verify_strict(&m, &Signature::from_bytes(&sig))
        .map_err(|_| bad(format!("{what}: invalid signature")))
}

/// The rate-limit key and rate of a request: its device when it carries a
/// live token, else its peer address.
fn rate_key(s: &AppState, req: &Request) -> Result<(String, crate::limits::Rate), RelayError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(token) = token
        && let Some((device, ())) = lock(&s.tokens)?.get(token, now_ms())
    {
        return Ok((format!("d:{device}"), s.limits.per_device));
    }
    let addr = req
        .extensions()
        .get::<axum::extract::ConnectInfo<crate::tls::PeerAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.0.ip().to_string());
    Ok((format!("a:{addr}"), s.limits.per_address))
}

/// Applies the rate limits and counts every answer.
async fn limit_and_count(
    State(s): State<Shared>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    Metrics::inc(&s.metrics.requests);
    let checked = rate_key(&s, &req).and_then(|(key, rate)| {
        lock(&s.rates)?
            .check(&key, rate, now_ms())
            .map_err(|retry_after_ms| RelayError::RateLimited { retry_after_ms })
    });
    let resp = match checked {
        Ok(()) => next.run(req).await,
        Err(e) => {
            if matches!(e, RelayError::RateLimited { .. }) {
                Metrics::inc(&s.metrics.rate_limited);
            }
            e.into_response()
        }
    };
    if resp.status().is_client_error() {
        Metrics::inc(&s.metrics.rejections);
    }
    if resp.status() == StatusCode::INSUFFICIENT_STORAGE {
        Metrics::inc(&s.metrics.quota_refusals);
    }
    resp
}

/// Every route with its OpenAPI description (see `openapi.rs`).
pub(crate) fn routes() -> OpenApiRouter<Shared> {
    let v1 = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session_start))
        .routes(routes!(register))
        .routes(routes!(challenge))
        .routes(routes!(token))
        .routes(routes!(user_devices))
        .routes(routes!(device_lookup, remove_device))
        .routes(routes!(bundle))
        .routes(routes!(upload_prekeys))
        .routes(routes!(install_certificate))
        .routes(routes!(get_revocations, publish_revocations))
        .routes(routes!(get_policy))
        .routes(routes!(get_commands))
        .routes(routes!(set_push_endpoint))
        .routes(routes!(get_audit_head, put_audit_head))
        .routes(routes!(send))
        .routes(routes!(fetch_one))
        .routes(routes!(inbox))
        .routes(routes!(ack))
        .routes(routes!(crate::attachments::create))
        .routes(routes!(
            crate::attachments::download,
            crate::attachments::put_piece
        ))
        .routes(routes!(crate::attachments::get_status));
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest(PREFIX, v1)
}

/// All routes.
pub fn router(state: Shared) -> Router {
    let (api, _) = routes().split_for_parts();
    api.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit_and_count,
        ))
        .with_state(state)
}

async fn not_found() -> RelayError {
    RelayError::NotFound("no such route".into())
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ErrorBody {
            error: "method not allowed on this route".into(),
        }),
    )
        .into_response()
}

#[utoipa::path(post, path = "/session", tag = "session",
    request_body = SessionStartRequest,
    responses((status = 200, description = "the relay's signed acknowledgement of the client's nonce", body = SessionStartResponse), Refused))]
async fn session_start(
    State(s): State<Shared>,
    JsonBody(req): JsonBody<SessionStartRequest>,
) -> Result<Json<SessionStartResponse>, RelayError> {
    if !(16..=64).contains(&req.nonce.0.len()) {
        return Err(bad("the nonce must be 16 to 64 bytes"));
    }
    let session_id = hex::encode(random::<16>()?);
    let server_time_ms = now_ms();
    let sig = s.service_key.sign(&ack_message(
        req.nonce.as_slice(),
        &session_id,
        server_time_ms,
    ));
    Ok(Json(SessionStartResponse {
        session_id,
        server_time_ms,
        service_key: B64(s.service_key.verifying_key().to_bytes().to_vec()),
        signature: B64(sig.to_bytes().to_vec()),
    }))
}

fn check_signed_prekey(
    identity: &VerifyingKey,
    spk: &SignedPreKeyJson,
) -> Result<(u32, Vec<u8>, Vec<u8>), RelayError> {
    let key: [u8; 32] = spk
        .key
        .array()
        .ok_or_else(|| bad("a signed prekey is 32 bytes"))?;
    verify(
        identity,
        contexts::SIGNED_PREKEY,
        &contexts::signed_prekey_message(spk.id, &key),
        &spk.signature,
        "signed prekey",
    )?;
    Ok((spk.id, key.to_vec(), spk.signature.0.clone()))
}

fn check_one_time(keys: &[OneTimePreKeyJson]) -> Result<Vec<(u32, Vec<u8>)>, RelayError> {
    if keys.len() > MAX_PREKEY_UPLOAD {
        return Err(bad(format!(
            "at most {MAX_PREKEY_UPLOAD} one-time prekeys per request"
        )));
    }
    keys.iter()
        .map(|k| {
            let key: [u8; 32] = k
                .key
                .array()
                .ok_or_else(|| bad("a one-time prekey is 32 bytes"))?;
            Ok((k.id, key.to_vec()))
        })
        .collect()
}

/// Checks a device link presented with a registration: it names this user
/// and this device, its linker (not revoked) signed it. Returns the linker's
/// hex id (the store checks it is a device of the user).
fn check_link(
    s: &AppState,
    bytes: &[u8],
    user: &str,
    identity: &IdentityKeys,
) -> Result<String, RelayError> {
    let link = DeviceLink::parse(bytes).map_err(|e| bad(format!("device link: {e}")))?;
    if link.user != user || link.device != identity.signing_key {
        return Err(bad("the device link names another user or device"));
    }
    let linker = device_id_hex(&link.linker);
    if lock(&s.revoked)?.contains(&linker) {
        return Err(RelayError::Unauthorized(
            "the linking device was revoked by its organisation".into(),
        ));
    }
    verify(
        &verifying_key(&link.linker)?,
        b"",
        &DeviceLink::signed_message(&link.user, &link.device, &link.linker, link.issued_ms),
        &B64(link.signature.to_vec()),
        "device link",
    )?;
    Ok(linker)
}

#[utoipa::path(post, path = "/devices", tag = "devices",
    request_body = RegisterRequest,
    responses((status = 200, description = "registered", body = RegisterResponse), Refused))]
async fn register(
    State(s): State<Shared>,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> Result<Json<RegisterResponse>, RelayError> {
    if !valid_user_name(&req.user) {
        return Err(bad("a user name is 1 to 64 characters of a-z 0-9 . _ -"));
    }
    if let Some(url) = &req.push_endpoint {
        check_push_endpoint(url, &s.limits.push_gateways).map_err(bad)?;
    }
    let now = now_ms();
    if req.timestamp_ms.abs_diff(now) > REGISTRATION_SKEW_MS.unsigned_abs() {
        Metrics::inc(&s.metrics.stale_registrations);
        return Err(bad(format!(
            "the registration is signed for {} but the relay's time is {now}: \
             sign it with the server time of a fresh session",
            req.timestamp_ms
        )));
    }
    let mut reader = occ_protocol::codec::Reader::new(req.identity.as_slice());
    let identity = IdentityKeys::read(&mut reader).map_err(|e| bad(format!("identity: {e}")))?;
    reader.finish().map_err(|e| bad(format!("identity: {e}")))?;
    let vk = verifying_key(&identity.signing_key)?;
    verify(
        &vk,
        contexts::IDENTITY_DH,
        &identity.dh_key,
        &B64(identity.dh_signature.to_vec()),
        "identity key",
    )?;
    verify(
        &vk,
        b"",
        &register_message(&req),
        &req.signature,
        "registration",
    )?;
    let (spk_id, spk, spk_signature) = check_signed_prekey(&vk, &req.signed_prekey)?;
    let one_time = check_one_time(&req.one_time_prekeys)?;
    let device_id = device_id_hex(&identity.signing_key);
    let link = match &req.link {
        Some(bytes) => Some(check_link(&s, bytes.as_slice(), &req.user, &identity)?),
        None => None,
    };
    let row = DeviceRow {
        device_id: device_id.clone(),
        user: req.user,
        identity: req.identity.0,
        spk_id,
        spk,
        spk_signature,
        push_endpoint: req.push_endpoint,
    };
    let linked = link.as_ref().map(|linker| crate::db::Linked {
        linker,
        bytes: req.link.as_ref().map_or(&[][..], |l| l.as_slice()),
    });
    lock(&s.db)?
        .register(&row, &one_time, req.timestamp_ms, now, linked)
        .inspect_err(|e| {
            if matches!(e, RelayError::Conflict(m) if m.contains("replay")) {
                Metrics::inc(&s.metrics.stale_registrations);
            }
        })?;
    Ok(Json(RegisterResponse {
        device_id,
        service_key: B64(s.service_key.verifying_key().to_bytes().to_vec()),
    }))
}

#[utoipa::path(post, path = "/auth/challenge", tag = "auth",
    request_body = ChallengeRequest,
    responses((status = 200, description = "a challenge to sign", body = ChallengeResponse), Refused))]
async fn challenge(
    State(s): State<Shared>,
    JsonBody(req): JsonBody<ChallengeRequest>,
) -> Result<Json<ChallengeResponse>, RelayError> {
    if parse_device_id(&req.device_id).is_none() {
        return Err(bad("a device id is 64 hex characters"));
    }
    if lock(&s.db)?.device(&req.device_id)?.is_none() {
        return Err(RelayError::NotFound(
            "unknown device; register first".into(),
        ));
    }
    let now = now_ms();
    let expires_ms = now + CHALLENGE_TTL_MS;
    // Stateless (see `challenge.rs`): asking for a challenge for someone
    // else's device never displaces theirs.
    let c = s
        .challenges
        .issue(&req.device_id, random::<16>()?, expires_ms)
        .ok_or_else(|| RelayError::Internal("challenge key".into()))?;
    Ok(Json(ChallengeResponse {
        challenge: B64(c),
        expires_ms,
    }))
}

#[utoipa::path(post, path = "/auth/token", tag = "auth",
    request_body = TokenRequest,
    responses((status = 200, description = "a bearer token", body = TokenResponse), Refused))]
async fn token(
    State(s): State<Shared>,
    JsonBody(req): JsonBody<TokenRequest>,
) -> Result<Json<TokenResponse>, RelayError> {
    let key =
        parse_device_id(&req.device_id).ok_or_else(|| bad("a device id is 64 hex characters"))?;
    if lock(&s.revoked)?.contains(&req.device_id) {
        return Err(RelayError::Unauthorized(
            "this device was revoked by its organisation".into(),
        ));
    }
    let vk = verifying_key(&key)?;
    let now = now_ms();
    let unknown = || {
        RelayError::Unauthorized("unknown, expired or spent challenge; request a new one".into())
    };
    let challenge_expires = s
        .challenges
        .check(&req.device_id, req.challenge.as_slice(), now)
        .ok_or_else(unknown)?;
    verify(
        &vk,
        b"",
        &auth_message(req.challenge.as_slice(), &req.device_id),
        &req.signature,
        "challenge",
    )
    .map_err(|_| RelayError::Unauthorized("the challenge signature does not verify".into()))?;
    {
        // Check and spend under one lock: two requests racing with one
        // challenge get one token.
        let challenge_key = hex::encode(req.challenge.as_slice());
        let mut used = lock(&s.used_challenges)?;
        if used.get(&challenge_key, now).is_some() {
            return Err(unknown());
        }
        used.insert(challenge_key, &req.device_id, (), challenge_expires, now)
            .map_err(|Full| RelayError::Busy("too many authentications; retry shortly".into()))?;
    }
    let token = hex::encode(random::<32>()?);
    let expires_ms = now + TOKEN_TTL_MS;
    lock(&s.tokens)?
        .insert(token.clone(), &req.device_id, (), expires_ms, now)
        .map_err(|Full| RelayError::Busy("too many live sessions; retry shortly".into()))?;
    Ok(Json(TokenResponse { token, expires_ms }))
}

#[utoipa::path(get, path = "/users/{user}/devices", tag = "directory",
    security(("bearer" = [])),
    params(("user" = String, Path, description = "user name", pattern = "^[a-z0-9._-]{1,64}$"), ("x-occ-nonce" = String, Header, description = "a fresh nonce, 16 to 64 bytes as hex; the answer is signed over it", pattern = "^([0-9a-fA-F]{2}){16,64}$")),
    responses((status = 200, description = "the user's devices, signed", body = DevicesResponse, headers(("x-occ-signature" = String, description = "base64 Ed25519 signature by the service key over signed_answer_message(nonce, kind, subject, body)"))), Refused))]
async fn user_devices(
    State(s): State<Shared>,
    _auth: AuthDevice,
    nonce: AnswerNonce,
    user: Result<Path<String>, PathRejection>,
) -> Result<Response, RelayError> {
    let Path(user) = user.map_err(path_rejection)?;
    if !valid_user_name(&user) {
        return Err(bad("a user name is 1 to 64 characters of a-z 0-9 . _ -"));
    }
    let devices = lock(&s.db)?.user_devices(&user)?;
    if devices.is_empty() {
        return Err(RelayError::NotFound(format!("no user {user}")));
    }
    let answer = DevicesResponse {
        devices: devices
            .into_iter()
            .map(|d| DeviceInfo {
                device_id: d.device_id,
                identity: B64(d.identity),
                certificate: d.certificate.map(B64),
                link: d.link.map(B64),
            })
            .collect(),
    };
    signed_json(&s, &nonce, "devices", &user, &answer)
}

#[utoipa::path(get, path = "/devices/{device}", tag = "directory",
    security(("bearer" = [])),
    params(("device" = String, Path, description = "device id, 64 hex", pattern = "^[0-9a-fA-F]{64}$"), ("x-occ-nonce" = String, Header, description = "a fresh nonce, 16 to 64 bytes as hex; the answer is signed over it", pattern = "^([0-9a-fA-F]{2}){16,64}$")),
    responses((status = 200, description = "the device and its user, signed", body = DeviceLookup, headers(("x-occ-signature" = String, description = "base64 Ed25519 signature by the service key over signed_answer_message(nonce, kind, subject, body)"))), Refused))]
async fn device_lookup(
    State(s): State<Shared>,
    _auth: AuthDevice,
    nonce: AnswerNonce,
    device: Result<Path<String>, PathRejection>,
) -> Result<Response, RelayError> {
    let Path(device) = device.map_err(path_rejection)?;
    if parse_device_id(&device).is_none() {
        return Err(bad("a device id is 64 hex characters"));
    }
    let (row, (certificate, link)) = {
        let db = lock(&s.db)?;
        let row = db
            .device(&device)?
            .ok_or_else(|| RelayError::NotFound("unknown device".into()))?;
        let vouchers = db.vouchers(&device)?;
        (row, vouchers)
    };
    let answer = DeviceLookup {
        device_id: row.device_id,
        user: row.user,
        identity: B64(row.identity),
        certificate: certificate.map(B64),
        link: link.map(B64),
    };
    signed_json(&s, &nonce, "device", &device, &answer)
}

#[utoipa::path(delete, path = "/devices/{device}", tag = "devices",
    security(("bearer" = [])),
    params(("device" = String, Path, description = "device id, 64 hex", pattern = "^[0-9a-fA-F]{64}$")),
    responses((status = 200, description = "removed: it receives nothing more and cannot register again", body = Object), Refused))]
async fn remove_device(
    State(s): State<Shared>,
    AuthDevice(caller): AuthDevice,
    device: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, RelayError> {
    let Path(device) = device.map_err(path_rejection)?;
    if parse_device_id(&device).is_none() {
        return Err(bad("a device id is 64 hex characters"));
    }
    let removed = {
        let mut db = lock(&s.db)?;
        let user = db
            .device(&caller)?
            .ok_or_else(|| RelayError::Unauthorized("unknown device".into()))?
            .user;
        db.remove_device(&device, &user, now_ms())?
    };
    if !removed {
        return Err(RelayError::NotFound("no such device of this user".into()));
    }
    lock(&s.tokens)?.retain_owners(|owner| owner != device);
    Ok(Json(serde_json::json!({})))
}

#[utoipa::path(post, path = "/devices/{device}/bundle", tag = "directory",
    security(("bearer" = [])),
    params(("device" = String, Path, description = "device id, 64 hex", pattern = "^[0-9a-fA-F]{64}$"), ("x-occ-nonce" = String, Header, description = "a fresh nonce, 16 to 64 bytes as hex; the answer is signed over it", pattern = "^([0-9a-fA-F]{2}){16,64}$")),
    responses((status = 200, description = "the device's prekey bundle (takes a one-time prekey), signed", body = BundleResponse, headers(("x-occ-signature" = String, description = "base64 Ed25519 signature by the service key over signed_answer_message(nonce, kind, subject, body)"))), Refused))]
async fn bundle(
    State(s): State<Shared>,
    AuthDevice(requester): AuthDevice,
    nonce: AnswerNonce,
    device: Result<Path<String>, PathRejection>,
) -> Result<Response, RelayError> {
    let Path(device) = device.map_err(path_rejection)?;
    if parse_device_id(&device).is_none() {
        return Err(bad("a device id is 64 hex characters"));
    }
    let mut db = lock(&s.db)?;
    let row = db
        .device(&device)?
        .ok_or_else(|| RelayError::NotFound("unknown device".into()))?;
    let mut reader = occ_protocol::codec::Reader::new(&row.identity);
    let identity = IdentityKeys::read(&mut reader)
        .map_err(|_| RelayError::Internal("stored identity is corrupt".into()))?;
    let allowed = lock(&s.handout)?.allow(&requester, &device, &s.limits, now_ms());
    let one_time = if allowed {
        db.take_one_time_prekey(&device)?
    } else {
        Metrics::inc(&s.metrics.prekeys_withheld);
        None
    };
    let to32 = |v: &[u8]| -> Result<[u8; 32], RelayError> {
        v.try_into()
            .map_err(|_| RelayError::Internal("stored key is corrupt".into()))
    };
    let bundle = PreKeyBundle {
        identity,
        signed_prekey_id: row.spk_id,
        signed_prekey: to32(&row.spk)?,
        signed_prekey_signature: row
            .spk_signature
            .as_slice()
            .try_into()
            .map_err(|_| RelayError::Internal("stored signature is corrupt".into()))?,
        one_time_prekey: match one_time {
            Some((id, k)) => Some((id, to32(&k)?)),
            None => None,
        },
    };
    let answer = BundleResponse {
        bundle: B64(bundle.encode()),
    };
    drop(db);
    signed_json(&s, &nonce, "bundle", &device, &answer)
}

/// A device installs its organisation certificate. The relay cannot verify
/// the organisation's signature (it never holds that key); it checks that the
/// certificate names this device and its user, and stores it for the
/// directory. Clients verify.
#[utoipa::path(post, path = "/certificate", tag = "organisation",
    security(("bearer" = [])),
    request_body = CertificateUpload,
    responses((status = 200, description = "stored", body = Object), Refused))]
async fn install_certificate(
    State(s): State<Shared>,
    AuthDevice(device): AuthDevice,
    JsonBody(req): JsonBody<CertificateUpload>,
) -> Result<Json<serde_json::Value>, RelayError> {
    let cert = occ_protocol::certificate::DeviceCertificate::parse(req.certificate.as_slice())
        .map_err(|e| bad(format!("certificate: {e}")))?;
    let mut db = lock(&s.db)?;
    let row = db
        .device(&device)?
        .ok_or_else(|| RelayError::NotFound("unknown device".into()))?;
    if hex::encode(cert.device_id) != device || cert.user != row.user {
        return Err(bad("the certificate names another device or user"));
    }
    db.set_certificate(&device, req.certificate.as_slice())?;
    Ok(Json(serde_json::json!({})))
}

/// The organisation's newest revocation list (404 when there is none).
#[utoipa::path(get, path = "/revocations", tag = "organisation",
    security(("bearer" = [])),
    responses((status = 200, description = "the newest revocation list", body = RevocationsResponse), Refused))]
async fn get_revocations(
    State(s): State<Shared>,
    _auth: AuthDevice,
) -> Result<Json<RevocationsResponse>, RelayError> {
    match lock(&s.db)?.revocations()? {
        Some((_, list)) => Ok(Json(RevocationsResponse { list: B64(list) })),
        None => Err(RelayError::NotFound("no revocation list".into())),
    }
}

/// A revocation list, accepted only if the configured organisation key
/// signed it and it is newer than the stored one.
#[utoipa::path(post, path = "/revocations", tag = "organisation",
    security(("bearer" = [])),
    request_body = RevocationsResponse,
    responses((status = 200, description = "stored (or an older one ignored)", body = Object), Refused))]
async fn publish_revocations(
    State(s): State<Shared>,
    _auth: AuthDevice,
    JsonBody(req): JsonBody<RevocationsResponse>,
) -> Result<Json<serde_json::Value>, RelayError> {
    let org = s.org_key.ok_or_else(|| {
        RelayError::NotFound("this relay has no organisation key configured".into())
    })?;
    let list = occ_protocol::certificate::RevocationList::parse(req.list.as_slice())
        .map_err(|e| bad(format!("revocation list: {e}")))?;
    let vk = verifying_key(&org)?;
    verify(
        &vk,
        b"",
        &occ_protocol::certificate::RevocationList::signed_message(
            list.version,
            list.issued_ms,
            &list.devices,
        ),
        &B64(list.signature.to_vec()),
        "revocation list",
    )?;
    if !lock(&s.db)?.set_revocations(list.version, req.list.as_slice())? {
        return Err(RelayError::Conflict(
            "a revocation list at least as new is already held".into(),
        ));
    }
    let revoked: std::collections::HashSet<String> = list.devices.iter().map(hex::encode).collect();
    // Revoked devices lose their sessions at once.
    lock(&s.tokens)?.retain_owners(|owner| !revoked.contains(owner));
    *lock(&s.revoked)? = revoked;
    Ok(Json(serde_json::json!({})))
}

/// The organisation's newest policy (404 when there is none). Signed by
/// the organisation; devices verify it.
#[utoipa::path(get, path = "/policy", tag = "organisation",
    security(("bearer" = [])),
    responses((status = 200, description = "the newest policy document", body = OrgDocResponse), Refused))]
async fn get_policy(
    State(s): State<Shared>,
    _auth: AuthDevice,
) -> Result<Json<OrgDocResponse>, RelayError> {
    match lock(&s.db)?.policy()? {
        Some(doc) => Ok(Json(OrgDocResponse { doc: B64(doc) })),
        None => Err(RelayError::NotFound("no policy".into())),
    }
}

/// The organisation's newest commands (lock, unlock, wipe) for the calling
/// device, oldest first. Signed by the organisation; the device verifies
/// them and obeys each once.
#[utoipa::path(get, path = "/commands", tag = "organisation",
    security(("bearer" = [])),
    responses((status = 200, description = "commands for this device", body = CommandsResponse), Refused))]
async fn get_commands(
    State(s): State<Shared>,
    AuthDevice(device): AuthDevice,
) -> Result<Json<CommandsResponse>, RelayError> {
    let commands = lock(&s.db)?
        .commands(&device)?
        .into_iter()
        .map(B64)
        .collect();
    Ok(Json(CommandsResponse { commands }))
}

/// Replaces the calling device's push endpoint (its push distributor gave
/// it a new one), or with null stops push notices to it. The endpoint must
/// be `https://` on a configured gateway host, as at registration.
#[utoipa::path(put, path = "/push/endpoint", tag = "devices",
    security(("bearer" = [])),
    request_body = PushEndpointRequest,
    responses((status = 200, description = "the endpoint is in use", body = Object), Refused))]
async fn set_push_endpoint(
    State(s): State<Shared>,
    AuthDevice(device): AuthDevice,
    JsonBody(req): JsonBody<PushEndpointRequest>,
) -> Result<Json<serde_json::Value>, RelayError> {
    if let Some(url) = &req.push_endpoint {
        check_push_endpoint(url, &s.limits.push_gateways).map_err(bad)?;
    }
    if !lock(&s.db)?.set_push_endpoint(&device, req.push_endpoint.as_deref())? {
        return Err(RelayError::Unauthorized("unknown device".into()));
    }
    Ok(Json(serde_json::json!({})))
}

/// The newest audit chain head the relay countersigned for the calling
/// device (404 before the first).
#[utoipa::path(get, path = "/audit/head", tag = "audit",
    security(("bearer" = [])),
    responses((status = 200, description = "the newest countersigned head", body = AuditHead), Refused))]
async fn get_audit_head(
    State(s): State<Shared>,
    AuthDevice(device): AuthDevice,
) -> Result<Json<AuditHead>, RelayError> {
    match lock(&s.db)?.audit_head(&device)? {
        Some(h) => Ok(Json(AuditHead {
            device_id: device,
            seq: h.seq,
            hash: B64(h.hash),
            server_time_ms: h.server_ms,
            signature: B64(h.signature),
        })),
        None => Err(RelayError::NotFound("no audit head yet".into())),
    }
}

/// Countersigns the calling device's audit chain head: the service key
/// signs (device, sequence, hash, relay time). A head behind the held one
/// is refused (409): nobody can make the relay forget entries a device
/// already showed it, so a truncated trail is detectable. The same head
/// again is countersigned again.
#[utoipa::path(post, path = "/audit/head", tag = "audit",
    security(("bearer" = [])),
    request_body = AuditHeadRequest,
    responses((status = 200, description = "the countersigned head", body = AuditHead), Refused))]
async fn put_audit_head(
    State(s): State<Shared>,
    AuthDevice(device): AuthDevice,
    JsonBody(req): JsonBody<AuditHeadRequest>,
) -> Result<Json<AuditHead>, RelayError> {
    if req.hash.as_slice().len() != 32 {
        return Err(bad("hash is 32 bytes"));
    }
    if i64::try_from(req.seq).is_err() {
        return Err(bad("seq is too large"));
    }
    let mut db = lock(&s.db)?;
    if let Some(held) = db.audit_head(&device)?
        && (req.seq < held.seq || (req.seq == held.seq && held.hash != req.hash.as_slice()))
    {
        return Err(RelayError::Conflict(format!(
            "the relay countersigned entry {} with another hash, or a later one: the trail was cut or rewritten",
            held.seq
        )));
    }
    let now = now_ms();
    let mut req = req;
    if s.hooks.countersign_older_head.load(Ordering::SeqCst) {
        // Test hook: a lying relay (see `Hooks`).
        req.seq = req.seq.saturating_sub(1);
    }
    if s.hooks.countersign_other_hash.load(Ordering::SeqCst)
        && let Some(b) = req.hash.0.first_mut()
    {
        *b ^= 1;
    }
    let signature = s
        .service_key
        .sign(&audit_head_message(
            &device,
            req.seq,
            req.hash.as_slice(),
            now,
        ))
        .to_bytes()
        .to_vec();
    let row = crate::db::AuditHeadRow {
        seq: req.seq,
        hash: req.hash.0.clone(),
        server_ms: now,
        signature: signature.clone(),
    };
    db.set_audit_head(&device, &row)?;
    Ok(Json(AuditHead {
        device_id: device,
        seq: req.seq,
        hash: req.hash,
        server_time_ms: now,
        signature: B64(signature),
    }))
}

#[utoipa::path(post, path = "/prekeys", tag = "devices",
    security(("bearer" = [])),
    request_body = PreKeyUpload,
    responses((status = 200, description = "one-time prekeys now held", body = PreKeyCount), Refused))]
async fn upload_prekeys(
    State(s): State<Shared>,
    AuthDevice(device): AuthDevice,
    JsonBody(req): JsonBody<PreKeyUpload>,
) -> Result<Json<PreKeyCount>, RelayError> {
    let key = parse_device_id(&device).ok_or_else(|| bad("bad device"))?;
    let vk = verifying_key(&key)?;
    let signed = req
        .signed_prekey
        .as_ref()
        .map(|spk| check_signed_prekey(&vk, spk))
        .transpose()?;
    let one_time = check_one_time(&req.one_time_prekeys)?;
    let n = lock(&s.db)?.add_prekeys(&device, signed, &one_time)?;
    Ok(Json(PreKeyCount {
        one_time_prekeys: n,
    }))
}

#[utoipa::path(post, path = "/messages", tag = "messages",
    security(("bearer" = [])),
    request_body = SendRequest,
    responses(Refused,
        (status = 200, description = "queued (the same answer again for a repeated idempotency key)", body = SendResponse),
        (status = 409, description = "sealed for a stale device list (listed_devices): look again and re-seal", body = StaleDevices)))]
async fn send(
    State(s): State<Shared>,
    AuthDevice(sender): AuthDevice,
    JsonBody(req): JsonBody<SendRequest>,
) -> Result<Response, RelayError> {
    let key_ok = !req.idempotency_key.is_empty()
        && req.idempotency_key.len() <= 128
        && req.idempotency_key.bytes().all(|b| b.is_ascii_graphic());
    if !key_ok {
        return Err(bad(
            "the idempotency key is 1 to 128 printable ASCII characters",
        ));
    }
    if req.ttl_secs == 0 || req.ttl_secs > MAX_TTL_SECS {
        return Err(bad(format!("ttl_secs must be 1 to {MAX_TTL_SECS}")));
    }
    if req.envelopes.is_empty() || req.envelopes.len() > MAX_BATCH {
        return Err(bad(format!("a batch holds 1 to {MAX_BATCH} envelopes")));
    }
    if req.class.is_empty()
        || req.class.len() > 32
        || !req.class.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(bad("class is 1 to 32 letters or digits"));
    }
    if req
        .thread
        .as_ref()
        .is_some_and(|t| t.is_empty() || t.len() > 64)
    {
        return Err(bad("thread is 1 to 64 bytes"));
    }
    if let Some(previous) = lock(&s.db)?.idempotent_response(&sender, &req.idempotency_key)? {
        return Ok(([(header::CONTENT_TYPE, "application/json")], previous).into_response());
    }
    let mut items = Vec::with_capacity(req.envelopes.len());
    let revoked = lock(&s.revoked)?.clone();
    {
        let db = lock(&s.db)?;
        // The users this batch addresses (by their devices), for the
        // stale-list check below.
        let mut users = std::collections::BTreeSet::new();
        for e in &req.envelopes {
            if parse_device_id(&e.device_id).is_none() {
                return Err(bad("a device id is 64 hex characters"));
            }
            if e.envelope.0.len() > MAX_ENVELOPE_LEN {
                return Err(RelayError::TooLarge(
                    "an envelope exceeds the size limit".into(),
                ));
            }
            Envelope::parse(e.envelope.as_slice())
                .map_err(|err| bad(format!("malformed envelope: {err}")))?;
            let Some(recipient) = db.device(&e.device_id)? else {
                if db.was_removed(&e.device_id)? {
                    // Removed by its user since the sender looked it up:
                    // dropped, and the rest of the batch goes.
                    continue;
                }
                return Err(RelayError::NotFound(format!(
                    "unknown recipient device {}",
                    e.device_id
                )));
            };
            users.insert(recipient.user);
            if revoked.contains(&e.device_id) {
                // Never queued for a revoked device; the sender's client
                // learns of the revocation from the list itself.
                continue;
            }
            items.push((
                hex::encode(random::<16>()?),
                e.device_id.clone(),
                e.envelope.0.clone(),
            ));
        }
        if !req.listed_devices.is_empty() {
            if let Some(own) = db.device(&sender)? {
                users.insert(own.user);
            }
            let missing = unlisted_devices(&db, &sender, &req, &users, &revoked)?;
            if !missing.is_empty() {
                return Err(RelayError::StaleDevices(missing));
            }
        }
    }
    let now = now_ms();
    let expires_ms = now + (req.ttl_secs as i64) * 1000;
    let response = SendResponse {
        message_ids: items.iter().map(|(id, _, _)| id.clone()).collect(),
        server_time_ms: now,
        expires_ms,
    };
    let body = serde_json::to_string(&response).map_err(|e| bad(e.to_string()))?;
    let l = &s.limits;
    let quota = Quota {
        messages: l.inbox_max_messages,
        bytes: l.inbox_max_bytes,
        sender_messages: l.sender_share_messages,
        sender_bytes: l.sender_share_bytes,
    };
    lock(&s.db)?
        .enqueue(
            &sender,
            &req.idempotency_key,
            &items,
            now,
            expires_ms,
            &body,
            &quota,
        )?
        .map_err(|q| {
            RelayError::QuotaExceeded(format!(
                "the inbox of device {} is full; nothing of this batch was queued",
                q.recipient
            ))
        })?;
    Metrics::add(&s.metrics.envelopes_accepted, items.len() as u64);
    notify_and_push(&s, &sender, &req, &items, now, expires_ms);
    if s.hooks.stall_after_send.load(Ordering::SeqCst) {
        // Test hook: the batch is committed but the client never hears back.
        std::future::pending::<()>().await;
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The registered, unrevoked devices of `users` (those a batch addresses,
/// and the sender's own) that the sender neither listed nor addressed:
/// non-empty means its directory is stale.
fn unlisted_devices(
    db: &crate::db::Db,
    sender: &str,
    req: &SendRequest,
    users: &std::collections::BTreeSet<String>,
    revoked: &std::collections::HashSet<String>,
) -> Result<Vec<String>, RelayError> {
    let known: std::collections::HashSet<&str> = req
        .listed_devices
        .iter()
        .map(String::as_str)
        .chain(req.envelopes.iter().map(|e| e.device_id.as_str()))
        .chain(std::iter::once(sender))
        .collect();
    let mut missing = Vec::new();
    for user in users {
        for d in db.user_devices(user)? {
            if !known.contains(d.device_id.as_str()) && !revoked.contains(&d.device_id) {
                missing.push(d.device_id);
            }
        }
    }
    Ok(missing)
}

fn notify_and_push(
    s: &Shared,
    sender: &str,
    req: &SendRequest,
    items: &[(String, String, Vec<u8>)],
    now: i64,
    expires_ms: i64,
) {
    if let Ok(waiters) = s.waiters.lock() {
        for (_, recipient, _) in items {
            if let Some(n) = waiters.get(recipient) {
                n.notify_waiters();
            }
        }
    }
    let mut due = Vec::new();
    if let Ok(db) = s.db.lock() {
        for (id, recipient, envelope) in items {
            let Ok(Some(device)) = db.device(recipient) else {
                continue;
            };
            let Some(endpoint) = device.push_endpoint else {
                continue;
            };
            let notice = PushNotice {
                message_id: id.clone(),
                recipient_device: recipient.clone(),
                sender_device: sender.to_string(),
                thread: req.thread.clone(),
                size: envelope.len() as u64,
                expires_ms,
                class: req.class.clone(),
                sent_ms: now,
                urgent: req.urgent,
                count: 1,
            };
            due.push((notice, endpoint));
        }
    }
    for (notice, endpoint) in due {
        crate::push::notify(s, notice, endpoint);
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct InboxQuery {
    /// Items after this sequence number (the last one acknowledged).
    #[serde(default)]
    after: i64,
    /// Wait up to this long for the first item (at most 30000).
    #[serde(default)]
    wait_ms: u64,
    /// Most items (at most 1000; default 500).
    limit: Option<usize>,
    /// The client's own bound on envelope bytes in this page.
    max_bytes: Option<u64>,
}

#[utoipa::path(get, path = "/inbox", tag = "messages",
    security(("bearer" = [])),
    params(InboxQuery),
    responses((status = 200, description = "a page of the inbox (long poll)", body = InboxResponse), Refused))]
async fn inbox(
    State(s): State<Shared>,
    AuthDevice(device): AuthDevice,
    q: Result<Query<InboxQuery>, QueryRejection>,
) -> Result<Json<InboxResponse>, RelayError> {
    let Query(q) = q.map_err(query_rejection)?;
    let limit = q.limit.unwrap_or(500);
    if limit == 0 || limit > MAX_INBOX_LIMIT {
        return Err(bad(format!("limit is 1 to {MAX_INBOX_LIMIT}")));
    }
    if q.wait_ms > MAX_WAIT_MS {
        return Err(bad(format!("wait_ms is at most {MAX_WAIT_MS}")));
    }
    let max_bytes = q
        .max_bytes
        .map_or(s.limits.page_max_bytes, |m| m.min(s.limits.page_max_bytes));
    let notify = lock(&s.waiters)?.entry(device.clone()).or_default().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(q.wait_ms);
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (rows, prekeys) = {
            let db = lock(&s.db)?;
            let rows = db.inbox(&device, q.after, limit, max_bytes, now_ms())?;
            (rows, db.one_time_prekey_count(&device)?)
        };
        if !rows.is_empty() || tokio::time::Instant::now() >= deadline {
            Metrics::add(&s.metrics.envelopes_delivered, rows.len() as u64);
            return Ok(Json(InboxResponse {
                messages: rows.into_iter().map(inbox_item).collect(),
                server_time_ms: now_ms(),
                one_time_prekeys: Some(prekeys),
            }));
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

fn inbox_item(r: crate::db::QueuedRow) -> InboxItem {
    InboxItem {
        seq: r.seq,
        id: r.id,
        sender_device: r.sender,
        envelope: B64(r.envelope),
        sent_ms: r.sent_ms,
        expires_ms: r.expires_ms,
    }
}

#[utoipa::path(post, path = "/inbox/ack", tag = "messages",
    security(("bearer" = [])),
    request_body = AckRequest,
    responses((status = 200, description = "acknowledged", body = AckResponse), Refused))]
async fn ack(
    State(s): State<Shared>,
    AuthDevice(device): AuthDevice,
    JsonBody(req): JsonBody<AckRequest>,
) -> Result<Json<AckResponse>, RelayError> {
    if req.up_to_seq < 0 {
        return Err(bad("up_to_seq must not be negative"));
    }
    let removed = lock(&s.db)?.ack(&device, req.up_to_seq)?;
    Ok(Json(AckResponse { removed }))
}

#[utoipa::path(get, path = "/messages/{id}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "relay message id, 32 hex", pattern = "^[0-9a-fA-F]{32}$")),
    responses((status = 200, description = "the message", body = InboxItem), Refused))]
async fn fetch_one(
    State(s): State<Shared>,
    AuthDevice(device): AuthDevice,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<InboxItem>, RelayError> {
    let Path(id) = id.map_err(path_rejection)?;
    if !valid_relay_message_id(&id) {
        return Err(bad("a message id is 32 hex characters"));
    }
    match lock(&s.db)?.lookup(&device, &id, now_ms())? {
        Lookup::Live(r) => {
            Metrics::inc(&s.metrics.envelopes_delivered);
            Ok(Json(inbox_item(r)))
        }
        Lookup::Gone => Err(RelayError::Gone),
        Lookup::NotFound => Err(RelayError::NotFound(
            "no such message for this device".into(),
        )),
    }
}
