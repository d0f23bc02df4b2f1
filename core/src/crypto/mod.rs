//! End-to-end cryptography (protocol v1, DESIGN.md section 3).
//!
//! - [`identity`]: device identity (Ed25519 signing key + X25519 identity key
//!   signed by it).
//! - [`prekeys`]: the [`Account`]: signed prekey with rotation, one-time prekey
//!   batches, and the responder side of the handshake.
//! - [`handshake`]: X3DH per Signal's specification.
//! - [`ratchet`]: the Double Ratchet with ChaCha20-Poly1305.
//! - [`session`]: a pairwise [`Session`] (handshake + ratchet + persistence).
//! - [`group`]: thread sender keys ([`ThreadKeys`]).
//! - [`kdf`]: KDFs, AEAD, randomness, the zeroizing [`Key32`].
//! - [`link`]: device links (one device of a user vouches for another).
//! - [`org`]: organisation certificates and revocation lists (verify; and
//!   sign, for the administrator's tool).
//! - [`safety`]: safety numbers to compare in person.
//!
//! Invariants shared by every type here:
//! - Secrets are zeroized on drop and never appear in `Debug` output or in
//!   error messages.
//! - Any operation on untrusted input either succeeds or returns a
//!   [`CryptoError`] and leaves the state unchanged; nothing panics.
//! - Persisted state is versioned bytes (`[STATE_VERSION, tag, ...]`) that
//!   restore exactly; malformed state is [`CryptoError::CorruptState`].
//!
//! Time is always passed in by the caller (seconds since the epoch): the store
//! supplies *trusted* time, so a device clock turned back cannot delay a
//! rotation.

pub mod credential;
pub mod group;
pub mod handshake;
pub mod identity;
pub mod kdf;
pub mod link;
pub mod org;
pub mod prekeys;
pub mod ratchet;
pub mod safety;
pub mod session;

pub use group::{ReceivedSenderKey, SenderKey, ThreadKeys};
pub use identity::{DeviceId, IdentityKeyPair, IdentityPublic};
pub use kdf::Key32;
pub use prekeys::{Account, SignedPreKeyPublic};
pub use session::{Role, Session};

use occ_protocol::WireError;

/// Version byte of every persisted crypto state blob.
pub const STATE_VERSION: u8 = 1;

/// Errors of the cryptographic layer. Messages say what failed and what to
/// do; they never include key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The envelope, bundle or distribution is malformed.
    #[error("malformed input: {0}")]
    Wire(#[from] WireError),
    /// Persisted state could not be parsed.
    #[error("stored cryptographic state is corrupt ({0}); the session must be re-established")]
    CorruptState(WireError),
    /// A signature did not verify.
    #[error("invalid signature on the {0}; the data was forged or corrupted")]
    InvalidSignature(&'static str),
    /// A public key is malformed or weak.
    #[error("invalid public key: {0}")]
    InvalidKey(&'static str),
    /// A Diffie-Hellman result was all zeros (low-order peer key).
    #[error("key agreement was non-contributory (the peer's key is invalid); refused")]
    NonContributory,
    /// The prekey message names a signed prekey we no longer (or never) had.
    #[error("unknown signed prekey {0}; the sender must fetch a fresh prekey bundle")]
    UnknownSignedPreKey(u32),
    /// The one-time prekey is unknown or was already used.
    #[error("one-time prekey {0} is unknown or already used; refused")]
    UnknownOneTimePreKey(u32),
    /// Authentication failed: tampered, forged, or not for this session.
    #[error(
        "message failed authentication (tampered, replayed into the wrong chain, or not for this session)"
    )]
    DecryptionFailed,
    /// The message key was already used or discarded.
    #[error("message already decrypted or its key was discarded (replay or too old)")]
    DuplicateMessage,
    /// Too large a gap in a chain.
    #[error("message is {gap} messages ahead in its chain; at most {limit} may be skipped")]
    TooManySkipped {
        /// How many keys would have to be skipped.
        gap: u64,
        /// The limit.
        limit: u32,
    },
    /// No sender key with this distribution id is known.
    #[error("no sender key for this thread message; the sender must redistribute its key")]
    UnknownSenderKey,
    /// A sender key distribution for another thread.
    #[error("the sender key belongs to another thread")]
    WrongThread,
    /// The envelope does not belong to this session or object.
    #[error("this envelope does not belong to this session")]
    SessionMismatch,
    /// The responder cannot send before it has received.
    #[error("this session cannot send until it has received the peer's first message")]
    CannotSendYet,
    /// The plaintext is too large for one envelope.
    #[error("message too large: {len} bytes, the limit is {max}; send it as an attachment")]
    MessageTooLarge {
        /// Plaintext length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// One-time prekey limit reached.
    #[error("cannot add {requested} one-time prekeys: {have} held, the limit is {max}")]
    TooManyPreKeys {
        /// Held.
        have: usize,
        /// Requested.
        requested: usize,
        /// Limit.
        max: usize,
    },
    /// A chain or id counter reached its maximum.
    #[error("counter exhausted; a new session or key is needed")]
    CounterExhausted,
    /// The caller passed something unusable.
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// The OS random generator failed.
    #[error("the operating system's random number generator failed")]
    Randomness,
    /// A should-not-happen condition, reported instead of panicking.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

#[cfg(test)]
mod tests;
