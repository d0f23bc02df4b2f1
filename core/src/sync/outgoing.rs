//! The durable outbox: accept, seal, send exactly once.
//!
//! 1. `send` stores the message and an outbox row (the plaintext payload) in
//!    one transaction — from then on it survives a crash.
//! 2. `flush` seals each row in order. Network first, without the local
//!    lock: the recipients' devices from the directory, and a prekey bundle
//!    for every device we have no session with. Then one transaction under
//!    the lock: sessions started or advanced, thread sender keys rotated and
//!    (re)distributed to devices that lack the current one, and the ready
//!    `SendRequest` (ciphertext + idempotency key) replaces the plaintext.
//! 3. The sealed request is POSTed; the row is deleted only after the relay
//!    answers. A retry resends the same bytes under the same key, so the
//!    relay queues it exactly once. A network failure backs off
//!    exponentially (at most [`MAX_BACKOFF_MS`]) and stops the flush, keeping
//!    the order; a refusal of the message itself (no such user, the relay
//!    refuses it, its TTL passed, its queued form is damaged) drops the row
//!    and raises `DeliveryFailed`, so it never blocks the rows behind it;
//!    a failure of the relay's identity or of local storage stops the flush
//!    and keeps the row.

use std::collections::HashMap;

use occ_protocol::PreKeyBundle;
use occ_protocol::api::{OutEnvelope, SendRequest};
use occ_protocol::payload::{Payload, TextMessage, ThreadInfo};

use super::directory::Device;
use super::threads::{members_for_send, record_members_in, secs};
use super::{Engine, Local, random_hex};
use crate::audit::AuditKind;
use crate::crypto::{CryptoError, DeviceId, Session, ThreadKeys};
use crate::error::{Error, Result};
use crate::events::ClientEvent;
use crate::store::attachments::PreparedAttachment;
use crate::store::audit::{NewEntry, append_in};
use crate::store::outbox::{self, NewOutboxRow, OutboxRow, Target};
use crate::store::threads::{self as store_threads, OnExisting, ThreadKind};
use crate::store::{
    NewMessage, SecurityEventKind, crypto_state, distributions, messages, persist_high_water,
};
use crate::transport::TransportError;

/// Longest backoff between send attempts.
pub const MAX_BACKOFF_MS: i64 = 5 * 60 * 1000;

/// Largest text a message may carry (bigger content travels as an
/// attachment): what both the store and the end-to-end payload accept.
pub const MAX_TEXT_LEN: usize = if messages::MAX_BODY_LEN < occ_protocol::payload::MAX_BODY_LEN {
    messages::MAX_BODY_LEN
} else {
    occ_protocol::payload::MAX_BODY_LEN
};

/// An urgent alert's request to its recipients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Urgency {
    /// Acknowledge within this many seconds (escalated after), if asked.
    pub ack_within_secs: Option<u64>,
}

/// Where a message goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// One user (a direct conversation).
    User {
        /// The user name.
        name: String,
    },
    /// A thread; `members` are added to it (the sender is always a member).
    Thread {
        /// Thread id (1–64 of `A-Z a-z 0-9 - _ . : @`, not starting `dm-`).
        id: String,
        /// Users to include.
        members: Vec<String>,
    },
}

/// A message that could not be delivered and was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryFailure {
    /// The message.
    pub message_id: String,
    /// Why.
    pub reason: String,
}

/// What a flush did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Messages the relay accepted.
    pub sent: u32,
    /// Messages still queued.
    pub pending: u32,
    /// Messages dropped (expired or refused).
    pub failed: Vec<DeliveryFailure>,
}

/// Which queued messages a flush attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlushMode {
    /// Those due: a message backing off waits, and so do those after it.
    Due,
    /// All of them now (an explicit user action).
    Now,
}

