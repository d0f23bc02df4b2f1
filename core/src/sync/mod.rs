//! The sync engine: one open profile, its relay connection, and the two
//! directions of store-and-forward.
//!
//! Data flows one way: transport → sync → crypto → store → events.
//!
//! - `connection`: enrolment, the verified relay session (pinned TLS,
//!   signed acknowledgement, device token) and re-authentication.
//! - `directory`: which devices a user has, and which user a sending
//!   device belongs to (relay directory, remembered as contacts).
//! - `outgoing`: the durable outbox — accept, seal, send exactly once.
//! - `incoming`: the inbox — classify every item, apply the good ones,
//!   record and report the rest, acknowledge the page.
//! - `threads`: thread bookkeeping — member lists, sender-key distribution
//!   and rotation, removal.
//! - `prekeys`: signed-prekey rotation and one-time-prekey top-up.
//! - `org`: the organisation's policy and commands, and the audit trail's
//!   countersigned heads.
//! - `prompts`: download or decline after a push prompt; the volume alert.
//! - `alerts`: urgent alerts — receipts queued and applied, escalation.
//! - `attachments`: files sent through the relay (upload resumed), downloads
//!   resumed and checked against the digest in the message, saving.
//!
//! # Concurrency
//!
//! The `Engine` is shared by the app's calls and background sync. Its local
//! state (store, account, enrolment) sits behind one `std` mutex that is held
//! only for synchronous work — a read, one transaction — and never across a
//! network wait. So reads return in milliseconds while a 30 s long-poll or a
//! slow send is in flight. What must stay ordered is serialised by async
//! gates held across the network: one flush at a time (outbox order), one
//! authentication at a time (the relay keeps one challenge per device).
//! Inbox drains need no gate: pages apply atomically, duplicates are
//! recognised and the cursor only moves forward, so a manual `sync()` or a
//! push-prompt `fetch()` never waits behind background sync's long-poll. Ratchet state is only touched
//! inside the local lock, loaded from and saved to the store in the same
//! transaction, so the two directions never lose each other's updates.
//!
//! # Atomicity
//!
//! Every change is one transaction. In-memory state that outlives a call
//! (the account with its one-time prekeys) is changed on a copy and swapped
//! in only after the transaction commits: a failed page or seal leaves memory
//! exactly as the database is. Cancelling any operation (dropping its future)
//! between two awaits therefore leaves nothing half-written; the durable
//! outbox and idempotency keys make a cancelled send safe to repeat.

pub(crate) mod alerts;
pub(crate) mod attachments;
pub(crate) mod connection;
pub(crate) mod directory;
pub(crate) mod incoming;
pub(crate) mod org;
pub(crate) mod outgoing;
pub(crate) mod prekeys;
pub(crate) mod prompts;
pub(crate) mod threads;

use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::crypto::Account;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::store::Store;

pub use attachments::{OutgoingFile, Progress, UPLOAD_ATTEMPTS};
pub use connection::{PREKEY_BATCH, registration, registration_with_link};
pub use directory::{ContactDevice, ContactIdentity};
pub use incoming::{INBOX_PAGE, ItemOutcome, ItemReport, ReceiveReport, ReceivedMessage};
pub use org::AuditReport;
pub use outgoing::{
    DeliveryFailure, FlushReport, MAX_BACKOFF_MS, MAX_TEXT_LEN, Recipient, Urgency,
};
pub use prekeys::{PREKEY_LOW_WATER, PrekeyReport};
pub use threads::direct_thread_id;

/// Enrolment with a relay, persisted in the profile (as JSON; the relay's
/// fields sit at the top level, as they did before `RelaySettings` existed).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Enrolment {
    /// The relay and how it is recognised.
    #[serde(flatten)]
    pub relay: connection::RelaySettings,
    /// This device's user.
    pub user: String,
    /// This device's id (hex).
    pub device_id: String,
    /// The relay's service key, learned at enrolment (hex).
    pub service_key: String,
    /// The organisation key pinned at enrolment (hex), if any.
    #[serde(default)]
    pub org_key: Option<String>,
    /// The device of the same user that linked this one (hex), if it
    /// enrolled with a link: trusted as its own user's device.
    #[serde(default)]
    pub linked_by: Option<String>,
    /// The push endpoint the relay posts this device's notices to, if any
    /// (set at enrolment, replaced with `Client::set_push_endpoint`).
    #[serde(default)]
    pub push_endpoint: Option<String>,
}

/// The enrolment stored in a profile, if enrolled.
pub(crate) fn stored_enrolment(conn: &rusqlite::Connection) -> Result<Option<Enrolment>> {
    crate::store::config::enrolment(conn)?
        .map(|v| serde_json::from_slice::<Enrolment>(&v))
        .transpose()
        .map_err(|e| Error::corrupt(format!("the enrolment record: {e}")))
}

/// The part of an open profile that lives on this device.
pub(crate) struct Local {
    pub(crate) store: Store,
    pub(crate) account: Account,
    pub(crate) enrolment: Option<Enrolment>,
    /// The organisation policy in force (verified), if any.
    pub(crate) policy: Option<occ_protocol::org::OrgPolicy>,
}

impl Local {
    /// The engine state of an open store: its account (made now if the
    /// profile has none yet) and its enrolment, if any.
    pub(crate) fn from_store(mut store: Store) -> Result<Self> {
        let account = match store.account()? {
            Some(a) => a,
            None => {
                let a = Account::generate(threads::secs(store.now_ms()))?;
                store.save_account(&a)?;
                a
            }
        };
        let enrolment = stored_enrolment(&store.conn)?;
        let policy = match &enrolment {
            Some(e) => org::held_policy(&store.conn, e)?,
            None => None,
        };
        Ok(Self {
            store,
            account,
            enrolment,
            policy,
        })
    }

