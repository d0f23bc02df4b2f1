//! occ-core: the client core of occ, a secure team messenger for phones.
//!
//! One Rust core does all the security-relevant work; thin Kotlin and Swift
//! apps reach it through the `occ-ffi` UniFFI bindings.
//!
//! Modules (DESIGN.md section 2):
//! - [`crypto`]: identities, X3DH, Double Ratchet, thread sender keys.
//!
//! Conventions: no `unsafe`; no `unwrap`/`expect`/`panic` on input-driven
//! paths; errors are typed per layer; secrets never reach `Debug` or logs.
#![forbid(unsafe_code)]

pub mod crypto;
