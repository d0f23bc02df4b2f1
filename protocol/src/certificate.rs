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

/// Signature context of a revocation list.
pub const REVOCATION_CONTEXT: &[u8] = b"occ/v1/revocation-list";
/// Most devices one revocation list names.
pub const MAX_REVOKED: usize = 100_000;

/// The organisation's list of revoked devices. Versions only go up: a client
/// keeps the highest version it has verified and never goes back to an
/// older one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationList {
    /// Version (increases with every new list).
    pub version: u64,
    /// When it was issued, ms since the epoch.
    pub issued_ms: i64,
    /// Revoked device ids.
    pub devices: Vec<[u8; 32]>,
    /// The organisation's signature over [`Self::signed_message`].
    pub signature: [u8; 64],
}

impl RevocationList {
    /// What the organisation signs: the context, the version, the issue time
    /// and every revoked device.
    pub fn signed_message(version: u64, issued_ms: i64, devices: &[[u8; 32]]) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(REVOCATION_CONTEXT)
            .u64(version)
            .raw(&issued_ms.to_be_bytes())
            .u32(u32::try_from(devices.len()).unwrap_or(u32::MAX));
        for d in devices {
            w.raw(d);
        }
        w.into_vec()
    }

    /// Encodes the list.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.version)
            .raw(&self.issued_ms.to_be_bytes())
            .u32(u32::try_from(self.devices.len()).unwrap_or(u32::MAX));
        for d in &self.devices {
            w.raw(d);
        }
        w.raw(&self.signature);
        w.into_vec()
    }

    /// Parses a list.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let version = r.u64("revocation version")?;
        let issued_ms = i64::from_be_bytes(r.array::<8>("revocation issued")?);
        let n = r.u32("revocation count")? as usize;
        if n > MAX_REVOKED {
            return Err(WireError::TooLarge {
                field: "revocation count",
                len: n,
                max: MAX_REVOKED,
            });
        }
        let mut devices = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            devices.push(r.array::<32>("revoked device")?);
        }
        let signature = r.array::<64>("revocation signature")?;
        r.finish()?;
        Ok(Self {
            version,
            issued_ms,
            devices,
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

    #[test]
    fn a_revocation_list_round_trips_and_bad_ones_are_refused() {
        let l = RevocationList {
            version: 3,
            issued_ms: 7,
            devices: vec![[1; 32], [2; 32]],
            signature: [5; 64],
        };
        let bytes = l.encode();
        assert_eq!(RevocationList::parse(&bytes).unwrap(), l);
        assert!(RevocationList::parse(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(RevocationList::parse(&longer).is_err());
        let mut huge = bytes.clone();
        huge[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(RevocationList::parse(&huge).is_err());
        let m = RevocationList::signed_message(3, 7, &l.devices);
        assert_ne!(m, RevocationList::signed_message(4, 7, &l.devices));
        assert_ne!(m, RevocationList::signed_message(3, 7, &l.devices[..1]));
    }
}
