//! The one public error of occ-core: a variant for every case an app treats
//! differently (DESIGN.md section 6), mapped once here from each layer's own
//! error ([`StoreError`], [`CryptoError`], [`TransportError`]). The bindings
//! map it one to one.
//!
//! Messages say what failed and what to do; none carries message content or
//! key material.

use crate::crypto::CryptoError;
use crate::store::StoreError;
use crate::transport::TransportError;

/// Errors of the [`Client`](crate::Client) and the
/// [`ProfileManager`](crate::ProfileManager).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key does not open this profile.
    #[error("wrong key for this profile")]
    WrongKey,
    /// The profile's database or stored state is damaged.
    #[error("the profile is corrupt ({reason}); restore it or wipe the profile")]
    Corrupt {
        /// What is damaged.
        reason: String,
    },
    /// The disk is full; nothing was written.
    #[error("the disk is full; nothing was written — free some space and retry")]
    DiskFull,
    /// The profile cannot be written.
    #[error("storage is read-only: {reason}")]
    ReadOnly {
        /// What could not be written.
        reason: String,
    },
    /// The profile was written by a newer occ.
    #[error(
        "the profile's schema is version {found}, newer than this build supports ({supported}); update the app"
    )]
    SchemaTooNew {
        /// Version found.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The relay's validated certificate chain carries none of the pinned keys.
    #[error("certificate pin mismatch for {host}: the server presented {}; refusing to connect", presented.join(", "))]
    PinMismatch {
        /// Server name.
        host: String,
        /// Pins of the server's validated chain.
        presented: Vec<String>,
    },
    /// The relay could not prove its identity (signed acknowledgement, TLS
    /// chain) or contradicted itself.
    #[error("the relay cannot be trusted: {reason}")]
    Untrusted {
        /// What did not verify.
        reason: String,
    },
    /// A contact's identity changed (a new device key the user has not
    /// accepted): sending to them is held, and their new device is not
    /// believed, until the user compares safety numbers and accepts.
    #[error(
        "{user}'s identity changed: compare safety numbers and accept it before messaging them"
    )]
    KeyChanged {
        /// Whose identity changed.
        user: String,
    },
    /// The relay is unreachable or failed; retry later.
    #[error("network: {reason}")]
    Network {
        /// What failed.
        reason: String,
    },
    /// The content has expired.
    #[error("the message has expired")]
    Expired,
    /// Something does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The profile is not enrolled with a relay (or the relay no longer knows
    /// this device).
    #[error("this profile is not enrolled with a relay; enrol it first")]
    NotEnrolled,
    /// The caller passed something unusable, or the relay refused it.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
    },
    /// The organisation's policy forbids it, or the organisation locked
    /// this profile.
    #[error("not allowed: {reason}")]
    PolicyDenied {
        /// What the policy says.
        reason: String,
    },
    /// Storing an attachment would pass the profile's storage quota;
    /// nothing was written. Free space (or raise the quota) and retry.
    #[error(
        "storage quota: the attachment needs {needed} bytes but only {available} of the profile's {quota}-byte quota are free; nothing was written"
    )]
    QuotaExceeded {
        /// Bytes the attachment needs on disk.
        needed: u64,
        /// Bytes still free under the quota.
        available: u64,
        /// The quota.
        quota: u64,
    },
    /// The credential (PIN or passphrase) does not unlock this profile.
    /// The attempt was counted; after `attempts_left` more failures the
    /// profile is wiped, and the next attempt is taken after
    /// `retry_after_ms`.
    #[error(
        "wrong PIN or passphrase: {attempts_left} attempts left before the profile is wiped; try again in {retry_after_ms} ms"
    )]
    WrongCredential {
        /// Failures still allowed before the wipe.
        attempts_left: u32,
        /// How long until the next attempt is taken, ms.
        retry_after_ms: u64,
    },
    /// Too soon after failed unlock attempts: this one was not tried (and
    /// not counted). Wait and retry.
    #[error("too many failed attempts: try again in {retry_after_ms} ms")]
    TryLater {
        /// How long until the next attempt is taken, ms.
        retry_after_ms: u64,
    },
    /// The profile was wiped (too many failed unlock attempts): its files
    /// are gone; delete its keys from the keystore.
    #[error("the profile was wiped after too many failed unlock attempts")]
    ProfileWiped,
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// A bug: something that should not happen did (a panic is reported as
    /// this instead of crossing into the app).
    #[error("internal error: {reason}")]
    Internal {
        /// What happened.
        reason: String,
    },
}

