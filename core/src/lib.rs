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
//!
//! Conventions: no `unsafe`; no `unwrap`/`expect`/`panic` on input-driven
//! paths; errors are typed per layer; secrets never reach `Debug` or logs.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod retention;
pub mod store;
