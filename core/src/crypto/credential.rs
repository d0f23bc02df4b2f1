//! A profile's database key wrapped under the user's credential (a PIN or a
//! passphrase), so that a shared device's lock is a lock: without the
//! credential the key does not exist in the clear anywhere.
//!
//! Construction: `kek = scrypt(len(credential) ‖ credential ‖
//! device_secret, salt, N = 2^log_n, r = 8, p = 1)`, then the 32-byte
//! database key sealed with ChaCha20-Poly1305 under `kek` with a random
//! nonce and the associated data `"occ/v1/profile-key" ‖ len(profile) ‖
//! profile`, so a wrapped key cannot be moved to another profile. The
//! optional `device_secret` is a random value the app keeps in the platform
//! keystore (hardware-backed where the device has it): with it, guessing a
//! PIN needs this device, not just a copy of its files.
//!
//! Deviation from DESIGN.md (which names Argon2id or scrypt): scrypt, at
//! `log_n` 15 (32 MiB, about 0.1 s on a phone) by default, because the
//! crate is already in the build through `age` and is memory-hard; the
//! parameters are stored with each wrapped key, so they can grow.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use zeroize::Zeroizing;

use super::CryptoError;

/// The default scrypt cost (2^15 × 128 × 8 bytes = 32 MiB).
pub const DEFAULT_LOG_N: u8 = 15;
/// The lowest cost accepted (tests and benches use it; never lower).
pub const MIN_LOG_N: u8 = 10;
/// The highest cost accepted (2^18 × 128 × 8 bytes = 256 MiB, what a phone
/// can spare): a larger value in a damaged or hostile file is refused
/// instead of exhausting memory.
pub const MAX_LOG_N: u8 = 18;
/// Shortest credential accepted, bytes.
pub const MIN_CREDENTIAL_LEN: usize = 4;
/// Longest credential accepted, bytes.
pub const MAX_CREDENTIAL_LEN: usize = 1024;

const AD: &[u8] = b"occ/v1/profile-key";

/// A wrapped database key and what unwrapping it needs besides the
/// credential.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// scrypt cost.
    pub log_n: u8,
    /// scrypt salt.
    pub salt: [u8; 32],
    /// AEAD nonce.
    pub nonce: [u8; 12],
    /// The sealed key (32 bytes and the 16-byte tag).
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedKey")
            .field("log_n", &self.log_n)
            .finish_non_exhaustive()
    }
}

fn kek(
    credential: &[u8],
    device_secret: &[u8],
    salt: &[u8; 32],
    log_n: u8,
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    if !(MIN_LOG_N..=MAX_LOG_N).contains(&log_n) {
        return Err(CryptoError::InvalidInput(
            "the key derivation cost is out of range",
        ));
    }
    let params = scrypt::Params::new(log_n, 8, 1, 32)
        .map_err(|_| CryptoError::InvalidInput("the key derivation parameters"))?;
    let mut input = Zeroizing::new(Vec::with_capacity(
        8 + credential.len() + device_secret.len(),
    ));
    input.extend_from_slice(&(credential.len() as u64).to_be_bytes());
    input.extend_from_slice(credential);
    input.extend_from_slice(device_secret);
    let mut out = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(&input, salt, &params, out.as_mut_slice())
        .map_err(|_| CryptoError::InvalidInput("the key derivation output length"))?;
    Ok(out)
}

fn associated(profile: &str) -> Vec<u8> {
    let mut ad = AD.to_vec();
    ad.extend_from_slice(&(profile.len() as u64).to_be_bytes());
    ad.extend_from_slice(profile.as_bytes());
    ad
}

/// Checks a credential's length (the only rule: a PIN is the app's choice).
pub fn check_credential(credential: &[u8]) -> Result<(), CryptoError> {
    if credential.len() < MIN_CREDENTIAL_LEN || credential.len() > MAX_CREDENTIAL_LEN {
        return Err(CryptoError::InvalidInput(
            "a credential is 4 to 1024 bytes (a PIN of at least 4 digits)",
        ));
    }
    Ok(())
}

