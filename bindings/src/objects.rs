//! The exported objects: thin wrappers over the core's, forwarding every
//! call. Dropping a `Client` — Kotlin `close()` / `use {}`, Swift `deinit` —
//! closes its profile (and stops its background sync) without waiting.
//!
//! Every call that reads or writes the profile, the disk or the network is
//! `async` and runs on the core's own threads (`occ_core::Client`'s
//! offloading): the calling thread — a UI thread included — only schedules
//! it and resumes with its result. The synchronous ones (`closeProfile`,
//! `isClosed`, `subscribe*`, `SyncHandle` and `EventSubscription` controls)
//! touch only memory and return at once.

use std::sync::Arc;

use occ_core::{
    AuditEntry, AuditReport, ContactIdentity, DownloadPrompt, EnrolOptions, Enrolment, FlushReport,
    LockOptions, LockStatus, PrekeyReport, PurgeReport, ReceiveReport, Recipient, RecipientState,
    RelaySession, SecurityEvent, Settings, StoredMessage, SyncOptions, SyncReport, ThreadSummary,
};

use crate::listener::{EventListener, EventSubscription, Forward};
use crate::types::OccError;

type Result<T> = std::result::Result<T, OccError>;

/// Profiles of a shared device: one directory, database and key each.
#[derive(uniffi::Object)]
pub struct ProfileManager(occ_core::ProfileManager);

#[uniffi::export(async_runtime = "tokio")]
impl ProfileManager {
    /// A manager for the profiles under `root` (created if missing: one
    /// directory, call it off the UI thread or once at start-up).
    #[uniffi::constructor]
    pub fn new(root: String) -> Result<Arc<Self>> {
        Ok(Arc::new(Self(occ_core::ProfileManager::new(&root)?)))
    }

    /// Creates profile `name` encrypted with the 32-byte `key`, and opens it.
    pub async fn create(&self, name: String, key: Vec<u8>) -> Result<Arc<Client>> {
        Ok(Arc::new(Client(self.0.create_async(name, key).await?)))
    }

    /// Opens profile `name` with its key.
    pub async fn open(&self, name: String, key: Vec<u8>) -> Result<Arc<Client>> {
        Ok(Arc::new(Client(self.0.open_async(name, key).await?)))
    }

    /// Every profile's name, sorted.
    pub async fn list(&self) -> Result<Vec<String>> {
        self.0.list_async().await
    }

    /// Whether profile `name` exists.
    pub async fn exists(&self, name: String) -> Result<bool> {
        self.0.exists_async(name).await
    }

    /// Closes profile `name` if open, then removes every file of it.
    pub async fn wipe(&self, name: String) -> Result<()> {
        self.0.wipe_async(name).await
    }

    /// Creates profile `name` whose database key exists only wrapped under
    /// `credential` (a PIN or passphrase) and `device_secret` (kept in the
    /// platform keystore), and opens it.
    pub async fn create_locked(
        &self,
        name: String,
        credential: Vec<u8>,
        device_secret: Vec<u8>,
        options: LockOptions,
    ) -> Result<Arc<Client>> {
        Ok(Arc::new(Client(
            self.0
                .create_locked_async(name, credential, device_secret, options)
                .await?,
        )))
    }

    /// Opens a locked profile with its user's credential:
    /// `WrongCredential` (counted), `TryLater` (not counted) or
    /// `ProfileWiped` (the last allowed failure).
    pub async fn unlock(
        &self,
        name: String,
        credential: Vec<u8>,
        device_secret: Vec<u8>,
    ) -> Result<Arc<Client>> {
        Ok(Arc::new(Client(
            self.0.unlock_async(name, credential, device_secret).await?,
        )))
    }

    /// Replaces a locked profile's credential (the old one is checked and
    /// counted like an unlock).
    pub async fn change_credential(
        &self,
        name: String,
        old: Vec<u8>,
        new: Vec<u8>,
        device_secret: Vec<u8>,
        new_device_secret: Vec<u8>,
    ) -> Result<()> {
        self.0
            .change_credential_async(name, old, new, device_secret, new_device_secret)
            .await
    }

