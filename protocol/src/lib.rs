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
//! - [`payload::Payload`]: what an envelope decrypts to (text, sender key,
//!   thread membership); never seen by the relay.
//! - [`org`]: what the organisation signs for its devices (policy, lock and
//!   wipe commands).
//! - [`certificate`], [`link`]: who vouches that a device key is a user's
//!   (the organisation; another device of the same user).
//! - [`ids`]: the rules for message ids, thread ids and user names, enforced
//!   by the parsers so that the client's store never sees an id it would
//!   refuse.
//! - [`api`]: the relay's HTTPS + JSON API bodies and the exact bytes each
//!   signature covers (session acknowledgement, registration, challenge,
//!   push notice).
//!
//! Fields are plain bytes: verifying signatures and keys is the client core's
//! job (`occ-core::crypto`). The relay only ever handles these as opaque
//! ciphertext envelopes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod bundle;
pub mod certificate;
pub mod codec;
pub mod envelope;
mod error;
pub mod ids;
pub mod link;
pub mod org;
pub mod payload;
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

pub use ids::MAX_THREAD_ID_LEN;

/// Signature contexts (prefixes) shared by the client core and the relay,
/// which both verify these signatures.
pub mod contexts {
    /// Binds a device's X25519 identity key to its Ed25519 key.
    pub const IDENTITY_DH: &[u8] = b"occ/v1/identity-dh";
    /// Signs an export's manifest (followed by the manifest's exact bytes).
    pub const EXPORT_MANIFEST: &[u8] = b"occ/v1/export-manifest";
    /// Signs a signed prekey (followed by [`signed_prekey_message`]).
    pub const SIGNED_PREKEY: &[u8] = b"occ/v1/signed-prekey";

    /// The message a signed prekey signature covers after the context: the
    /// id (big-endian) and the X25519 key.
    pub fn signed_prekey_message(id: u32, public: &[u8; 32]) -> [u8; 36] {
        let mut m = [0u8; 36];
        m[..4].copy_from_slice(&id.to_be_bytes());
        m[4..].copy_from_slice(public);
        m
    }
}

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
