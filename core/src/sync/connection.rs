//! Enrolment and the verified relay session.
//!
//! A session with the relay is: pinned TLS (the pins are checked on the
//! validated chain), the relay's Ed25519 acknowledgement over our fresh
//! nonce checked against the service key learned at enrolment (its signed
//! time then feeds trusted time), and a bearer token obtained by signing the
//! relay's challenge with the device key. Every request goes through
//! [`Engine::call`]: if the relay no longer accepts the token (it restarted,
//! or the token expired) the session is re-established — re-verifying pin
//! and acknowledgement — and the request repeated once.
//!
//! A pin mismatch or an acknowledgement that does not verify is recorded as
//! a security event and raised as a `SecurityAlert` wherever it happens.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use occ_protocol::api::{
    OneTimePreKeyJson, RegisterRequest, SignedPreKeyJson, parse_device_id, register_message,
};
use serde::{Deserialize, Serialize};

use super::{Engine, Enrolment, Local};
use crate::crypto::{Account, SignedPreKeyPublic};
use crate::error::{Error, Result};
use crate::retention::ServerTime;
use crate::store::SecurityEventKind;
use crate::transport::{
    AfterExpiry, ApiClient, PinSet, RelayEndpoint, SessionInfo, TransportError,
};

/// One-time prekeys published at enrolment and kept topped up.
pub const PREKEY_BATCH: usize = 100;

/// Where a relay is and how to recognise it: part of the enrolment options
/// and of the enrolment kept in the profile.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RelaySettings {
    /// `https://host:port`.
    pub url: String,
    /// `sha256/<base64>` SPKI pins (primary and backups).
    pub pins: Vec<String>,
    /// When the pins expire (ms since the epoch), if ever.
    pub pins_expire_ms: Option<i64>,
    /// After expiry, fall back to chain validation (default: fail closed).
    pub pins_lapse_to_chain: bool,
    /// A private CA certificate (PEM) instead of the public roots.
    pub ca_pem: Option<String>,
}

impl RelaySettings {
    /// The transport's view of it (pins parsed, expiry policy applied).
    fn endpoint(&self) -> Result<RelayEndpoint> {
        let mut pins = PinSet::parse(&self.pins)?;
        pins.expires_ms = self.pins_expire_ms;
        if self.pins_lapse_to_chain {
            pins.after_expiry = AfterExpiry::ValidateChainOnly;
        }
        Ok(RelayEndpoint {
            url: self.url.clone(),
            pins,
            ca_pem: self.ca_pem.as_ref().map(|p| p.as_bytes().to_vec()),
        })
    }
}

/// How to enrol with a relay.
#[derive(Clone, Debug, Default)]
pub struct EnrolOptions {
    /// The relay.
    pub relay: RelaySettings,
    /// The user name to enrol as.
    pub user: String,
    /// A UnifiedPush-style endpoint for push notices.
    pub push_endpoint: Option<String>,
    /// The organisation's public key (64 hex characters), pinned now: from
    /// then on only devices it certifies are messaged or believed. `None`:
    /// open mode (trust on first use).
    pub org_key: Option<String>,
    /// For a further device of `user`: the link one of the user's devices
    /// made for this one ([`Client::link_device`](crate::Client::link_device)
    /// there, with this profile's device id). `None` for a user's first
    /// device.
    pub link: Option<Vec<u8>>,
}

/// A verified relay session, as the app sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelaySession {
    /// The relay's session id.
    pub session_id: String,
    /// Relay time (signed), ms.
    pub server_time_ms: i64,
    /// Trusted time after observing it, ms.
    pub trusted_time_ms: i64,
}

/// The relay connection: the API client (built from the enrolment on first
/// use) and the gate that keeps authentications one at a time.
#[derive(Default)]
pub(crate) struct Relay {
    api: Mutex<Option<Arc<ApiClient>>>,
    connect_gate: tokio::sync::Mutex<()>,
}

impl Relay {
    fn get(&self) -> Option<Arc<ApiClient>> {
        self.api
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, api: Arc<ApiClient>) {
        *self.api.lock().unwrap_or_else(PoisonError::into_inner) = Some(api);
    }

