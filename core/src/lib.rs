//! occ-core: the client core of occ, a secure team messenger for phones.
//!
//! One Rust core does all the security-relevant work; thin Kotlin and Swift
//! apps reach it through the `occ-ffi` UniFFI bindings.
//!
//! Modules (DESIGN.md section 2):
//! - [`crypto`]: identities, X3DH, Double Ratchet, thread sender keys.
//! - [`store`]: the encrypted SQLCipher store, one per profile, and the
//!   [`store::ProfileManager`] for shared devices.
//! - [`retention`]: TTL, read timers, keep period, trusted time, the purge.
//! - [`transport`]: pinned TLS to the relay and its API client.
//! - [`sync`]: durable outbox, inbox processing, session and sender-key
//!   establishment on demand.
//! - [`client`]: the [`client::Client`] facade and its events.
//! - [`error`]: the facade's [`error::Error`].
//!
//! Conventions: no `unsafe`; no `unwrap`/`expect`/`panic` on input-driven
//! paths; errors are typed per layer; secrets never reach `Debug` or logs.
#![forbid(unsafe_code)]

pub use client::{Client, ClientEvent, EnrolOptions, EventListener, SyncReport};
pub use error::Error;
pub use sync::Recipient;

pub mod client;
pub mod crypto;
pub mod error;
pub mod retention;
pub mod store;
pub mod sync;
pub mod transport;
