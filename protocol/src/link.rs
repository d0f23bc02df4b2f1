//! Device links: an existing device of a user vouches that a new device key
//! belongs to the same user (several devices per user without an
//! organisation).
//!
//! Wire form: `user (var) ‖ device (32) ‖ linker (32) ‖ issued_ms (8) ‖
//! signature (64)`; the signature is Ed25519 by the linker's identity key
//! over [`DeviceLink::signed_message`]. The relay verifies a link before it
//! registers a second device for a user (the linker must be a registered
//! device of that user); clients verify it again and trust the new device
//! only if they already trust the linker for that user, so a relay that
//! forges a link gains nothing.

use crate::WireError;
use crate::codec::{Reader, Writer};
use crate::ids::MAX_USER_LEN;

/// Signature context of a device link.
pub const LINK_CONTEXT: &[u8] = b"occ/v1/device-link";
/// Largest encoded link.
pub const MAX_LINK_LEN: usize = 4 + MAX_USER_LEN + 32 + 32 + 8 + 64;

/// "`device` is another device of `user`", signed by `linker`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceLink {
    /// The user both devices belong to.
    pub user: String,
    /// The new device (its Ed25519 identity key).
    pub device: [u8; 32],
    /// The device that vouches for it (its Ed25519 identity key).
    pub linker: [u8; 32],
    /// When it was signed, ms since the epoch.
    pub issued_ms: i64,
    /// The linker's signature over [`Self::signed_message`].
    pub signature: [u8; 64],
}

impl DeviceLink {
    /// What the linker signs: the context, then every field but the
    /// signature.
    pub fn signed_message(
        user: &str,
        device: &[u8; 32],
        linker: &[u8; 32],
        issued_ms: i64,
    ) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(LINK_CONTEXT)
            .var_bytes(user.as_bytes())
            .raw(device)
            .raw(linker)
            .raw(&issued_ms.to_be_bytes());
        w.into_vec()
    }

    /// Encodes the link.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.var_bytes(self.user.as_bytes())
            .raw(&self.device)
            .raw(&self.linker)
            .raw(&self.issued_ms.to_be_bytes())
            .raw(&self.signature);
        w.into_vec()
    }

    /// Parses a link; the user name must be a valid one and a device cannot
    /// link itself.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_LINK_LEN {
            return Err(WireError::TooLarge {
                field: "device link",
                len: bytes.len(),
                max: MAX_LINK_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        let user = std::str::from_utf8(r.var_bytes("link user", MAX_USER_LEN)?)
            .map_err(|_| WireError::Invalid { field: "link user" })?
            .to_string();
        if !crate::ids::valid_user_name(&user) {
            return Err(WireError::Invalid { field: "link user" });
        }
        let device = r.array::<32>("link device")?;
        let linker = r.array::<32>("link linker")?;
        if device == linker {
            return Err(WireError::Invalid {
                field: "link linker",
            });
        }
        let issued_ms = i64::from_be_bytes(r.array::<8>("link issued")?);
        let signature = r.array::<64>("link signature")?;
        r.finish()?;
        Ok(Self {
            user,
            device,
            linker,
            issued_ms,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> DeviceLink {
        DeviceLink {
            user: "bob".into(),
            device: [1; 32],
            linker: [2; 32],
            issued_ms: 1_700_000_000_000,
            signature: [3; 64],
        }
    }

    #[test]
    fn a_link_round_trips_and_bad_ones_are_refused() {
        let l = link();
        let bytes = l.encode();
        assert_eq!(DeviceLink::parse(&bytes).unwrap(), l);
        // Every truncation and any trailing byte is refused.
        for n in 0..bytes.len() {
            assert!(DeviceLink::parse(&bytes[..n]).is_err(), "{n}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(DeviceLink::parse(&long).is_err());
        // A device linking itself, or a bad user name.
        let mut own = l.clone();
        own.linker = own.device;
        assert!(DeviceLink::parse(&own.encode()).is_err());
        let mut bad = l;
        bad.user = "Bob!".into();
        assert!(DeviceLink::parse(&bad.encode()).is_err());
        // The signed message names every field.
        let m = DeviceLink::signed_message("bob", &[1; 32], &[2; 32], 5);
        assert_ne!(m, DeviceLink::signed_message("bob", &[2; 32], &[1; 32], 5));
        assert_ne!(m, DeviceLink::signed_message("bob", &[1; 32], &[2; 32], 6));
        assert_ne!(m, DeviceLink::signed_message("bo", &[1; 32], &[2; 32], 5));
        assert!(m.starts_with(LINK_CONTEXT));
    }
}