    /// Drops the connection (on close).
    pub(crate) fn forget(&self) {
        *self.api.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// A boxed relay request, `'static` so it holds no borrow across the wait.
pub(crate) type ApiFuture<T> =
    Pin<Box<dyn Future<Output = std::result::Result<T, TransportError>> + Send + 'static>>;

impl Enrolment {
    fn service_key_bytes(&self) -> Result<[u8; 32]> {
        parse_device_id(&self.service_key)
            .ok_or_else(|| Error::corrupt("the stored relay service key is malformed"))
    }
}

/// The wire form of a signed prekey.
pub(crate) fn signed_prekey_json(spk: &SignedPreKeyPublic) -> SignedPreKeyJson {
    SignedPreKeyJson {
        id: spk.id,
        key: spk.public.to_vec().into(),
        signature: spk.signature.to_vec().into(),
    }
}

/// The wire form of one-time prekeys.
pub(crate) fn one_time_prekeys_json(keys: &[(u32, [u8; 32])]) -> Vec<OneTimePreKeyJson> {
    keys.iter()
        .map(|(id, k)| OneTimePreKeyJson {
            id: *id,
            key: k.to_vec().into(),
        })
        .collect()
}

/// The registration request for `account` as `user`, signed by its identity
/// key (proof of possession).
pub fn registration(
    account: &Account,
    user: &str,
    push_endpoint: Option<&str>,
    timestamp_ms: i64,
) -> Result<RegisterRequest> {
    registration_with_link(account, user, push_endpoint, timestamp_ms, None)
}

/// [`registration`] of a further device of `user`, with the
/// [`DeviceLink`](occ_protocol::link::DeviceLink) one of the user's devices
/// signed for it.
pub fn registration_with_link(
    account: &Account,
    user: &str,
    push_endpoint: Option<&str>,
    timestamp_ms: i64,
    link: Option<&[u8]>,
) -> Result<RegisterRequest> {
    let identity = account.identity();
    let mut w = occ_protocol::codec::Writer::new();
    identity.public().keys().write(&mut w);
    let mut req = RegisterRequest {
        user: user.to_string(),
        identity: w.into_vec().into(),
        signed_prekey: signed_prekey_json(&account.signed_prekey()?),
        one_time_prekeys: one_time_prekeys_json(&account.one_time_prekeys()),
        push_endpoint: push_endpoint.map(str::to_string),
        timestamp_ms,
        link: link.map(|l| l.to_vec().into()),
        signature: Vec::new().into(),
    };
    req.signature = identity.sign(b"", &register_message(&req)).to_vec().into();
    Ok(req)
}

/// An organisation key: 32 bytes, as 64 hex characters, a valid Ed25519
/// point.
pub(crate) fn parse_org_key(hex_key: &str) -> Result<[u8; 32]> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::invalid("the organisation key is 64 hex characters"))?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| Error::invalid("the organisation key is not a valid Ed25519 key"))?;
    Ok(bytes)
}

impl Engine {
    /// Records and raises a failure of the relay's identity (pin or
    /// acknowledgement); other errors pass through untouched.
    pub(crate) fn note_transport_failure(&self, e: &TransportError) {
        let (kind, detail) = match e {
            TransportError::PinMismatch { host, presented } => (
                SecurityEventKind::PinFailure,
                format!("host={host} presented={}", presented.join(",")),
            ),
            TransportError::ForgedAcknowledgement(m) => {
                (SecurityEventKind::RelayUnverified, m.clone())
            }
            _ => return,
        };
        if let Err(err) = self.raise(kind, detail) {
            tracing::warn!("could not record a security event: {err}");
        }
    }

    /// Logs, records and raises (as a `SecurityAlert`) a security event; the
    /// alert goes out even if recording fails, whose error is returned.
    pub(crate) fn raise(&self, kind: SecurityEventKind, detail: String) -> Result<()> {
        tracing::warn!("security event {kind}: {detail}");
        let recorded = self.with_local(|l| Ok(l.store.record_security_event(kind, &detail)?));
        self.events.alert(kind, detail);
        recorded
    }

