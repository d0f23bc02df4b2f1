//! The Double Ratchet (Signal's specification) with ChaCha20-Poly1305.
//!
//! Invariants:
//! - **Commit only on success.** Decryption first computes everything it would
//!   change (skipped keys, a DH ratchet step, the next chain key) into a
//!   `Pending` value, verifies the AEAD tag, and only then writes it into the
//!   state. A forged, replayed or corrupted message leaves the state bit for bit
//!   unchanged. This is the "decrypt on a copy" rule of DESIGN.md, done without
//!   copying the whole state (so the common in-order path costs no clone of the
//!   skipped-key store).
//! - **Keys are used once.** A message key is derived, used and dropped (and
//!   zeroized); a skipped key is removed when used. A second delivery of a
//!   message therefore fails: that is the replay protection.
//! - **Bounded skipping.** At most [`MAX_SKIP`] keys are skipped for one message
//!   in one chain; a larger gap is [`CryptoError::TooManySkipped`], computed
//!   before any work. At most [`MAX_SKIPPED_PER_CHAIN`] skipped keys are kept per
//!   chain and [`MAX_SKIPPED_PER_SESSION`] per session; the oldest are evicted
//!   first, deterministically (insertion order).
//! - **Cached sending key.** The sending ratchet public key is computed once per
//!   DH step and cached, never per message.
//!
//! AEAD associated data is the session's `AD` followed by the envelope header
//! (every byte before the ciphertext), so no header bit can be altered.

use std::collections::VecDeque;

use occ_protocol::codec::{Reader, Writer};
use occ_protocol::envelope::{pairwise_header_len, write_pairwise_header};
use occ_protocol::{MAX_CIPHERTEXT_LEN, PreKeyHeader, RatchetHeader, RatchetMessage, WireError};
use x25519_dalek::{PublicKey, StaticSecret};

use super::CryptoError;
use super::identity::dh;
use super::kdf::{AeadKey, Key32, TAG_LEN, kdf_chain, kdf_root, random_array};

/// Most message keys skipped for a single incoming message in one chain.
pub const MAX_SKIP: u32 = 1000;
/// Most skipped keys kept for one receiving chain.
pub const MAX_SKIPPED_PER_CHAIN: usize = 1000;
/// Most skipped keys kept for one session.
pub const MAX_SKIPPED_PER_SESSION: usize = 2000;

const MESSAGE_INFO: &[u8] = b"occ/v1/ratchet/message";

/// Our current ratchet key pair, with the public half cached.
struct RatchetKeyPair {
    secret: StaticSecret,
    public: [u8; 32],
}

impl RatchetKeyPair {
    fn from_secret(secret: StaticSecret) -> Self {
        let public = PublicKey::from(&secret).to_bytes();
        Self { secret, public }
    }

    fn generate() -> Result<Self, CryptoError> {
        Ok(Self::from_secret(
            StaticSecret::from(*random_array::<32>()?),
        ))
    }
}

/// A symmetric chain: its key and the number of the next message.
#[derive(Clone)]
struct Chain {
    key: Key32,
    counter: u32,
}

/// A message key kept for a message that has not arrived yet.
struct SkippedKey {
    ratchet_key: [u8; 32],
    counter: u32,
    key: Key32,
}

/// The state of one side of a Double Ratchet.
pub(crate) struct RatchetState {
    root: Key32,
    ours: RatchetKeyPair,
    sending: Option<Chain>,
    previous_counter: u32,
    remote_ratchet_key: Option<[u8; 32]>,
    receiving: Option<Chain>,
    skipped: VecDeque<SkippedKey>,
}

/// Everything a successful decryption will change.
struct Pending {
    step: Option<DhStep>,
    receiving: Chain,
    skipped: Vec<SkippedKey>,
}

struct DhStep {
    root: Key32,
    ours: RatchetKeyPair,
    sending: Chain,
    previous_counter: u32,
    remote_ratchet_key: [u8; 32],
}

