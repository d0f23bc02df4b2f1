//! Store-and-forward sync: the durable outbox going out, the inbox coming in.
//!
//! Data flows one way: transport → sync → crypto → store → client events.
//!
//! Outgoing:
//! 1. `send` stores the message and an outbox row (plaintext payload) in one
//!    transaction — from then on it survives a crash.
//! 2. `flush` seals each row in order: sessions are established on demand from
//!    prekey bundles, thread sender keys are (re)distributed over the pairwise
//!    sessions to devices that lack the current one, and the ready
//!    `SendRequest` (ciphertext + idempotency key) replaces the plaintext in the
//!    same transaction that saves the advanced ratchet states.
//! 3. The sealed request is POSTed; the row is deleted only after the relay
//!    answers. A retry resends the same bytes under the same key, so the relay
//!    queues it exactly once. Transient failures back off exponentially and
//!    stop the flush (order is kept); permanent refusals drop the row and raise
//!    a `DeliveryFailed` event.
//!
//! Incoming: each inbox page is decrypted in memory and stored — messages,
//! session and sender-key state, the cursor — in one transaction, and only then
//! acknowledged to the relay. Redelivered messages are recognised (message id,
//! or a ratchet that already used the key) and acknowledged without effect.
//! Anything that cannot be authenticated is dropped and recorded as a security
//! event. The user a sending device belongs to comes from the relay directory
//! (once, then from the contacts); a payload claiming another user is refused.
//!
//! TTL is carried end to end: the sender's absolute expiry is inside the
//! encrypted payload; the receiver keeps `min(payload expiry, relay expiry)`.

use std::collections::HashMap;

use occ_protocol::api::{
    OneTimePreKeyJson, OutEnvelope, RegisterRequest, SendRequest, SignedPreKeyJson, device_id_hex,
    parse_device_id, register_message,
};
use occ_protocol::payload::{Payload, TextMessage, ThreadInfo};
use occ_protocol::{Envelope, IdentityKeys, PreKeyBundle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::{Account, CryptoError, DeviceId, IdentityPublic, Session, ThreadKeys};
use crate::error::{Error, Result};
use crate::store::outbox::{self, OutboxRow};
use crate::store::{Inserted, NewMessage, Store, messages, sessions};
use crate::transport::{ApiClient, PinSet, RelayEndpoint, SessionInfo, TransportError};

/// One-time prekeys kept published on the relay.
pub const PREKEY_BATCH: usize = 100;
/// Inbox page size.
pub const INBOX_PAGE: usize = 500;
/// Longest backoff between send attempts.
pub const MAX_BACKOFF_MS: i64 = 5 * 60 * 1000;

/// Enrolment with a relay, persisted in the profile.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Enrolment {
    /// Relay base URL.
    pub url: String,
    /// Pins (`sha256/...`).
    pub pins: Vec<String>,
    /// Pin set expiry, ms.
    pub pins_expire_ms: Option<i64>,
    /// After expiry, validate the chain only (else fail closed).
    pub pins_lapse_to_chain: bool,
    /// Private CA (PEM) if not using the public roots.
    pub ca_pem: Option<String>,
    /// This device's user.
    pub user: String,
    /// This device's id (hex).
    pub device_id: String,
    /// The relay's service key, learned at enrolment (hex).
    pub service_key: String,
}

/// The relay endpoint for a URL, pins (with expiry policy) and optional CA.
pub(crate) fn endpoint(
    url: &str,
    pins: &[String],
    pins_expire_ms: Option<i64>,
    pins_lapse_to_chain: bool,
    ca_pem: Option<&str>,
) -> Result<RelayEndpoint> {
    let mut set = PinSet::parse(pins)?;
    set.expires_ms = pins_expire_ms;
    if pins_lapse_to_chain {
        set.after_expiry = crate::transport::AfterExpiry::ValidateChainOnly;
    }
    Ok(RelayEndpoint {
        url: url.to_string(),
        pins: set,
        ca_pem: ca_pem.map(|p| p.as_bytes().to_vec()),
    })
}

/// The registration request for `account` as `user`, signed by its identity
/// key (proof of possession).
pub fn registration(
    account: &Account,
    user: &str,
    push_endpoint: Option<&str>,
) -> Result<RegisterRequest> {
    let identity = account.identity();
    let mut w = occ_protocol::codec::Writer::new();
    identity.public().keys().write(&mut w);
    let identity_bytes = w.into_vec();
    let spk = account.signed_prekey()?;
    let signature = identity.sign(b"", &register_message(user, &identity_bytes, push_endpoint));
    Ok(RegisterRequest {
        user: user.to_string(),
        identity: identity_bytes.into(),
        signed_prekey: SignedPreKeyJson {
            id: spk.id,
            key: spk.public.to_vec().into(),
            signature: spk.signature.to_vec().into(),
        },
        one_time_prekeys: account
            .one_time_prekeys()
            .into_iter()
            .map(|(id, k)| OneTimePreKeyJson {
                id,
                key: k.to_vec().into(),
            })
            .collect(),
        push_endpoint: push_endpoint.map(str::to_string),
        signature: signature.to_vec().into(),
    })
}

impl Enrolment {
    pub(crate) fn endpoint(&self) -> Result<RelayEndpoint> {
        endpoint(
            &self.url,
            &self.pins,
            self.pins_expire_ms,
            self.pins_lapse_to_chain,
            self.ca_pem.as_deref(),
        )
    }

