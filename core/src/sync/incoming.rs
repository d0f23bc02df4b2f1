//! The inbox: classify every item, apply the good ones, record and report
//! the rest, then acknowledge the page.
//!
//! A page is processed in one transaction, item by item:
//!
//! 1. **Decrypt** on the page's working copies: the account (a clone, for
//!    prekey messages that consume a one-time prekey), the sender's sessions
//!    and the thread keys, all loaded from the store. A crypto failure leaves
//!    them unchanged.
//! 2. **Classify**: the sending device must belong to a user the relay
//!    directory knows, the payload must name that user, its identity must be
//!    the one first seen, and the payload must be for a conversation the
//!    sender is in.
//! 3. **Apply** inside a savepoint: a payload refused while applying (a
//!    sender key that claims another member's key id, a message for a thread
//!    the sender is not in) rolls back only its own writes and its own thread
//!    keys.
//!
//! Every item gets an [`ItemOutcome`]. A refused item is recorded as a
//! security event, reported, raised as a `SecurityAlert`, and acknowledged
//! with the page like any other: one bad item never blocks those after it.
//! Only a *local* failure (disk full, a locked or damaged database) fails the
//! page; then the transaction rolls back, the working copies are dropped —
//! the in-memory account still holds any one-time prekey a prekey message
//! used — nothing is acknowledged, and the next drain retries the page.
//! The account copy replaces the live one only after the commit.
//!
//! Identifier rules are enforced when the payload is parsed
//! ([`occ_protocol::ids`]), so the store never sees an id it would refuse.
//!
//! Drains may overlap — background sync's long-poll, a pull-to-refresh
//! `sync()`, a push-prompt `fetch()` — and none waits for another: each page
//! is applied atomically under the local lock, an item seen twice is a
//! duplicate, and the cursor only moves forward. Order is kept: a page never
//! holds items older than one already applied.

use std::collections::{HashMap, HashSet};

use occ_protocol::api::{InboxItem, MAX_INBOX_LIMIT, parse_device_id};
use occ_protocol::ids::is_direct_thread_id;
use occ_protocol::payload::{Payload, TextMessage};
use occ_protocol::{Envelope, PreKeyMessage, RatchetMessage};
use rusqlite::Connection;

use super::directory::{Sender, identity_from};
use super::threads::{self, ThreadCache, direct_thread_id};
use super::{Engine, Local};
use crate::audit::AuditKind;
use crate::crypto::{Account, CryptoError, DeviceId, IdentityPublic, Session};
use crate::error::{Error, Result};
use crate::events::ClientEvent;
use crate::store::audit::{NewEntry, append_in};
use crate::store::threads::{self as store_threads, OnExisting, ThreadKind};
use crate::store::{
    Inserted, NewMessage, SecurityEventKind, StoreError, alerts, config, contacts, crypto_state,
    distributions, messages, notices, persist_high_water, savepoint, security_events,
};

/// Items fetched per inbox request.
pub const INBOX_PAGE: usize = 500;
const _: () = assert!(INBOX_PAGE <= MAX_INBOX_LIMIT);

/// A new message, as reported to the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Its thread.
    pub thread_id: String,
    /// Its id.
    pub message_id: String,
    /// The sending user.
    pub sender: String,
    /// Whether it is an urgent alert (such a batch is a critical event:
    /// never dropped for a slow subscriber).
    pub urgent: bool,
}

/// What became of one inbox item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// A new message was stored.
    Stored {
        /// The message.
        message: ReceivedMessage,
    },
    /// A thread key or membership update was accepted.
    Applied,
    /// Already processed (a redelivery, or a message purged before).
    Duplicate,
    /// Its TTL had passed on arrival; nothing stored.
    Expired,
    /// The user declined its download (push prompt); nothing stored.
    Declined,
    /// Refused: recorded as a security event and acknowledged.
    Rejected {
        /// Why, as a kind.
        kind: SecurityEventKind,
        /// Metadata (never content).
        reason: String,
    },
}

/// One inbox item and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemReport {
    /// The relay's id of the item.
    pub relay_id: String,
    /// What became of it.
    pub outcome: ItemOutcome,
}

/// What one receive did: every item with its outcome, in relay order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiveReport {
    /// Each item processed.
    pub items: Vec<ItemReport>,
}

