//! Transport to the relay: HTTPS with certificate pinning, the JSON API
//! client, and relay authentication.
//!
//! - [`pinning`]: the rustls verifier that validates the chain first and then
//!   matches SPKI pins on the *validated* path (never the presented list).
//! - [`api`]: [`ApiClient`], reqwest 0.13 over a preconfigured rustls 0.23
//!   config (ring provider, ALPN `h2`/`http/1.1` set by us), one method per
//!   route of [`occ_protocol::api`], and the signed-acknowledgement check.
//!
//! Invariants: a pin mismatch is always reported as
//! [`TransportError::PinMismatch`] (host and presented pins, never key
//! material); a relay whose acknowledgement does not verify under the service
//! key learned at enrolment is refused ([`TransportError::ForgedAcknowledgement`]);
//! tokens never appear in `Debug` or errors.

pub mod api;
pub mod pinning;

pub use api::{ApiClient, RelayEndpoint, SessionInfo};
pub use pinning::{AfterExpiry, Pin, PinFailure, PinSet};

/// Errors talking to the relay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The relay's validated certificate chain carries none of the pinned keys.
    #[error("certificate pin mismatch for {host}: the server presented {}; none is pinned — refusing to connect", presented.join(", "))]
    PinMismatch {
        /// The server name.
        host: String,
        /// Pins of the keys on the server's validated chain.
        presented: Vec<String>,
    },
    /// Any other TLS failure (unknown CA, expired or misnamed certificate).
    #[error("TLS failure: {0}")]
    Tls(String),
    /// The relay's signed acknowledgement does not verify.
    #[error("the relay's signed acknowledgement does not verify ({0}); refusing this relay")]
    ForgedAcknowledgement(String),
    /// The connection failed or timed out.
    #[error("network error: {0}")]
    Network(String),
    /// The relay answered 401.
    #[error("not authenticated: {0}")]
    Unauthorized(String),
    /// The relay answered 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// The relay answered 410: the message expired.
    #[error("the message has expired on the relay (410 Gone)")]
    Gone,
    /// A send was sealed for a stale device list: the relay names devices
    /// of the addressed users the sender did not know of (409).
    #[error("the device list is stale: {} device(s) not known", missing.len())]
    StaleDevices {
        /// The devices not listed.
        missing: Vec<String>,
    },
    /// The relay refused the request (another 4xx).
    #[error("the relay refused the request ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The relay's message.
        message: String,
    },
    /// The relay failed (5xx).
    #[error("the relay failed ({status}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The relay's message.
        message: String,
    },
    /// The relay's rate limit (429): retry after the given time.
    #[error("the relay asks to slow down; retry in {retry_after_ms} ms")]
    RateLimited {
        /// When to retry, ms.
        retry_after_ms: u64,
    },
    /// The relay's answer could not be understood.
    #[error("invalid response from the relay: {0}")]
    InvalidResponse(String),
    /// Local configuration (URL, pins, CA file) is unusable.
    #[error("invalid relay configuration: {0}")]
    InvalidConfig(String),
}

impl TransportError {
    /// Whether retrying later may succeed (network trouble, 5xx).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::Network(_)
                | TransportError::Server { .. }
                | TransportError::RateLimited { .. }
        )
    }
}