    pub(crate) fn service_key_bytes(&self) -> Result<[u8; 32]> {
        parse_device_id(&self.service_key)
            .ok_or_else(|| Error::Storage("stored service key is malformed".into()))
    }
}

/// Where a message goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// One user (a direct conversation).
    User(String),
    /// A thread; `members` are added to it (the sender is always a member).
    Thread {
        /// Thread id (1–64 of `A-Z a-z 0-9 - _ . : @`).
        id: String,
        /// Users to include.
        members: Vec<String>,
    },
}

/// What a flush did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Messages the relay accepted.
    pub sent: usize,
    /// Messages still waiting (transient failure).
    pub pending: usize,
    /// Messages dropped (expired or refused): (message id, reason).
    pub failed: Vec<(String, String)>,
}

/// What a receive did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiveReport {
    /// New messages stored: (thread id, message id, sender user).
    pub messages: Vec<(String, String, String)>,
    /// Envelopes dropped as unauthenticated or malformed.
    pub rejected: usize,
}

/// The direct thread id of two users: the same on both sides.
pub fn direct_thread_id(a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    let mut h = Sha256::new();
    h.update(b"occ/v1/direct-thread");
    h.update((x.len() as u32).to_be_bytes());
    h.update(x.as_bytes());
    h.update((y.len() as u32).to_be_bytes());
    h.update(y.as_bytes());
    format!("dm-{}", &hex::encode(h.finalize())[..24])
}

fn random_hex<const N: usize>() -> Result<String> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| Error::Crypto("no randomness".into()))?;
    Ok(hex::encode(b))
}

fn identity_from(bytes: &[u8]) -> Result<IdentityPublic, Error> {
    let mut r = occ_protocol::codec::Reader::new(bytes);
    let keys = IdentityKeys::read(&mut r).map_err(CryptoError::from)?;
    r.finish().map_err(CryptoError::from)?;
    Ok(IdentityPublic::verify(&keys)?)
}

/// A device of a recipient user, as the relay directory lists it (verified:
/// its id is its identity's signing key).
#[derive(Clone)]
struct Device {
    id: DeviceId,
    identity: IdentityPublic,
}

/// A sending device's user, and its identity when first learned from the relay.
struct Sender {
    user: String,
    identity: Option<Vec<u8>>,
}

/// The engine's state: one open profile and its relay connection.
pub(crate) struct Inner {
    pub store: Store,
    pub account: Account,
    pub enrolment: Option<Enrolment>,
    pub api: Option<ApiClient>,
    directory: HashMap<String, (Vec<Device>, i64)>,
}

type ApiFuture<'a, T> = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::result::Result<T, TransportError>> + Send + 'a>,
>;

/// How long a directory lookup is reused.
const DIRECTORY_TTL_MS: i64 = 60_000;

impl Inner {
    pub(crate) fn new(store: Store, account: Account, enrolment: Option<Enrolment>) -> Self {
        Self {
            store,
            account,
            enrolment,
            api: None,
            directory: HashMap::new(),
        }
    }

    pub(crate) fn enrolment(&self) -> Result<&Enrolment> {
        self.enrolment.as_ref().ok_or(Error::NotEnrolled)
    }

    fn user(&self) -> Result<String> {
        Ok(self.enrolment()?.user.clone())
    }

