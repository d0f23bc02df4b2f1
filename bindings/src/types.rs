//! The core's public records and enums, mirrored for UniFFI. Each mirror
//! repeats the core definition exactly (the compiler checks it); UniFFI
//! generates the conversions and emits nothing else.
#![allow(missing_docs)]

use occ_core::{
    AuditBreak, AuditEntry, AuditReport, ClientEvent, ContactDevice, ContactIdentity, Decision,
    DeliveryFailure, DownloadPrompt, EnrolOptions, Enrolment, FlushReport, ItemOutcome, ItemReport,
    PrekeyReport, PurgeReport, ReceiveReport, ReceivedMessage, Recipient, RecipientState,
    RelaySession, RelaySettings, SecurityEvent, SecurityEventKind, Settings, StoredMessage,
    SyncOptions, SyncReport, ThreadKind, ThreadSummary, Trust, WithdrawReason,
};
use occ_core::{LockOptions, LockStatus, LockedNotice};

/// The core's error; `OccException` in Kotlin, `OccError` in Swift.
pub type OccError = occ_core::Error;

#[uniffi::remote(Error)]
#[non_exhaustive]
pub enum OccError {
    WrongKey,
    Corrupt {
        reason: String,
    },
    DiskFull,
    ReadOnly {
        reason: String,
    },
    SchemaTooNew {
        found: i64,
        supported: i64,
    },
    PinMismatch {
        host: String,
        presented: Vec<String>,
    },
    Untrusted {
        reason: String,
    },
    KeyChanged {
        user: String,
    },
    Network {
        reason: String,
    },
    Expired,
    NotFound {
        what: String,
    },
    NotEnrolled,
    InvalidInput {
        reason: String,
    },
    PolicyDenied {
        reason: String,
    },
    QuotaExceeded {
        needed: u64,
        available: u64,
        quota: u64,
    },
    WrongCredential {
        attempts_left: u32,
        retry_after_ms: u64,
    },
    TryLater {
        retry_after_ms: u64,
    },
    ProfileWiped,
    Closed,
    Internal {
        reason: String,
    },
}

#[uniffi::remote(Record)]
pub struct RelaySettings {
    pub url: String,
    pub pins: Vec<String>,
    pub pins_expire_ms: Option<i64>,
    pub pins_lapse_to_chain: bool,
    pub ca_pem: Option<String>,
}

#[uniffi::remote(Record)]
pub struct EnrolOptions {
    pub relay: RelaySettings,
    pub user: String,
    pub push_endpoint: Option<String>,
    pub org_key: Option<String>,
    pub link: Option<Vec<u8>>,
}

#[uniffi::remote(Record)]
pub struct Enrolment {
    pub relay: RelaySettings,
    pub user: String,
    pub device_id: String,
    pub service_key: String,
    pub org_key: Option<String>,
    pub linked_by: Option<String>,
    pub push_endpoint: Option<String>,
}

#[uniffi::remote(Record)]
pub struct RelaySession {
    pub session_id: String,
    pub server_time_ms: i64,
    pub trusted_time_ms: i64,
}

#[uniffi::remote(Enum)]
pub enum Recipient {
    User { name: String },
    Thread { id: String, members: Vec<String> },
}

#[uniffi::remote(Record)]
pub struct StoredMessage {
    pub seq: i64,
    pub id: String,
    pub thread_id: String,
    pub sender: String,
    pub outgoing: bool,
    pub body: Vec<u8>,
    pub sent_ms: i64,
    pub received_ms: i64,
    pub ttl_expiry_ms: i64,
    pub read_timer_ms: Option<i64>,
    pub first_read_ms: Option<i64>,
    pub deadline_ms: i64,
    pub urgent: bool,
    pub ack_by_ms: Option<i64>,
}

#[uniffi::remote(Enum)]
pub enum ThreadKind {
    Direct,
    Group,
}

#[uniffi::remote(Record)]
pub struct ThreadSummary {
    pub id: String,
    pub title: String,
    pub kind: ThreadKind,
    pub created_ms: i64,
    pub last_ms: i64,
}

#[uniffi::remote(Record)]
pub struct ReceivedMessage {
    pub thread_id: String,
    pub message_id: String,
    pub sender: String,
    pub urgent: bool,
}

