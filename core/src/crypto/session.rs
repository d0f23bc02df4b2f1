//! A pairwise session between two devices: X3DH to start, Double Ratchet after.
//!
//! The initiator wraps every message in a [`PreKeyMessage`] (carrying the X3DH
//! fields) until it has decrypted a reply; the responder creates its session
//! from the first such message with [`Account::accept`](super::Account::accept)
//! and accepts further prekey messages only if they carry the same base key and
//! sender identity. State serializes to versioned bytes ([`Session::to_bytes`])
//! that restore exactly; the bytes are secret and zeroized on drop.

use occ_protocol::codec::{Reader, Writer};
use occ_protocol::{Envelope, IdentityKeys, PreKeyBundle, PreKeyHeader, PreKeyMessage, WireError};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::handshake::{associated_data, initiator_secret, verify_bundle};
use super::identity::{IdentityKeyPair, IdentityPublic};
use super::kdf::random_array;
use super::ratchet::RatchetState;
use super::{CryptoError, STATE_VERSION};

const STATE_TAG: u8 = b'S';

/// Which side of the handshake this device was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Started the session from a prekey bundle.
    Initiator,
    /// Accepted the session from a prekey message.
    Responder,
}

/// A pairwise end-to-end encrypted session.
pub struct Session {
    role: Role,
    local: IdentityKeys,
    remote: IdentityPublic,
    ad: Vec<u8>,
    base_key: [u8; 32],
    signed_prekey_id: u32,
    one_time_prekey_id: Option<u32>,
    /// Initiator only: still wrapping messages in prekey messages.
    awaiting_reply: bool,
    pub(crate) ratchet: RatchetState,
}

impl Session {
    /// Starts a session with the owner of `bundle` (the X3DH initiator). Both
    /// bundle signatures are verified first; a forged one is refused.
    pub fn initiate(
        identity: &IdentityKeyPair,
        bundle: &PreKeyBundle,
    ) -> Result<Self, CryptoError> {
        let verified = verify_bundle(bundle)?;
        if verified.identity.device_id() == identity.public().device_id() {
            return Err(CryptoError::InvalidInput(
                "cannot start a session with this device itself",
            ));
        }
        let ephemeral = StaticSecret::from(*random_array::<32>()?);
        let base_key = PublicKey::from(&ephemeral).to_bytes();
        let shared = initiator_secret(identity, &ephemeral, &verified)?;
        drop(ephemeral);
        let ratchet = RatchetState::initiator(shared, bundle.signed_prekey)?;
        Ok(Self {
            role: Role::Initiator,
            local: identity.public().keys().clone(),
            ad: associated_data(identity.public(), &verified.identity),
            remote: verified.identity,
            base_key,
            signed_prekey_id: bundle.signed_prekey_id,
            one_time_prekey_id: bundle.one_time_prekey.map(|(id, _)| id),
            awaiting_reply: true,
            ratchet,
        })
    }

    /// Builds the responder's session (used by `Account::accept`).
    pub(crate) fn responder(
        identity: &IdentityKeyPair,
        remote: IdentityPublic,
        prekey: &PreKeyHeader,
        ratchet: RatchetState,
    ) -> Self {
        Self {
            role: Role::Responder,
            local: identity.public().keys().clone(),
            ad: associated_data(&remote, identity.public()),
            remote,
            base_key: prekey.base_key,
            signed_prekey_id: prekey.signed_prekey_id,
            one_time_prekey_id: prekey.one_time_prekey_id,
            awaiting_reply: false,
            ratchet,
        }
    }

    /// The peer's verified identity.
    pub fn remote_identity(&self) -> &IdentityPublic {
        &self.remote
    }

    /// Which side of the handshake this device was.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The X3DH base key (the initiator's ephemeral public key); it names the
    /// session on both sides.
    pub fn base_key(&self) -> &[u8; 32] {
        &self.base_key
    }

    /// Whether a prekey message belongs to this (responder) session.
    pub fn matches(&self, prekey: &PreKeyHeader) -> bool {
        self.role == Role::Responder
            && prekey.base_key == self.base_key
            && &prekey.sender == self.remote.keys()
    }

