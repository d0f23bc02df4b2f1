//! Key derivation, message-key expansion, AEAD and randomness.
//!
//! - Root KDF: HKDF-SHA256 with the root key as salt and the DH output as input,
//!   64 bytes out: new root key ‖ new chain key (Signal's `KDF_RK`).
//! - Chain KDF: HMAC-SHA256 keyed with the chain key over `0x01` (message key)
//!   and `0x02` (next chain key) (Signal's `KDF_CK`). The keyed HMAC state is
//!   built once and cloned for the two outputs.
//! - Message key expansion: HKDF-SHA256 (zero salt) over the message key with a
//!   per-use info string, 44 bytes out: ChaCha20-Poly1305 key ‖ 96-bit nonce. A
//!   message key is used for exactly one message, so the derived nonce is unique.
//!
//! Every secret here lives in a [`Key32`] or a `Zeroizing` buffer and is wiped
//! on drop.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::AeadInOut;
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::CryptoError;

type HmacSha256 = Hmac<Sha256>;

/// Length of the ChaCha20-Poly1305 tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;

/// A 32-byte secret (root, chain or message key). Zeroized on drop; `Debug`
/// never shows it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Key32(pub(crate) [u8; 32]);

impl Key32 {
    /// Wraps raw bytes.
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes (for serialization only).
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A fresh random key.
    pub(crate) fn random() -> Result<Self, CryptoError> {
        Ok(Self(*random_array::<32>()?))
    }
}

impl std::fmt::Debug for Key32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key32(<redacted>)")
    }
}

/// `N` bytes from the operating system's CSPRNG.
pub(crate) fn random_array<const N: usize>() -> Result<Zeroizing<[u8; N]>, CryptoError> {
    let mut out = Zeroizing::new([0u8; N]);
    getrandom::fill(out.as_mut()).map_err(|_| CryptoError::Randomness)?;
    Ok(out)
}

/// HKDF-SHA256 with a fixed output length.
pub(crate) fn hkdf<const N: usize>(
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[u8],
) -> Result<Zeroizing<[u8; N]>, CryptoError> {
    let mut out = Zeroizing::new([0u8; N]);
    Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, out.as_mut())
        .map_err(|_| CryptoError::Internal("HKDF output length"))?;
    Ok(out)
}

/// HMAC-SHA256 keyed with a 32-byte key. A key shorter than the block is
/// zero-padded by HMAC itself, so padding it here gives the identical MAC and
/// uses the infallible fixed-size constructor.
fn hmac32(key: &[u8; 32]) -> HmacSha256 {
    let mut block = Zeroizing::new([0u8; 64]);
    block[..32].copy_from_slice(key);
    let block_ref: &[u8; 64] = &block;
    HmacSha256::new(block_ref.into())
}

/// `KDF_RK`: (new root key, new chain key).
pub(crate) fn kdf_root(root: &Key32, dh_out: &[u8; 32]) -> Result<(Key32, Key32), CryptoError> {
    let okm = hkdf::<64>(Some(&root.0), dh_out, b"occ/v1/ratchet/root")?;
    let mut rk = [0u8; 32];
    let mut ck = [0u8; 32];
    rk.copy_from_slice(&okm[..32]);
    ck.copy_from_slice(&okm[32..]);
    Ok((Key32(rk), Key32(ck)))
}

/// `KDF_CK`: (message key, next chain key).
pub(crate) fn kdf_chain(chain: &Key32) -> (Key32, Key32) {
    let keyed = hmac32(&chain.0);
    let mut mk = keyed.clone();
    mk.update(&[0x01]);
    let mut ck = keyed;
    ck.update(&[0x02]);
    (
        Key32(mk.finalize().into_bytes().into()),
        Key32(ck.finalize().into_bytes().into()),
    )
}

/// An expanded message key: ChaCha20-Poly1305 key and nonce.
pub(crate) struct AeadKey {
    okm: Zeroizing<[u8; 44]>,
}

impl AeadKey {
    /// Expands a message key with a domain-separating `info`.
    pub(crate) fn expand(message_key: &Key32, info: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self {
            okm: hkdf::<44>(None, &message_key.0, info)?,
        })
    }

    fn cipher(&self) -> (ChaCha20Poly1305, chacha20poly1305::Nonce) {
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&self.okm[..32]);
        let key_ref: &[u8; 32] = &key;
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&self.okm[32..]);
        (ChaCha20Poly1305::new(key_ref.into()), nonce.into())
    }

    /// Encrypts `buf[start..]` in place and appends the tag.
    pub(crate) fn seal_in_place(
        &self,
        aad: &[u8],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), CryptoError> {
        let (cipher, nonce) = self.cipher();
        let tag = cipher
            .encrypt_inout_detached(&nonce, aad, buf[start..].as_mut().into())
            .map_err(|_| CryptoError::Internal("AEAD input too long"))?;
        buf.extend_from_slice(&tag);
        Ok(())
    }

    /// Verifies and decrypts `ciphertext ‖ tag` in place; on success the
    /// buffer holds exactly the plaintext. On failure the buffer content is
    /// unspecified and must be discarded.
    pub(crate) fn open_in_place(&self, aad: &[u8], buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        let body_len = buf
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(CryptoError::DecryptionFailed)?;
        let (body, tag) = buf.split_at_mut(body_len);
        let tag =
            chacha20poly1305::Tag::try_from(&*tag).map_err(|_| CryptoError::DecryptionFailed)?;
        let (cipher, nonce) = self.cipher();
        cipher
            .decrypt_inout_detached(&nonce, aad, body.into(), &tag)
            .map_err(|_| CryptoError::DecryptionFailed)?;
        buf.truncate(body_len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_hmac_equals_slice_hmac() {
        let key = [0x5a; 32];
        let mut a = hmac32(&key);
        a.update(b"x");
        let mut b = <HmacSha256 as KeyInit>::new_from_slice(&key).unwrap();
        b.update(b"x");
        assert_eq!(a.finalize().into_bytes(), b.finalize().into_bytes());
    }

    #[test]
    fn chain_outputs_differ_and_are_deterministic() {
        let ck = Key32([1; 32]);
        let (m1, c1) = kdf_chain(&ck);
        let (m2, c2) = kdf_chain(&ck);
        assert_eq!(m1, m2);
        assert_eq!(c1, c2);
        assert_ne!(m1, c1);
        assert_ne!(c1, ck);
    }

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = AeadKey::expand(&Key32([9; 32]), b"t").unwrap();
        let mut buf = b"hdr".to_vec();
        buf.extend_from_slice(b"hello");
        k.seal_in_place(b"aad", &mut buf, 3).unwrap();
        let mut ct = buf[3..].to_vec();
        let mut bad = ct.clone();
        k.open_in_place(b"aad", &mut ct).unwrap();
        assert_eq!(ct, b"hello");
        assert!(k.open_in_place(b"aaX", &mut bad.clone()).is_err());
        bad[0] ^= 1;
        assert!(k.open_in_place(b"aad", &mut bad).is_err());
        assert!(k.open_in_place(b"aad", &mut vec![0; 3]).is_err());
    }
}
