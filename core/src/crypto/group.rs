//! Thread encryption with sender keys.
//!
//! Each member device of a thread has its own [`SenderKey`]: a symmetric chain
//! (HMAC `0x01`/`0x02` steps as in the Double Ratchet) plus an Ed25519 signing
//! key. It hands the other members a [`SenderKeyDistribution`] sealed inside the
//! pairwise sessions; every thread message is then encrypted once, signed, and
//! fanned out as the same envelope to every member device.
//!
//! Invariants:
//! - Every message is signed over its whole encoding (and the thread id); the
//!   signature is checked before any decryption work, with `verify_strict`.
//! - Receivers ratchet forward and delete each message key after use; skipped
//!   keys are bounded ([`MAX_SKIP`] per gap, [`MAX_GROUP_SKIPPED`] kept, oldest
//!   evicted); a failed decryption changes nothing.
//! - A distribution that is already known is ignored, so replaying an old
//!   distribution cannot rewind a chain (which would re-enable replays).
//! - When a member is removed, [`ThreadKeys::remove_member`] forgets that
//!   member's keys and rotates our own sender key; the new distribution goes to
//!   the remaining members only, so the removed device cannot read anything
//!   sent afterwards. Sender keys also rotate after [`SENDER_KEY_MAX_MESSAGES`]
//!   messages or [`SENDER_KEY_MAX_AGE`] seconds ([`ThreadKeys::needs_rotation`]).

use std::collections::{BTreeMap, VecDeque};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use occ_protocol::codec::{Reader, Writer};
use occ_protocol::envelope::KIND_GROUP;
use occ_protocol::{
    Envelope, GroupMessage, MAX_CIPHERTEXT_LEN, MAX_THREAD_ID_LEN, SenderKeyDistribution, VERSION,
    WireError,
};
use zeroize::Zeroizing;

use super::identity::{DeviceId, verify, verifying_key};
use super::kdf::{AeadKey, Key32, TAG_LEN, kdf_chain, random_array};
use super::ratchet::{MAX_SKIP, check_gap};
use super::session::{read_state_header, restore};
use super::{CryptoError, STATE_VERSION};

/// Rotate a sender key after this many messages.
pub const SENDER_KEY_MAX_MESSAGES: u32 = 1000;
/// Rotate a sender key after this many seconds (7 days).
pub const SENDER_KEY_MAX_AGE: u64 = 7 * 24 * 3600;
/// Most skipped message keys kept per received sender key.
pub const MAX_GROUP_SKIPPED: usize = 1000;
/// Most sender keys kept per member device (current and previous).
pub const MAX_KEYS_PER_MEMBER: usize = 2;
/// Most member devices a thread's key state may hold.
pub const MAX_MEMBER_DEVICES: usize = 10_000;

const MESSAGE_INFO: &[u8] = b"occ/v1/group/message";
const SIGNATURE_CONTEXT: &[u8] = b"occ/v1/group-signature";
const AAD_CONTEXT: &[u8] = b"occ/v1/group";
const STATE_TAG: u8 = b'T';

/// AEAD associated data: context, thread id and the message header.
fn group_aad(thread_id: &[u8], distribution_id: &[u8; 16], iteration: u32) -> Vec<u8> {
    let mut w = Writer::with_capacity(AAD_CONTEXT.len() + 4 + thread_id.len() + 22);
    w.raw(AAD_CONTEXT)
        .var_bytes(thread_id)
        .u8(VERSION)
        .u8(KIND_GROUP)
        .raw(distribution_id)
        .u32(iteration);
    w.into_vec()
}

/// What the signature covers: context, thread id, every byte before the signature.
fn signature_input(thread_id: &[u8], message: &GroupMessage) -> Vec<u8> {
    let mut w = Writer::with_capacity(
        SIGNATURE_CONTEXT.len() + 4 + thread_id.len() + 30 + message.ciphertext.len(),
    );
    w.raw(SIGNATURE_CONTEXT).var_bytes(thread_id);
    w.raw(&message.signed_bytes());
    w.into_vec()
}

fn check_thread_id(thread_id: &[u8]) -> Result<(), CryptoError> {
    if thread_id.is_empty() || thread_id.len() > MAX_THREAD_ID_LEN {
        return Err(CryptoError::InvalidInput("thread id must be 1 to 64 bytes"));
    }
    Ok(())
}

/// Our own sending key for one thread.
#[derive(Clone)]
pub struct SenderKey {
    thread_id: Vec<u8>,
    distribution_id: [u8; 16],
    chain: Key32,
    iteration: u32,
    signing: SigningKey,
    created_at: u64,
}