    fn sign(&self) -> impl Fn(&[u8]) -> [u8; 64] + '_ {
        move |m: &[u8]| self.account.identity().sign(b"", m)
    }

    /// Records a failure of the relay's identity (pin or acknowledgement).
    fn note_transport_failure(&mut self, e: &TransportError) {
        let (kind, detail) = match e {
            TransportError::PinMismatch { host, presented } => (
                "pin_failure",
                format!("host={host} presented={}", presented.join(",")),
            ),
            TransportError::ForgedAcknowledgement(m) => ("relay_unverified", m.clone()),
            _ => return,
        };
        let _ = self.store.record_security_event(kind, &detail);
    }

    /// Opens a verified session with the relay: pinned TLS, the signed
    /// acknowledgement checked against the enrolled service key (its time then
    /// feeds trusted time), and a device token.
    pub(crate) async fn connect(&mut self) -> Result<SessionInfo> {
        let enrolment = self.enrolment()?.clone();
        let expected = enrolment.service_key_bytes()?;
        if self.api.is_none() {
            self.api = Some(ApiClient::new(&enrolment.endpoint()?)?);
        }
        let api = self.api.take().ok_or(Error::NotEnrolled)?;
        api.clear_token();
        let result = async {
            let info = api.start_session(Some(&expected)).await?;
            api.authenticate(&enrolment.device_id, self.sign()).await?;
            Ok::<_, TransportError>(info)
        }
        .await;
        self.api = Some(api);
        match result {
            Ok(info) => {
                self.store.observe_server_time(info.server_time_ms)?;
                Ok(info)
            }
            Err(e) => {
                self.note_transport_failure(&e);
                Err(e.into())
            }
        }
    }

    async fn ensure_connected(&mut self) -> Result<()> {
        if !self.api.as_ref().is_some_and(ApiClient::has_token) {
            self.connect().await?;
        }
        Ok(())
    }

    fn api(&self) -> Result<&ApiClient> {
        self.api.as_ref().ok_or(Error::NotEnrolled)
    }

    /// Calls the relay; if the token was refused (expired, or the relay
    /// restarted), re-authenticates — re-verifying the relay — and retries once.
    async fn call<T, F>(&mut self, f: F) -> Result<T>
    where
        F: for<'a> Fn(&'a ApiClient) -> ApiFuture<'a, T>,
    {
        self.ensure_connected().await?;
        match f(self.api()?).await {
            Err(TransportError::Unauthorized(_)) => {
                self.connect().await?;
                Ok(f(self.api()?).await?)
            }
            other => Ok(other?),
        }
    }

    /// Accepts a message for sending: stored and queued in one transaction.
    pub(crate) fn enqueue(
        &mut self,
        to: &Recipient,
        text: &[u8],
        ttl_secs: u64,
        read_timer_secs: Option<u64>,
    ) -> Result<String> {
        let me = self.user()?;
        if ttl_secs == 0 || ttl_secs > occ_protocol::api::MAX_TTL_SECS {
            return Err(Error::InvalidInput(format!(
                "the TTL must be 1 to {} seconds",
                occ_protocol::api::MAX_TTL_SECS
            )));
        }
        if text.len() > messages::MAX_BODY_LEN {
            return Err(Error::InvalidInput(
                "the message is too long; send it as an attachment".into(),
            ));
        }
        let (thread_id, title, group, members, target) = match to {
            Recipient::User(u) => {
                if !occ_protocol::api::valid_user_name(u) || *u == me {
                    return Err(Error::InvalidInput(format!("cannot send to user {u:?}")));
                }
                (
                    direct_thread_id(&me, u),
                    u.clone(),
                    false,
                    Vec::new(),
                    format!("user:{u}"),
                )
            }
            Recipient::Thread { id, members } => {
                messages::check_id("a thread id", id).map_err(Error::from)?;
                if id.starts_with("dm-") {
                    return Err(Error::InvalidInput(
                        "thread ids starting with dm- are reserved".into(),
                    ));
                }
                let mut all = outbox::members(&self.store.conn, id)?;
                for m in members.iter().chain(std::iter::once(&me)) {
                    if !occ_protocol::api::valid_user_name(m) {
                        return Err(Error::InvalidInput(format!("invalid user name {m:?}")));
                    }
                    if !all.contains(m) {
                        all.push(m.clone());
                    }
                }
                all.sort();
                if all.len() < 2 {
                    return Err(Error::InvalidInput(
                        "a thread needs at least one other member".into(),
                    ));
                }
                (id.clone(), id.clone(), true, all, format!("thread:{id}"))
            }
        };
        let now = self.store.now_ms();
        let message_id = random_hex::<16>()?;
        let ttl_expiry_ms = now + (ttl_secs as i64) * 1000;
        let read_timer_ms = read_timer_secs.map(|s| (s as i64) * 1000);
        let payload = Payload::Text(TextMessage {
            message_id: message_id.clone(),
            thread_id: thread_id.clone(),
            thread_title: title.clone(),
            group,
            sender_user: me.clone(),
            sent_ms: now,
            ttl_expiry_ms,
            read_timer_ms,
            body: text.to_vec(),
        });
        let idempotency_key = random_hex::<16>()?;
        let tx = self.store.conn.transaction()?;
        messages::touch_thread_in(&tx, &thread_id, &title, thread_kind(group), now)?;
        if group && outbox::members(&tx, &thread_id)? != members {
            outbox::set_members(&tx, &thread_id, &members)?;
            // Everyone must learn the new member list: the next seal sends
            // it (with our current sender key, which receivers already know
            // and ignore) to every member device again.
            tx.execute(
                "DELETE FROM sender_key_shared WHERE thread_id = ?1",
                [&thread_id],
            )?;
        }
        messages::insert_in(
            &tx,
            now,
            &NewMessage {
                id: &message_id,
                thread_id: &thread_id,
                sender: &me,
                outgoing: true,
                body: text,
                sent_ms: now,
                ttl_expiry_ms,
                read_timer_ms,
            },
        )?;
        outbox::enqueue_in(
            &tx,
            now,
            &idempotency_key,
            &message_id,
            &target,
            &payload.encode(),
            ttl_secs as i64,
            ttl_expiry_ms,
        )?;
        crate::store::persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(message_id)
    }

    /// Removes `user` from a thread: their sender keys are forgotten and ours
    /// is rotated, so nothing sent afterwards is readable by them. The new key
    /// and the new member list go to the remaining members with the next
    /// message (the remaining members then forget the user's keys and rotate
    /// their own).
    pub(crate) fn remove_member(&mut self, thread_id: &str, user: &str) -> Result<()> {
        let me = self.user()?;
        let members = outbox::members(&self.store.conn, thread_id)?;
        if !members.iter().any(|m| m == user) {
            return Err(Error::NotFound(format!(
                "{user} is not a member of {thread_id}"
            )));
        }
        if user == me {
            return Err(Error::InvalidInput(
                "cannot remove yourself from a thread".into(),
            ));
        }
        let remaining: Vec<String> = members.into_iter().filter(|m| m != user).collect();
        let now = self.store.now_ms();
        let tx = self.store.conn.transaction()?;
        let mut keys = match crate::store::sessions::load_thread_keys_in(&tx, thread_id)? {
            Some(k) => k,
            None => ThreadKeys::new(thread_id.as_bytes(), (now / 1000) as u64)?,
        };
        for device in contacts_of(&tx, user)? {
            keys.remove_member(device, (now / 1000) as u64)?;
        }
        keys.rotate((now / 1000) as u64)?;
        outbox::set_members(&tx, thread_id, &remaining)?;
        sessions::save_thread_keys_in(&tx, now, &keys)?;
        tx.execute(
            "DELETE FROM sender_key_shared WHERE thread_id = ?1",
            [thread_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The verified devices of `user` (cached briefly), recorded as contacts.
    async fn devices_of(&mut self, user: &str) -> Result<Vec<Device>> {
        let now = self.store.now_ms();
        if let Some((devices, at)) = self.directory.get(user)
            && now - at < DIRECTORY_TTL_MS
        {
            return Ok(devices.clone());
        }
        let listed = self
            .call(|api| {
                let user = user.to_string();
                Box::pin(async move { api.devices(&user).await })
            })
            .await?;
        let mut devices = Vec::new();
        for d in listed.devices {
            let identity = identity_from(d.identity.as_slice())?;
            if device_id_hex(&identity.keys().signing_key) != d.device_id {
                return Err(Error::Relay(format!(
                    "the relay listed a device of {user} under a wrong id"
                )));
            }
            outbox::contact_add(
                &self.store.conn,
                now,
                &identity.device_id().0,
                user,
                d.identity.as_slice(),
            )?;
            if let Some(known) = outbox::contact_user(&self.store.conn, &identity.device_id().0)?
                && known != user
            {
                return Err(Error::Relay(format!(
                    "device listed for {user} belongs to {known}"
                )));
            }
            devices.push(Device {
                id: identity.device_id(),
                identity,
            });
        }
        self.directory
            .insert(user.to_string(), (devices.clone(), now));
        Ok(devices)
    }

    /// The session to send to `device` with: the most recently used one, or a
    /// new one from a freshly claimed prekey bundle.
    async fn session_for(
        &mut self,
        device: &Device,
        cache: &mut HashMap<DeviceId, Session>,
    ) -> Result<()> {
        if cache.contains_key(&device.id) {
            return Ok(());
        }
        if let Some(s) = self.store.sessions_with(&device.id)?.into_iter().next() {
            cache.insert(device.id, s);
            return Ok(());
        }
        let bytes = self
            .call(|api| {
                let id = device.id.to_hex();
                Box::pin(async move { api.bundle(&id).await })
            })
            .await?;
        let bundle = PreKeyBundle::parse(&bytes).map_err(CryptoError::from)?;
        if bundle.identity != *device.identity.keys() {
            return Err(Error::Relay(
                "the prekey bundle does not match the device's identity".into(),
            ));
        }
        let session = Session::initiate(self.account.identity(), &bundle)?;
        cache.insert(device.id, session);
        Ok(())
    }

    /// Builds the sealed request for one outbox row and stores it (with the
    /// advanced crypto state) atomically.
    async fn seal(&mut self, row: &OutboxRow) -> Result<String> {
        let me = self.user()?;
        let my_device = self.account.device_id();
        let payload = Payload::parse(&row.payload).map_err(CryptoError::from)?;
        let Payload::Text(text) = &payload else {
            return Err(Error::Storage(
                "outbox payload is not a text message".into(),
            ));
        };
        let mut sessions: HashMap<DeviceId, Session> = HashMap::new();
        let mut envelopes = Vec::new();
        let mut thread_keys: Option<ThreadKeys> = None;
        let mut shared: Vec<(DeviceId, Vec<u8>)> = Vec::new();
        let mut thread_hint = None;
        if let Some(user) = row.target.strip_prefix("user:") {
            let devices = self.devices_of(user).await?;
            if devices.is_empty() {
                return Err(Error::NotFound(format!("user {user} has no devices")));
            }
            for d in devices.iter().filter(|d| d.id != my_device) {
                self.session_for(d, &mut sessions).await?;
                seal_pairwise(&mut sessions, &d.id, &[&row.payload], &mut envelopes)?;
            }
        } else if let Some(thread) = row.target.strip_prefix("thread:") {
            thread_hint = Some(thread.to_string());
            let members = outbox::members(&self.store.conn, thread)?;
            let now = self.store.now_ms();
            let mut keys = match self.store.thread_keys(thread)? {
                Some(k) => k,
                None => ThreadKeys::new(thread.as_bytes(), (now / 1000) as u64)?,
            };
            if keys.needs_rotation((now / 1000) as u64) {
                keys.rotate((now / 1000) as u64)?;
            }
            let distribution = keys.distribution();
            let info = Payload::ThreadInfo(ThreadInfo {
                thread_id: thread.to_string(),
                title: text.thread_title.clone(),
                members: members.clone(),
            })
            .encode();
            let key_payload = Payload::SenderKey(distribution.clone()).encode();
            let mut targets = Vec::new();
            for user in members.iter().filter(|u| **u != me) {
                for d in self.devices_of(user).await? {
                    if d.id != my_device {
                        targets.push(d);
                    }
                }
            }
            for d in &targets {
                let has = outbox::shared_distribution(&self.store.conn, thread, &d.id.0)?;
                if has.as_deref() == Some(&distribution.distribution_id[..]) {
                    continue;
                }
                self.session_for(d, &mut sessions).await?;
                seal_pairwise(&mut sessions, &d.id, &[&info, &key_payload], &mut envelopes)?;
                shared.push((d.id, distribution.distribution_id.to_vec()));
            }
            let group = keys.encrypt(&row.payload)?;
            for d in &targets {
                envelopes.push(OutEnvelope {
                    device_id: d.id.to_hex(),
                    envelope: group.clone().into(),
                });
            }
            thread_keys = Some(keys);
        } else {
            return Err(Error::Storage(format!(
                "unknown outbox target {:?}",
                row.target
            )));
        }
        if envelopes.is_empty() {
            return Err(Error::NotFound("no recipient device".into()));
        }
        let request = SendRequest {
            idempotency_key: row.idempotency_key.clone(),
            ttl_secs: row.ttl_secs as u64,
            class: "text".into(),
            thread: thread_hint,
            envelopes,
        };
        let sealed = serde_json::to_string(&request).map_err(|e| Error::Storage(e.to_string()))?;
        let now = self.store.now_ms();
        let tx = self.store.conn.transaction()?;
        for s in sessions.values() {
            sessions::save_session_in(&tx, now, s)?;
        }
        if let Some(keys) = &thread_keys {
            sessions::save_thread_keys_in(&tx, now, keys)?;
            let thread = std::str::from_utf8(keys.thread_id()).unwrap_or_default();
            for (d, dist) in &shared {
                outbox::mark_shared(&tx, thread, &d.0, dist)?;
            }
        }
        outbox::seal_in(&tx, row.seq, &sealed)?;
        tx.commit()?;
        Ok(sealed)
    }

    /// Sends the outbox, oldest first. Unless `now_regardless` (a user asked),
    /// it stops at the first message still backing off, keeping the order.
    pub(crate) async fn flush(&mut self, now_regardless: bool) -> Result<FlushReport> {
        let mut report = FlushReport::default();
        let rows = outbox::rows(&self.store.conn)?;
        let now = self.store.now_ms();
        let first_due = rows
            .first()
            .is_some_and(|r| now_regardless || r.next_attempt_ms <= now || r.expires_ms <= now);
        if !first_due {
            report.pending = rows.len();
            return Ok(report);
        }
        self.ensure_connected().await?;
        for (i, row) in rows.iter().enumerate() {
            let now = self.store.now_ms();
            if !now_regardless && row.next_attempt_ms > now && row.expires_ms > now {
                report.pending = rows.len() - i;
                return Ok(report);
            }
            if row.expires_ms <= now {
                outbox::remove_in(&self.store.conn, row.seq)?;
                report.failed.push((
                    row.message_id.clone(),
                    "expired before it could be sent".into(),
                ));
                continue;
            }
            let attempt = async {
                let sealed = match &row.sealed {
                    Some(s) => s.clone(),
                    None => self.seal(row).await?,
                };
                let request: SendRequest = serde_json::from_str(&sealed)
                    .map_err(|e| Error::Storage(format!("sealed outbox row: {e}")))?;
                self.call(|api| {
                    let request = request.clone();
                    Box::pin(async move { api.send(&request).await })
                })
                .await
            }
            .await;
            match attempt {
                Ok(_) => {
                    outbox::remove_in(&self.store.conn, row.seq)?;
                    report.sent += 1;
                }
                Err(Error::Network(m)) => {
                    let backoff = (1000i64 << row.attempts.clamp(0, 20)).min(MAX_BACKOFF_MS);
                    outbox::defer_in(&self.store.conn, row.seq, now + backoff)?;
                    report.pending = rows.len() - i;
                    tracing::info!("send deferred: {m}");
                    return Err(Error::Network(m));
                }
                Err(
                    e @ (Error::PinMismatch { .. } | Error::UntrustedRelay(_) | Error::Storage(_)),
                ) => {
                    report.pending = rows.len() - i;
                    return Err(e);
                }
                Err(e) => {
                    outbox::remove_in(&self.store.conn, row.seq)?;
                    let _ = self.store.record_security_event(
                        "delivery_failed",
                        &format!("message={} reason={e}", row.message_id),
                    );
                    report.failed.push((row.message_id.clone(), e.to_string()));
                }
            }
        }
        Ok(report)
    }

    /// Drains the inbox (waiting up to `wait_ms` for the first message).
    pub(crate) async fn receive(&mut self, wait_ms: u64) -> Result<ReceiveReport> {
        self.ensure_connected().await?;
        let mut report = ReceiveReport::default();
        let mut wait = wait_ms;
        loop {
            let cursor = cursor(&self.store)?;
            let page = self
                .call(|api| Box::pin(api.inbox(cursor, wait, INBOX_PAGE)))
                .await?;
            wait = 0;
            let Some(last) = page.messages.last().map(|m| m.seq) else {
                return Ok(report);
            };
            let senders = self.verify_senders(&page.messages).await?;
            self.store_page(&page.messages, &senders, true, &mut report)?;
            if let Err(e) = self.api()?.ack(last).await {
                tracing::info!("acknowledge failed (will be repeated): {e}");
            }
            if page.messages.len() < INBOX_PAGE {
                return Ok(report);
            }
        }
    }

    /// Downloads and stores one message by relay id (the push-prompt path).
    /// It stays queued on the relay until the inbox cursor passes it; the
    /// later inbox delivery is recognised as already processed.
    pub(crate) async fn fetch(&mut self, relay_id: &str) -> Result<ReceiveReport> {
        self.ensure_connected().await?;
        let item = self
            .call(|api| {
                let id = relay_id.to_string();
                Box::pin(async move { api.fetch(&id).await })
            })
            .await?;
        let items = [item];
        let senders = self.verify_senders(&items).await?;
        let mut report = ReceiveReport::default();
        self.store_page(&items, &senders, false, &mut report)?;
        Ok(report)
    }

    /// The user of every sending device on the page: from the contacts, or —
    /// for a device seen for the first time — from the relay directory (the
    /// authority on which device belongs to which user). `None` for a device
    /// the relay does not know.
    async fn verify_senders(
        &mut self,
        items: &[occ_protocol::api::InboxItem],
    ) -> Result<HashMap<DeviceId, Option<Sender>>> {
        let mut out = HashMap::new();
        for item in items {
            let Some(id) = parse_device_id(&item.sender_device) else {
                continue;
            };
            let id = DeviceId(id);
            if out.contains_key(&id) {
                continue;
            }
            let sender = match outbox::contact_user(&self.store.conn, &id.0)? {
                Some(user) => Some(Sender {
                    user,
                    identity: None,
                }),
                None => match self
                    .call(|api| {
                        let hex = id.to_hex();
                        Box::pin(async move { api.device(&hex).await })
                    })
                    .await
                {
                    Ok(d) if d.device_id == id.to_hex() => Some(Sender {
                        user: d.user,
                        identity: Some(d.identity.0),
                    }),
                    Ok(_) | Err(Error::NotFound(_)) => None,
                    Err(e) => return Err(e),
                },
            };
            out.insert(id, sender);
        }
        Ok(out)
    }

    /// Decrypts and stores one inbox page in a single transaction.
    fn store_page(
        &mut self,
        items: &[occ_protocol::api::InboxItem],
        senders: &HashMap<DeviceId, Option<Sender>>,
        advance_cursor: bool,
        report: &mut ReceiveReport,
    ) -> Result<()> {
        let me = self.user()?;
        let now = self.store.now_ms();
        let mut sessions: HashMap<DeviceId, Vec<Session>> = HashMap::new();
        let mut dirty_sessions: Vec<(DeviceId, usize)> = Vec::new();
        let mut threads: HashMap<String, ThreadKeys> = HashMap::new();
        let mut account_dirty = false;
        let tx = self.store.conn.transaction()?;
        for item in items {
            let result = decrypt_item(
                &tx,
                &mut self.account,
                &mut sessions,
                &mut dirty_sessions,
                &mut threads,
                &mut account_dirty,
                item,
            );
            let (sender, payload) = match result {
                Ok(Some(x)) => x,
                Ok(None) => continue, // a redelivery: already processed
                Err(e) => {
                    reject(
                        &tx,
                        now,
                        report,
                        "undecryptable",
                        format!(
                            "relay_id={} sender={} error={e}",
                            item.id, item.sender_device
                        ),
                    )?;
                    continue;
                }
            };
            let Some(Some(known)) = senders.get(&sender.0) else {
                reject(
                    &tx,
                    now,
                    report,
                    "unknown_sender",
                    format!("device={}", sender.0),
                )?;
                continue;
            };
            let sender_user = known.user.clone();
            if let Payload::Text(t) = &payload
                && t.sender_user != sender_user
            {
                reject(
                    &tx,
                    now,
                    report,
                    "sender_mismatch",
                    format!(
                        "device={} claimed={} directory={sender_user}",
                        sender.0, t.sender_user
                    ),
                )?;
                continue;
            }
            if let Some(identity) = &known.identity {
                if identity_from(identity)
                    .map(|i| i.keys().clone())
                    .ok()
                    .as_ref()
                    != Some(sender.1.keys())
                {
                    reject(
                        &tx,
                        now,
                        report,
                        "identity_mismatch",
                        format!("device={}", sender.0),
                    )?;
                    continue;
                }
                outbox::contact_add(&tx, now, &sender.0.0, &sender_user, identity)?;
            }
            apply_payload(
                &tx,
                now,
                &me,
                &sender_user,
                sender.0,
                item,
                payload,
                &mut threads,
                report,
            )?;
        }
        for (device, index) in dirty_sessions {
            if let Some(s) = sessions.get(&device).and_then(|v| v.get(index)) {
                sessions::save_session_in(&tx, now, s)?;
            }
        }
        for keys in threads.values() {
            sessions::save_thread_keys_in(&tx, now, keys)?;
        }
        if account_dirty {
            sessions::save_account_in(&tx, &self.account)?;
        }
        if let Some(last) = items.last().filter(|_| advance_cursor) {
            outbox::config_set(&tx, "inbox_cursor", &last.seq.to_be_bytes())?;
        }
        crate::store::persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(())
    }
}

/// Encrypts `payloads`, in order, for `device` on its cached session.
fn seal_pairwise(
    sessions: &mut HashMap<DeviceId, Session>,
    device: &DeviceId,
    payloads: &[&[u8]],
    out: &mut Vec<OutEnvelope>,
) -> Result<()> {
    let session = sessions
        .get_mut(device)
        .ok_or(Error::Crypto("no session with the device".into()))?;
    for p in payloads {
        out.push(OutEnvelope {
            device_id: device.to_hex(),
            envelope: session.encrypt(p)?.into(),
        });
    }
    Ok(())
}

fn cursor(store: &Store) -> Result<i64> {
    Ok(outbox::config_get(&store.conn, "inbox_cursor")?
        .and_then(|v| v.try_into().ok())
        .map(i64::from_be_bytes)
        .unwrap_or(0))
}

/// Decrypts one inbox item. `Ok(None)` means "already processed".
#[allow(clippy::too_many_arguments)]
fn decrypt_item(
    conn: &rusqlite::Connection,
    account: &mut Account,
    sessions: &mut HashMap<DeviceId, Vec<Session>>,
    dirty: &mut Vec<(DeviceId, usize)>,
    threads: &mut HashMap<String, ThreadKeys>,
    account_dirty: &mut bool,
    item: &occ_protocol::api::InboxItem,
) -> Result<Option<((DeviceId, IdentityPublic), Payload)>> {
    let sender = DeviceId(
        parse_device_id(&item.sender_device)
            .ok_or_else(|| Error::InvalidInput("bad sender id".into()))?,
    );
    let envelope = Envelope::parse(item.envelope.as_slice()).map_err(CryptoError::from)?;
    if let std::collections::hash_map::Entry::Vacant(e) = sessions.entry(sender) {
        let loaded = crate::store::sessions::load_sessions_in(conn, &sender)?;
        e.insert(loaded);
    }
    let list = sessions
        .get_mut(&sender)
        .ok_or(Error::Crypto("session cache".into()))?;
    let plaintext = match envelope {
        Envelope::Group(g) => {
            let thread = outbox::thread_of_distribution(conn, &g.distribution_id)?
                .ok_or(Error::Crypto(CryptoError::UnknownSenderKey.to_string()))?;
            if !threads.contains_key(&thread) {
                let keys = crate::store::sessions::load_thread_keys_in(conn, &thread)?
                    .ok_or(Error::Crypto(CryptoError::UnknownSenderKey.to_string()))?;
                threads.insert(thread.clone(), keys);
            }
            let keys = threads
                .get_mut(&thread)
                .ok_or(Error::Crypto("thread cache".into()))?;
            let (from, plaintext) = match keys.decrypt_message(g) {
                Ok(x) => x,
                Err(CryptoError::DuplicateMessage) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            if from != sender {
                return Err(Error::Crypto(
                    "thread message relayed under another device".into(),
                ));
            }
            let identity = list
                .first()
                .map(|s| s.remote_identity().clone())
                .ok_or(Error::Crypto("no session with the sender".into()))?;
            let payload = Payload::parse(&plaintext).map_err(CryptoError::from)?;
            match &payload {
                Payload::Text(t) if t.group && t.thread_id == thread => {}
                _ => return Err(Error::Crypto("thread message for another thread".into())),
            }
            return Ok(Some(((sender, identity), payload)));
        }
        Envelope::PreKey(p) => {
            if let Some(i) = list.iter().position(|s| s.matches(&p.prekey)) {
                match list[i].decrypt_envelope(Envelope::PreKey(p)) {
                    Ok(pt) => {
                        mark(dirty, sender, i);
                        pt
                    }
                    Err(CryptoError::DuplicateMessage) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            } else {
                if p.prekey.sender.signing_key != sender.0 {
                    return Err(Error::Crypto(
                        "prekey message from another device than the relay says".into(),
                    ));
                }
                let (session, pt) = account.accept(p)?;
                *account_dirty = true;
                list.insert(0, session);
                for d in dirty.iter_mut().filter(|d| d.0 == sender) {
                    d.1 += 1;
                }
                mark(dirty, sender, 0);
                pt
            }
        }
        Envelope::Message(m) => {
            let mut out = None;
            let mut duplicate = false;
            for (i, s) in list.iter_mut().enumerate() {
                match s.decrypt_envelope(Envelope::Message(m.clone())) {
                    Ok(pt) => {
                        out = Some((i, pt));
                        break;
                    }
                    Err(CryptoError::DuplicateMessage) => duplicate = true,
                    Err(_) => {}
                }
            }
            match out {
                Some((i, pt)) => {
                    mark(dirty, sender, i);
                    pt
                }
                None if duplicate => return Ok(None),
                None => return Err(Error::Crypto(CryptoError::DecryptionFailed.to_string())),
            }
        }
    };
    let identity = list
        .iter()
        .find(|s| s.remote_identity().device_id() == sender)
        .map(|s| s.remote_identity().clone())
        .ok_or(Error::Crypto("session with another device".into()))?;
    let payload = Payload::parse(&plaintext).map_err(CryptoError::from)?;
    Ok(Some(((sender, identity), payload)))
}

fn thread_kind(group: bool) -> crate::store::ThreadKind {
    if group {
        crate::store::ThreadKind::Group
    } else {
        crate::store::ThreadKind::Direct
    }
}

/// Drops an incoming item: counts it and records why (metadata only).
fn reject(
    conn: &rusqlite::Connection,
    now: i64,
    report: &mut ReceiveReport,
    kind: &str,
    detail: String,
) -> Result<()> {
    report.rejected += 1;
    outbox::security_event_in(conn, now, kind, &detail)?;
    Ok(())
}

/// Whether `user` is a member of `thread`.
fn is_member(conn: &rusqlite::Connection, thread: &str, user: &str) -> Result<bool> {
    Ok(outbox::members(conn, thread)?.iter().any(|m| m == user))
}

fn mark(dirty: &mut Vec<(DeviceId, usize)>, device: DeviceId, index: usize) {
    if !dirty.contains(&(device, index)) {
        dirty.push((device, index));
    }
}

/// Applies one authenticated payload inside the page transaction.
#[allow(clippy::too_many_arguments)]
fn apply_payload(
    conn: &rusqlite::Connection,
    now: i64,
    me: &str,
    sender_user: &str,
    sender: DeviceId,
    item: &occ_protocol::api::InboxItem,
    payload: Payload,
    threads: &mut HashMap<String, ThreadKeys>,
    report: &mut ReceiveReport,
) -> Result<()> {
    match payload {
        Payload::Text(t) => {
            let expected_direct = direct_thread_id(me, sender_user);
            if !t.group && t.thread_id != expected_direct {
                return reject(
                    conn,
                    now,
                    report,
                    "misrouted",
                    format!("relay_id={}", item.id),
                );
            }
            if t.group && !is_member(conn, &t.thread_id, sender_user)? {
                return reject(
                    conn,
                    now,
                    report,
                    "non_member",
                    format!("relay_id={}", item.id),
                );
            }
            let title = if t.group {
                t.thread_title.clone()
            } else {
                sender_user.to_string()
            };
            messages::touch_thread_in(conn, &t.thread_id, &title, thread_kind(t.group), now)?;
            let outcome = messages::insert_in(
                conn,
                now,
                &NewMessage {
                    id: &t.message_id,
                    thread_id: &t.thread_id,
                    sender: sender_user,
                    outgoing: false,
                    body: &t.body,
                    sent_ms: t.sent_ms,
                    ttl_expiry_ms: t.ttl_expiry_ms.min(item.expires_ms),
                    read_timer_ms: t.read_timer_ms,
                },
            )?;
            if outcome == Inserted::New {
                report
                    .messages
                    .push((t.thread_id, t.message_id, sender_user.to_string()));
            }
        }
        Payload::ThreadInfo(info) => {
            messages::check_id("a thread id", &info.thread_id).map_err(Error::from)?;
            let current = outbox::members(conn, &info.thread_id)?;
            if !current.is_empty() && !current.iter().any(|m| m == sender_user) {
                return reject(
                    conn,
                    now,
                    report,
                    "non_member",
                    format!("relay_id={}", item.id),
                );
            }
            if !info.members.iter().any(|m| m == me) {
                return Ok(());
            }
            conn.execute(
                "INSERT INTO threads (id, title, kind, created_ms, last_ms) VALUES (?1, ?2, 1, ?3, ?3)
                 ON CONFLICT(id) DO UPDATE SET title = excluded.title",
                rusqlite::params![info.thread_id, info.title, now],
            )?;
            let removed: Vec<&String> = current
                .iter()
                .filter(|m| !info.members.contains(m))
                .collect();
            outbox::set_members(conn, &info.thread_id, &info.members)?;
            if !removed.is_empty() {
                // Forget removed members' keys and rotate ours: the next send
                // redistributes only to the remaining members.
                let keys = match threads.remove(&info.thread_id) {
                    Some(k) => Some(k),
                    None => crate::store::sessions::load_thread_keys_in(conn, &info.thread_id)?,
                };
                if let Some(mut keys) = keys {
                    for user in removed {
                        for device in contacts_of(conn, user)? {
                            keys.remove_member(device, (now / 1000) as u64)?;
                        }
                    }
                    conn.execute(
                        "DELETE FROM sender_key_shared WHERE thread_id = ?1",
                        [&info.thread_id],
                    )?;
                    threads.insert(info.thread_id.clone(), keys);
                }
            }
        }
        Payload::SenderKey(d) => {
            let thread = std::str::from_utf8(&d.thread_id)
                .map_err(|_| Error::Crypto("thread id is not UTF-8".into()))?
                .to_string();
            if !is_member(conn, &thread, sender_user)? {
                return reject(
                    conn,
                    now,
                    report,
                    "non_member",
                    format!("relay_id={}", item.id),
                );
            }
            if !threads.contains_key(&thread) {
                let keys = match crate::store::sessions::load_thread_keys_in(conn, &thread)? {
                    Some(k) => k,
                    None => ThreadKeys::new(thread.as_bytes(), (now / 1000) as u64)?,
                };
                threads.insert(thread.clone(), keys);
            }
            let keys = threads
                .get_mut(&thread)
                .ok_or(Error::Crypto("thread cache".into()))?;
            keys.add_member_key(sender, &d)?;
            outbox::index_distribution(conn, &d.distribution_id, &thread)?;
        }
    }
    Ok(())
}

fn contacts_of(conn: &rusqlite::Connection, user: &str) -> Result<Vec<DeviceId>> {
    let mut stmt = conn.prepare_cached("SELECT device_id FROM contacts WHERE user = ?1")?;
    let rows = stmt.query_map([user], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for r in rows {
        let v = r?;
        if let Ok(a) = <[u8; 32]>::try_from(v.as_slice()) {
            out.push(DeviceId(a));
        }
    }
    Ok(out)
}