    /// Encrypts `plaintext` for the peer; returns the envelope bytes.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if self.awaiting_reply {
            let prekey = PreKeyHeader {
                sender: self.local.clone(),
                base_key: self.base_key,
                signed_prekey_id: self.signed_prekey_id,
                one_time_prekey_id: self.one_time_prekey_id,
            };
            self.ratchet.encrypt(&self.ad, Some(&prekey), plaintext)
        } else {
            self.ratchet.encrypt(&self.ad, None, plaintext)
        }
    }

    /// Parses and decrypts an envelope. On any error the session is unchanged.
    pub fn decrypt(&mut self, envelope: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.decrypt_envelope(Envelope::parse(envelope)?)
    }

    /// Decrypts a parsed envelope. On any error the session is unchanged.
    pub fn decrypt_envelope(&mut self, envelope: Envelope) -> Result<Vec<u8>, CryptoError> {
        match envelope {
            Envelope::Message(m) => {
                let plaintext = self.ratchet.decrypt(&self.ad, None, m)?;
                self.awaiting_reply = false;
                Ok(plaintext)
            }
            Envelope::PreKey(p) => self.decrypt_prekey(p),
            Envelope::Group(_) => Err(CryptoError::SessionMismatch),
        }
    }

    pub(crate) fn decrypt_prekey(&mut self, p: PreKeyMessage) -> Result<Vec<u8>, CryptoError> {
        if !self.matches(&p.prekey) {
            return Err(CryptoError::SessionMismatch);
        }
        self.ratchet.decrypt(&self.ad, Some(&p.prekey), p.message)
    }

    /// Number of skipped message keys this session holds.
    pub fn skipped_keys(&self) -> usize {
        self.ratchet.skipped_len()
    }

    /// Versioned serialization of the whole session (secret; zeroized on drop).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(512);
        w.u8(STATE_VERSION).u8(STATE_TAG);
        w.u8(match self.role {
            Role::Initiator => 0,
            Role::Responder => 1,
        });
        self.local.write(&mut w);
        self.remote.keys().write(&mut w);
        w.raw(&self.base_key).u32(self.signed_prekey_id);
        w.option(self.one_time_prekey_id.as_ref(), |w, id| {
            w.u32(*id);
        });
        w.u8(u8::from(self.awaiting_reply));
        self.ratchet.write(&mut w);
        Zeroizing::new(w.into_vec())
    }

    /// Restores a session from [`Session::to_bytes`]. Identity signatures are
    /// re-verified; malformed bytes give [`CryptoError::CorruptState`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        restore(|| {
            let mut r = Reader::new(bytes);
            read_state_header(&mut r, STATE_TAG)?;
            let role = match r.u8("role")? {
                0 => Role::Initiator,
                1 => Role::Responder,
                _ => return Err(WireError::Invalid { field: "role" }.into()),
            };
            let local = IdentityKeys::read(&mut r)?;
            let remote = IdentityPublic::verify(&IdentityKeys::read(&mut r)?)?;
            let local_public = IdentityPublic::verify(&local)?;
            let ad = match role {
                Role::Initiator => associated_data(&local_public, &remote),
                Role::Responder => associated_data(&remote, &local_public),
            };
            let session = Self {
                role,
                local,
                remote,
                ad,
                base_key: r.array("base_key")?,
                signed_prekey_id: r.u32("signed_prekey_id")?,
                one_time_prekey_id: r
                    .option("one_time_prekey_id", |r| r.u32("one_time_prekey_id"))?,
                awaiting_reply: r.flag("awaiting_reply")?,
                ratchet: RatchetState::read(&mut r)?,
            };
            r.finish()?;
            Ok(session)
        })
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("remote", &self.remote)
            .field("awaiting_reply", &self.awaiting_reply)
            .field("ratchet", &self.ratchet)
            .finish_non_exhaustive()
    }
}

/// Checks the two leading bytes of a persisted state blob.
pub(crate) fn read_state_header(r: &mut Reader<'_>, tag: u8) -> Result<(), WireError> {
    r.version(STATE_VERSION)?;
    if r.u8("state tag")? != tag {
        return Err(WireError::Invalid { field: "state tag" });
    }
    Ok(())
}

/// Runs a state parser, reporting malformed bytes as [`CryptoError::CorruptState`]
/// rather than as a wire error from a peer.
pub(crate) fn restore<T>(parse: impl FnOnce() -> Result<T, CryptoError>) -> Result<T, CryptoError> {
    parse().map_err(|e| match e {
        CryptoError::Wire(w) => CryptoError::CorruptState(w),
        other => other,
    })
}