impl SenderKey {
    /// A fresh sender key for `thread_id`, created at `now`.
    pub fn generate(thread_id: &[u8], now: u64) -> Result<Self, CryptoError> {
        check_thread_id(thread_id)?;
        Ok(Self {
            thread_id: thread_id.to_vec(),
            distribution_id: *random_array::<16>()?,
            chain: Key32::random()?,
            iteration: 0,
            signing: SigningKey::from_bytes(&*random_array::<32>()?),
            created_at: now,
        })
    }

    /// The distribution message for other members, at the current iteration.
    pub fn distribution(&self) -> SenderKeyDistribution {
        SenderKeyDistribution {
            thread_id: self.thread_id.clone(),
            distribution_id: self.distribution_id,
            iteration: self.iteration,
            chain_key: Zeroizing::new(*self.chain.as_bytes()),
            signing_key: self.signing.verifying_key().to_bytes(),
        }
    }

    /// Whether this key has reached its message count or age limit at `now`.
    pub fn needs_rotation(&self, now: u64) -> bool {
        self.iteration >= SENDER_KEY_MAX_MESSAGES
            || now.saturating_sub(self.created_at) >= SENDER_KEY_MAX_AGE
    }

    /// Encrypts and signs `plaintext`; returns the envelope bytes.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if plaintext.len() + TAG_LEN > MAX_CIPHERTEXT_LEN {
            return Err(CryptoError::MessageTooLarge {
                len: plaintext.len(),
                max: MAX_CIPHERTEXT_LEN - TAG_LEN,
            });
        }
        let next_iteration = self
            .iteration
            .checked_add(1)
            .ok_or(CryptoError::CounterExhausted)?;
        let (message_key, next_chain) = kdf_chain(&self.chain);
        let aad = group_aad(&self.thread_id, &self.distribution_id, self.iteration);
        let mut ciphertext = Vec::with_capacity(plaintext.len() + TAG_LEN);
        ciphertext.extend_from_slice(plaintext);
        AeadKey::expand(&message_key, MESSAGE_INFO)?.seal_in_place(&aad, &mut ciphertext, 0)?;
        let mut message = GroupMessage {
            distribution_id: self.distribution_id,
            iteration: self.iteration,
            ciphertext,
            signature: [0; 64],
        };
        message.signature = self
            .signing
            .sign(&signature_input(&self.thread_id, &message))
            .to_bytes();
        self.chain = next_chain;
        self.iteration = next_iteration;
        Ok(Envelope::Group(message).encode())
    }

    #[cfg(test)]
    pub(crate) fn signing_secret(&self) -> &[u8; 32] {
        self.signing.as_bytes()
    }

    fn write(&self, w: &mut Writer) {
        w.raw(&self.distribution_id)
            .raw(self.chain.as_bytes())
            .u32(self.iteration)
            .raw(self.signing.as_bytes())
            .u64(self.created_at);
    }

    fn read(r: &mut Reader<'_>, thread_id: &[u8]) -> Result<Self, WireError> {
        Ok(Self {
            thread_id: thread_id.to_vec(),
            distribution_id: r.array("own.distribution_id")?,
            chain: Key32::from_bytes(r.array("own.chain")?),
            iteration: r.u32("own.iteration")?,
            signing: SigningKey::from_bytes(&Zeroizing::new(r.array("own.signing")?)),
            created_at: r.u64("own.created_at")?,
        })
    }
}

impl std::fmt::Debug for SenderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKey")
            .field("iteration", &self.iteration)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Another member's sender key, as received.
#[derive(Clone)]
pub struct ReceivedSenderKey {
    distribution_id: [u8; 16],
    chain: Key32,
    iteration: u32,
    verifying: VerifyingKey,
    skipped: VecDeque<(u32, Key32)>,
}

impl ReceivedSenderKey {
    /// Imports a distribution (the caller has checked the thread id).
    pub fn from_distribution(d: &SenderKeyDistribution) -> Result<Self, CryptoError> {
        Ok(Self {
            distribution_id: d.distribution_id,
            chain: Key32::from_bytes(*d.chain_key),
            iteration: d.iteration,
            verifying: verifying_key(&d.signing_key, "sender signing key")?,
            skipped: VecDeque::new(),
        })
    }