impl RatchetState {
    /// Initiator (Alice) after X3DH: a fresh ratchet key, a sending chain from
    /// `DH(ours, SPK_B)`, and `SPK_B` as the remote ratchet key.
    pub(crate) fn initiator(
        shared: Key32,
        their_signed_prekey: [u8; 32],
    ) -> Result<Self, CryptoError> {
        let ours = RatchetKeyPair::generate()?;
        let out = dh(&ours.secret, &their_signed_prekey)?;
        let (root, chain) = kdf_root(&shared, &out)?;
        Ok(Self {
            root,
            ours,
            sending: Some(Chain {
                key: chain,
                counter: 0,
            }),
            previous_counter: 0,
            remote_ratchet_key: Some(their_signed_prekey),
            receiving: None,
            skipped: VecDeque::new(),
        })
    }

    /// Responder (Bob) after X3DH: the signed prekey is the first ratchet key;
    /// Bob can send only after receiving.
    pub(crate) fn responder(shared: Key32, signed_prekey: StaticSecret) -> Self {
        Self {
            root: shared,
            ours: RatchetKeyPair::from_secret(signed_prekey),
            sending: None,
            previous_counter: 0,
            remote_ratchet_key: None,
            receiving: None,
            skipped: VecDeque::new(),
        }
    }

    /// Encrypts `plaintext` into a complete pairwise envelope.
    pub(crate) fn encrypt(
        &mut self,
        ad: &[u8],
        prekey: Option<&PreKeyHeader>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let ct_len = plaintext.len() + TAG_LEN;
        if ct_len > MAX_CIPHERTEXT_LEN {
            return Err(CryptoError::MessageTooLarge {
                len: plaintext.len(),
                max: MAX_CIPHERTEXT_LEN - TAG_LEN,
            });
        }
        let chain = self.sending.as_mut().ok_or(CryptoError::CannotSendYet)?;
        let next_counter = chain
            .counter
            .checked_add(1)
            .ok_or(CryptoError::CounterExhausted)?;
        let (message_key, next_chain) = kdf_chain(&chain.key);
        let header = RatchetHeader {
            ratchet_key: self.ours.public,
            previous_counter: self.previous_counter,
            counter: chain.counter,
        };
        let header_len = pairwise_header_len(prekey);
        let mut w = Writer::with_capacity(header_len + 4 + ct_len);
        write_pairwise_header(&mut w, prekey, &header);
        w.u32(ct_len as u32);
        let start = w.len();
        w.raw(plaintext);
        let mut buf = w.into_vec();
        let aad = concat(ad, &buf[..header_len]);
        AeadKey::expand(&message_key, MESSAGE_INFO)?.seal_in_place(&aad, &mut buf, start)?;
        chain.key = next_chain;
        chain.counter = next_counter;
        Ok(buf)
    }

    /// Decrypts a pairwise message. On any error the state is unchanged.
    pub(crate) fn decrypt(
        &mut self,
        ad: &[u8],
        prekey: Option<&PreKeyHeader>,
        message: RatchetMessage,
    ) -> Result<Vec<u8>, CryptoError> {
        let header = message.header;
        let mut aad = Writer::from_vec(Vec::with_capacity(ad.len() + pairwise_header_len(prekey)));
        aad.raw(ad);
        write_pairwise_header(&mut aad, prekey, &header);
        let aad = aad.into_vec();
        let mut buf = message.ciphertext;

        let current_chain = self.remote_ratchet_key == Some(header.ratchet_key);
        let behind = self
            .receiving
            .as_ref()
            .is_some_and(|c| header.counter < c.counter);
        if !current_chain || behind {
            if let Some(i) = self
                .skipped
                .iter()
                .position(|s| s.ratchet_key == header.ratchet_key && s.counter == header.counter)
            {
                AeadKey::expand(&self.skipped[i].key, MESSAGE_INFO)?
                    .open_in_place(&aad, &mut buf)?;
                self.skipped.remove(i);
                return Ok(buf);
            }
            if current_chain {
                return Err(CryptoError::DuplicateMessage);
            }
        }

        let pending = self.prepare(&header)?;
        let (message_key, next_key) = kdf_chain(&pending.receiving.key);
        AeadKey::expand(&message_key, MESSAGE_INFO)?.open_in_place(&aad, &mut buf)?;
        self.commit(pending, next_key);
        Ok(buf)
    }