    /// Where a profile's lock stands (failures, wait).
    pub async fn lock_status(&self, name: String) -> Result<LockStatus> {
        self.0.lock_status_async(name).await
    }

    /// Which profile a push notice is for (by the device it names), without
    /// opening any; `null` when none.
    pub async fn profile_for_notice(&self, notice: Vec<u8>) -> Result<Option<String>> {
        self.0.profile_for_notice_async(notice).await
    }

    /// The directory of profile `name` (for `verifyNoticeLocked`).
    pub fn profile_dir(&self, name: String) -> Result<String> {
        self.0.profile_dir(&name)
    }
}

/// Running background sync; stops on `stop()` or when released.
#[derive(uniffi::Object)]
pub struct SyncHandle(occ_core::SyncHandle);

#[uniffi::export]
impl SyncHandle {
    /// Stops background sync at once.
    pub fn stop(&self) {
        self.0.stop();
    }

    /// Whether it is still running.
    pub fn is_running(&self) -> bool {
        self.0.is_running()
    }
}

/// One open profile.
#[derive(uniffi::Object)]
pub struct Client(pub(crate) occ_core::Client);

impl Drop for Client {
    fn drop(&mut self) {
        self.0.close_soon();
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Client {
    /// Creates a profile in the existing empty directory `dir`.
    #[uniffi::constructor]
    pub async fn create(dir: String, key: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self(
            occ_core::Client::create_async(dir, key).await?,
        )))
    }

