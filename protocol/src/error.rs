//! Typed parse errors for every wire structure.
//!
//! Parsers never panic: every malformed input maps to one of these variants.
//! The messages name the field that failed, never its contents (a field may be
//! key material).

/// Why bytes could not be parsed as an occ wire structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ended before `field` was complete.
    #[error("truncated input: `{field}` is incomplete")]
    Truncated {
        /// The field being read when the input ran out.
        field: &'static str,
    },
    /// Bytes were left over after a complete structure.
    #[error("{count} unexpected trailing byte(s) after a complete structure")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The leading version byte is not one this build understands.
    #[error("unsupported wire version {found} (this build speaks version {supported})")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
        /// The version this build speaks.
        supported: u8,
    },
    /// The kind byte does not name a known structure.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// A length field or the whole input exceeds its limit.
    #[error("`{field}` is too large: {len} bytes, the limit is {max}")]
    TooLarge {
        /// The field or structure that is too large.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A field holds a value outside its allowed set (e.g. a flag that is not 0 or 1).
    #[error("invalid value in `{field}`")]
    Invalid {
        /// The field holding the invalid value.
        field: &'static str,
    },
}
