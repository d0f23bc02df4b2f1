//! The `Client` facade: everything an app (or the terminal client, or the
//! UniFFI bindings) needs, over one open profile. Its shape is the FFI's:
//! named records, `u32`/`u64` counts, `String` paths and ids, the database
//! key as bytes, one error enum.
//!
//! - Lifecycle: [`Client::create`] makes a profile in an empty directory
//!   (identity and prekeys generated), [`Client::enrol`] registers it with a
//!   relay (URL, pins, optional private CA, user name) and remembers the
//!   relay's service key; [`Client::open`] reopens it; [`Client::close`]
//!   closes it (every later call fails with [`Error::Closed`]). Apps with
//!   several profiles on one device use [`ProfileManager`]. A profile is open
//!   at most once per process.
//! - Sending: [`Client::send`] is durable acceptance; delivery happens in
//!   [`Client::flush`], [`Client::sync`] or background sync
//!   ([`Client::start_sync`]).
//! - Reading: [`Client::threads`], [`Client::messages`], [`Client::message`]
//!   never wait for the network: they hold the profile's lock only for their
//!   own query, so they answer in milliseconds while a long-poll runs.
//! - Events go to any number of subscriptions ([`Client::subscribe`],
//!   [`Client::subscribe_listener`]) after each change is stored; see
//!   [`crate::events`].
//! - Threads: every operation runs on the core's runtime (`runtime.rs`), so
//!   the caller's thread only waits; [`Client::close_soon`] never blocks.
//!
//! Every operation runs with panics contained (they become
//! [`Error::Internal`]), and every future is `Send` and, once the client is
//! in an `Arc`, `'static` — as the bindings' async runtime requires.

mod background;
pub mod credential;
mod files;
mod guard;
mod profiles;
pub(crate) mod runtime;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use zeroize::Zeroizing;

pub use background::{SyncHandle, SyncOptions};
pub use credential::{LockOptions, LockStatus};
pub use profiles::ProfileManager;

use crate::audit::AuditEntry;
use crate::crypto::Account;
use crate::error::{Error, Result};
use crate::events::{ClientEvent, EventListener, Subscription, WithdrawReason};
use crate::push::DownloadPrompt;
use crate::retention::{Clock, PurgeReport, SystemClock};
use crate::store::{DbKey, RecipientState, SecurityEvent, Store, StoredMessage, ThreadSummary};
use crate::sync::connection::{EnrolOptions, RelaySession};
use crate::sync::outgoing::FlushMode;
use crate::sync::{
    AuditReport, ContactIdentity, DeliveryFailure, Engine, Enrolment, FlushReport, Local,
    PrekeyReport, ReceiveReport, Recipient, Urgency,
};
use guard::guarded_sync;

/// What one [`Client::sync`] pass did: both directions, always.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Outgoing messages the relay accepted.
    pub sent: u32,
    /// Outgoing messages still queued.
    pub pending: u32,
    /// Outgoing messages dropped as undeliverable.
    pub failed: Vec<DeliveryFailure>,
    /// Why sending stopped early, if it did (receiving ran regardless).
    pub send_error: Option<Error>,
    /// What the inbox held.
    pub received: ReceiveReport,
}

/// The device's retention settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The keep period in force (the device setting, or the 30-day default,
    /// capped by the organisation maximum), seconds.
    pub keep_period_secs: u64,
    /// The organisation's maximum keep period, if policy sets one, seconds.
    pub org_max_keep_period_secs: Option<u64>,
    /// How long metadata (security events, the purge log, idle contacts and
    /// conversations) is kept, seconds: the device setting, or the keep
    /// period in force.
    pub metadata_retention_secs: u64,
}

/// Profiles open in this process, by directory: one engine per profile, so
/// two clients never hold diverging copies of its keys.
type OpenProfiles = Mutex<Vec<(PathBuf, Weak<Engine>)>>;

fn open_profiles() -> &'static OpenProfiles {
    static OPEN: OnceLock<OpenProfiles> = OnceLock::new();
    OPEN.get_or_init(Mutex::default)
}