/// Wraps `key` for `profile` under `credential` (and `device_secret`).
pub fn wrap(
    key: &[u8; 32],
    profile: &str,
    credential: &[u8],
    device_secret: &[u8],
    log_n: u8,
) -> Result<WrappedKey, CryptoError> {
    check_credential(credential)?;
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut salt).map_err(|_| CryptoError::Randomness)?;
    getrandom::fill(&mut nonce).map_err(|_| CryptoError::Randomness)?;
    let kek = kek(credential, device_secret, &salt, log_n)?;
    let cipher = ChaCha20Poly1305::new((&*kek).into());
    let sealed = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: key,
                aad: &associated(profile),
            },
        )
        .map_err(|_| CryptoError::InvalidInput("sealing the key"))?;
    Ok(WrappedKey {
        log_n,
        salt,
        nonce,
        sealed,
    })
}

/// Unwraps a key; `None` when the credential (or device secret, or
/// profile) is not the one it was wrapped with.
pub fn unwrap(
    wrapped: &WrappedKey,
    profile: &str,
    credential: &[u8],
    device_secret: &[u8],
) -> Result<Option<Zeroizing<[u8; 32]>>, CryptoError> {
    if credential.len() > MAX_CREDENTIAL_LEN {
        return Ok(None);
    }
    let kek = kek(credential, device_secret, &wrapped.salt, wrapped.log_n)?;
    let cipher = ChaCha20Poly1305::new((&*kek).into());
    let Ok(plain) = cipher.decrypt(
        &Nonce::from(wrapped.nonce),
        Payload {
            msg: &wrapped.sealed,
            aad: &associated(profile),
        },
    ) else {
        return Ok(None);
    };
    let plain = Zeroizing::new(plain);
    let key = <[u8; 32]>::try_from(plain.as_slice())
        .map_err(|_| CryptoError::InvalidInput("the wrapped key has the wrong length"))?;
    Ok(Some(Zeroizing::new(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_credential_secret_and_profile_unwrap() {
        let key = [7u8; 32];
        let w = wrap(&key, "alice", b"1234", b"secret", MIN_LOG_N).unwrap();
        assert_eq!(
            *unwrap(&w, "alice", b"1234", b"secret").unwrap().unwrap(),
            key
        );
        assert!(unwrap(&w, "alice", b"1235", b"secret").unwrap().is_none());
        assert!(unwrap(&w, "alice", b"1234", b"other").unwrap().is_none());
        assert!(unwrap(&w, "alice", b"1234", b"").unwrap().is_none());
        assert!(unwrap(&w, "bob", b"1234", b"secret").unwrap().is_none());
        // The length prefix keeps credential and secret apart.
        assert!(unwrap(&w, "alice", b"1234s", b"ecret").unwrap().is_none());
        let mut flipped = w.clone();
        flipped.sealed[0] ^= 1;
        assert!(
            unwrap(&flipped, "alice", b"1234", b"secret")
                .unwrap()
                .is_none()
        );
        let shown = format!("{w:?}");
        assert!(
            shown.starts_with("WrappedKey") && shown.contains("log_n: 10"),
            "{shown}"
        );
        assert!(
            !shown.contains("sealed") && !shown.contains(&hex::encode(w.salt)),
            "{shown}"
        );
    }

    #[test]
    fn costs_and_lengths_are_bounded() {
        let key = [1u8; 32];
        assert!(wrap(&key, "a", b"123", b"", MIN_LOG_N).is_err());
        assert!(wrap(&key, "a", &[b'1'; MAX_CREDENTIAL_LEN + 1], b"", MIN_LOG_N).is_err());
        assert!(wrap(&key, "a", b"1234", b"", MIN_LOG_N - 1).is_err());
        // Exactly at the longest length: accepted both ways.
        let longest = [b'7'; MAX_CREDENTIAL_LEN];
        let at = wrap(&key, "a", &longest, b"", MIN_LOG_N).unwrap();
        assert_eq!(*unwrap(&at, "a", &longest, b"").unwrap().unwrap(), key);
        let mut w = wrap(&key, "a", b"1234", b"", MIN_LOG_N).unwrap();
        w.log_n = MAX_LOG_N + 1;
        assert!(unwrap(&w, "a", b"1234", b"").is_err());
        w.log_n = 40;
        assert!(unwrap(&w, "a", b"1234", b"").is_err());
        assert!(
            unwrap(&w, "a", &[b'1'; MAX_CREDENTIAL_LEN + 1], b"")
                .unwrap()
                .is_none()
        );
    }
}