    /// Opens the profile in `dir`.
    #[uniffi::constructor]
    pub async fn open(dir: String, key: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self(
            occ_core::Client::open_async(dir, key).await?,
        )))
    }

    /// Opens the profile for the push path in a process that is not the
    /// app (a Notification Service Extension), to `download` after
    /// `verifyNotice`.
    #[uniffi::constructor]
    pub async fn open_light(dir: String, key: Vec<u8>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self(
            occ_core::Client::open_light_async(dir, key).await?,
        )))
    }

    /// Closes the profile now (lock): later calls fail with `Closed` at
    /// once, subscribers get `ProfileClosed` (after a withdrawal of every
    /// notification) and end, and the database closes on the core's
    /// threads as soon as the operation holding it finishes. Never waits.
    pub fn close_profile(&self) {
        self.0.close_soon();
    }

    /// The profile's database key while it is open, for an iOS
    /// Notification Service Extension only (keep it in a keychain item
    /// shared with the extension, readable only while the device is
    /// unlocked; delete it when the profile locks).
    pub fn session_key(&self) -> Result<Vec<u8>> {
        self.0.session_key()
    }

    /// Whether the profile was closed.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Sets or removes the one listener of the simple API (called on a
    /// thread of its own). `subscribe` adds independent subscribers.
    pub fn set_listener(&self, listener: Option<Arc<dyn EventListener>>) -> Result<()> {
        self.0.set_listener(
            listener.map(|l| Arc::new(Forward(l)) as Arc<dyn occ_core::EventListener>),
        )
    }

    /// A new subscriber: `listener` gets every event, in order, on a thread
    /// of its own (it may block there; its queue coalesces meanwhile).
    /// Close the returned subscription to stop.
    pub fn subscribe(&self, listener: Arc<dyn EventListener>) -> Result<Arc<EventSubscription>> {
        let sub = self.0.subscribe_listener(Arc::new(Forward(listener)))?;
        Ok(Arc::new(EventSubscription(sub)))
    }

    /// A new subscriber that takes its events with
    /// `EventSubscription.next()` (Swift's `AsyncStream`).
    pub fn subscribe_pull(&self) -> Arc<EventSubscription> {
        Arc::new(EventSubscription(self.0.subscribe()))
    }

    /// Registers this device with a relay.
    pub async fn enrol(&self, options: EnrolOptions) -> Result<Enrolment> {
        self.0.enrol(options).await
    }

    /// Replaces this device's push endpoint on the relay (`null` stops
    /// push notices): call it whenever the push distributor or the
    /// platform hands out a new one.
    pub async fn set_push_endpoint(&self, endpoint: Option<String>) -> Result<()> {
        self.0.set_push_endpoint(endpoint).await
    }

    /// Opens a verified relay session.
    pub async fn connect(&self) -> Result<RelaySession> {
        self.0.connect().await
    }

    /// Accepts a message (durable at once); returns its id.
    pub async fn send(
        &self,
        to: Recipient,
        text: Vec<u8>,
        ttl_secs: u64,
        read_timer_secs: Option<u64>,
    ) -> Result<String> {
        self.0.send(to, text, ttl_secs, read_timer_secs).await
    }

    /// Removes a member from a thread (sender keys rotate).
    pub async fn remove_member(&self, thread_id: String, user: String) -> Result<()> {
        self.0.remove_member(&thread_id, &user).await
    }

    /// Delivers the whole outbox now.
    pub async fn flush(&self) -> Result<FlushReport> {
        self.0.flush().await
    }

    /// Drains the inbox, waiting up to `wait_ms` for the first item.
    pub async fn receive(&self, wait_ms: u64) -> Result<ReceiveReport> {
        self.0.receive(wait_ms).await
    }

    /// One pass both ways.
    pub async fn sync(&self) -> Result<SyncReport> {
        self.0.sync().await
    }

    /// Prekey upkeep now.
    pub async fn maintain_prekeys(&self) -> Result<PrekeyReport> {
        self.0.maintain_prekeys().await
    }

    /// Starts background sync.
    pub async fn start_sync(&self, options: SyncOptions) -> Result<Arc<SyncHandle>> {
        Ok(Arc::new(SyncHandle(
            self.0.start_sync_async(options).await?,
        )))
    }

    /// Downloads one message by relay id (the push-prompt path).
    pub async fn fetch(&self, relay_message_id: String) -> Result<ReceiveReport> {
        self.0.fetch(&relay_message_id).await
    }

    /// Threads, most recently active first.
    pub async fn threads(&self) -> Result<Vec<ThreadSummary>> {
        self.0.threads().await
    }

    /// A thread's members.
    pub async fn thread_members(&self, thread_id: String) -> Result<Vec<String>> {
        self.0.thread_members(&thread_id).await
    }

    /// The newest `limit` live messages of a thread.
    pub async fn messages(&self, thread_id: String, limit: u32) -> Result<Vec<StoredMessage>> {
        self.0.messages(&thread_id, limit).await
    }

    /// One live message.
    pub async fn message(&self, id: String) -> Result<StoredMessage> {
        self.0.message(&id).await
    }

    /// Marks a message opened (starts its read timer).
    pub async fn mark_read(&self, id: String) -> Result<StoredMessage> {
        self.0.mark_read(&id).await
    }

    /// The retention settings.
    pub async fn settings(&self) -> Result<Settings> {
        self.0.settings().await
    }

    /// Sets the keep period.
    pub async fn set_keep_period_secs(&self, secs: u64) -> Result<()> {
        self.0.set_keep_period_secs(secs).await
    }

    /// Installs this device's organisation certificate.
    pub async fn install_certificate(&self, certificate: Vec<u8>) -> Result<()> {
        self.0.install_certificate(certificate).await
    }

    /// Applies and publishes the organisation's revocation list.
    pub async fn publish_revocations(&self, list: Vec<u8>) -> Result<()> {
        self.0.publish_revocations(list).await
    }

    /// Links another device of this user (by its hex id): the link it
    /// enrols with.
    pub async fn link_device(&self, device_id: String) -> Result<Vec<u8>> {
        self.0.link_device(&device_id).await
    }

    /// Removes a device of this user (itself included).
    pub async fn remove_device(&self, device_id: String) -> Result<()> {
        self.0.remove_device(&device_id).await
    }

    /// A new group thread id bound to this user.
    pub async fn new_thread_id(&self) -> Result<String> {
        self.0.new_thread_id().await
    }

    /// A contact's safety number and devices (compare it in person).
    pub async fn contact_identity(&self, user: String) -> Result<ContactIdentity> {
        self.0.contact_identity(&user).await
    }

    /// Accepts a contact's changed identity; `verified` after comparing.
    pub async fn accept_identity(&self, user: String, verified: bool) -> Result<()> {
        self.0.accept_identity(&user, verified).await
    }

    /// Sets how long metadata is kept.
    pub async fn set_metadata_retention_secs(&self, secs: u64) -> Result<()> {
        self.0.set_metadata_retention_secs(secs).await
    }

    /// Removes everything past its deadline now.
    pub async fn purge(&self) -> Result<PurgeReport> {
        self.0.purge().await
    }

    /// The enrolment, if enrolled.
    pub async fn enrolment(&self) -> Result<Option<Enrolment>> {
        self.0.enrolment().await
    }

    /// This device's id.
    pub async fn device_id(&self) -> Result<String> {
        self.0.device_id().await
    }

    /// Recorded security events.
    pub async fn security_events(&self) -> Result<Vec<SecurityEvent>> {
        self.0.security_events().await
    }

    /// Messages waiting to be sent.
    pub async fn outbox_len(&self) -> Result<u64> {
        self.0.outbox_len().await
    }

    /// Trusted time now, ms.
    pub async fn now_ms(&self) -> Result<i64> {
        self.0.now_ms().await
    }

    /// Sends an urgent alert asking for receipts and, with
    /// `ack_within_secs`, an acknowledgement by then (escalated after).
    pub async fn send_urgent(
        &self,
        to: Recipient,
        text: Vec<u8>,
        ttl_secs: u64,
        ack_within_secs: Option<u64>,
    ) -> Result<String> {
        self.0
            .send_urgent(to, text, ttl_secs, ack_within_secs)
            .await
    }

    /// Acknowledges an urgent alert, with an optional short reply.
    pub async fn acknowledge(&self, message_id: String, reply: Option<String>) -> Result<()> {
        self.0.acknowledge(&message_id, reply).await
    }

    /// Each recipient's progress with an alert this user sent.
    pub async fn receipts(&self, message_id: String) -> Result<Vec<RecipientState>> {
        self.0.receipts(&message_id).await
    }

    /// Escalates alerts past their deadline now.
    pub async fn check_alerts(&self) -> Result<u32> {
        self.0.check_alerts().await
    }

    /// Downloads the message a verified push notice announced.
    pub async fn download(&self, relay_message_id: String) -> Result<ReceiveReport> {
        self.0.download(&relay_message_id).await
    }

    /// Verifies a push notice for this open profile and builds its prompt.
    pub async fn verify_notice(&self, notice: Vec<u8>) -> Result<DownloadPrompt> {
        self.0.verify_notice(notice).await
    }

    /// Declines the message a push notice announced.
    pub async fn decline(&self, relay_message_id: String) -> Result<()> {
        self.0.decline(&relay_message_id).await
    }

    /// Applies an organisation policy document if it is newer and signed.
    pub async fn apply_policy(&self, document: Vec<u8>) -> Result<bool> {
        self.0.apply_policy(document).await
    }

    /// The organisation policy in force, as JSON.
    pub async fn policy_json(&self) -> Result<Option<String>> {
        self.0.policy_json().await
    }

    /// Fetches and obeys the organisation's policy and commands.
    pub async fn org_sync(&self) -> Result<bool> {
        self.0.org_sync().await
    }

    /// Whether the organisation locked this profile.
    pub async fn is_locked(&self) -> Result<bool> {
        self.0.is_locked().await
    }

    /// Audit entries after `after`, at most `limit`.
    pub async fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<AuditEntry>> {
        self.0.audit_entries(after, limit).await
    }

    /// A thread's timeline from the audit trail.
    pub async fn timeline(&self, thread_id: String) -> Result<Vec<AuditEntry>> {
        self.0.timeline(&thread_id).await
    }

    /// Has the relay countersign the audit chain head.
    pub async fn countersign_audit(&self) -> Result<Option<u64>> {
        self.0.countersign_audit().await
    }

    /// Verifies the audit trail (with `online`, against the relay's record).
    pub async fn audit_verify(&self, online: bool) -> Result<AuditReport> {
        self.0.audit_verify(online).await
    }
}