/// Result of the public API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps a file-system error of `op` on `path` (disk full, read-only, other)
/// the way the store does.
pub(crate) fn io_error<'a>(
    op: &'static str,
    path: &'a std::path::Path,
) -> impl Fn(std::io::Error) -> Error + 'a {
    move |e| StoreError::io(op, path, e).into()
}

impl Error {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    pub(crate) fn untrusted(reason: impl Into<String>) -> Self {
        Error::Untrusted {
            reason: reason.into(),
        }
    }

    pub(crate) fn denied(reason: impl Into<String>) -> Self {
        Error::PolicyDenied {
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        Error::Corrupt {
            reason: reason.into(),
        }
    }

    pub(crate) fn internal(reason: impl Into<String>) -> Self {
        Error::Internal {
            reason: reason.into(),
        }
    }

    /// Whether retrying later may succeed without anything else changing.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Network { .. })
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::WrongKey => Error::WrongKey,
            StoreError::Corrupt(reason) => Error::Corrupt { reason },
            StoreError::DiskFull => Error::DiskFull,
            StoreError::ReadOnly(reason) => Error::ReadOnly { reason },
            StoreError::SchemaTooNew { found, supported } => {
                Error::SchemaTooNew { found, supported }
            }
            StoreError::Expired => Error::Expired,
            StoreError::NotFound(what) => Error::NotFound { what },
            StoreError::InvalidInput(reason) => Error::InvalidInput { reason },
            StoreError::QuotaExceeded {
                needed,
                available,
                quota,
            } => Error::QuotaExceeded {
                needed,
                available,
                quota,
            },
            StoreError::AlreadyExists(what) => Error::invalid(format!("already exists: {what}")),
            StoreError::Crypto(c) => Error::corrupt(c.to_string()),
            e @ StoreError::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            } => Error::not_found(e.to_string()),
            e @ (StoreError::Io { .. } | StoreError::Randomness | StoreError::Sqlite { .. }) => {
                Error::internal(e.to_string())
            }
        }
    }
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::InvalidInput(m) => Error::invalid(m),
            CryptoError::MessageTooLarge { .. } | CryptoError::TooManyPreKeys { .. } => {
                Error::invalid(e.to_string())
            }
            CryptoError::CorruptState(_) => Error::corrupt(e.to_string()),
            CryptoError::Randomness | CryptoError::Internal(_) | CryptoError::CounterExhausted => {
                Error::internal(e.to_string())
            }
            // Everything else is data from elsewhere (a bundle, an envelope)
            // that did not verify.
            other => Error::untrusted(other.to_string()),
        }
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::PinMismatch { host, presented } => {
                Error::PinMismatch { host, presented }
            }
            TransportError::ForgedAcknowledgement(_) | TransportError::Tls(_) => {
                Error::untrusted(e.to_string())
            }
            TransportError::Gone => Error::Expired,
            TransportError::NotFound(what) => Error::NotFound { what },
            TransportError::InvalidConfig(reason) => Error::InvalidInput { reason },
            TransportError::Rejected { .. } => Error::invalid(e.to_string()),
            TransportError::Unauthorized(_) => Error::NotEnrolled,
            TransportError::Network(_)
            | TransportError::StaleDevices { .. }
            | TransportError::Server { .. }
            | TransportError::RateLimited { .. }
            | TransportError::InvalidResponse(_) => Error::Network {
                reason: e.to_string(),
            },
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::from(e).into()
    }
}