    /// Computes, without changing `self`, the chain the message belongs to
    /// (positioned at the message) and everything to commit on success.
    fn prepare(&self, header: &RatchetHeader) -> Result<Pending, CryptoError> {
        let mut skipped = Vec::new();
        let (step, chain) = if self.remote_ratchet_key == Some(header.ratchet_key) {
            let chain = self
                .receiving
                .clone()
                .ok_or(CryptoError::DecryptionFailed)?;
            check_gap(chain.counter, header.counter)?;
            (None, chain)
        } else {
            // Keys left in the current receiving chain, up to the sender's PN.
            if let (Some(remote), Some(recv)) = (&self.remote_ratchet_key, &self.receiving) {
                check_gap(recv.counter, header.previous_counter)?;
                check_gap(0, header.counter)?;
                skip(&mut skipped, remote, recv.clone(), header.previous_counter);
            } else {
                check_gap(0, header.counter)?;
            }
            let out = dh(&self.ours.secret, &header.ratchet_key)?;
            let (root, receiving_key) = kdf_root(&self.root, &out)?;
            let ours = RatchetKeyPair::generate()?;
            let out = dh(&ours.secret, &header.ratchet_key)?;
            let (root, sending_key) = kdf_root(&root, &out)?;
            let step = DhStep {
                root,
                ours,
                sending: Chain {
                    key: sending_key,
                    counter: 0,
                },
                previous_counter: self.sending.as_ref().map_or(0, |c| c.counter),
                remote_ratchet_key: header.ratchet_key,
            };
            let chain = Chain {
                key: receiving_key,
                counter: 0,
            };
            (Some(step), chain)
        };
        if header.counter == u32::MAX {
            return Err(CryptoError::CounterExhausted);
        }
        let receiving = skip(&mut skipped, &header.ratchet_key, chain, header.counter);
        Ok(Pending {
            step,
            receiving,
            skipped,
        })
    }

    fn commit(&mut self, pending: Pending, next_key: Key32) {
        if let Some(step) = pending.step {
            self.root = step.root;
            self.ours = step.ours;
            self.sending = Some(step.sending);
            self.previous_counter = step.previous_counter;
            self.remote_ratchet_key = Some(step.remote_ratchet_key);
        }
        self.receiving = Some(Chain {
            key: next_key,
            counter: pending.receiving.counter + 1,
        });
        if !pending.skipped.is_empty() {
            self.store_skipped(pending.skipped);
        }
    }

    fn store_skipped(&mut self, new: Vec<SkippedKey>) {
        let mut chains: Vec<[u8; 32]> = Vec::with_capacity(2);
        for s in &new {
            if !chains.contains(&s.ratchet_key) {
                chains.push(s.ratchet_key);
            }
        }
        self.skipped.extend(new);
        for chain in chains {
            let mut count = self
                .skipped
                .iter()
                .filter(|s| s.ratchet_key == chain)
                .count();
            while count > MAX_SKIPPED_PER_CHAIN {
                if let Some(i) = self.skipped.iter().position(|s| s.ratchet_key == chain) {
                    self.skipped.remove(i);
                }
                count -= 1;
            }
        }
        while self.skipped.len() > MAX_SKIPPED_PER_SESSION {
            self.skipped.pop_front();
        }
    }