/// Whether a row carries a membership change rather than a message.
fn is_control(row: &OutboxRow) -> bool {
    row.message_id.starts_with(outbox::CONTROL_PREFIX)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Seconds to milliseconds, refusing anything above `max_secs`.
fn checked_ms(secs: u64, max_secs: u64, what: &str) -> Result<i64> {
    if secs == 0 || secs > max_secs {
        return Err(Error::invalid(format!(
            "the {what} must be 1 to {max_secs} seconds"
        )));
    }
    i64::try_from(secs)
        .ok()
        .and_then(|s| s.checked_mul(1000))
        .ok_or_else(|| Error::invalid(format!("the {what} is too large")))
}

impl Local {
    /// Accepts a message for sending: stored and queued in one transaction.
    pub(crate) fn enqueue(
        &mut self,
        to: &Recipient,
        text: &[u8],
        ttl_secs: u64,
        read_timer_secs: Option<u64>,
        urgent: Option<Urgency>,
        attachment: Option<&PreparedAttachment>,
    ) -> Result<String> {
        let me = self.user()?;
        self.check_unlocked()?;
        let max = occ_protocol::api::MAX_TTL_SECS;
        let ttl_ms = checked_ms(ttl_secs, max, "TTL")?;
        if let Err(reason) = crate::policy::check_send_ttl(self.policy.as_ref(), ttl_secs) {
            self.store
                .record_security_event(SecurityEventKind::PolicyDenied, &reason)?;
            return Err(Error::denied(reason));
        }
        let ack_within_ms = urgent
            .and_then(|u| u.ack_within_secs)
            .map(|s| checked_ms(s, max, "acknowledgement deadline"))
            .transpose()?;
        let read_timer_ms = read_timer_secs
            .map(|s| checked_ms(s, max, "read timer"))
            .transpose()?;
        let thumb_len = attachment.map_or(0, |a| a.reference.thumb.len());
        if text.len() + thumb_len > MAX_TEXT_LEN {
            return Err(Error::invalid(format!(
                "the message is {} bytes, more than {MAX_TEXT_LEN}; send it as an attachment",
                text.len() + thumb_len
            )));
        }
        let (thread_id, title, group, target) = match to {
            Recipient::User { name } => {
                if !occ_protocol::ids::valid_user_name(name) || *name == me {
                    return Err(Error::invalid(format!("cannot send to user {name:?}")));
                }
                (
                    super::direct_thread_id(&me, name),
                    name.clone(),
                    false,
                    Target::User(name.clone()),
                )
            }
            Recipient::Thread { id, .. } => {
                (id.clone(), id.clone(), true, Target::Thread(id.clone()))
            }
        };
        let members = match to {
            Recipient::Thread { id, members } => {
                Some(members_for_send(&self.store.conn, &me, id, members)?)
            }
            Recipient::User { .. } => None,
        };
        let now = self.store.now_ms();
        let ttl_expiry_ms = now
            .checked_add(ttl_ms)
            .ok_or_else(|| Error::invalid("the TTL runs past the end of time"))?;
        let wire_id = random_hex::<16>()?;
        let message_id = super::scoped_message_id(&me, &wire_id);
        let ack_by_ms = ack_within_ms.map(|ms| now.saturating_add(ms));
        let recipients: Vec<String> = match (to, &members) {
            (Recipient::User { name }, _) => vec![name.clone()],
            (_, Some(m)) => m.iter().filter(|u| **u != me).cloned().collect(),
            (_, None) => Vec::new(),
        };
        let payload = Payload::Text(TextMessage {
            message_id: wire_id,
            thread_id: thread_id.clone(),
            thread_title: title.clone(),
            group,
            sender_user: me.clone(),
            sent_ms: now,
            ttl_expiry_ms,
            read_timer_ms,
            body: text.to_vec(),
            urgent: urgent.map(|_| occ_protocol::payload::Urgent { ack_by_ms }),
            attachment: attachment.map(|a| Box::new(a.reference.clone())),
        })
        .encode();
        let idempotency_key = random_hex::<16>()?;
        let kind = if group {
            ThreadKind::Group
        } else {
            ThreadKind::Direct
        };
        let tx = self.store.conn.transaction()?;
        store_threads::upsert_in(&tx, &thread_id, &title, kind, now, OnExisting::MarkActive)?;
        if let Some(members) = &members {
            record_members_in(&tx, &me, &thread_id, members)?;
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
        if let Some(a) = attachment {
            crate::store::attachments::insert_sent_in(&tx, &message_id, a)?;
        }
        if urgent.is_some() {
            crate::store::alerts::mark_received_urgent_in(&tx, &message_id, ack_by_ms)?;
            crate::store::alerts::add_sent_in(
                &tx,
                &message_id,
                &thread_id,
                now,
                ack_by_ms,
                &recipients,
            )?;
        }
        append_in(
            &tx,
            now,
            &NewEntry::of(AuditKind::Sent)
                .thread(&thread_id)
                .message(&message_id)
                .subject(&recipients.join(","))
                .detail(crate::policy::class_of(
                    urgent.is_some(),
                    attachment.is_some(),
                )),
        )?;
        outbox::enqueue_in(
            &tx,
            now,
            &NewOutboxRow {
                idempotency_key: &idempotency_key,
                message_id: &message_id,
                target: &target,
                payload: &payload,
                ttl_secs: ttl_ms / 1000,
                expires_ms: ttl_expiry_ms,
            },
        )?;
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(message_id)
    }
}

/// What one outbox row carries.
enum Carried {
    /// A message.
    Text(TextMessage),
    /// A membership change of a thread we administer (a control row).
    Members(ThreadInfo),
    /// A receipt for an alert (a control row to its sender's devices).
    Receipt,
}

/// What sealing one row needs from the network, decided under the lock.
struct SealPlan {
    carried: Carried,
    users: Vec<String>,
    me: String,
    my_device: DeviceId,
}

/// Devices resolved and bundles claimed for one row.
struct Resolved {
    devices: Vec<Device>,
    bundles: HashMap<DeviceId, PreKeyBundle>,
    /// Every device the directory listed for the users addressed and our
    /// own (declared to the relay, which refuses a stale list).
    listed: Vec<String>,
}

impl Engine {
    /// Accepts a message: durable at once; background sync (or the next
    /// flush) delivers it.
    pub(crate) fn send(
        &self,
        to: &Recipient,
        text: &[u8],
        ttl_secs: u64,
        read_timer_secs: Option<u64>,
        urgent: Option<Urgency>,
    ) -> Result<String> {
        let id =
            self.with_local(|l| l.enqueue(to, text, ttl_secs, read_timer_secs, urgent, None))?;
        self.outbox_wake.notify_one();
        Ok(id)
    }

    /// Sends the outbox, oldest first (see the module documentation).
    pub(crate) async fn flush(&self, mode: FlushMode) -> Result<FlushReport> {
        let _gate = self.send_gate.lock().await;
        let seqs: Vec<i64> = self.with_local(|l| {
            Ok(outbox::rows(&l.store.conn)?
                .into_iter()
                .map(|r| r.seq)
                .collect())
        })?;
        let mut report = FlushReport::default();
        // Recipients whose key change awaits acceptance: their messages stay
        // queued, in order, and the others go on.
        let mut held: Vec<outbox::Target> = Vec::new();
        for (i, seq) in seqs.iter().enumerate() {
            let remaining = count(seqs.len() - i);
            let (row, now) =
                self.with_local(|l| Ok((outbox::row(&l.store.conn, *seq)?, l.store.now_ms())))?;
            let Some(row) = row else {
                continue; // dropped meanwhile (purged)
            };
            if held.contains(&row.target) {
                report.pending += 1;
                continue;
            }
            if row.expires_ms <= now {
                self.drop_row(&row, "expired before it could be sent", None, &mut report)?;
                continue;
            }
            if mode == FlushMode::Due && row.next_attempt_ms > now {
                report.pending = remaining;
                return Ok(report);
            }
            match self.deliver(&row).await {
                Ok(()) => {
                    self.with_local(|l| Ok(outbox::remove_in(&l.store.conn, row.seq)?))?;
                    if !is_control(&row) {
                        report.sent += 1;
                        self.events.emit(ClientEvent::MessageSent {
                            message_id: row.message_id.clone(),
                        });
                    }
                }
                Err(e) if e.is_transient() => {
                    let backoff = (1000i64 << row.attempts.clamp(0, 20)).min(MAX_BACKOFF_MS);
                    self.with_local(|l| {
                        Ok(outbox::defer_in(
                            &l.store.conn,
                            row.seq,
                            now.saturating_add(backoff),
                        )?)
                    })?;
                    tracing::info!("send deferred by {backoff} ms: {e}");
                    return Err(e);
                }
                // The message itself cannot be sent: no such recipient, the
                // relay refuses it, or its queued form is damaged. Dropped, so
                // it never blocks the messages behind it.
                Err(
                    e @ (Error::InvalidInput { .. }
                    | Error::NotFound { .. }
                    | Error::Expired
                    | Error::Corrupt { .. }),
                ) => {
                    let reason = e.to_string();
                    self.drop_row(
                        &row,
                        &reason,
                        Some(SecurityEventKind::DeliveryFailed),
                        &mut report,
                    )?;
                }
                Err(Error::KeyChanged { user }) => {
                    tracing::info!("sending to {user} is held until their new key is accepted");
                    held.push(row.target.clone());
                    report.pending += 1;
                }
                // The relay's identity, local storage, a closed client: not
                // the message's fault; it stays queued.
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// Drops an undeliverable row and tells the app (a control row has no
    /// message to tell about: only logged).
    fn drop_row(
        &self,
        row: &OutboxRow,
        reason: &str,
        record: Option<SecurityEventKind>,
        report: &mut FlushReport,
    ) -> Result<()> {
        if is_control(row) {
            tracing::info!("a membership update was not sent: {reason}");
            return self.with_local(|l| Ok(outbox::remove_in(&l.store.conn, row.seq)?));
        }
        self.with_local(|l| {
            outbox::remove_in(&l.store.conn, row.seq)?;
            if let Some(kind) = record {
                l.store.record_security_event(
                    kind,
                    &format!("message={} reason={reason}", row.message_id),
                )?;
            }
            Ok(())
        })?;
        report.failed.push(DeliveryFailure {
            message_id: row.message_id.clone(),
            reason: reason.to_string(),
        });
        self.events.emit(ClientEvent::DeliveryFailed {
            message_id: row.message_id.clone(),
            reason: reason.to_string(),
        });
        Ok(())
    }

    /// Seals (once) and sends one row. If the relay says the device list it
    /// was sealed for is stale (a recipient or we ourselves have a device
    /// we did not know of; nothing was queued), the directory is looked up
    /// again and the row sealed once more, so no device is missed.
    async fn deliver(&self, row: &OutboxRow) -> Result<()> {
        let mut sealed = match &row.sealed {
            Some(s) => s.clone(),
            None => self.seal(row).await?,
        };
        for attempt in 0..2 {
            let request: SendRequest = serde_json::from_str(&sealed)
                .map_err(|e| Error::corrupt(format!("sealed outbox row: {e}")))?;
            let sent = self
                .call(move |api| {
                    let request = request.clone();
                    Box::pin(async move {
                        match api.send(&request).await {
                            Ok(_) => Ok(true),
                            Err(TransportError::StaleDevices { .. }) if attempt == 0 => Ok(false),
                            Err(e) => Err(e),
                        }
                    })
                })
                .await?;
            if sent {
                return Ok(());
            }
            tracing::info!("a recipient's device list changed; sealing the message again");
            self.forget_directory();
            self.with_local(|l| {
                let tx = l.store.conn.transaction()?;
                outbox::unseal_in(&tx, row.seq)?;
                if let Target::Thread(thread) = &row.target {
                    // The discarded request carried our sender key to some
                    // devices: share it again with all of them.
                    distributions::forget_shared_in(&tx, thread)?;
                }
                tx.commit()?;
                Ok(())
            })?;
            sealed = self.seal(row).await?;
        }
        Err(Error::Network {
            reason: "the relay keeps reporting a stale device list".into(),
        })
    }

    /// Encrypts one row for every recipient device and stores the sealed
    /// request (with the advanced crypto state) atomically.
    async fn seal(&self, row: &OutboxRow) -> Result<String> {
        let plan = self.with_local(|l| plan_seal(l, row))?;
        let mut devices = Vec::new();
        let mut listed = Vec::new();
        for user in &plan.users {
            let (of_user, ids) = self.directory_of(user).await?;
            // Nothing is encrypted to a key the user has not accepted.
            self.require_trusted(user, &of_user)?;
            devices.extend(of_user.into_iter().filter(|d| d.id != plan.my_device));
            listed.extend(ids);
        }
        // This user's other devices get a copy of what it sends: those this
        // device linked, or trusts through a chain of links (an unvouched
        // one the relay lists is left out, never a reason to hold).
        let (mine, ids) = self.directory_of(&plan.me).await?;
        listed.extend(ids);
        let mine = self.with_local(|l| {
            let mut out = Vec::new();
            for d in mine {
                if crate::store::contacts::trust_of(&l.store.conn, &d.id.0)?
                    .is_some_and(|t| t != crate::store::Trust::Pending)
                {
                    out.push(d);
                }
            }
            Ok(out)
        })?;
        devices.extend(mine);
        let without_session: Vec<Device> = self.with_local(|l| {
            let mut out = Vec::new();
            for d in &devices {
                if !crypto_state::has_session(&l.store.conn, &d.id)? {
                    out.push(d.clone());
                }
            }
            Ok(out)
        })?;
        let mut bundles = HashMap::new();
        for d in without_session {
            let hex = d.id.to_hex();
            let bytes = self
                .call(move |api| {
                    let hex = hex.clone();
                    Box::pin(async move { api.bundle(&hex).await })
                })
                .await?;
            let bundle = PreKeyBundle::parse(&bytes).map_err(CryptoError::from)?;
            if bundle.identity != *d.identity.keys() {
                return Err(Error::untrusted(
                    "the prekey bundle does not match the device's identity",
                ));
            }
            bundles.insert(d.id, bundle);
        }
        listed.sort();
        listed.dedup();
        let resolved = Resolved {
            devices,
            bundles,
            listed,
        };
        self.with_local(|l| l.finish_seal(row, &plan, &resolved))
    }
}

/// Reads what the row needs: its payload and the users it goes to.
fn plan_seal(l: &Local, row: &OutboxRow) -> Result<SealPlan> {
    let me = l.user()?;
    let carried = match Payload::parse(&row.payload) {
        Ok(Payload::Text(text)) => Carried::Text(text),
        Ok(Payload::ThreadInfo(info)) if matches!(row.target, Target::Thread(_)) => {
            Carried::Members(info)
        }
        Ok(Payload::Receipt(_)) if matches!(row.target, Target::User(_)) => Carried::Receipt,
        _ => return Err(Error::corrupt("a queued message is unreadable")),
    };
    let users = match &row.target {
        Target::User(u) => vec![u.clone()],
        Target::Thread(t) => store_threads::members(&l.store.conn, t)?
            .into_iter()
            .filter(|u| *u != me)
            .collect(),
    };
    Ok(SealPlan {
        carried,
        users,
        me,
        my_device: l.account.device_id(),
    })
}

/// Sessions used by one seal: loaded, or started from a claimed bundle.
struct SealSessions<'a> {
    resolved: &'a Resolved,
    open: HashMap<DeviceId, Session>,
}

impl SealSessions<'_> {
    fn encrypt(
        &mut self,
        l: &Local,
        device: &Device,
        payloads: &[&[u8]],
        out: &mut Vec<OutEnvelope>,
    ) -> Result<()> {
        if !self.open.contains_key(&device.id) {
            let session = match crypto_state::load_sessions_in(&l.store.conn, &device.id)?
                .into_iter()
                .next()
            {
                Some(s) => s,
                None => {
                    let bundle = self.resolved.bundles.get(&device.id).ok_or_else(|| {
                        Error::internal("no session and no bundle for a recipient device")
                    })?;
                    Session::initiate(l.account.identity(), bundle)?
                }
            };
            self.open.insert(device.id, session);
        }
        let session = self
            .open
            .get_mut(&device.id)
            .ok_or_else(|| Error::internal("seal session cache"))?;
        for p in payloads {
            out.push(OutEnvelope {
                device_id: device.id.to_hex(),
                envelope: session.encrypt(p)?.into(),
            });
        }
        Ok(())
    }
}

impl Local {
    /// The sealing transaction of one row.
    fn finish_seal(
        &mut self,
        row: &OutboxRow,
        plan: &SealPlan,
        resolved: &Resolved,
    ) -> Result<String> {
        let now = self.store.now_ms();
        let mut sessions = SealSessions {
            resolved,
            open: HashMap::new(),
        };
        let mut envelopes = Vec::new();
        let mut thread_keys: Option<(String, ThreadKeys, Vec<DeviceId>)> = None;
        match &row.target {
            Target::User(_) => {
                for d in &resolved.devices {
                    sessions.encrypt(self, d, &[&row.payload], &mut envelopes)?;
                }
            }
            Target::Thread(thread) => {
                // Members may have changed since the plan (a removal arrived):
                // only current members' devices get this message.
                let members = store_threads::members(&self.store.conn, thread)?;
                let mut targets: Vec<&Device> = Vec::new();
                for d in &resolved.devices {
                    let user = crate::store::contacts::user_of(&self.store.conn, &d.id.0)?;
                    if user.is_some_and(|u| members.contains(&u)) {
                        targets.push(d);
                    }
                }
                let mut keys = match crypto_state::load_thread_keys_in(&self.store.conn, thread)? {
                    Some(k) => k,
                    None => ThreadKeys::new(thread.as_bytes(), secs(now))?,
                };
                if keys.needs_rotation(secs(now)) {
                    keys.rotate(secs(now))?;
                }
                let distribution = keys.distribution();
                let title = match &plan.carried {
                    Carried::Text(t) => t.thread_title.clone(),
                    Carried::Members(i) => i.title.clone(),
                    Carried::Receipt => {
                        return Err(Error::corrupt("a receipt queued for a thread"));
                    }
                };
                let info = Payload::ThreadInfo(ThreadInfo {
                    thread_id: thread.clone(),
                    title,
                    members,
                })
                .encode();
                let key_payload = Payload::SenderKey(distribution.clone()).encode();
                let control = matches!(plan.carried, Carried::Members(_));
                let mut shared = Vec::new();
                for d in &targets {
                    let has = distributions::shared_with(&self.store.conn, thread, &d.id.0)?;
                    // A control row goes to every member device: the list
                    // changed even for those that hold our key.
                    if control || has.as_deref() != Some(&distribution.distribution_id[..]) {
                        sessions.encrypt(self, d, &[&info, &key_payload], &mut envelopes)?;
                        shared.push(d.id);
                    }
                }
                if !control {
                    let group = keys.encrypt(&row.payload)?;
                    for d in &targets {
                        envelopes.push(OutEnvelope {
                            device_id: d.id.to_hex(),
                            envelope: group.clone().into(),
                        });
                    }
                }
                thread_keys = Some((thread.clone(), keys, shared));
            }
        }
        if envelopes.is_empty() {
            return Err(Error::not_found("a recipient device"));
        }
        let request = SendRequest {
            idempotency_key: row.idempotency_key.clone(),
            ttl_secs: u64::try_from(row.ttl_secs).unwrap_or(1),
            class: match &plan.carried {
                Carried::Text(t) => {
                    crate::policy::class_of(t.urgent.is_some(), t.attachment.is_some()).into()
                }
                Carried::Members(_) => "control".into(),
                Carried::Receipt => "receipt".into(),
            },
            thread: match &row.target {
                Target::Thread(t) => Some(t.clone()),
                Target::User(_) => None,
            },
            envelopes,
            listed_devices: resolved.listed.clone(),
            urgent: matches!(&plan.carried, Carried::Text(t) if t.urgent.is_some()),
        };
        let sealed = serde_json::to_string(&request)
            .map_err(|e| Error::internal(format!("encoding a send request: {e}")))?;
        let tx = self.store.conn.transaction()?;
        for s in sessions.open.values() {
            crypto_state::save_session_in(&tx, now, s)?;
        }
        if let Some((thread, keys, shared)) = &thread_keys {
            crypto_state::save_thread_keys_in(&tx, now, keys)?;
            let id = keys.distribution().distribution_id;
            for d in shared {
                distributions::mark_shared_in(&tx, thread, &d.0, &id)?;
            }
        }
        outbox::seal_in(&tx, row.seq, &sealed)?;
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(sealed)
    }
}
