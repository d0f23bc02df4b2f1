//! occ-ffi: the UniFFI facade over `occ-core` for Kotlin (Android) and Swift
//! (iOS). It maps and does not think: no SQL, no cryptography, no protocol
//! logic — every method forwards to the core's `Client`, `ProfileManager` or
//! `SyncHandle`.
//!
//! - [`types`]: the core's records and enums, mirrored for UniFFI
//!   (`#[uniffi::remote]`), and its one error as `OccError`
//!   (`OccException` in Kotlin, `OccError` in Swift).
//! - [`objects`]: `ProfileManager`, `Client` and `SyncHandle` — thin
//!   wrappers, because exported methods must live in this crate. Dropping a
//!   `Client` (Kotlin `close()`/`use {}`, Swift deinit) closes its profile
//!   without waiting.
//! - [`files`]: sending attachments with progress, downloading them
//!   (resuming), saving them, and export (`verifyExport` needs no client), with the app's
//!   `ProgressListener` (a foreign trait); records for what UniFFI cannot
//!   carry as the core has it (paths, digests, zeroized passphrases).
//! - [`listener`]: the app's `EventListener` (a foreign trait) and the
//!   `EventSubscription` handle (any number per client, pulled with
//!   `next()` or pushed to a listener on a core thread of its own).
//! - [`logging`]: the core's `tracing` output forwarded to the app's
//!   `Logger` at a chosen level (the core never logs content or keys).
//!
//! Every operation that touches the profile, the disk or the network is
//! `async` (Kotlin `suspend fun`, Swift `async throws`) and runs on the
//! core's own threads (the core offloads it; UniFFI would otherwise poll it
//! on the calling thread, often the UI's): the caller only schedules and
//! resumes. The synchronous exports touch memory only. Cancelling the
//! coroutine drops the Rust future, which the core makes safe at every
//! await. Panics inside the core are already `OccError::Internal`; anything
//! else UniFFI catches at the boundary. API checksums are on (the default):
//! the generated code checks them in its initialisation, which the thin
//! layers' `ensureNativeLibrary()` runs, so a stale library fails clearly.
//!
//! Hot paths cross the FFI once per batch, not per message: `messages()`
//! returns a page, `receive()`/`sync()` one report per drain, and the event
//! listener gets one `MessagesReceived` per inbox page.
//!
//! Deviation from the workspace lints: `unsafe_code` is allowed here only,
//! for the scaffolding UniFFI generates.

pub mod files;
pub mod listener;
pub mod logging;
pub mod objects;
pub mod types;

uniffi::setup_scaffolding!("occ");
