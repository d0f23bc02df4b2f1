//! The device account: identity, signed prekeys and one-time prekeys, and the
//! responder side of X3DH.
//!
//! Invariants:
//! - At most two signed prekeys are held: the current one and the one it
//!   replaced (so prekey messages already in flight when it rotated still
//!   work). Rotation is by age ([`SIGNED_PREKEY_MAX_AGE`] by default) against
//!   the caller's trusted time.
//! - A one-time prekey secret is deleted (and zeroized) as soon as a prekey
//!   message that used it has been *successfully* decrypted; a second message
//!   naming it is refused with [`CryptoError::UnknownOneTimePreKey`]. A failed
//!   accept changes nothing.
//! - At most [`MAX_ONE_TIME_PREKEYS`] one-time prekeys are held.

use std::collections::BTreeMap;

use occ_protocol::codec::{Reader, Writer};
use occ_protocol::{PreKeyBundle, PreKeyMessage};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::handshake::{SIGNED_PREKEY_CONTEXT, responder_secret, signed_prekey_message};
use super::identity::{DeviceId, IdentityKeyPair, IdentityPublic};
use super::kdf::random_array;
use super::ratchet::RatchetState;
use super::session::{Session, read_state_header, restore};
use super::{CryptoError, STATE_VERSION};

/// Default age after which the signed prekey is rotated: 7 days.
pub const SIGNED_PREKEY_MAX_AGE: u64 = 7 * 24 * 3600;
/// Most one-time prekeys an account holds.
pub const MAX_ONE_TIME_PREKEYS: usize = 1000;

const STATE_TAG: u8 = b'A';

#[derive(Clone)]
struct SignedPreKey {
    id: u32,
    secret: StaticSecret,
    public: [u8; 32],
    signature: [u8; 64],
    created_at: u64,
}

#[derive(Clone)]
struct OneTimePreKey {
    secret: StaticSecret,
    public: [u8; 32],
}

/// A device's long-term key material.
#[derive(Clone)]
pub struct Account {
    identity: IdentityKeyPair,
    /// Oldest first; one or two entries.
    signed_prekeys: Vec<SignedPreKey>,
    next_signed_prekey_id: u32,
    one_time_prekeys: BTreeMap<u32, OneTimePreKey>,
    next_one_time_prekey_id: u32,
}

/// The public keys a device publishes to the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedPreKeyPublic {
    /// Identifier.
    pub id: u32,
    /// X25519 public key.
    pub public: [u8; 32],
    /// Signature by the identity key.
    pub signature: [u8; 64],
}

impl Account {
    /// A new account with a fresh identity and signed prekey, created at `now`
    /// (seconds since the epoch, trusted time).
    pub fn generate(now: u64) -> Result<Self, CryptoError> {
        let mut account = Self {
            identity: IdentityKeyPair::generate()?,
            signed_prekeys: Vec::with_capacity(2),
            next_signed_prekey_id: 1,
            one_time_prekeys: BTreeMap::new(),
            next_one_time_prekey_id: 1,
        };
        account.add_signed_prekey(now)?;
        Ok(account)
    }

    /// The identity key pair.
    pub fn identity(&self) -> &IdentityKeyPair {
        &self.identity
    }

    /// This device's identifier.
    pub fn device_id(&self) -> DeviceId {
        self.identity.public().device_id()
    }

    fn add_signed_prekey(&mut self, now: u64) -> Result<(), CryptoError> {
        let id = self.next_signed_prekey_id;
        self.next_signed_prekey_id = id.checked_add(1).ok_or(CryptoError::CounterExhausted)?;
        let secret = StaticSecret::from(*random_array::<32>()?);
        let public = PublicKey::from(&secret).to_bytes();
        let signature = self
            .identity
            .sign(SIGNED_PREKEY_CONTEXT, &signed_prekey_message(id, &public));
        if self.signed_prekeys.len() == 2 {
            self.signed_prekeys.remove(0);
        }
        self.signed_prekeys.push(SignedPreKey {
            id,
            secret,
            public,
            signature,
            created_at: now,
        });
        Ok(())
    }

    fn current_signed_prekey(&self) -> Result<&SignedPreKey, CryptoError> {
        self.signed_prekeys
            .last()
            .ok_or(CryptoError::Internal("account has no signed prekey"))
    }