fn canonical(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// The open engine of a profile directory, if any.
pub(crate) fn open_engine(dir: &Path) -> Option<Arc<Engine>> {
    let dir = canonical(dir);
    let mut open = open_profiles()
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    open.retain(|(_, e)| e.upgrade().is_some_and(|e| !e.is_released()));
    open.iter()
        .find(|(d, _)| *d == dir)
        .and_then(|(_, e)| e.upgrade())
}

fn key_from(key: &[u8]) -> Result<DbKey> {
    Ok(DbKey::from_slice(key)?)
}

/// An open profile: store, keys and relay connection.
pub struct Client {
    engine: Arc<Engine>,
    runtime: Arc<background::Runtime>,
    /// The database key, for [`Client::session_key`] only.
    key: DbKey,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// Creates a profile in the existing empty directory `dir`, encrypted
    /// with the 32-byte `key` (keep it in the platform keystore).
    pub fn create(dir: &str, key: Vec<u8>) -> Result<Self> {
        Self::create_with_clock(dir, key, Arc::new(SystemClock::new()))
    }

    /// Opens the profile in `dir` with its `key`.
    pub fn open(dir: &str, key: Vec<u8>) -> Result<Self> {
        Self::open_with_clock(dir, key, Arc::new(SystemClock::new()))
    }

    /// Opens the profile for the push path, in a process that is not the
    /// app (a Notification Service Extension): a small page cache, and
    /// nothing swept that the app may be writing. Use it for
    /// [`Client::download`] after [`crate::push::verify_notice`].
    pub fn open_light(dir: &str, key: Vec<u8>) -> Result<Self> {
        let key = Zeroizing::new(key);
        guarded_sync(|| {
            let dir = Path::new(dir);
            Self::refuse_if_open(dir)?;
            let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
            let key = key_from(&key)?;
            Self::from_store(Store::open_light(dir, &key, clock)?, key)
        })
    }

    /// As [`Client::create`] with an injected clock (tests, demos).
    pub fn create_with_clock(dir: &str, key: Vec<u8>, clock: Arc<dyn Clock>) -> Result<Self> {
        let key = Zeroizing::new(key);
        guarded_sync(|| {
            let dir = Path::new(dir);
            Self::refuse_if_open(dir)?;
            let key = key_from(&key)?;
            let mut store = Store::create(dir, &key, clock)?;
            let account = Account::generate(crate::sync::threads::secs(store.now_ms()))?;
            store.save_account(&account)?;
            Self::from_store(store, key)
        })
    }

    /// As [`Client::open`] with an injected clock (tests, demos).
    pub fn open_with_clock(dir: &str, key: Vec<u8>, clock: Arc<dyn Clock>) -> Result<Self> {
        let key = Zeroizing::new(key);
        guarded_sync(|| {
            let dir = Path::new(dir);
            Self::refuse_if_open(dir)?;
            let key = key_from(&key)?;
            Self::from_store(Store::open(dir, &key, clock)?, key)
        })
    }

    /// Refuses a profile open in this process; one that is closing is waited
    /// for (briefly: closing waits only for the operation holding it).
    fn refuse_if_open(dir: &Path) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match open_engine(dir) {
                None => return Ok(()),
                Some(e) if e.is_closed() && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Some(_) => {
                    return Err(Error::invalid(
                        "this profile is already open in this process; close it first",
                    ));
                }
            }
        }
    }

    /// Wraps an opened store (registered as this process's one client of it).
    pub(crate) fn from_store(mut store: Store, key: DbKey) -> Result<Self> {
        let dir = canonical(store.dir());
        crate::push::import_locked_notices(&mut store);
        let local = Local::from_store(store)?;
        if let Some(e) = &local.enrolment {
            let seen = local.store.recent_notice_ids(256)?;
            crate::push::write_verifier(&dir, e, local.store.now_ms(), seen)?;
        }
        let engine = Arc::new(Engine::new(local));
        open_profiles()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((dir, Arc::downgrade(&engine)));
        Ok(Self {
            engine,
            runtime: Arc::default(),
            key,
        })
    }

    /// As [`Client::create`], off the caller's thread (on the core's
    /// blocking pool): for callers that must not wait on disk.
    pub async fn create_async(dir: String, key: Vec<u8>) -> Result<Self> {
        runtime::blocking(move || Self::create(&dir, key)).await
    }

    /// As [`Client::open`], off the caller's thread.
    pub async fn open_async(dir: String, key: Vec<u8>) -> Result<Self> {
        runtime::blocking(move || Self::open(&dir, key)).await
    }

    /// As [`Client::open_light`], off the caller's thread.
    pub async fn open_light_async(dir: String, key: Vec<u8>) -> Result<Self> {
        runtime::blocking(move || Self::open_light(&dir, key)).await
    }

    /// Closes the profile and waits until it is closed: background sync
    /// stops, notifications are withdrawn and subscribers told
    /// ([`ClientEvent::ProfileClosed`], then their subscriptions end), the
    /// database is closed, and every later call fails with
    /// [`Error::Closed`]. Idempotent. It waits for an operation holding the
    /// profile (a long purge) to finish: from a UI thread use
    /// [`Client::close_soon`].
    pub fn close(&self) {
        if self.begin_close() {
            self.engine.close();
        }
    }

    /// As [`Client::close`] without waiting: later calls fail with
    /// [`Error::Closed`] at once, and the database is closed on the core's
    /// blocking pool as soon as the operation holding it (if any) ends.
    pub fn close_soon(&self) {
        if !self.begin_close() {
            return;
        }
        let engine = self.engine.clone();
        match runtime::core_runtime() {
            Ok(rt) => {
                rt.spawn_blocking(move || engine.close());
            }
            Err(_) => {
                engine.close();
            }
        }
    }

    /// Marks the engine closed and tells the app; whether it was open.
    fn begin_close(&self) -> bool {
        if !self.engine.begin_close() {
            return false;
        }
        self.runtime.stop_all();
        self.engine.events.emit(ClientEvent::WithdrawNotifications {
            message_ids: Vec::new(),
            relay_message_ids: Vec::new(),
            all: true,
            reason: WithdrawReason::Locked,
        });
        self.engine.events.emit(ClientEvent::ProfileClosed);
        self.engine.events.end();
        true
    }

    /// The profile's database key, while it is open — for one use only: an
    /// iOS Notification Service Extension, a separate process that must open
    /// the profile while its user has it unlocked. Keep it in a keychain item
    /// shared with the extension and readable only while the device is
    /// unlocked, and delete that item when the profile locks (the extension
    /// then falls back to the content-free locked path). Nothing else needs
    /// it; [`Error::Closed`] once the profile is closed.
    pub fn session_key(&self) -> Result<Vec<u8>> {
        if self.engine.is_closed() {
            return Err(Error::Closed);
        }
        Ok(self.key.as_bytes().to_vec())
    }

    /// Whether [`Client::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.engine.is_closed()
    }

    /// Sets (or, with `None`, removes) the one event listener of the simple
    /// API, called on a thread of its own; [`Client::subscribe`] and
    /// [`Client::subscribe_listener`] add more subscribers beside it.
    pub fn set_listener(&self, listener: Option<Arc<dyn EventListener>>) -> Result<()> {
        self.engine.events.set(listener)
    }

    /// A new subscription to this client's events, taken with
    /// [`Subscription::next`] (see [`crate::events`]).
    pub fn subscribe(&self) -> Subscription {
        self.engine.events.subscribe()
    }

    /// A new subscription whose events go to `listener`, on a thread of its
    /// own (it may block; only this subscriber waits).
    pub fn subscribe_listener(&self, listener: Arc<dyn EventListener>) -> Result<Subscription> {
        self.engine.events.subscribe_listener(listener)
    }

    /// Runs async engine work on the core runtime.
    fn spawn<T, F, Fut>(&self, work: F) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(Arc<Engine>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        runtime::spawn(work(self.engine.clone()))
    }

    /// Runs blocking engine work on the core's blocking pool.
    fn blocking<T, F>(&self, work: F) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T> + Send + 'static,
    {
        let engine = self.engine.clone();
        runtime::blocking(move || work(&engine))
    }

    /// Runs `work` on the profile's local state, on the blocking pool.
    fn local<T, F>(&self, work: F) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&mut Local) -> Result<T> + Send + 'static,
    {
        self.blocking(move |e| e.with_local(work))
    }

    /// Registers this device with a relay as `opts.user`, learning (and from
    /// then on requiring) the relay's service key.
    pub async fn enrol(&self, opts: EnrolOptions) -> Result<Enrolment> {
        self.spawn(move |e| async move { e.enrol(opts).await })
            .await
    }

    /// Replaces this device's push endpoint on the relay (the push
    /// distributor or the platform gave it a new one; `None` stops push
    /// notices). The relay takes only `https://` endpoints on its
    /// configured push gateways.
    pub async fn set_push_endpoint(&self, endpoint: Option<String>) -> Result<()> {
        self.spawn(move |e| async move { e.set_push_endpoint(endpoint).await })
            .await
    }

    /// Opens a verified session with the relay (pinned TLS, signed
    /// acknowledgement, device token).
    pub async fn connect(&self) -> Result<RelaySession> {
        self.spawn(|e| async move { e.connect().await }).await
    }

    /// Accepts a message for delivery (durable at once) and returns its id.
    pub async fn send(
        &self,
        to: Recipient,
        text: Vec<u8>,
        ttl_secs: u64,
        read_timer_secs: Option<u64>,
    ) -> Result<String> {
        let text = Zeroizing::new(text);
        self.blocking(move |e| e.send(&to, &text, ttl_secs, read_timer_secs, None))
            .await
    }

    /// Sends an urgent alert: recipients' devices return receipts
    /// (delivered, read, acknowledged), and with `ack_within_secs`, an
    /// `AlertEscalated` event names whoever has not acknowledged by then.
    pub async fn send_urgent(
        &self,
        to: Recipient,
        text: Vec<u8>,
        ttl_secs: u64,
        ack_within_secs: Option<u64>,
    ) -> Result<String> {
        let text = Zeroizing::new(text);
        let urgency = Urgency { ack_within_secs };
        self.blocking(move |e| e.send(&to, &text, ttl_secs, None, Some(urgency)))
            .await
    }

    /// Acknowledges an urgent alert this user received, with an optional
    /// short reply (at most 256 bytes); its sender's devices are told.
    pub async fn acknowledge(&self, message_id: &str, reply: Option<String>) -> Result<()> {
        let id = message_id.to_string();
        self.blocking(move |e| {
            e.with_local(|l| {
                l.check_unlocked()?;
                l.acknowledge(&id, reply)
            })?;
            e.outbox_wake.notify_one();
            Ok(())
        })
        .await
    }

    /// Each recipient's progress with an alert this user sent (kept after
    /// the alert expires).
    pub async fn receipts(&self, message_id: &str) -> Result<Vec<RecipientState>> {
        let id = message_id.to_string();
        self.local(move |l| Ok(l.store.receipts(&id)?)).await
    }

    /// Escalates alerts past their deadline now (also part of every sync
    /// and of background sync); returns how many were escalated.
    pub async fn check_alerts(&self) -> Result<u32> {
        self.blocking(|e| e.check_alerts()).await
    }

    /// Downloads the message a push notice announced (its relay id, from
    /// the [`DownloadPrompt`]): fetched,
    /// verified, decrypted and stored, and audited. Refused with
    /// [`Error::PolicyDenied`] when the policy denies it or the profile is
    /// locked; [`Error::Expired`] once the relay answers 410. The N-th
    /// download within the policy's window raises `VolumeAlert`.
    pub async fn download(&self, relay_message_id: &str) -> Result<ReceiveReport> {
        let id = relay_message_id.to_string();
        self.spawn(move |e| async move { e.download(&id).await })
            .await
    }

    /// [`verify_notice`](crate::push::verify_notice) for a profile this
    /// process already holds open (an app in the foreground, an Android
    /// push receiver): the same checks, on this client's store. A notice
    /// that does not verify also raises a `SecurityAlert`.
    pub async fn verify_notice(&self, notice: Vec<u8>) -> Result<DownloadPrompt> {
        self.blocking(move |e| {
            let r = e.with_local(|l| crate::push::prompt_for(&mut l.store, &notice));
            if let Err(err @ (Error::Untrusted { .. } | Error::InvalidInput { .. })) = &r {
                e.events.alert(
                    crate::store::SecurityEventKind::ForgedNotice,
                    format!("push notice refused: {err}"),
                );
            }
            r
        })
        .await
    }

    /// Declines the message a push notice announced: it is never stored on
    /// this device (the inbox drops it when it arrives), and the refusal is
    /// audited.
    pub async fn decline(&self, relay_message_id: &str) -> Result<()> {
        let id = relay_message_id.to_string();
        self.local(move |l| l.decline(&id)).await
    }

    /// Takes an organisation policy document (from the administrator, or
    /// as the relay serves it): applied if the pinned organisation signed it
    /// and it is newer than the one held; otherwise refused
    /// ([`Error::Untrusted`]) and recorded.
    pub async fn apply_policy(&self, document: Vec<u8>) -> Result<bool> {
        self.local(move |l| l.apply_policy(&document)).await
    }

    /// The organisation policy in force, as JSON, if any.
    pub async fn policy_json(&self) -> Result<Option<String>> {
        self.local(|l| {
            l.policy
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| Error::internal(format!("encoding the policy: {e}")))
        })
        .await
    }

    /// Fetches the organisation's policy and this device's commands and
    /// obeys them (also part of every sync). Returns whether the profile
    /// was wiped (the client is then closed).
    pub async fn org_sync(&self) -> Result<bool> {
        self.spawn(|e| async move { e.org_sync().await }).await
    }

    /// Whether the organisation locked this profile.
    pub async fn is_locked(&self) -> Result<bool> {
        self.local(|l| Ok(l.check_unlocked().is_err())).await
    }

    /// Audit entries after sequence number `after`, at most `limit`.
    pub async fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<AuditEntry>> {
        self.local(move |l| Ok(l.store.audit_entries(after, limit)?))
            .await
    }

    /// A thread's timeline: every audit entry about it and its messages,
    /// in order (kept after the messages expire).
    pub async fn timeline(&self, thread_id: &str) -> Result<Vec<AuditEntry>> {
        let id = thread_id.to_string();
        self.local(move |l| Ok(l.store.audit_timeline(&id)?)).await
    }

    /// Has the relay countersign the audit chain head (also part of every
    /// sync); returns the newest countersigned sequence number.
    pub async fn countersign_audit(&self) -> Result<Option<u64>> {
        self.spawn(|e| async move { e.countersign_audit().await })
            .await
    }

    /// Verifies the audit trail: every link of the chain, the
    /// countersignatures held and, with `online`, the newest head the relay
    /// countersigned. The report names the first broken entry.
    pub async fn audit_verify(&self, online: bool) -> Result<AuditReport> {
        self.spawn(move |e| async move { e.audit_verify(online).await })
            .await
    }

    /// Removes a member from a thread: sender keys rotate, and nothing sent
    /// afterwards is readable by the removed user.
    pub async fn remove_member(&self, thread_id: &str, user: &str) -> Result<()> {
        let (thread, user) = (thread_id.to_string(), user.to_string());
        self.local(move |l| l.remove_member(&thread, &user)).await
    }

    /// Delivers the whole outbox now, retrying at once whatever is backing
    /// off (for an explicit user action).
    pub async fn flush(&self) -> Result<FlushReport> {
        self.spawn(|e| async move { e.flush(FlushMode::Now).await })
            .await
    }

    /// Drains the inbox, waiting up to `wait_ms` (at most 30 s) for the first
    /// item. Every item gets an outcome; refused ones are reported, recorded
    /// and acknowledged.
    pub async fn receive(&self, wait_ms: u64) -> Result<ReceiveReport> {
        self.spawn(move |e| async move { e.receive(wait_ms).await })
            .await
    }

    /// One pass both ways: delivers what is due, then drains the inbox —
    /// even when sending failed — then tops up prekeys.
    pub async fn sync(&self) -> Result<SyncReport> {
        self.spawn(|engine| async move { sync_pass(&engine).await })
            .await
    }

    /// Rotates the signed prekey when due and tops up one-time prekeys when
    /// the relay runs low (also part of every sync).
    pub async fn maintain_prekeys(&self) -> Result<PrekeyReport> {
        self.spawn(|e| async move { e.maintain_prekeys().await })
            .await
    }

    /// Starts background sync on the core's runtime.
    pub fn start_sync(&self, options: SyncOptions) -> Result<SyncHandle> {
        guarded_sync(|| {
            if self.engine.is_closed() {
                return Err(Error::Closed);
            }
            self.engine.with_local(|l| l.enrolment().map(|_| ()))?;
            self.runtime.start(self.engine.clone(), options)
        })
    }

    /// As [`Client::start_sync`], off the caller's thread (checking the
    /// enrolment reads the profile).
    pub async fn start_sync_async(&self, options: SyncOptions) -> Result<SyncHandle> {
        let runtime = self.runtime.clone();
        let engine = self.engine.clone();
        runtime::blocking(move || {
            engine.with_local(|l| l.enrolment().map(|_| ()))?;
            runtime.start(engine, options)
        })
        .await
    }

    /// Downloads one message by its relay id (the push-prompt path):
    /// [`Error::Expired`] once the relay answers 410.
    pub async fn fetch(&self, relay_message_id: &str) -> Result<ReceiveReport> {
        let id = relay_message_id.to_string();
        self.spawn(move |e| async move { e.fetch(&id).await }).await
    }

    /// Threads, most recently active first.
    pub async fn threads(&self) -> Result<Vec<ThreadSummary>> {
        self.local(|l| {
            l.check_unlocked()?;
            Ok(l.store.threads()?)
        })
        .await
    }

    /// The members of a thread, sorted.
    pub async fn thread_members(&self, thread_id: &str) -> Result<Vec<String>> {
        let id = thread_id.to_string();
        self.local(move |l| Ok(l.store.thread_members(&id)?)).await
    }

    /// The newest `limit` live messages of a thread, newest first
    /// ([`Error::NotFound`] for a thread that does not exist).
    pub async fn messages(&self, thread_id: &str, limit: u32) -> Result<Vec<StoredMessage>> {
        let id = thread_id.to_string();
        self.local(move |l| {
            l.check_unlocked()?;
            if !l.store.thread_exists(&id)? {
                return Err(Error::not_found(format!("thread {id}")));
            }
            Ok(l.store
                .thread_messages(&id, usize::try_from(limit).unwrap_or(usize::MAX), None)?)
        })
        .await
    }

    /// One live message ([`Error::Expired`] once past its deadline).
    pub async fn message(&self, id: &str) -> Result<StoredMessage> {
        let id = id.to_string();
        self.local(move |l| {
            l.check_unlocked()?;
            Ok(l.store.message(&id)?)
        })
        .await
    }

    /// Marks a message opened (starts its read timer; an urgent alert's
    /// sender gets a `read` receipt).
    pub async fn mark_read(&self, id: &str) -> Result<StoredMessage> {
        let id = id.to_string();
        self.blocking(move |e| {
            let m = e.with_local(|l| {
                l.check_unlocked()?;
                l.mark_read(&id)
            })?;
            e.outbox_wake.notify_one();
            Ok(m)
        })
        .await
    }

    /// The retention settings in force.
    pub async fn settings(&self) -> Result<Settings> {
        self.local(|l| {
            let secs = |ms: i64| u64::try_from(ms / 1000).unwrap_or(0);
            Ok(Settings {
                keep_period_secs: secs(l.store.keep_period_ms()?),
                org_max_keep_period_secs: l.store.org_max_keep_period_ms()?.map(secs),
                metadata_retention_secs: secs(l.store.metadata_retention_ms()?),
            })
        })
        .await
    }

    /// Sets the device keep period (content already past the old one is
    /// purged first, so nothing revives).
    pub async fn set_keep_period_secs(&self, secs: u64) -> Result<()> {
        let ms = i64::try_from(secs)
            .ok()
            .and_then(|s| s.checked_mul(1000))
            .ok_or_else(|| Error::invalid("the keep period is too large"))?;
        self.local(move |l| Ok(l.store.set_keep_period_ms(ms)?))
            .await
    }

    /// Installs this device's organisation certificate (from the
    /// administrator, `occ admin certify`) on the relay, so organisation
    /// members message and believe this device. Checked first: the pinned
    /// organisation's, for this user and device, valid now.
    pub async fn install_certificate(&self, certificate: Vec<u8>) -> Result<()> {
        self.spawn(move |e| async move { e.install_certificate(certificate).await })
            .await
    }

    /// Takes a revocation list from the organisation's administrator (`occ
    /// admin revoke`): kept if it is the organisation's and newer than the
    /// one held, applied at once, and published on the relay for everyone.
    pub async fn publish_revocations(&self, list: Vec<u8>) -> Result<()> {
        self.spawn(move |e| async move { e.publish_revocations(list).await })
            .await
    }

    /// Links another device (by its hex device id, shown by that device
    /// before it enrols) to this device's user: returns the signed link that
    /// device enrols with ([`EnrolOptions::link`]). The relay then registers
    /// it, and every client that trusts this device trusts the new one; it
    /// receives every message sent to the user, and what this user sends.
    pub async fn link_device(&self, device_id: &str) -> Result<Vec<u8>> {
        let id = device_id.to_string();
        self.blocking(move |e| e.link_device(&id)).await
    }

    /// Removes a device of this user (a lost tablet, or this device before
    /// it is handed on): the relay drops what is queued for it, queues
    /// nothing more for it and never registers it again; other members stop
    /// encrypting to it when their directory refreshes (within a minute),
    /// and the relay drops anything addressed to it meanwhile.
    pub async fn remove_device(&self, device_id: &str) -> Result<()> {
        let id = device_id.to_string();
        self.spawn(move |e| async move { e.remove_device(&id).await })
            .await
    }

    /// A new group thread id bound to this user (`g:<user>:<128 random
    /// bits>`): nobody else can start a thread under it or change its
    /// members. Send to it with [`Recipient::Thread`] to create the thread.
    pub async fn new_thread_id(&self) -> Result<String> {
        self.local(|l| crate::sync::threads::new_thread_id(&l.user()?))
            .await
    }

    /// A contact's safety number and known devices, to compare in person
    /// (from what this device knows; no network).
    pub async fn contact_identity(&self, user: &str) -> Result<ContactIdentity> {
        let user = user.to_string();
        self.blocking(move |e| e.contact_identity(&user)).await
    }

    /// Accepts `user`'s changed identity (after comparing safety numbers):
    /// messages held for them are sent, and messages from their new device
    /// are believed. With `verified`, marks their identity as compared.
    pub async fn accept_identity(&self, user: &str, verified: bool) -> Result<()> {
        let user = user.to_string();
        self.blocking(move |e| e.accept_identity(&user, verified))
            .await
    }

    /// Sets how long metadata is kept (security events, the purge log, idle
    /// contacts and conversations); older metadata goes at once.
    pub async fn set_metadata_retention_secs(&self, secs: u64) -> Result<()> {
        let ms = i64::try_from(secs)
            .ok()
            .and_then(|s| s.checked_mul(1000))
            .ok_or_else(|| Error::invalid("the metadata retention period is too large"))?;
        self.local(move |l| Ok(l.store.set_metadata_retention_ms(ms)?))
            .await
    }

    /// Removes everything past its deadline now; raises `MessagesExpired`,
    /// `WithdrawNotifications` for what was removed and for push prompts
    /// that lapsed unanswered, and, for queued messages whose TTL passed
    /// unsent, `DeliveryFailed`.
    pub async fn purge(&self) -> Result<PurgeReport> {
        self.blocking(purge).await
    }

    /// The enrolment, if enrolled.
    pub async fn enrolment(&self) -> Result<Option<Enrolment>> {
        self.local(|l| Ok(l.enrolment.clone())).await
    }

    /// This device's id (hex Ed25519 key).
    pub async fn device_id(&self) -> Result<String> {
        self.local(|l| Ok(l.account.device_id().to_hex())).await
    }

    /// Recorded security events, oldest first.
    pub async fn security_events(&self) -> Result<Vec<SecurityEvent>> {
        self.local(|l| Ok(l.store.security_events()?)).await
    }

    /// Messages waiting to be sent.
    pub async fn outbox_len(&self) -> Result<u64> {
        self.local(|l| Ok(l.store.outbox_len()?)).await
    }

    /// Trusted time now, ms.
    pub async fn now_ms(&self) -> Result<i64> {
        self.local(|l| Ok(l.store.now_ms())).await
    }
}

