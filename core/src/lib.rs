//! occ-core: the client core of occ, a secure team messenger for phones.
//!
//! One Rust core does all the security-relevant work; thin Kotlin and Swift
//! apps reach it through the `occ-ffi` UniFFI bindings, which map this
//! crate's public surface one to one: [`Client`], [`ProfileManager`],
//! [`SyncHandle`], the records they take and return, [`ClientEvent`] with
//! its [`EventListener`], and the one [`Error`].
//!
//! Modules (DESIGN.md section 2), in the direction data flows —
//! transport → sync → crypto → store → events:
//! - [`transport`]: pinned TLS to the relay and its API client.
//! - [`sync`]: the engine — enrolment and relay sessions, the durable outbox,
//!   inbox classification, thread bookkeeping, prekey upkeep.
//! - [`crypto`]: identities, X3DH, Double Ratchet, thread sender keys.
//! - [`store`]: the encrypted SQLCipher store, one per profile; every SQL
//!   statement of the crate is in it.
//! - [`retention`]: TTL, read timers, keep period, trusted time.
//! - [`events`]: what the app is told, after each change is stored, to any
//!   number of subscribers with bounded queues (nothing critical dropped).
//! - [`audit`]: the hash-chained audit trail and its verification.
//! - [`policy`]: the organisation's signed policy and device commands.
//! - [`push`]: the push path — a notice verified offline into a download
//!   prompt, without an open client; for a locked profile, without its key.
//! - [`export`]: a message or thread saved to a folder with a signed
//!   manifest, optionally `age`-encrypted, after policy and data-loss checks.
//! - [`client`]: the [`Client`] facade, the core's own runtime (no
//!   operation does its work on the caller's thread), background sync,
//!   profiles and the shared-device lock ([`client::credential`]).
//! - [`error`]: the public [`Error`], mapped once from each layer's errors.
//!
//! Deviations from DESIGN.md, and why:
//! - Identifier rules live in `occ_protocol::ids` and are enforced by the
//!   payload parser, so no payload that decrypts can be refused by the store
//!   later and wedge an inbox.
//! - A profile is open at most once per process: two clients of one profile
//!   would hold diverging copies of its one-time prekeys.
//! - The relay reports the one-time-prekey count with every inbox page, so
//!   upkeep needs no extra request.
//! - Trusted time adopts a signed server time more than 10 minutes ahead
//!   only when a second one a minute later corroborates it (see
//!   [`retention`]); DESIGN.md adopts any later signed time.
//! - Identity answers from the relay (directory, device lookup, bundles) must
//!   carry the service key's signature over the client's fresh nonce, so a
//!   party past the TLS pins cannot answer them.
//! - Identities: organisation-certified when an organisation key is pinned
//!   at enrolment, trust on first use with key-change holds otherwise
//!   (`sync/directory.rs`, `store/contacts.rs`).
//! - Several devices per user (DESIGN.md has one): a further device enrols
//!   with a link signed by one of the user's devices ([`crypto::link`]) and
//!   is trusted by whoever trusts its linker; sends fan out to every device
//!   of each recipient and to the sender's own other devices, and declare
//!   the device list they were sealed for, which the relay refuses when
//!   stale (the row is sealed again for the fresh list).
//! - Threads start only under ids bound to their creator; message ids and
//!   sender keys are scoped to their sender; a removal travels as a control
//!   row in the outbox ([`sync`]).
//! - Push prompts, policy, alerts, audit: notices are coalesced
//!   per device per burst; [`push::verify_notice`] needs no client and no
//!   network; organisation documents are JSON inside a signed binary frame,
//!   judged once each; the policy's minimum TTL is enforced when sending only;
//!   escalation names every recipient who has not acknowledged; the audit
//!   trail is exempt from metadata retention and its head is countersigned
//!   by the relay at every sync. Two processes may hold one profile (the app
//!   and its extension): the account is re-read inside the write transaction
//!   that may consume a one-time prekey.
//! - Attachments and export: a sent file's local copy is the
//!   uploaded blob itself (one encryption, one key); the attachment id is
//!   chosen by the sender (it is each chunk's authenticated data) and is the
//!   relay's blob id; a received blob is checked against the SHA-256 in the
//!   end-to-end message before it is accepted; export encryption also takes
//!   `age` recipients besides a passphrase.
//! - Threads: every operation runs on the core's own runtime
//!   (`client/runtime.rs`), not on the caller's thread as UniFFI would poll
//!   it; closing from a UI thread never waits (`Client::close_soon`).
//! - The shared-device lock derives its key with scrypt (DESIGN.md: Argon2id
//!   or scrypt): already in the build through `age`, memory-hard, its cost
//!   stored with each wrapped key. A profile's public push verifier and the
//!   locked path's record are unencrypted files (public keys, times, relay
//!   ids and refusal codes only).
//! - Benchmarks are bench binaries with an alternating A/B harness instead
//!   of criterion: criterion measures each function in its own phase, so a
//!   noisy neighbour skewed ratios by up to half; interleaved rounds with a
//!   median and spread do not.
//!
//! Conventions: no `unsafe`; no `unwrap`/`expect`/`panic` outside tests (the
//! workspace lints deny them); errors are typed per layer; secrets never
//! reach `Debug`, logs, errors or events.

pub use audit::{AuditBreak, AuditEntry};
pub use client::{
    Client, LockOptions, LockStatus, ProfileManager, Settings, SyncHandle, SyncOptions, SyncReport,
};
pub use error::{Error, Result};
pub use events::{ClientEvent, EventListener, Subscription, WithdrawReason, wait_for_listeners};
pub use export::{
    ExportEncryption, ExportOptions, ExportReport, ExportScope, ExportVerification, verify_export,
    verify_export_async,
};
pub use push::{
    Decision, DownloadPrompt, LockedNotice, profile_for_notice, verify_notice, verify_notice_async,
    verify_notice_locked, verify_notice_locked_async,
};
pub use retention::{Clock, ManualClock, PurgeReport, SystemClock};
pub use store::{AttachmentInfo, RecipientState, Trust};
pub use store::{SecurityEvent, SecurityEventKind, StoredMessage, ThreadKind, ThreadSummary};
pub use sync::connection::{EnrolOptions, RelaySession, RelaySettings};
pub use sync::{
    AuditReport, ContactDevice, ContactIdentity, DeliveryFailure, Enrolment, FlushReport,
    ItemOutcome, ItemReport, OutgoingFile, PrekeyReport, ReceiveReport, ReceivedMessage, Recipient,
    Urgency,
};

pub mod audit;
pub mod client;
pub mod crypto;
pub mod error;
pub mod events;
pub mod export;
pub mod policy;
pub mod push;
pub mod retention;
pub mod store;
pub mod sync;
pub mod transport;