impl ReceiveReport {
    /// The new messages stored.
    pub fn received(&self) -> Vec<ReceivedMessage> {
        self.items
            .iter()
            .filter_map(|i| match &i.outcome {
                ItemOutcome::Stored { message } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many items were refused.
    pub fn rejected(&self) -> u32 {
        self.count(|o| matches!(o, ItemOutcome::Rejected { .. }))
    }

    /// How many items were redeliveries.
    pub fn duplicates(&self) -> u32 {
        self.count(|o| matches!(o, ItemOutcome::Duplicate))
    }

    fn count(&self, f: impl Fn(&ItemOutcome) -> bool) -> u32 {
        u32::try_from(self.items.iter().filter(|i| f(&i.outcome)).count()).unwrap_or(u32::MAX)
    }
}

/// Why an item was not applied: refused (the sender's fault: recorded and
/// acknowledged) or a local failure (fails the page, retried later).
pub(crate) enum Refusal {
    Refused {
        kind: SecurityEventKind,
        detail: String,
    },
    Local(Error),
}

impl Refusal {
    pub(crate) fn refused(kind: SecurityEventKind, detail: impl Into<String>) -> Self {
        Refusal::Refused {
            kind,
            detail: detail.into(),
        }
    }

    fn undecryptable(e: impl std::fmt::Display) -> Self {
        Self::refused(SecurityEventKind::Undecryptable, e.to_string())
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidInput(_)
            | StoreError::NotFound(_)
            | StoreError::Expired
            | StoreError::AlreadyExists(_) => {
                Refusal::refused(SecurityEventKind::InvalidPayload, e.to_string())
            }
            // One peer's stored session is unreadable: refuse its items, keep
            // everyone else's flowing.
            StoreError::Crypto(c) => Refusal::undecryptable(c),
            other => Refusal::Local(other.into()),
        }
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Local(e)
    }
}

/// What decryption produced.
enum Decrypted {
    Duplicate,
    Payload {
        sender: DeviceId,
        identity: Box<IdentityPublic>,
        payload: Box<Payload>,
    },
}

/// The page's working copies of crypto state.
struct Working {
    account: Account,
    account_dirty: bool,
    sessions: HashMap<DeviceId, Vec<Session>>,
    dirty_sessions: HashSet<(DeviceId, [u8; 32])>,
    threads: ThreadCache,
    /// The organisation policy in force and this device's id (hex).
    policy: Option<occ_protocol::org::OrgPolicy>,
    device: String,
    /// Events besides new messages (receipts), raised after the commit.
    events: Vec<ClientEvent>,
}

impl Working {
    fn new(account: Account, policy: Option<occ_protocol::org::OrgPolicy>, device: String) -> Self {
        Self {
            account,
            account_dirty: false,
            sessions: HashMap::new(),
            dirty_sessions: HashSet::new(),
            threads: ThreadCache::default(),
            policy,
            device,
            events: Vec::new(),
        }
    }

    fn sessions_of(
        &mut self,
        conn: &Connection,
        device: DeviceId,
    ) -> std::result::Result<&mut Vec<Session>, Refusal> {
        if let std::collections::hash_map::Entry::Vacant(e) = self.sessions.entry(device) {
            e.insert(crypto_state::load_sessions_in(conn, &device)?);
        }
        self.sessions
            .get_mut(&device)
            .ok_or_else(|| Refusal::Local(Error::internal("session cache")))
    }

    fn save_in(&self, conn: &Connection, now: i64) -> Result<()> {
        for (device, base) in &self.dirty_sessions {
            if let Some(s) = self
                .sessions
                .get(device)
                .and_then(|v| v.iter().find(|s| s.base_key() == base))
            {
                crypto_state::save_session_in(conn, now, s)?;
            }
        }
        self.threads.save_in(conn, now)?;
        if self.account_dirty {
            crypto_state::save_account_in(conn, &self.account)?;
        }
        Ok(())
    }
}

/// Whether the inbox cursor moves with the page (the inbox) or not (one
/// message fetched by id, which stays queued until the cursor passes it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cursor {
    Advance,
    Keep,
}

impl Engine {
    /// Drains the inbox, waiting up to `wait_ms` for the first item.
    pub(crate) async fn receive(&self, wait_ms: u64) -> Result<ReceiveReport> {
        let mut report = ReceiveReport::default();
        let mut wait = wait_ms.min(occ_protocol::api::MAX_WAIT_MS);
        loop {
            let cursor = self.with_local(|l| Ok(config::inbox_cursor(&l.store.conn)?))?;
            let page = self
                .call(move |api| Box::pin(async move { api.inbox(cursor, wait, INBOX_PAGE).await }))
                .await?;
            wait = 0;
            if let Some(n) = page.one_time_prekeys {
                self.note_relay_prekeys(n);
            }
            let Some(last) = page.messages.last().map(|m| m.seq) else {
                return Ok(report);
            };
            let items = self.process(&page.messages, Cursor::Advance).await?;
            report.items.extend(items);
            let acked = self
                .call(move |api| Box::pin(async move { api.ack(last).await }))
                .await;
            if let Err(e) = acked {
                // The page is stored; the relay will offer it again and it
                // will be recognised as already processed.
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
    pub(crate) async fn fetch(&self, relay_id: &str) -> Result<ReceiveReport> {
        if !occ_protocol::api::valid_relay_message_id(relay_id) {
            return Err(Error::invalid("a relay message id is 32 hex digits"));
        }
        let id = relay_id.to_string();
        let item = self
            .call(move |api| {
                let id = id.clone();
                Box::pin(async move { api.fetch(&id).await })
            })
            .await?;
        let items = self.process(&[item], Cursor::Keep).await?;
        Ok(ReceiveReport { items })
    }

    /// Resolves the senders (network), then stores the page (one
    /// transaction) and raises its events.
    async fn process(&self, items: &[InboxItem], cursor: Cursor) -> Result<Vec<ItemReport>> {
        let senders = self.resolve_senders(items).await?;
        let (reports, events) = self.with_local(|l| l.store_page(items, &senders, cursor))?;
        for e in events {
            self.events.emit(e);
        }
        let mut stored = Vec::new();
        for r in &reports {
            match &r.outcome {
                ItemOutcome::Stored { message } => stored.push(message.clone()),
                ItemOutcome::Rejected { kind, reason } => self
                    .events
                    .alert(*kind, format!("relay_id={} {reason}", r.relay_id)),
                _ => {}
            }
        }
        if !stored.is_empty() {
            self.events
                .emit(ClientEvent::MessagesReceived { messages: stored });
        }
        Ok(reports)
    }
}

impl Local {
    /// Decrypts, classifies and applies one page in a single transaction.
    fn store_page(
        &mut self,
        items: &[InboxItem],
        senders: &HashMap<DeviceId, Option<Sender>>,
        cursor: Cursor,
    ) -> Result<(Vec<ItemReport>, Vec<ClientEvent>)> {
        let me = self.user()?;
        let now = self.store.now_ms();
        let device = self.account.device_id().to_hex();
        // Immediate: another process (a push extension) may hold the same
        // profile; the account is read again inside the write transaction so
        // a one-time prekey it consumed is never revived from memory.
        let tx = self
            .store
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let account = crypto_state::load_account_in(&tx)?.unwrap_or_else(|| self.account.clone());
        let mut work = Working::new(account, self.policy.clone(), device);
        let mut reports = Vec::with_capacity(items.len());
        for item in items {
            let outcome = match process_item(&tx, now, &me, &mut work, senders, item) {
                Ok(outcome) => outcome,
                Err(Refusal::Refused { kind, detail }) => {
                    security_events::record_in(
                        &tx,
                        now,
                        kind,
                        &format!(
                            "relay_id={} sender={} {detail}",
                            item.id, item.sender_device
                        ),
                    )?;
                    ItemOutcome::Rejected {
                        kind,
                        reason: detail,
                    }
                }
                Err(Refusal::Local(e)) => return Err(e),
            };
            reports.push(ItemReport {
                relay_id: item.id.clone(),
                outcome,
            });
        }
        work.save_in(&tx, now)?;
        if cursor == Cursor::Advance
            && let Some(last) = items.last()
        {
            config::advance_inbox_cursor(&tx, last.seq)?;
        }
        persist_high_water(&tx, now)?;
        tx.commit()?;
        self.account = work.account;
        Ok((reports, work.events))
    }
}

/// One item: decrypt, classify, apply (in a savepoint).
fn process_item(
    conn: &Connection,
    now: i64,
    me: &str,
    work: &mut Working,
    senders: &HashMap<DeviceId, Option<Sender>>,
    item: &InboxItem,
) -> std::result::Result<ItemOutcome, Refusal> {
    let (sender, identity, payload) = match decrypt_item(conn, work, item)? {
        Decrypted::Duplicate => return Ok(ItemOutcome::Duplicate),
        Decrypted::Payload {
            sender,
            identity,
            payload,
        } => (sender, identity, *payload),
    };
    let Some(Some(known)) = senders.get(&sender) else {
        return Err(Refusal::refused(
            SecurityEventKind::UnknownSender,
            "the relay does not know the sending device",
        ));
    };
    if let Payload::Text(t) = &payload
        && t.sender_user != known.user
    {
        return Err(Refusal::refused(
            SecurityEventKind::SenderMismatch,
            format!("claimed={} directory={}", t.sender_user, known.user),
        ));
    }
    let thread = match &payload {
        Payload::Text(t) => Some(t.thread_id.clone()),
        Payload::ThreadInfo(i) => Some(i.thread_id.clone()),
        Payload::SenderKey(d) => String::from_utf8(d.thread_id.clone()).ok(),
        Payload::Receipt(_) => None,
    };
    if let Some(first_seen) = &known.identity {
        let listed = identity_from(first_seen)
            .map(|i| i.keys().clone())
            .map_err(|_| {
                Refusal::refused(
                    SecurityEventKind::IdentityMismatch,
                    "the relay listed an invalid identity",
                )
            })?;
        if listed != *identity.keys() {
            return Err(Refusal::refused(
                SecurityEventKind::IdentityMismatch,
                "the session identity differs from the one the relay lists",
            ));
        }
        // Remembered even if the item is then refused: a key change stays
        // pending until the user accepts it.
        contacts::add_in(
            conn,
            now,
            &sender.0,
            &known.user,
            first_seen,
            known.vouched,
            known.user == me,
        )?;
    }
    if contacts::trust_of(conn, &sender.0)? == Some(contacts::Trust::Pending) {
        return Err(Refusal::refused(
            SecurityEventKind::KeyChanged,
            format!(
                "from a new identity of {} not yet accepted (compare safety numbers)",
                known.user
            ),
        ));
    }
    let snapshot = thread.as_deref().and_then(|t| work.threads.snapshot(t));
    let applied = savepoint(conn, || {
        apply_payload(conn, now, me, &known.user, sender, item, payload, work)
    });
    if matches!(applied, Err(Refusal::Refused { .. }))
        && let Some(t) = &thread
    {
        work.threads.restore(t, snapshot);
    }
    applied
}

/// Applies one authenticated payload.
#[allow(clippy::too_many_arguments)]
fn apply_payload(
    conn: &Connection,
    now: i64,
    me: &str,
    sender_user: &str,
    sender: DeviceId,
    item: &InboxItem,
    payload: Payload,
    work: &mut Working,
) -> std::result::Result<ItemOutcome, Refusal> {
    match payload {
        Payload::Text(t) => store_text(conn, now, me, sender_user, item, t, work),
        Payload::Receipt(r) => {
            if let Some(e) = super::alerts::apply_receipt(conn, now, me, sender_user, &r)? {
                work.events.push(e);
            }
            Ok(ItemOutcome::Applied)
        }
        Payload::ThreadInfo(info) => {
            threads::apply_thread_info(conn, now, me, sender_user, &info, &mut work.threads)?;
            Ok(ItemOutcome::Applied)
        }
        Payload::SenderKey(d) => {
            threads::apply_sender_key(conn, now, sender_user, sender, &d, &mut work.threads)?;
            Ok(ItemOutcome::Applied)
        }
    }
}

/// Stores a text message after checking it belongs where it says.
fn store_text(
    conn: &Connection,
    now: i64,
    me: &str,
    sender_user: &str,
    item: &InboxItem,
    t: TextMessage,
    work: &Working,
) -> std::result::Result<ItemOutcome, Refusal> {
    let class = crate::policy::class_of(t.urgent.is_some(), t.attachment.is_some());
    if let Err(reason) = crate::policy::download_allowed(work.policy.as_ref(), class, &work.device)
    {
        return Err(Refusal::refused(SecurityEventKind::PolicyDenied, reason));
    }
    if t.group {
        if is_direct_thread_id(&t.thread_id) {
            return Err(Refusal::refused(
                SecurityEventKind::Misrouted,
                "a thread message naming a direct conversation",
            ));
        }
        if !store_threads::is_member(conn, &t.thread_id, sender_user)? {
            return Err(Refusal::refused(
                SecurityEventKind::NonMember,
                format!("{sender_user} is not a member of {}", t.thread_id),
            ));
        }
    }
    // A copy of what this user sent from another of its devices: stored as
    // sent. A direct one names its peer in the title.
    let own = sender_user == me;
    let peer = if own {
        t.thread_title.as_str()
    } else {
        sender_user
    };
    if !t.group
        && (t.thread_id != direct_thread_id(me, peer)
            || peer == me
            || !occ_protocol::ids::valid_user_name(peer))
    {
        return Err(Refusal::refused(
            SecurityEventKind::Misrouted,
            "a direct message for another conversation",
        ));
    }
    let (title, kind) = if t.group {
        (t.thread_title.as_str(), ThreadKind::Group)
    } else {
        (peer, ThreadKind::Direct)
    };
    let id = super::scoped_message_id(sender_user, &t.message_id);
    if notices::declined_in(conn, &item.id)? {
        // The user said no to this download: nothing is stored, and a
        // tombstone keeps a redelivery out.
        messages::tombstone_in(conn, &id, t.ttl_expiry_ms.min(item.expires_ms))?;
        return Ok(ItemOutcome::Declined);
    }
    store_threads::upsert_in(conn, &t.thread_id, title, kind, now, OnExisting::MarkActive)?;
    let inserted = messages::insert_in(
        conn,
        now,
        &NewMessage {
            id: &id,
            thread_id: &t.thread_id,
            sender: sender_user,
            outgoing: own,
            body: &t.body,
            sent_ms: t.sent_ms,
            ttl_expiry_ms: crate::policy::receive_expiry(
                work.policy.as_ref(),
                t.sent_ms,
                t.ttl_expiry_ms.min(item.expires_ms),
            ),
            read_timer_ms: t.read_timer_ms,
        },
    )?;
    if inserted == Inserted::New {
        append_in(
            conn,
            now,
            &NewEntry::of(AuditKind::Received)
                .thread(&t.thread_id)
                .message(&id)
                .subject(sender_user)
                .detail(class),
        )?;
        if let Some(a) = &t.attachment {
            crate::store::attachments::insert_received_in(conn, &id, a)?;
        }
        if let Some(u) = t.urgent {
            alerts::mark_received_urgent_in(conn, &id, u.ack_by_ms)?;
            if own {
                // Sent from another of our devices: track its receipts here
                // too.
                let recipients: Vec<String> = if t.group {
                    store_threads::members(conn, &t.thread_id)?
                        .into_iter()
                        .filter(|m| m != me)
                        .collect()
                } else {
                    vec![peer.to_string()]
                };
                alerts::add_sent_in(conn, &id, &t.thread_id, t.sent_ms, u.ack_by_ms, &recipients)?;
            } else {
                super::alerts::queue_receipt_in(
                    conn,
                    now,
                    sender_user,
                    occ_protocol::payload::Receipt {
                        message_id: id.clone(),
                        thread_id: t.thread_id.clone(),
                        state: occ_protocol::payload::ReceiptState::Delivered,
                        at_ms: now,
                        reply: None,
                    },
                )?;
            }
        }
    }
    Ok(match inserted {
        Inserted::New => ItemOutcome::Stored {
            message: ReceivedMessage {
                thread_id: t.thread_id,
                message_id: id,
                sender: sender_user.to_string(),
                urgent: t.urgent.is_some(),
            },
        },
        Inserted::Duplicate => ItemOutcome::Duplicate,
        Inserted::Expired => ItemOutcome::Expired,
    })
}

fn parse_payload(plaintext: &[u8]) -> std::result::Result<Payload, Refusal> {
    Payload::parse(plaintext)
        .map_err(|e| Refusal::refused(SecurityEventKind::InvalidPayload, e.to_string()))
}

/// Decrypts one item on the working copies.
fn decrypt_item(
    conn: &Connection,
    work: &mut Working,
    item: &InboxItem,
) -> std::result::Result<Decrypted, Refusal> {
    let sender = DeviceId(parse_device_id(&item.sender_device).ok_or_else(|| {
        Refusal::refused(SecurityEventKind::UnknownSender, "malformed sender id")
    })?);
    let envelope = Envelope::parse(item.envelope.as_slice()).map_err(Refusal::undecryptable)?;
    // Decrypted bytes are wiped when dropped; only the parsed payload (which
    // the store takes) outlives this function.
    let plaintext = zeroize::Zeroizing::new(match envelope {
        Envelope::Group(g) => {
            let thread = distributions::thread_of(conn, &sender.0, &g.distribution_id)?
                .ok_or_else(|| Refusal::undecryptable(CryptoError::UnknownSenderKey))?;
            let keys = work
                .threads
                .existing(conn, &thread)?
                .ok_or_else(|| Refusal::undecryptable(CryptoError::UnknownSenderKey))?;
            let (from, plaintext) = match keys.decrypt_message(sender, g) {
                Ok((from, pt)) => (from, zeroize::Zeroizing::new(pt)),
                Err(CryptoError::DuplicateMessage) => return Ok(Decrypted::Duplicate),
                Err(e) => return Err(Refusal::undecryptable(e)),
            };
            if from != sender {
                return Err(Refusal::refused(
                    SecurityEventKind::SenderMismatch,
                    "a thread message relayed under another device",
                ));
            }
            let payload = parse_payload(&plaintext)?;
            match &payload {
                Payload::Text(t) if t.group && t.thread_id == thread => {}
                _ => {
                    return Err(Refusal::refused(
                        SecurityEventKind::Misrouted,
                        "a thread message for another thread",
                    ));
                }
            }
            let identity = work
                .sessions_of(conn, sender)?
                .first()
                .map(|s| s.remote_identity().clone())
                .ok_or_else(|| Refusal::undecryptable("no session with the sender"))?;
            return Ok(Decrypted::Payload {
                sender,
                identity: Box::new(identity),
                payload: Box::new(payload),
            });
        }
        Envelope::PreKey(p) => match decrypt_prekey(conn, work, sender, p)? {
            Some(pt) => pt,
            None => return Ok(Decrypted::Duplicate),
        },
        Envelope::Message(m) => match decrypt_ratchet(conn, work, sender, m)? {
            Some(pt) => pt,
            None => return Ok(Decrypted::Duplicate),
        },
    });
    let identity = work
        .sessions_of(conn, sender)?
        .iter()
        .find(|s| s.remote_identity().device_id() == sender)
        .map(|s| s.remote_identity().clone())
        .ok_or_else(|| {
            Refusal::refused(
                SecurityEventKind::SenderMismatch,
                "a session with another device",
            )
        })?;
    Ok(Decrypted::Payload {
        sender,
        identity: Box::new(identity),
        payload: Box::new(parse_payload(&plaintext)?),
    })
}

/// A prekey message: on the session it started (a retransmission), or a new
/// session accepted on the account copy. `None` for a duplicate.
fn decrypt_prekey(
    conn: &Connection,
    work: &mut Working,
    sender: DeviceId,
    p: PreKeyMessage,
) -> std::result::Result<Option<Vec<u8>>, Refusal> {
    let list = work.sessions_of(conn, sender)?;
    if let Some(s) = list.iter_mut().find(|s| s.matches(&p.prekey)) {
        let base = *s.base_key();
        let decrypted = s.decrypt_envelope(Envelope::PreKey(p));
        return match decrypted {
            Ok(pt) => {
                work.dirty_sessions.insert((sender, base));
                Ok(Some(pt))
            }
            Err(CryptoError::DuplicateMessage) => Ok(None),
            Err(e) => Err(Refusal::undecryptable(e)),
        };
    }
    if p.prekey.sender.signing_key != sender.0 {
        return Err(Refusal::refused(
            SecurityEventKind::SenderMismatch,
            "a prekey message from another device than the relay says",
        ));
    }
    let (session, pt) = work.account.accept(p).map_err(Refusal::undecryptable)?;
    work.account_dirty = true;
    work.dirty_sessions.insert((sender, *session.base_key()));
    work.sessions_of(conn, sender)?.insert(0, session);
    Ok(Some(pt))
}

/// A ratchet message, tried on each session with the sender. `None` for a
/// duplicate.
fn decrypt_ratchet(
    conn: &Connection,
    work: &mut Working,
    sender: DeviceId,
    m: RatchetMessage,
) -> std::result::Result<Option<Vec<u8>>, Refusal> {
    let mut duplicate = false;
    let mut found = None;
    for s in work.sessions_of(conn, sender)?.iter_mut() {
        match s.decrypt_envelope(Envelope::Message(m.clone())) {
            Ok(pt) => {
                found = Some((*s.base_key(), pt));
                break;
            }
            Err(CryptoError::DuplicateMessage) => duplicate = true,
            Err(_) => {}
        }
    }
    match found {
        Some((base, pt)) => {
            work.dirty_sessions.insert((sender, base));
            Ok(Some(pt))
        }
        None if duplicate => Ok(None),
        None => Err(Refusal::undecryptable(CryptoError::DecryptionFailed)),
    }
}