/// One sync pass both ways (see [`Client::sync`]).
async fn sync_pass(engine: &Engine) -> Result<SyncReport> {
    let flushed = engine.flush(FlushMode::Due).await;
    let received = engine.receive(0).await?;
    if let Err(e) = engine.maintain_prekeys().await {
        tracing::info!("prekey upkeep failed (will be retried): {e}");
    }
    if engine.upkeep().await? {
        return Err(Error::Closed);
    }
    let pending = engine.with_local(|l| Ok(l.store.outbox_len()?))?;
    let pending = u32::try_from(pending).unwrap_or(u32::MAX);
    Ok(match flushed {
        Ok(r) => SyncReport {
            sent: r.sent,
            pending,
            failed: r.failed,
            send_error: None,
            received,
        },
        Err(Error::Closed) => return Err(Error::Closed),
        Err(e) => SyncReport {
            pending,
            send_error: Some(e),
            received,
            ..SyncReport::default()
        },
    })
}

/// Purges and tells the app (shared by [`Client::purge`] and background sync).
pub(crate) fn purge(engine: &Engine) -> Result<PurgeReport> {
    let report = engine.with_local(|l| Ok(l.store.purge()?))?;
    let mut ids = report.expired_ids.clone();
    ids.extend(report.kept_too_long_ids.iter().cloned());
    if !ids.is_empty() {
        engine.events.emit(ClientEvent::MessagesExpired {
            message_ids: ids.clone(),
        });
    }
    if !ids.is_empty() || !report.lapsed_prompts.is_empty() {
        engine.events.emit(ClientEvent::WithdrawNotifications {
            message_ids: ids,
            relay_message_ids: report.lapsed_prompts.clone(),
            all: false,
            reason: WithdrawReason::Expired,
        });
    }
    for id in &report.undelivered_ids {
        engine.events.emit(ClientEvent::DeliveryFailed {
            message_id: id.clone(),
            reason: "its TTL passed before it could be sent".into(),
        });
    }
    Ok(report)
}