    /// The current signed prekey's public part.
    pub fn signed_prekey(&self) -> Result<SignedPreKeyPublic, CryptoError> {
        let spk = self.current_signed_prekey()?;
        Ok(SignedPreKeyPublic {
            id: spk.id,
            public: spk.public,
            signature: spk.signature,
        })
    }

    /// Rotates the signed prekey if it is at least `max_age` seconds old at
    /// `now`. Returns whether it rotated. The replaced key is kept until the
    /// next rotation; the one before it is deleted.
    pub fn rotate_signed_prekey_if_due(
        &mut self,
        now: u64,
        max_age: u64,
    ) -> Result<bool, CryptoError> {
        let created = self.current_signed_prekey()?.created_at;
        if now.saturating_sub(created) < max_age {
            return Ok(false);
        }
        self.add_signed_prekey(now)?;
        Ok(true)
    }

    /// Generates `count` one-time prekeys and returns their public halves to
    /// publish. Refuses to hold more than [`MAX_ONE_TIME_PREKEYS`].
    pub fn generate_one_time_prekeys(
        &mut self,
        count: usize,
    ) -> Result<Vec<(u32, [u8; 32])>, CryptoError> {
        let have = self.one_time_prekeys.len();
        if have + count > MAX_ONE_TIME_PREKEYS {
            return Err(CryptoError::TooManyPreKeys {
                have,
                requested: count,
                max: MAX_ONE_TIME_PREKEYS,
            });
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let id = self.next_one_time_prekey_id;
            let next = id.checked_add(1).ok_or(CryptoError::CounterExhausted)?;
            let secret = StaticSecret::from(*random_array::<32>()?);
            let public = PublicKey::from(&secret).to_bytes();
            self.next_one_time_prekey_id = next;
            self.one_time_prekeys
                .insert(id, OneTimePreKey { secret, public });
            out.push((id, public));
        }
        Ok(out)
    }

    /// Generates `count` one-time prekeys to publish, first deleting the
    /// oldest held ones if the account would otherwise exceed
    /// [`MAX_ONE_TIME_PREKEYS`]. Keys the relay handed out but no initiator
    /// ever used (a drained relay) pile up otherwise; the oldest are the
    /// least likely to still be in flight.
    pub fn replenish_one_time_prekeys(
        &mut self,
        count: usize,
    ) -> Result<Vec<(u32, [u8; 32])>, CryptoError> {
        let count = count.min(MAX_ONE_TIME_PREKEYS);
        while self.one_time_prekeys.len() + count > MAX_ONE_TIME_PREKEYS {
            if self.one_time_prekeys.pop_first().is_none() {
                break;
            }
        }
        self.generate_one_time_prekeys(count)
    }

    /// Public halves of every unused one-time prekey.
    pub fn one_time_prekeys(&self) -> Vec<(u32, [u8; 32])> {
        self.one_time_prekeys
            .iter()
            .map(|(id, k)| (*id, k.public))
            .collect()
    }

    /// Number of unused one-time prekeys held.
    pub fn one_time_prekey_count(&self) -> usize {
        self.one_time_prekeys.len()
    }

    /// A bundle with the current signed prekey and, if given, that one-time
    /// prekey (as the relay would hand it out).
    pub fn bundle(&self, one_time_prekey: Option<u32>) -> Result<PreKeyBundle, CryptoError> {
        let spk = self.current_signed_prekey()?;
        let one_time_prekey = match one_time_prekey {
            None => None,
            Some(id) => {
                let k = self
                    .one_time_prekeys
                    .get(&id)
                    .ok_or(CryptoError::UnknownOneTimePreKey(id))?;
                Some((id, k.public))
            }
        };
        Ok(PreKeyBundle {
            identity: self.identity.public().keys().clone(),
            signed_prekey_id: spk.id,
            signed_prekey: spk.public,
            signed_prekey_signature: spk.signature,
            one_time_prekey,
        })
    }