#[uniffi::remote(Enum)]
#[non_exhaustive]
pub enum SecurityEventKind {
    PinFailure,
    RelayUnverified,
    Undecryptable,
    InvalidPayload,
    UnknownSender,
    SenderMismatch,
    IdentityMismatch,
    Misrouted,
    NonMember,
    RefusedSenderKey,
    DeliveryFailed,
    DirectoryMismatch,
    TimeJump,
    KeyChanged,
    Uncertified,
    ForgedNotice,
    OrgDocRefused,
    PolicyDenied,
    AttachmentTampered,
}

#[uniffi::remote(Enum)]
pub enum ItemOutcome {
    Stored {
        message: ReceivedMessage,
    },
    Applied,
    Duplicate,
    Expired,
    Declined,
    Rejected {
        kind: SecurityEventKind,
        reason: String,
    },
}

#[uniffi::remote(Record)]
pub struct ItemReport {
    pub relay_id: String,
    pub outcome: ItemOutcome,
}

#[uniffi::remote(Record)]
pub struct ReceiveReport {
    pub items: Vec<ItemReport>,
}

#[uniffi::remote(Record)]
pub struct DeliveryFailure {
    pub message_id: String,
    pub reason: String,
}

#[uniffi::remote(Record)]
pub struct FlushReport {
    pub sent: u32,
    pub pending: u32,
    pub failed: Vec<DeliveryFailure>,
}

#[uniffi::remote(Record)]
pub struct SyncReport {
    pub sent: u32,
    pub pending: u32,
    pub failed: Vec<DeliveryFailure>,
    pub send_error: Option<OccError>,
    pub received: ReceiveReport,
}

#[uniffi::remote(Record)]
pub struct PrekeyReport {
    pub rotated_signed_prekey: bool,
    pub published_one_time_prekeys: u32,
    pub relay_one_time_prekeys: Option<u64>,
}

#[uniffi::remote(Record)]
pub struct Settings {
    pub keep_period_secs: u64,
    pub org_max_keep_period_secs: Option<u64>,
    pub metadata_retention_secs: u64,
}

#[uniffi::remote(Enum)]
pub enum Trust {
    Pending,
    Trusted,
    Verified,
}

#[uniffi::remote(Record)]
pub struct ContactDevice {
    pub device_id: String,
    pub trust: Trust,
}

#[uniffi::remote(Record)]
pub struct ContactIdentity {
    pub user: String,
    pub safety_number: String,
    pub devices: Vec<ContactDevice>,
}

#[uniffi::remote(Record)]
pub struct SyncOptions {
    pub long_poll_ms: u64,
    pub purge_interval_ms: u64,
    pub max_retry_ms: u64,
}

#[uniffi::remote(Record)]
pub struct PurgeReport {
    pub at_ms: i64,
    pub expired_ids: Vec<String>,
    pub kept_too_long_ids: Vec<String>,
    pub undelivered_ids: Vec<String>,
    pub attachments: u64,
    pub lapsed_prompts: Vec<String>,
}

#[uniffi::remote(Record)]
pub struct SecurityEvent {
    pub at_ms: i64,
    pub kind: SecurityEventKind,
    pub detail: String,
}

#[uniffi::remote(Enum)]
#[non_exhaustive]
pub enum ClientEvent {
    MessagesReceived {
        messages: Vec<ReceivedMessage>,
    },
    MessageSent {
        message_id: String,
    },
    MessagesExpired {
        message_ids: Vec<String>,
    },
    DeliveryFailed {
        message_id: String,
        reason: String,
    },
    SecurityAlert {
        kind: SecurityEventKind,
        detail: String,
    },
    ReceiptReceived {
        message_id: String,
        user: String,
        state: String,
    },
    AlertEscalated {
        message_id: String,
        thread_id: String,
        unacknowledged: Vec<String>,
    },
    VolumeAlert {
        count: u32,
        minutes: u32,
    },
    PolicyChanged,
    Locked {
        locked: bool,
    },
    ProfileWiped,
    ProfileClosed,
    WithdrawNotifications {
        message_ids: Vec<String>,
        relay_message_ids: Vec<String>,
        all: bool,
        reason: WithdrawReason,
    },
    ConnectionChanged {
        connected: bool,
        reason: String,
    },
    Coalesced {
        dropped: u32,
    },
}