    /// Feeds a verified server time to trusted time; a far-ahead time that
    /// is held back (see [`crate::retention::ServerTime`]) is recorded as a
    /// security event and raised. Returns trusted time after it.
    fn observe_server_time(&self, server_ms: i64) -> Result<i64> {
        let (outcome, now) = self.with_local(|l| Ok(l.store.observe_server_time(server_ms)?))?;
        if let ServerTime::Held { lead_ms } = outcome {
            self.raise(
                SecurityEventKind::TimeJump,
                format!(
                    "signed server time {server_ms} is {lead_ms} ms ahead of trusted time; \
                     not adopted until a later signed time confirms it"
                ),
            )?;
        }
        Ok(now)
    }

    /// Maps a transport error to the public one, recording identity failures.
    pub(crate) fn transport(&self, e: TransportError) -> Error {
        self.note_transport_failure(&e);
        e.into()
    }

    /// Registers this device with a relay as `opts.user`, learning (and from
    /// then on requiring) the relay's service key.
    pub(crate) async fn enrol(&self, opts: EnrolOptions) -> Result<Enrolment> {
        let _gate = self.relay.connect_gate.lock().await;
        if self.with_local(|l| Ok(l.enrolment.is_some()))? {
            return Err(Error::invalid("this profile is already enrolled"));
        }
        let org_key = opts.org_key.as_deref().map(parse_org_key).transpose()?;
        if !occ_protocol::ids::valid_user_name(&opts.user) {
            return Err(Error::invalid(
                "a user name is 1 to 64 characters of a-z 0-9 . _ -",
            ));
        }
        let api = Arc::new(ApiClient::new(&opts.relay.endpoint()?)?);
        let info = api
            .start_session(None)
            .await
            .map_err(|e| self.transport(e))?;
        self.observe_server_time(info.server_time_ms)?;
        // Publish a full batch of one-time prekeys with the registration; the
        // account (and its new keys) is saved with the enrolment below, so a
        // failed registration publishes keys we still hold.
        let (account, request) = self.with_local(|l| {
            let mut account = l.account.clone();
            let missing = PREKEY_BATCH.saturating_sub(account.one_time_prekey_count());
            account.replenish_one_time_prekeys(missing)?;
            if let Some(link) = &opts.link {
                crate::crypto::link::verify_link(link, &opts.user, &account.device_id().0)
                    .map_err(|why| Error::invalid(format!("cannot enrol with this link: {why}")))?;
            }
            let request = registration_with_link(
                &account,
                &opts.user,
                opts.push_endpoint.as_deref(),
                info.server_time_ms,
                opts.link.as_deref(),
            )?;
            l.store.save_account(&account)?;
            l.account = account.clone();
            Ok((account, request))
        })?;
        let device_id = account.device_id().to_hex();
        let resp = api
            .register(&request)
            .await
            .map_err(|e| self.transport(e))?;
        if resp.device_id != device_id || resp.service_key.as_slice() != info.service_key {
            return Err(Error::untrusted(
                "the registration answer does not match this device or relay",
            ));
        }
        let linked_by = opts
            .link
            .as_deref()
            .and_then(|l| {
                crate::crypto::link::verify_link(l, &opts.user, &account.device_id().0).ok()
            })
            .map(hex::encode);
        let enrolment = Enrolment {
            relay: opts.relay,
            user: opts.user,
            device_id,
            service_key: hex::encode(info.service_key),
            org_key: org_key.map(hex::encode),
            linked_by,
            push_endpoint: opts.push_endpoint.clone(),
        };
        let spk_id = account.signed_prekey()?.id;
        let json = serde_json::to_vec(&enrolment)
            .map_err(|e| Error::internal(format!("enrolment record: {e}")))?;
        self.with_local(|l| {
            l.store.save_enrolment(&json, i64::from(spk_id))?;
            l.enrolment = Some(enrolment.clone());
            crate::push::write_verifier(l.store.dir(), &enrolment, l.store.now_ms(), Vec::new())
        })?;
        self.relay.set(api);
        drop(_gate);
        self.connect().await?;
        Ok(enrolment)
    }

