//! Device identity keys and prekey bundles (public data only).
//!
//! A bundle is what an initiator fetches from the relay to start an X3DH
//! handshake: the responder's identity (Ed25519 signing key, X25519 identity
//! key and the signature binding them), its current signed prekey, and at most
//! one one-time prekey. Signatures are checked by `occ-core`, not here.

use crate::codec::{Reader, Writer};
use crate::{Hex, VERSION, WireError};

/// A device's public identity: an Ed25519 signing key and an X25519 identity
/// key, the latter signed by the former.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdentityKeys {
    /// Ed25519 public key; also the device's stable identifier.
    pub signing_key: [u8; 32],
    /// X25519 identity public key used in X3DH.
    pub dh_key: [u8; 32],
    /// Ed25519 signature by `signing_key` over the X25519 key (see occ-core).
    pub dh_signature: [u8; 64],
}

impl IdentityKeys {
    /// Encoded length in bytes.
    pub const LEN: usize = 128;

    /// Appends the fixed 128-byte encoding.
    pub fn write(&self, w: &mut Writer) {
        w.raw(&self.signing_key)
            .raw(&self.dh_key)
            .raw(&self.dh_signature);
    }

    /// Reads the fixed 128-byte encoding.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            signing_key: r.array("identity.signing_key")?,
            dh_key: r.array("identity.dh_key")?,
            dh_signature: r.array("identity.dh_signature")?,
        })
    }
}

impl std::fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKeys")
            .field("signing_key", &Hex(&self.signing_key))
            .field("dh_key", &Hex(&self.dh_key))
            .finish_non_exhaustive()
    }
}

/// A published prekey bundle.
#[derive(Clone, PartialEq, Eq)]
pub struct PreKeyBundle {
    /// The responder's identity.
    pub identity: IdentityKeys,
    /// Identifier of the signed prekey.
    pub signed_prekey_id: u32,
    /// X25519 signed prekey.
    pub signed_prekey: [u8; 32],
    /// Ed25519 signature over the signed prekey and its id.
    pub signed_prekey_signature: [u8; 64],
    /// One one-time prekey (id, X25519 public key), when the relay had one left.
    pub one_time_prekey: Option<(u32, [u8; 32])>,
}

impl PreKeyBundle {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(1 + IdentityKeys::LEN + 4 + 32 + 64 + 1 + 36);
        w.u8(VERSION);
        self.identity.write(&mut w);
        w.u32(self.signed_prekey_id)
            .raw(&self.signed_prekey)
            .raw(&self.signed_prekey_signature)
            .option(self.one_time_prekey.as_ref(), |w, (id, key)| {
                w.u32(*id).raw(key);
            });
        w.into_vec()
    }

    /// Parses the canonical encoding.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        r.version(VERSION)?;
        let bundle = Self {
            identity: IdentityKeys::read(&mut r)?,
            signed_prekey_id: r.u32("signed_prekey_id")?,
            signed_prekey: r.array("signed_prekey")?,
            signed_prekey_signature: r.array("signed_prekey_signature")?,
            one_time_prekey: r.option("one_time_prekey", |r| {
                Ok((
                    r.u32("one_time_prekey.id")?,
                    r.array("one_time_prekey.key")?,
                ))
            })?,
        };
        r.finish()?;
        Ok(bundle)
    }
}

impl std::fmt::Debug for PreKeyBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreKeyBundle")
            .field("identity", &self.identity)
            .field("signed_prekey_id", &self.signed_prekey_id)
            .field(
                "one_time_prekey_id",
                &self.one_time_prekey.map(|(id, _)| id),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> PreKeyBundle {
        PreKeyBundle {
            identity: IdentityKeys {
                signing_key: [1; 32],
                dh_key: [2; 32],
                dh_signature: [3; 64],
            },
            signed_prekey_id: 9,
            signed_prekey: [4; 32],
            signed_prekey_signature: [5; 64],
            one_time_prekey: Some((77, [6; 32])),
        }
    }

    #[test]
    fn round_trip_with_and_without_one_time_prekey() {
        let mut b = sample();
        assert_eq!(PreKeyBundle::parse(&b.encode()).unwrap(), b);
        b.one_time_prekey = None;
        assert_eq!(PreKeyBundle::parse(&b.encode()).unwrap(), b);
    }

    #[test]
    fn every_truncation_and_bad_version_is_a_typed_error() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(PreKeyBundle::parse(&bytes[..len]).is_err(), "len {len}");
        }
        let mut bad = bytes.clone();
        bad[0] = 2;
        assert_eq!(
            PreKeyBundle::parse(&bad),
            Err(WireError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        );
        let mut long = bytes;
        long.push(0);
        assert_eq!(
            PreKeyBundle::parse(&long),
            Err(WireError::TrailingBytes { count: 1 })
        );
    }
}
