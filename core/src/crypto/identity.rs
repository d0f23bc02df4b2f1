//! Device identity: an Ed25519 signing key and an X25519 identity key, the
//! X25519 key signed by the Ed25519 key.
//!
//! The Ed25519 public key is the device's stable identifier ([`DeviceId`]).
//! Signatures are domain-separated by a context string prefix, and verified
//! with `verify_strict` (no malleable or small-order signatures).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use occ_protocol::IdentityKeys;
use occ_protocol::codec::Writer;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::CryptoError;
use super::kdf::random_array;

/// Signature context binding the X25519 identity key to the Ed25519 key.
const IDENTITY_CONTEXT: &[u8] = occ_protocol::contexts::IDENTITY_DH;

/// A device identifier: the device's Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub [u8; 32]);

impl DeviceId {
    /// Lowercase hex of the key.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceId({})", self.to_hex())
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A verified public identity: the X25519 key's signature has been checked.
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityPublic {
    keys: IdentityKeys,
    verifying: VerifyingKey,
}

impl IdentityPublic {
    /// Verifies the signature binding the X25519 key to the Ed25519 key.
    pub fn verify(keys: &IdentityKeys) -> Result<Self, CryptoError> {
        let verifying = verifying_key(&keys.signing_key, "identity signing key")?;
        let mut msg = Vec::with_capacity(IDENTITY_CONTEXT.len() + 32);
        msg.extend_from_slice(IDENTITY_CONTEXT);
        msg.extend_from_slice(&keys.dh_key);
        verify(&verifying, &msg, &keys.dh_signature, "identity key")?;
        Ok(Self {
            keys: keys.clone(),
            verifying,
        })
    }

    /// The wire form.
    pub fn keys(&self) -> &IdentityKeys {
        &self.keys
    }

    /// The device identifier.
    pub fn device_id(&self) -> DeviceId {
        DeviceId(self.keys.signing_key)
    }

    /// The X25519 identity public key.
    pub(crate) fn dh_key(&self) -> &[u8; 32] {
        &self.keys.dh_key
    }

    /// Verifies `signature` over `context ‖ message`.
    pub(crate) fn verify_signature(
        &self,
        context: &[u8],
        message: &[u8],
        signature: &[u8; 64],
        what: &'static str,
    ) -> Result<(), CryptoError> {
        let mut msg = Vec::with_capacity(context.len() + message.len());
        msg.extend_from_slice(context);
        msg.extend_from_slice(message);
        verify(&self.verifying, &msg, signature, what)
    }

    /// Length-prefixed encoding used in the session's associated data.
    pub(crate) fn write_ad(&self, w: &mut Writer) {
        w.u16(64).raw(&self.keys.signing_key).raw(&self.keys.dh_key);
    }
}

impl std::fmt::Debug for IdentityPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("IdentityPublic")
            .field(&self.device_id())
            .finish()
    }
}

/// A device's identity key pair. Secrets are zeroized on drop (by the dalek
/// types) and never appear in `Debug`.
#[derive(Clone)]
pub struct IdentityKeyPair {
    signing: SigningKey,
    dh: StaticSecret,
    public: IdentityPublic,
}

impl IdentityKeyPair {
    /// A fresh identity from the OS random generator.
    pub fn generate() -> Result<Self, CryptoError> {
        let signing = random_array::<32>()?;
        let dh = random_array::<32>()?;
        Self::from_secrets(&signing, &dh)
    }

    /// Rebuilds an identity from its two 32-byte secrets (the signature is
    /// deterministic, so the public half is recomputed exactly).
    pub(crate) fn from_secrets(signing: &[u8; 32], dh: &[u8; 32]) -> Result<Self, CryptoError> {
        let signing = SigningKey::from_bytes(signing);
        let dh = StaticSecret::from(*dh);
        let dh_key = PublicKey::from(&dh).to_bytes();
        let mut msg = Vec::with_capacity(IDENTITY_CONTEXT.len() + 32);
        msg.extend_from_slice(IDENTITY_CONTEXT);
        msg.extend_from_slice(&dh_key);
        let dh_signature = signing.sign(&msg).to_bytes();
        let verifying = signing.verifying_key();
        let keys = IdentityKeys {
            signing_key: verifying.to_bytes(),
            dh_key,
            dh_signature,
        };
        Ok(Self {
            signing,
            dh,
            public: IdentityPublic { keys, verifying },
        })
    }

    /// The two secrets, for persisting (zeroized on drop).
    pub(crate) fn secrets(&self) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
        (
            Zeroizing::new(self.signing.to_bytes()),
            Zeroizing::new(self.dh.to_bytes()),
        )
    }

    /// The public identity.
    pub fn public(&self) -> &IdentityPublic {
        &self.public
    }

    /// Signs `context ‖ message` with the device's Ed25519 key (relay
    /// registration and challenges use an empty context over their own
    /// domain-separated messages).
    pub fn sign(&self, context: &[u8], message: &[u8]) -> [u8; 64] {
        let mut msg = Vec::with_capacity(context.len() + message.len());
        msg.extend_from_slice(context);
        msg.extend_from_slice(message);
        self.signing.sign(&msg).to_bytes()
    }

    /// X25519 with the identity key.
    pub(crate) fn dh(&self, their: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        dh(&self.dh, their)
    }
}

impl std::fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// X25519 that refuses a non-contributory (all-zero) result, which a
/// low-order public key would produce.
pub(crate) fn dh(
    secret: &StaticSecret,
    their: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let shared = secret.diffie_hellman(&PublicKey::from(*their));
    if !shared.was_contributory() {
        return Err(CryptoError::NonContributory);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

/// Parses an Ed25519 public key, refusing invalid and small-order (weak) keys.
pub(crate) fn verifying_key(
    bytes: &[u8; 32],
    what: &'static str,
) -> Result<VerifyingKey, CryptoError> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidKey(what))?;
    if key.is_weak() {
        return Err(CryptoError::InvalidKey(what));
    }
    Ok(key)
}

/// Strict Ed25519 verification.
pub(crate) fn verify(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8; 64],
    what: &'static str,
) -> Result<(), CryptoError> {
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| CryptoError::InvalidSignature(what))
}