    pub(crate) fn enrolment(&self) -> Result<&Enrolment> {
        self.enrolment.as_ref().ok_or(Error::NotEnrolled)
    }

    pub(crate) fn user(&self) -> Result<String> {
        Ok(self.enrolment()?.user.clone())
    }
}

/// One open profile and its relay connection (see the module documentation).
pub(crate) struct Engine {
    local: Mutex<Option<Local>>,
    /// Set the moment the profile starts closing: every later call fails
    /// with [`Error::Closed`] without waiting for the lock.
    closing: std::sync::atomic::AtomicBool,
    pub(crate) relay: connection::Relay,
    pub(crate) directory: directory::Directory,
    pub(crate) events: Events,
    send_gate: tokio::sync::Mutex<()>,
    /// Woken when a message is queued, so background sync sends it at once.
    pub(crate) outbox_wake: tokio::sync::Notify,
    /// The relay's one-time-prekey count as last reported with the inbox.
    relay_prekeys: Mutex<Option<u64>>,
}

impl Engine {
    pub(crate) fn new(local: Local) -> Self {
        Self {
            local: Mutex::new(Some(local)),
            closing: std::sync::atomic::AtomicBool::new(false),
            relay: connection::Relay::default(),
            directory: directory::Directory::default(),
            events: Events::default(),
            send_gate: tokio::sync::Mutex::new(()),
            outbox_wake: tokio::sync::Notify::new(),
            relay_prekeys: Mutex::new(None),
        }
    }

    /// Runs `f` on the local state, holding the lock for exactly that long.
    /// [`Error::Closed`] once the engine is closed.
    pub(crate) fn with_local<T>(&self, f: impl FnOnce(&mut Local) -> Result<T>) -> Result<T> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let mut guard = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let local = guard.as_mut().ok_or(Error::Closed)?;
        f(local)
    }

    /// Closes the profile: the store is flushed and closed, the relay
    /// connection dropped; every later call fails with [`Error::Closed`].
    /// Returns whether it was open.
    pub(crate) fn close(&self) -> bool {
        self.begin_close();
        let local = self
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // The locked push path measures expiry from at least this time.
        if let Some(l) = &local
            && let Some(e) = &l.enrolment
            && let Err(err) = l
                .store
                .recent_notice_ids(256)
                .map_err(Error::from)
                .and_then(|seen| {
                    crate::push::write_verifier(l.store.dir(), e, l.store.now_ms(), seen)
                })
        {
            tracing::warn!("refreshing the push verifier failed: {err}");
        }
        self.relay.forget();
        local.is_some()
    }

    /// Marks the profile closing (calls fail with [`Error::Closed`] from
    /// now on) without waiting for its lock; whether it was open.
    pub(crate) fn begin_close(&self) -> bool {
        !self.closing.swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether the store is really closed (not only closing): until then the
    /// profile counts as open in this process, so it is neither reopened
    /// nor wiped under a live connection. Never waits.
    pub(crate) fn is_released(&self) -> bool {
        match self.local.try_lock() {
            Ok(guard) => guard.is_none(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().is_none(),
            Err(std::sync::TryLockError::WouldBlock) => false,
        }
    }

    /// Like [`Engine::with_local`], but also while the profile is closing
    /// (not once it is closed): for the last step of work that already
    /// started, such as recording the audit entry of an export whose files
    /// are written.
    pub(crate) fn finish_with_local<T>(
        &self,
        f: impl FnOnce(&mut Local) -> Result<T>,
    ) -> Result<T> {
        let mut guard = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let local = guard.as_mut().ok_or(Error::Closed)?;
        f(local)
    }

    fn note_relay_prekeys(&self, count: u64) {
        *self
            .relay_prekeys
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(count);
    }

    fn relay_prekeys(&self) -> Option<u64> {
        *self
            .relay_prekeys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The local id of message `wire_id` sent by `sender`: the sender chooses
/// the id on the wire, so it is scoped to the sender (32 hex characters of
/// SHA-256 over both) — another member sending the same wire id first
/// stores a different message and pre-empts nothing. Every device of every
/// member derives the same id, the sender's own included.
pub fn scoped_message_id(sender: &str, wire_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"occ/v1/message-id");
    h.update(
        u32::try_from(sender.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    h.update(sender.as_bytes());
    h.update(wire_id.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Random lowercase hex of `N` bytes (message ids, idempotency keys).
fn random_hex<const N: usize>() -> Result<String> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| Error::internal("the OS random generator failed"))?;
    Ok(hex::encode(b))
}

#[cfg(test)]
mod tests {
    use super::Enrolment;

    /// Profiles enrolled before `RelaySettings` existed keep opening: the
    /// stored record is the same flat JSON.
    #[test]
    fn the_enrolment_record_keeps_its_stored_shape() {
        let stored = r#"{"url":"https://relay:8443","pins":["sha256/x"],"pins_expire_ms":null,
            "pins_lapse_to_chain":false,"ca_pem":null,"user":"alice","device_id":"ab","service_key":"cd"}"#;
        let e: Enrolment = serde_json::from_str(stored).unwrap();
        assert_eq!(e.relay.url, "https://relay:8443");
        assert_eq!(e.relay.pins, ["sha256/x"]);
        assert_eq!(e.user, "alice");
        let again: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(again["url"], "https://relay:8443");
        assert_eq!(again["service_key"], "cd");
        assert_eq!(serde_json::from_value::<Enrolment>(again).unwrap(), e);
    }
}
