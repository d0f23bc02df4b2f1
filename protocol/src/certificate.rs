//! Organisation certificates: the organisation's signing key (kept off the
//! relay) vouches that a device key belongs to a user, for a period.
//!
//! Wire form: `user (var) ‖ device id (32) ‖ not_before_ms (8) ‖
//! not_after_ms (8) ‖ signature (64)`; the signature is Ed25519 by the
//! organisation key over [`DeviceCertificate::signed_message`]. Verification
//! (which needs the key) is the client's: the relay only stores and serves
//! certificates.

use crate::WireError;
use crate::codec::{Reader, Writer};
use crate::ids::MAX_USER_LEN;

/// Signature context of a device certificate.
pub const CERTIFICATE_CONTEXT: &[u8] = b"occ/v1/device-certificate";
/// Largest encoded certificate.
pub const MAX_CERTIFICATE_LEN: usize = 4 + MAX_USER_LEN + 32 + 8 + 8 + 64;

/// "This device key is `user`'s, from `not_before_ms` to `not_after_ms`."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCertificate {
    /// The user.
    pub user: String,
    /// The device id (its Ed25519 identity key).
    pub device_id: [u8; 32],
    /// Valid from, ms since the epoch.
    pub not_before_ms: i64,
    /// Valid until, ms since the epoch.
    pub not_after_ms: i64,
    /// The organisation's signature over [`Self::signed_message`].
    pub signature: [u8; 64],
}

impl DeviceCertificate {
    /// What the organisation signs: the context, then every field but the
    /// signature.
    pub fn signed_message(
        user: &str,
        device_id: &[u8; 32],
        not_before_ms: i64,
        not_after_ms: i64,
    ) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(CERTIFICATE_CONTEXT)
            .var_bytes(user.as_bytes())
            .raw(device_id)
            .raw(&not_before_ms.to_be_bytes())
            .raw(&not_after_ms.to_be_bytes());
        w.into_vec()
    }

    /// Encodes the certificate.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.var_bytes(self.user.as_bytes())
            .raw(&self.device_id)
            .raw(&self.not_before_ms.to_be_bytes())
            .raw(&self.not_after_ms.to_be_bytes())
            .raw(&self.signature);
        w.into_vec()
    }

    /// Parses a certificate; the user name must be a valid one.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_CERTIFICATE_LEN {
            return Err(WireError::TooLarge {
                field: "certificate",
                len: bytes.len(),
                max: MAX_CERTIFICATE_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        let user = std::str::from_utf8(r.var_bytes("certificate user", MAX_USER_LEN)?)
            .map_err(|_| WireError::Invalid {
                field: "certificate user",
            })?
            .to_string();
        if !crate::ids::valid_user_name(&user) {
            return Err(WireError::Invalid {
                field: "certificate user",
            });
        }
        let device_id = r.array::<32>("certificate device")?;
        let not_before_ms = i64::from_be_bytes(r.array::<8>("certificate not_before")?);
        let not_after_ms = i64::from_be_bytes(r.array::<8>("certificate not_after")?);
        let signature = r.array::<64>("certificate signature")?;
        r.finish()?;
        Ok(Self {
            user,
            device_id,
            not_before_ms,
            not_after_ms,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_certificate_round_trips_and_bad_ones_are_refused() {
        let c = DeviceCertificate {
            user: "bob".into(),
            device_id: [3; 32],
            not_before_ms: 1,
            not_after_ms: 2,
            signature: [9; 64],
        };
        let bytes = c.encode();
        assert_eq!(DeviceCertificate::parse(&bytes).unwrap(), c);
        assert!(DeviceCertificate::parse(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(DeviceCertificate::parse(&longer).is_err());
        let bad_user = DeviceCertificate {
            user: "Bob Smith".into(),
            ..c.clone()
        };
        assert!(DeviceCertificate::parse(&bad_user.encode()).is_err());
        assert!(DeviceCertificate::parse(&[0; MAX_CERTIFICATE_LEN + 1]).is_err());
        // The signed message binds every field.
        let m = DeviceCertificate::signed_message("bob", &[3; 32], 1, 2);
        assert_ne!(m, DeviceCertificate::signed_message("bob", &[3; 32], 1, 3));
        assert_ne!(m, DeviceCertificate::signed_message("bob", &[4; 32], 1, 2));
        assert_ne!(m, DeviceCertificate::signed_message("bo", &[3; 32], 1, 2));
    }
}