    /// Accepts a session from a prekey message (the X3DH responder) and
    /// decrypts its payload. The one-time prekey is consumed only if the
    /// message authenticates; on any error the account is unchanged.
    pub fn accept(&mut self, message: PreKeyMessage) -> Result<(Session, Vec<u8>), CryptoError> {
        let prekey = &message.prekey;
        let remote = IdentityPublic::verify(&prekey.sender)?;
        if remote.device_id() == self.device_id() {
            return Err(CryptoError::InvalidInput(
                "a prekey message from this device itself",
            ));
        }
        let spk = self
            .signed_prekeys
            .iter()
            .find(|k| k.id == prekey.signed_prekey_id)
            .ok_or(CryptoError::UnknownSignedPreKey(prekey.signed_prekey_id))?;
        let opk = match prekey.one_time_prekey_id {
            None => None,
            Some(id) => Some(
                self.one_time_prekeys
                    .get(&id)
                    .ok_or(CryptoError::UnknownOneTimePreKey(id))?,
            ),
        };
        let shared = responder_secret(
            &self.identity,
            &spk.secret,
            opk.map(|k| &k.secret),
            &remote,
            &prekey.base_key,
        )?;
        let ratchet = RatchetState::responder(shared, spk.secret.clone());
        let mut session = Session::responder(&self.identity, remote, prekey, ratchet);
        let one_time_prekey_id = prekey.one_time_prekey_id;
        let plaintext = session.decrypt_prekey(message)?;
        if let Some(id) = one_time_prekey_id {
            self.one_time_prekeys.remove(&id);
        }
        Ok((session, plaintext))
    }

    /// Versioned serialization (secret; zeroized on drop).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(128 + 72 * self.one_time_prekeys.len());
        w.u8(STATE_VERSION).u8(STATE_TAG);
        let (signing, dh) = self.identity.secrets();
        w.raw(signing.as_ref()).raw(dh.as_ref());
        w.u32(self.next_signed_prekey_id);
        w.u8(self.signed_prekeys.len() as u8);
        for k in &self.signed_prekeys {
            w.u32(k.id)
                .raw(k.secret.as_bytes())
                .raw(&k.signature)
                .u64(k.created_at);
        }
        w.u32(self.next_one_time_prekey_id);
        w.u32(self.one_time_prekeys.len() as u32);
        for (id, k) in &self.one_time_prekeys {
            w.u32(*id).raw(k.secret.as_bytes());
        }
        Zeroizing::new(w.into_vec())
    }

    /// Restores an account from [`Account::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        restore(|| {
            let mut r = Reader::new(bytes);
            read_state_header(&mut r, STATE_TAG)?;
            let signing = Zeroizing::new(r.array::<32>("identity.signing")?);
            let dh = Zeroizing::new(r.array::<32>("identity.dh")?);
            let identity = IdentityKeyPair::from_secrets(&signing, &dh)?;
            let next_signed_prekey_id = r.u32("next_signed_prekey_id")?;
            let n = usize::from(r.u8("signed_prekeys")?);
            if !(1..=2).contains(&n) {
                return Err(CryptoError::CorruptState(
                    occ_protocol::WireError::Invalid {
                        field: "signed_prekeys",
                    },
                ));
            }
            let mut signed_prekeys = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.u32("signed_prekey.id")?;
                let secret = StaticSecret::from(r.array::<32>("signed_prekey.secret")?);
                signed_prekeys.push(SignedPreKey {
                    id,
                    public: PublicKey::from(&secret).to_bytes(),
                    secret,
                    signature: r.array("signed_prekey.signature")?,
                    created_at: r.u64("signed_prekey.created_at")?,
                });
            }
            let next_one_time_prekey_id = r.u32("next_one_time_prekey_id")?;
            let n = r.count("one_time_prekeys", MAX_ONE_TIME_PREKEYS)?;
            let mut one_time_prekeys = BTreeMap::new();
            for _ in 0..n {
                let id = r.u32("one_time_prekey.id")?;
                let secret = StaticSecret::from(r.array::<32>("one_time_prekey.secret")?);
                let public = PublicKey::from(&secret).to_bytes();
                one_time_prekeys.insert(id, OneTimePreKey { secret, public });
            }
            r.finish()?;
            Ok(Self {
                identity,
                signed_prekeys,
                next_signed_prekey_id,
                one_time_prekeys,
                next_one_time_prekey_id,
            })
        })
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("identity", self.identity.public())
            .field(
                "signed_prekey_ids",
                &self.signed_prekeys.iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .field("one_time_prekeys", &self.one_time_prekeys.len())
            .finish_non_exhaustive()
    }
}
