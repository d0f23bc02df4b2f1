//! occ-protocol: the versioned wire formats shared by the occ client core and the
//! relay.
//!
//! Every structure here starts with a version byte ([`VERSION`]) and has exactly
//! one binary encoding. Parsing is total: any byte string either parses or gives
//! a [`WireError`]; nothing panics, allocates more than its input, or accepts
//! trailing bytes. Each parser has a `cargo fuzz` target in `fuzz/`.
//!
//! The structures:
//! - [`Envelope`]: what the relay stores and forwards per device. A 1:1
//!   Double Ratchet message ([`RatchetMessage`]), the first messages of a
//!   session that also carry the X3DH handshake ([`PreKeyMessage`]), or a thread
//!   message under a sender key ([`GroupMessage`]).
//! - [`PreKeyBundle`]: a device's published identity and prekeys.
//! - [`SenderKeyDistribution`]: a thread sender key, only ever sent sealed inside
//!   a pairwise session (it holds a chain key, which is redacted from `Debug`).
//!
//! Fields are plain bytes: verifying signatures and keys is the client core's
//! job (`occ-core::crypto`). The relay only ever handles these as opaque
//! ciphertext envelopes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bundle;
pub mod codec;
pub mod envelope;
mod error;
pub mod sender_key;

pub use bundle::{IdentityKeys, PreKeyBundle};
pub use envelope::{
    Envelope, GroupMessage, PreKeyHeader, PreKeyMessage, RatchetHeader, RatchetMessage,
};
pub use error::WireError;
pub use sender_key::SenderKeyDistribution;

/// The wire version this build speaks; the first byte of every structure.
pub const VERSION: u8 = 1;

/// Largest ciphertext (plaintext plus the 16-byte tag) an envelope may carry.
/// Attachments travel as separate blobs, so messages stay small.
pub const MAX_CIPHERTEXT_LEN: usize = (1 << 20) + 16;

/// Largest encoded envelope: the ciphertext plus the largest header.
pub const MAX_ENVELOPE_LEN: usize = MAX_CIPHERTEXT_LEN + 512;

/// Largest thread identifier, in bytes.
pub const MAX_THREAD_ID_LEN: usize = 64;

/// Renders bytes as lowercase hex, for `Debug` output of *public* values.
pub(crate) struct Hex<'a>(pub &'a [u8]);

impl std::fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