#[uniffi::remote(Record)]
pub struct LockOptions {
    pub max_failures: u32,
    pub cost: u8,
}

#[uniffi::remote(Record)]
pub struct LockStatus {
    pub has_credential: bool,
    pub failures: u32,
    pub max_failures: u32,
    pub retry_after_ms: u64,
}

#[uniffi::remote(Record)]
pub struct LockedNotice {
    pub relay_message_id: String,
    pub message_class: String,
    pub urgent: bool,
    pub count: u32,
    pub expires_ms: i64,
}

#[uniffi::remote(Enum)]
pub enum WithdrawReason {
    Expired,
    Locked,
    Wiped,
}

#[uniffi::remote(Enum)]
pub enum Decision {
    Allow,
    Confirm { reason: String },
    Deny { reason: String },
}

#[uniffi::remote(Record)]
pub struct DownloadPrompt {
    pub relay_message_id: String,
    pub thread_id: Option<String>,
    pub thread_title: Option<String>,
    pub sender_user: Option<String>,
    pub sender_device: String,
    pub sender_verified: bool,
    pub message_class: String,
    pub size: u64,
    pub expires_ms: i64,
    pub urgent: bool,
    pub count: u32,
    pub decision: Decision,
    pub previews: bool,
}

#[uniffi::remote(Record)]
pub struct RecipientState {
    pub user: String,
    pub delivered_ms: Option<i64>,
    pub read_ms: Option<i64>,
    pub acknowledged_ms: Option<i64>,
    pub reply: Option<String>,
}

#[uniffi::remote(Record)]
pub struct AuditEntry {
    pub seq: u64,
    pub at_ms: i64,
    pub kind: String,
    pub thread_id: Option<String>,
    pub message_id: Option<String>,
    pub subject: String,
    pub detail: String,
    pub hash: String,
}

#[uniffi::remote(Enum)]
pub enum AuditBreak {
    Altered { seq: u64 },
    Missing { seq: u64 },
    Truncated { seq: u64 },
    Rewritten { seq: u64 },
}

#[uniffi::remote(Record)]
pub struct AuditReport {
    pub entries: u64,
    pub countersigned_seq: Option<u64>,
    pub checked_with_relay: bool,
    pub broken: Option<AuditBreak>,
}

/// Background sync's defaults (25 s long-poll, purge every minute, retries
/// at most 30 s apart).
#[uniffi::export]
pub fn default_sync_options() -> SyncOptions {
    SyncOptions::default()
}

/// A fresh random 32-byte database key, for apps whose keystore cannot make
/// one (wrap it with the platform keystore before storing it).
#[uniffi::export]
pub fn generate_database_key() -> Result<Vec<u8>, OccError> {
    occ_core::store::DbKey::generate()
        .map(|k| k.as_bytes().to_vec())
        .map_err(OccError::from)
}

/// Verifies a push notice for the profile in `dir` without opening a
/// client or the network (a Notification Service Extension): the relay's
/// signature, recipient, expiry and replay, then the sender, thread and
/// policy. Returns the download prompt; a forged, replayed or expired
/// notice is an error (and an audit entry).
#[uniffi::export(async_runtime = "tokio")]
pub async fn verify_notice(
    dir: String,
    key: Vec<u8>,
    notice: Vec<u8>,
) -> Result<DownloadPrompt, OccError> {
    occ_core::verify_notice_async(dir, key, notice).await
}

/// Verifies a push notice for a *locked* profile (no key: against the
/// profile's public verifier) and says what may be shown — no sender, no
/// thread. A forged, expired or replayed notice is an error, recorded for
/// the profile's next unlock.
#[uniffi::export(async_runtime = "tokio")]
pub async fn verify_notice_locked(dir: String, notice: Vec<u8>) -> Result<LockedNotice, OccError> {
    occ_core::verify_notice_locked_async(dir, notice).await
}

/// The default protection of a locked profile (wiped after 10 failed
/// attempts; scrypt cost 2^15).
#[uniffi::export]
pub fn default_lock_options() -> LockOptions {
    LockOptions::default()
}

/// The occ-core version these bindings were built from.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