    /// Replaces this device's push endpoint on the relay (the push
    /// distributor gave it a new one), then in the enrolment record.
    pub(crate) async fn set_push_endpoint(&self, endpoint: Option<String>) -> Result<()> {
        if let Some(url) = &endpoint
            && (url.len() > 2048 || !url.starts_with("https://"))
        {
            return Err(Error::invalid(
                "a push endpoint is an https:// URL of at most 2048 bytes",
            ));
        }
        let sent = endpoint.clone();
        self.call(move |api| {
            let sent = sent.clone();
            Box::pin(async move { api.set_push_endpoint(sent.as_deref()).await })
        })
        .await?;
        self.with_local(|l| {
            let mut enrolment = l.enrolment()?.clone();
            enrolment.push_endpoint = endpoint;
            let json = serde_json::to_vec(&enrolment)
                .map_err(|e| Error::internal(format!("enrolment record: {e}")))?;
            l.store.update_enrolment(&json)?;
            l.enrolment = Some(enrolment);
            Ok(())
        })
    }

    /// The API client for the enrolled relay (built on first use).
    fn api(&self) -> Result<Arc<ApiClient>> {
        if let Some(api) = self.relay.get() {
            return Ok(api);
        }
        let endpoint = self.with_local(|l| l.enrolment()?.relay.endpoint())?;
        let api = Arc::new(ApiClient::new(&endpoint)?);
        self.relay.set(api.clone());
        Ok(api)
    }

    /// Opens a verified session with the relay: pinned TLS, the signed
    /// acknowledgement checked against the enrolled service key (its time then
    /// feeds trusted time), and a device token.
    pub(crate) async fn connect(&self) -> Result<RelaySession> {
        let _gate = self.relay.connect_gate.lock().await;
        self.connect_locked().await
    }

    async fn connect_locked(&self) -> Result<RelaySession> {
        let (expected, device_id, identity) = self.with_local(|l: &mut Local| {
            let e = l.enrolment()?;
            Ok((
                e.service_key_bytes()?,
                e.device_id.clone(),
                l.account.identity().clone(),
            ))
        })?;
        let api = self.api()?;
        api.clear_token();
        let info: SessionInfo = api
            .start_session(Some(&expected))
            .await
            .map_err(|e| self.transport(e))?;
        match api
            .authenticate(&device_id, |m| identity.sign(b"", m))
            .await
        {
            Ok(()) => {}
            Err(TransportError::NotFound(_)) => return Err(Error::NotEnrolled),
            Err(e) => return Err(self.transport(e)),
        }
        let trusted = self.observe_server_time(info.server_time_ms)?;
        Ok(RelaySession {
            session_id: info.session_id,
            server_time_ms: info.server_time_ms,
            trusted_time_ms: trusted,
        })
    }

    /// The relay client with a session (connecting first if there is no
    /// token), for a call that cannot be repeated by [`Engine::call`] (a
    /// streamed download: its caller resumes instead).
    pub(crate) async fn session_api(&self) -> Result<Arc<ApiClient>> {
        let api = self.api()?;
        if !api.has_token() {
            let _gate = self.relay.connect_gate.lock().await;
            if !api.has_token() {
                self.connect_locked().await?;
            }
        }
        Ok(api)
    }

    /// Calls the relay with a session: connects first if there is no token;
    /// if the token is refused (expired, or the relay restarted),
    /// re-authenticates — re-verifying the relay — and retries once.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T>
    where
        F: Fn(Arc<ApiClient>) -> ApiFuture<T>,
    {
        let api = self.api()?;
        if !api.has_token() {
            let _gate = self.relay.connect_gate.lock().await;
            if !api.has_token() {
                self.connect_locked().await?;
            }
        }
        match f(api.clone()).await {
            Err(TransportError::Unauthorized(_)) => {
                {
                    let _gate = self.relay.connect_gate.lock().await;
                    if !api.has_token() {
                        self.connect_locked().await?;
                    }
                }
                f(api).await.map_err(|e| self.transport(e))
            }
            other => other.map_err(|e| self.transport(e)),
        }
    }
}