    /// Verifies and decrypts a message of this sender key. On error nothing changes.
    pub fn decrypt(
        &mut self,
        thread_id: &[u8],
        message: GroupMessage,
    ) -> Result<Vec<u8>, CryptoError> {
        if message.distribution_id != self.distribution_id {
            return Err(CryptoError::UnknownSenderKey);
        }
        verify(
            &self.verifying,
            &signature_input(thread_id, &message),
            &message.signature,
            "thread message",
        )?;
        let aad = group_aad(thread_id, &message.distribution_id, message.iteration);
        let n = message.iteration;
        let mut buf = message.ciphertext;
        if n < self.iteration {
            let i = self
                .skipped
                .iter()
                .position(|(it, _)| *it == n)
                .ok_or(CryptoError::DuplicateMessage)?;
            AeadKey::expand(&self.skipped[i].1, MESSAGE_INFO)?.open_in_place(&aad, &mut buf)?;
            self.skipped.remove(i);
            return Ok(buf);
        }
        check_gap(self.iteration, n)?;
        if n == u32::MAX {
            return Err(CryptoError::CounterExhausted);
        }
        let mut chain = self.chain.clone();
        let mut pending = Vec::new();
        for it in self.iteration..n {
            let (mk, next) = kdf_chain(&chain);
            pending.push((it, mk));
            chain = next;
        }
        let (message_key, next_chain) = kdf_chain(&chain);
        AeadKey::expand(&message_key, MESSAGE_INFO)?.open_in_place(&aad, &mut buf)?;
        self.chain = next_chain;
        self.iteration = n + 1;
        self.skipped.extend(pending);
        while self.skipped.len() > MAX_GROUP_SKIPPED {
            self.skipped.pop_front();
        }
        Ok(buf)
    }

    fn write(&self, w: &mut Writer) {
        w.raw(&self.distribution_id)
            .raw(self.chain.as_bytes())
            .u32(self.iteration)
            .raw(self.verifying.as_bytes());
        w.u32(self.skipped.len() as u32);
        for (it, k) in &self.skipped {
            w.u32(*it).raw(k.as_bytes());
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, CryptoError> {
        let distribution_id = r.array("received.distribution_id")?;
        let chain = Key32::from_bytes(r.array("received.chain")?);
        let iteration = r.u32("received.iteration")?;
        let verifying = verifying_key(&r.array("received.verifying")?, "sender signing key")?;
        let n = r.count("received.skipped", MAX_GROUP_SKIPPED)?;
        let mut skipped = VecDeque::with_capacity(n);
        for _ in 0..n {
            skipped.push_back((
                r.u32("received.skipped.iteration")?,
                Key32::from_bytes(r.array("received.skipped.key")?),
            ));
        }
        Ok(Self {
            distribution_id,
            chain,
            iteration,
            verifying,
            skipped,
        })
    }
}

impl std::fmt::Debug for ReceivedSenderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedSenderKey")
            .field("iteration", &self.iteration)
            .field("skipped_keys", &self.skipped.len())
            .finish_non_exhaustive()
    }
}

/// All sender-key state of one device for one thread.
#[derive(Clone)]
pub struct ThreadKeys {
    thread_id: Vec<u8>,
    own: SenderKey,
    /// Per member device, oldest first, at most [`MAX_KEYS_PER_MEMBER`].
    members: BTreeMap<DeviceId, VecDeque<ReceivedSenderKey>>,
}

impl ThreadKeys {
    /// Fresh thread state with a new sender key of our own.
    pub fn new(thread_id: &[u8], now: u64) -> Result<Self, CryptoError> {
        Ok(Self {
            own: SenderKey::generate(thread_id, now)?,
            thread_id: thread_id.to_vec(),
            members: BTreeMap::new(),
        })
    }

    /// The thread identifier.
    pub fn thread_id(&self) -> &[u8] {
        &self.thread_id
    }

    /// Our current distribution, to seal to each member over a pairwise session.
    pub fn distribution(&self) -> SenderKeyDistribution {
        self.own.distribution()
    }

    /// Whether our sender key should be rotated before the next message.
    pub fn needs_rotation(&self, now: u64) -> bool {
        self.own.needs_rotation(now)
    }

    /// Replaces our sender key; returns the new distribution for the members.
    pub fn rotate(&mut self, now: u64) -> Result<SenderKeyDistribution, CryptoError> {
        self.own = SenderKey::generate(&self.thread_id, now)?;
        Ok(self.own.distribution())
    }

