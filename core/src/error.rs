//! The facade's error: one enum with the variants apps act on (DESIGN.md
//! section 6), converted from each layer's own error. Messages say what failed
//! and what to do; none carries message content or key material.

use crate::crypto::CryptoError;
use crate::store::StoreError;
use crate::transport::TransportError;

/// Errors of the [`Client`](crate::client::Client) facade.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The relay's certificate chain carries no pinned key.
    #[error("certificate pin mismatch for {host}: the server presented {}; refusing to connect", presented.join(", "))]
    PinMismatch {
        /// Server name.
        host: String,
        /// Pins of the server's validated chain.
        presented: Vec<String>,
    },
    /// The relay's signed acknowledgement did not verify.
    #[error("the relay could not prove its identity: {0}")]
    UntrustedRelay(String),
    /// The content has expired.
    #[error("the message has expired")]
    Expired,
    /// Organisation policy forbids this.
    #[error("denied by policy: {0}")]
    PolicyDenied(String),
    /// The profile key is wrong.
    #[error("wrong key for this profile")]
    WrongKey,
    /// The network or the relay is unavailable; retry later.
    #[error("network: {0}")]
    Network(String),
    /// The relay refused the request.
    #[error("relay: {0}")]
    Relay(String),
    /// Bad input from the caller.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Something does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The profile is not enrolled with a relay yet.
    #[error("this profile is not enrolled with a relay; run init/enrol first")]
    NotEnrolled,
    /// Local storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// Cryptographic failure.
    #[error("crypto: {0}")]
    Crypto(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::WrongKey => Error::WrongKey,
            StoreError::Expired => Error::Expired,
            StoreError::InvalidInput(m) => Error::InvalidInput(m),
            StoreError::NotFound(m) => Error::NotFound(m),
            StoreError::Crypto(c) => Error::Crypto(c.to_string()),
            other => Error::Storage(other.to_string()),
        }
    }
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::InvalidInput(m) => Error::InvalidInput(m.into()),
            CryptoError::MessageTooLarge { .. } => Error::InvalidInput(e.to_string()),
            other => Error::Crypto(other.to_string()),
        }
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::PinMismatch { host, presented } => {
                Error::PinMismatch { host, presented }
            }
            TransportError::ForgedAcknowledgement(m) => Error::UntrustedRelay(m),
            TransportError::Gone => Error::Expired,
            TransportError::NotFound(m) => Error::NotFound(m),
            TransportError::InvalidConfig(m) => Error::InvalidInput(m),
            TransportError::Network(m) => Error::Network(m),
            TransportError::Tls(m) => Error::Network(format!("TLS: {m}")),
            other @ (TransportError::Server { .. } | TransportError::InvalidResponse(_)) => {
                Error::Network(other.to_string())
            }
            other => Error::Relay(other.to_string()),
        }
    }
}

/// Facade result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::from(e).into()
    }
}