/// Compile-time proof of what the bindings rely on: the client can be shared
/// between threads, and every operation's future can be moved to another
/// thread and outlive the call that made it (given the client in an `Arc`).
#[allow(dead_code, clippy::let_underscore_future)]
fn assert_embeddable(c: Arc<Client>) {
    fn send_sync<T: Send + Sync>() {}
    fn future<F: std::future::Future + Send + 'static>(_: F) {}
    send_sync::<Client>();
    send_sync::<SyncHandle>();
    send_sync::<ProfileManager>();
    macro_rules! check {
        ($($call:tt)*) => {{ let c = c.clone(); future(async move { c.$($call)*.await }); }};
    }
    check!(enrol(EnrolOptions::default()));
    check!(connect());
    check!(send(
        Recipient::User {
            name: String::new()
        },
        Vec::new(),
        1,
        None
    ));
    check!(remove_member("t", "u"));
    check!(flush());
    check!(receive(0));
    check!(sync());
    check!(maintain_prekeys());
    check!(fetch("id"));
    check!(threads());
    check!(thread_members("t"));
    check!(messages("t", 1));
    check!(message("m"));
    check!(mark_read("m"));
    check!(settings());
    check!(set_keep_period_secs(1));
    check!(purge());
    check!(enrolment());
    check!(device_id());
    check!(security_events());
    check!(outbox_len());
    check!(now_ms());
    check!(send_urgent(
        Recipient::User {
            name: String::new()
        },
        Vec::new(),
        1,
        None
    ));
    check!(acknowledge("m", None));
    check!(receipts("m"));
    check!(check_alerts());
    check!(download("id"));
    check!(decline("id"));
    check!(verify_notice(Vec::new()));
    check!(apply_policy(Vec::new()));
    check!(policy_json());
    check!(org_sync());
    check!(is_locked());
    check!(audit_entries(0, 1));
    check!(timeline("t"));
    check!(countersign_audit());
    check!(audit_verify(false));
}