    /// Encrypts a thread message under our sender key.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.own.encrypt(plaintext)
    }

    /// Records a member device's sender key (received over a pairwise session
    /// from `member`). A distribution it already gave is ignored. Keys are
    /// held per member device: a distribution id another member also uses
    /// is that member's own business, so nobody can pre-empt another
    /// member's key by sending its id first.
    pub fn add_member_key(
        &mut self,
        member: DeviceId,
        d: &SenderKeyDistribution,
    ) -> Result<(), CryptoError> {
        if d.thread_id != self.thread_id {
            return Err(CryptoError::WrongThread);
        }
        if self
            .members
            .get(&member)
            .is_some_and(|keys| keys.iter().any(|k| k.distribution_id == d.distribution_id))
        {
            return Ok(());
        }
        if !self.members.contains_key(&member) && self.members.len() >= MAX_MEMBER_DEVICES {
            return Err(CryptoError::InvalidInput(
                "too many member devices in this thread",
            ));
        }
        let key = ReceivedSenderKey::from_distribution(d)?;
        let keys = self.members.entry(member).or_default();
        keys.push_back(key);
        while keys.len() > MAX_KEYS_PER_MEMBER {
            keys.pop_front();
        }
        Ok(())
    }

    /// Forgets a removed member's keys and rotates our own sender key. Send the
    /// returned distribution to the *remaining* members.
    pub fn remove_member(
        &mut self,
        member: DeviceId,
        now: u64,
    ) -> Result<SenderKeyDistribution, CryptoError> {
        self.members.remove(&member);
        self.rotate(now)
    }

    /// Parses, verifies and decrypts a thread envelope from member device
    /// `from` (as the relay says); returns it and the plaintext. Only
    /// `from`'s own keys are tried. On error nothing changes.
    pub fn decrypt(
        &mut self,
        from: DeviceId,
        envelope: &[u8],
    ) -> Result<(DeviceId, Vec<u8>), CryptoError> {
        match Envelope::parse(envelope)? {
            Envelope::Group(g) => self.decrypt_message(from, g),
            _ => Err(CryptoError::SessionMismatch),
        }
    }

    /// Decrypts a parsed thread message from member device `from`.
    pub fn decrypt_message(
        &mut self,
        from: DeviceId,
        message: GroupMessage,
    ) -> Result<(DeviceId, Vec<u8>), CryptoError> {
        let key = self
            .members
            .get_mut(&from)
            .and_then(|keys| {
                keys.iter_mut()
                    .find(|k| k.distribution_id == message.distribution_id)
            })
            .ok_or(CryptoError::UnknownSenderKey)?;
        let plaintext = key.decrypt(&self.thread_id, message)?;
        Ok((from, plaintext))
    }

    /// Versioned serialization (secret; zeroized on drop).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(256 + 128 * self.members.len());
        w.u8(STATE_VERSION).u8(STATE_TAG).var_bytes(&self.thread_id);
        self.own.write(&mut w);
        w.u32(self.members.len() as u32);
        for (device, keys) in &self.members {
            w.raw(&device.0).u8(keys.len() as u8);
            for k in keys {
                k.write(&mut w);
            }
        }
        Zeroizing::new(w.into_vec())
    }

    /// Restores from [`ThreadKeys::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        restore(|| {
            let mut r = Reader::new(bytes);
            read_state_header(&mut r, STATE_TAG)?;
            let thread_id = r.var_bytes("thread_id", MAX_THREAD_ID_LEN)?.to_vec();
            check_thread_id(&thread_id).map_err(|_| WireError::Invalid { field: "thread_id" })?;
            let own = SenderKey::read(&mut r, &thread_id)?;
            let n = r.count("members", MAX_MEMBER_DEVICES)?;
            let mut members = BTreeMap::new();
            for _ in 0..n {
                let device = DeviceId(r.array("member.device")?);
                let k = usize::from(r.u8("member.keys")?);
                if k == 0 || k > MAX_KEYS_PER_MEMBER {
                    return Err(WireError::Invalid {
                        field: "member.keys",
                    }
                    .into());
                }
                let mut keys = VecDeque::with_capacity(k);
                for _ in 0..k {
                    keys.push_back(ReceivedSenderKey::read(&mut r)?);
                }
                members.insert(device, keys);
            }
            r.finish()?;
            Ok(Self {
                thread_id,
                own,
                members,
            })
        })
    }
}

impl std::fmt::Debug for ThreadKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadKeys")
            .field("own", &self.own)
            .field("member_devices", &self.members.len())
            .finish_non_exhaustive()
    }
}

/// Keeps the skip bound shared with the pairwise ratchet visible here.
const _: () = assert!(MAX_SKIP as usize <= MAX_GROUP_SKIPPED);