    /// Every secret in the state (for tests that check nothing leaks).
    #[cfg(test)]
    pub(crate) fn secrets(&self) -> Vec<[u8; 32]> {
        let mut out = vec![*self.root.as_bytes(), self.ours.secret.to_bytes()];
        out.extend(
            self.sending
                .iter()
                .chain(self.receiving.iter())
                .map(|c| *c.key.as_bytes()),
        );
        out.extend(self.skipped.iter().map(|s| *s.key.as_bytes()));
        out
    }

    /// Number of skipped message keys held.
    pub(crate) fn skipped_len(&self) -> usize {
        self.skipped.len()
    }

    /// Appends the versioned serialization.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.raw(self.root.as_bytes()).raw(self.ours.secret.as_bytes());
        w.option(self.sending.as_ref(), write_chain);
        w.u32(self.previous_counter);
        w.option(self.remote_ratchet_key.as_ref(), |w, k| {
            w.raw(k);
        });
        w.option(self.receiving.as_ref(), write_chain);
        w.u32(self.skipped.len() as u32);
        for s in &self.skipped {
            w.raw(&s.ratchet_key).u32(s.counter).raw(s.key.as_bytes());
        }
    }

    /// Reads what [`RatchetState::write`] wrote.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let root = Key32::from_bytes(r.array("root_key")?);
        let ours =
            RatchetKeyPair::from_secret(StaticSecret::from(r.array::<32>("ratchet_secret")?));
        let sending = r.option("sending", read_chain)?;
        let previous_counter = r.u32("previous_counter")?;
        let remote_ratchet_key =
            r.option("remote_ratchet_key", |r| r.array("remote_ratchet_key"))?;
        let receiving = r.option("receiving", read_chain)?;
        let n = r.count("skipped", MAX_SKIPPED_PER_SESSION)?;
        let mut skipped = VecDeque::with_capacity(n);
        for _ in 0..n {
            skipped.push_back(SkippedKey {
                ratchet_key: r.array("skipped.ratchet_key")?,
                counter: r.u32("skipped.counter")?,
                key: Key32::from_bytes(r.array("skipped.key")?),
            });
        }
        if receiving.is_some() && remote_ratchet_key.is_none() {
            return Err(WireError::Invalid { field: "receiving" });
        }
        Ok(Self {
            root,
            ours,
            sending,
            previous_counter,
            remote_ratchet_key,
            receiving,
            skipped,
        })
    }
}

impl std::fmt::Debug for RatchetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RatchetState")
            .field("sending_counter", &self.sending.as_ref().map(|c| c.counter))
            .field(
                "receiving_counter",
                &self.receiving.as_ref().map(|c| c.counter),
            )
            .field("previous_counter", &self.previous_counter)
            .field("skipped_keys", &self.skipped.len())
            .finish_non_exhaustive()
    }
}

fn write_chain(w: &mut Writer, c: &Chain) {
    w.raw(c.key.as_bytes()).u32(c.counter);
}

fn read_chain(r: &mut Reader<'_>) -> Result<Chain, WireError> {
    Ok(Chain {
        key: Key32::from_bytes(r.array("chain.key")?),
        counter: r.u32("chain.counter")?,
    })
}

fn concat(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v
}

/// Refuses a gap of more than [`MAX_SKIP`] keys from `from` to `until`.
pub(crate) fn check_gap(from: u32, until: u32) -> Result<(), CryptoError> {
    let gap = until.saturating_sub(from);
    if gap > MAX_SKIP {
        return Err(CryptoError::TooManySkipped {
            gap: u64::from(gap),
            limit: MAX_SKIP,
        });
    }
    Ok(())
}

/// Advances `chain` to `until`, recording each skipped message key.
fn skip(out: &mut Vec<SkippedKey>, ratchet_key: &[u8; 32], mut chain: Chain, until: u32) -> Chain {
    while chain.counter < until {
        let (message_key, next) = kdf_chain(&chain.key);
        out.push(SkippedKey {
            ratchet_key: *ratchet_key,
            counter: chain.counter,
            key: message_key,
        });
        chain.key = next;
        chain.counter += 1;
    }
    chain
}
