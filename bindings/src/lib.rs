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
//!   `Client` (Kotlin `close()`/`use {}`, Swift deinit) closes its profile.
//! - [`files`]: sending attachments with progress, downloading them
//!   (resuming), saving them, and export (`verifyExport` needs no client), with the app's
//!   `ProgressListener` (a foreign trait); records for what UniFFI cannot
//!   carry as the core has it (paths, digests, zeroized passphrases).
//! - [`listener`]: the app's `EventListener` (a foreign trait).
//! - [`logging`]: the core's `tracing` output forwarded to the app's
//!   `Logger` at a chosen level (the core never logs content or keys).
//!
//! Network operations are `async` (Kotlin `suspend fun`, Swift
//! `async throws`) on UniFFI's tokio support; cancelling the coroutine or
//! task drops the Rust future, which the core makes safe at every await.
//! Panics inside the core are already `OccError::Internal`; anything else
//! UniFFI catches at the boundary.
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
