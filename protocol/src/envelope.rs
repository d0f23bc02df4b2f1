//! The envelope: what a sender hands the relay for one recipient device.
//!
//! Layout (all integers big-endian):
//!
//! ```text
//! RatchetMessage  = version(1) kind=2 ratchet_key[32] previous_counter:u32 counter:u32
//!                   ciphertext_len:u32 ciphertext
//! PreKeyMessage   = version(1) kind=1 sender_identity[128] base_key[32]
//!                   signed_prekey_id:u32 has_one_time:u8 [one_time_prekey_id:u32]
//!                   ratchet_key[32] previous_counter:u32 counter:u32
//!                   ciphertext_len:u32 ciphertext
//! GroupMessage    = version(1) kind=3 distribution_id[16] iteration:u32
//!                   ciphertext_len:u32 ciphertext signature[64]
//! ```
//!
//! For the two pairwise kinds, every byte before `ciphertext_len` is the
//! *header*; the client authenticates it as AEAD associated data, so flipping
//! any header bit makes decryption fail. A group message is signed over every
//! byte before its signature.

use crate::bundle::IdentityKeys;
use crate::codec::{Reader, Writer};
use crate::{Hex, MAX_CIPHERTEXT_LEN, MAX_ENVELOPE_LEN, VERSION, WireError};

/// Kind byte of a [`PreKeyMessage`].
pub const KIND_PREKEY: u8 = 1;
/// Kind byte of a [`RatchetMessage`].
pub const KIND_MESSAGE: u8 = 2;
/// Kind byte of a [`GroupMessage`].
pub const KIND_GROUP: u8 = 3;

/// The Double Ratchet header of a pairwise message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RatchetHeader {
    /// The sender's current ratchet public key (X25519).
    pub ratchet_key: [u8; 32],
    /// Number of messages in the sender's previous sending chain (`PN`).
    pub previous_counter: u32,
    /// This message's number in the current sending chain (`N`).
    pub counter: u32,
}

impl RatchetHeader {
    fn write(&self, w: &mut Writer) {
        w.raw(&self.ratchet_key)
            .u32(self.previous_counter)
            .u32(self.counter);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            ratchet_key: r.array("ratchet_key")?,
            previous_counter: r.u32("previous_counter")?,
            counter: r.u32("counter")?,
        })
    }
}

impl std::fmt::Debug for RatchetHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RatchetHeader")
            .field("ratchet_key", &Hex(&self.ratchet_key))
            .field("previous_counter", &self.previous_counter)
            .field("counter", &self.counter)
            .finish()
    }
}

/// The X3DH fields an initiator attaches to its messages until it hears back.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PreKeyHeader {
    /// The initiator's identity.
    pub sender: IdentityKeys,
    /// The initiator's ephemeral X25519 key (`EK_A`).
    pub base_key: [u8; 32],
    /// Which of the responder's signed prekeys was used.
    pub signed_prekey_id: u32,
    /// Which one-time prekey was used, if any.
    pub one_time_prekey_id: Option<u32>,
}

/// A pairwise Double Ratchet message.
#[derive(Clone, PartialEq, Eq)]
pub struct RatchetMessage {
    /// The ratchet header (authenticated, not encrypted).
    pub header: RatchetHeader,
    /// ChaCha20-Poly1305 ciphertext with its 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// A pairwise message that also carries the X3DH handshake.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PreKeyMessage {
    /// The handshake fields.
    pub prekey: PreKeyHeader,
    /// The first (or a further unacknowledged) ratchet message.
    pub message: RatchetMessage,
}

/// A thread message encrypted under the sender's sender key.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupMessage {
    /// Identifies the sender key (and hence the sending member device).
    pub distribution_id: [u8; 16],
    /// Position in the sender key's chain.
    pub iteration: u32,
    /// ChaCha20-Poly1305 ciphertext with its 16-byte tag.
    pub ciphertext: Vec<u8>,
    /// Ed25519 signature by the sender key's signing key.
    pub signature: [u8; 64],
}

/// Any envelope.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Envelope {
    /// Handshake plus first message(s) of a pairwise session.
    PreKey(PreKeyMessage),
    /// A pairwise message on an established session.
    Message(RatchetMessage),
    /// A thread message under a sender key.
    Group(GroupMessage),
}

/// Writes the header of a pairwise envelope: version, kind, the X3DH fields
/// when `prekey` is given, and the ratchet header. These bytes are exactly the
/// AEAD associated data the envelope is authenticated with (after the session's
/// own associated data).
pub fn write_pairwise_header(
    w: &mut Writer,
    prekey: Option<&PreKeyHeader>,
    header: &RatchetHeader,
) {
    w.u8(VERSION);
    match prekey {
        Some(p) => {
            w.u8(KIND_PREKEY);
            p.sender.write(w);
            w.raw(&p.base_key).u32(p.signed_prekey_id);
            w.option(p.one_time_prekey_id.as_ref(), |w, id| {
                w.u32(*id);
            });
        }
        None => {
            w.u8(KIND_MESSAGE);
        }
    }
    header.write(w);
}

/// Length of the pairwise header [`write_pairwise_header`] writes.
pub fn pairwise_header_len(prekey: Option<&PreKeyHeader>) -> usize {
    let base = 2 + 32 + 4 + 4;
    match prekey {
        None => base,
        Some(p) => base + IdentityKeys::LEN + 32 + 4 + 1 + p.one_time_prekey_id.map_or(0, |_| 4),
    }
}

impl RatchetMessage {
    /// The header bytes authenticated as associated data (see [`write_pairwise_header`]).
    pub fn header_bytes(&self, prekey: Option<&PreKeyHeader>) -> Vec<u8> {
        let mut w = Writer::with_capacity(pairwise_header_len(prekey));
        write_pairwise_header(&mut w, prekey, &self.header);
        w.into_vec()
    }
}

impl GroupMessage {
    /// The bytes covered by the signature: everything before it.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(2 + 16 + 4 + 4 + self.ciphertext.len());
        self.write_signed_part(&mut w);
        w.into_vec()
    }

    fn write_signed_part(&self, w: &mut Writer) {
        w.u8(VERSION)
            .u8(KIND_GROUP)
            .raw(&self.distribution_id)
            .u32(self.iteration)
            .var_bytes(&self.ciphertext);
    }
}

impl Envelope {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Envelope::PreKey(m) => encode_pairwise(Some(&m.prekey), &m.message),
            Envelope::Message(m) => encode_pairwise(None, m),
            Envelope::Group(g) => {
                let mut w = Writer::with_capacity(2 + 16 + 4 + 4 + g.ciphertext.len() + 64);
                g.write_signed_part(&mut w);
                w.raw(&g.signature);
                w.into_vec()
            }
        }
    }

    /// Parses an envelope. Never panics; refuses inputs over
    /// [`MAX_ENVELOPE_LEN`] before looking at them.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(WireError::TooLarge {
                field: "envelope",
                len: bytes.len(),
                max: MAX_ENVELOPE_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        r.version(VERSION)?;
        let envelope = match r.u8("kind")? {
            KIND_PREKEY => {
                let prekey = PreKeyHeader {
                    sender: IdentityKeys::read(&mut r)?,
                    base_key: r.array("base_key")?,
                    signed_prekey_id: r.u32("signed_prekey_id")?,
                    one_time_prekey_id: r
                        .option("one_time_prekey_id", |r| r.u32("one_time_prekey_id"))?,
                };
                let message = read_ratchet_body(&mut r)?;
                Envelope::PreKey(PreKeyMessage { prekey, message })
            }
            KIND_MESSAGE => Envelope::Message(read_ratchet_body(&mut r)?),
            KIND_GROUP => Envelope::Group(GroupMessage {
                distribution_id: r.array("distribution_id")?,
                iteration: r.u32("iteration")?,
                ciphertext: read_ciphertext(&mut r)?,
                signature: r.array("signature")?,
            }),
            other => return Err(WireError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(envelope)
    }
}

fn encode_pairwise(prekey: Option<&PreKeyHeader>, m: &RatchetMessage) -> Vec<u8> {
    let mut w = Writer::with_capacity(pairwise_header_len(prekey) + 4 + m.ciphertext.len());
    write_pairwise_header(&mut w, prekey, &m.header);
    w.var_bytes(&m.ciphertext);
    w.into_vec()
}

fn read_ratchet_body(r: &mut Reader<'_>) -> Result<RatchetMessage, WireError> {
    Ok(RatchetMessage {
        header: RatchetHeader::read(r)?,
        ciphertext: read_ciphertext(r)?,
    })
}

fn read_ciphertext(r: &mut Reader<'_>) -> Result<Vec<u8>, WireError> {
    let ct = r.var_bytes("ciphertext", MAX_CIPHERTEXT_LEN)?;
    if ct.len() < 16 {
        // Shorter than a Poly1305 tag: cannot be a valid ciphertext.
        return Err(WireError::Invalid {
            field: "ciphertext",
        });
    }
    Ok(ct.to_vec())
}

impl std::fmt::Debug for RatchetMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RatchetMessage")
            .field("header", &self.header)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

impl std::fmt::Debug for GroupMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMessage")
            .field("distribution_id", &Hex(&self.distribution_id))
            .field("iteration", &self.iteration)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn samples() -> Vec<Envelope> {
        let message = RatchetMessage {
            header: RatchetHeader {
                ratchet_key: [7; 32],
                previous_counter: 3,
                counter: 4,
            },
            ciphertext: vec![9; 40],
        };
        vec![
            Envelope::Message(message.clone()),
            Envelope::PreKey(PreKeyMessage {
                prekey: PreKeyHeader {
                    sender: IdentityKeys {
                        signing_key: [1; 32],
                        dh_key: [2; 32],
                        dh_signature: [3; 64],
                    },
                    base_key: [4; 32],
                    signed_prekey_id: 5,
                    one_time_prekey_id: Some(6),
                },
                message: message.clone(),
            }),
            Envelope::Group(GroupMessage {
                distribution_id: [8; 16],
                iteration: 12,
                ciphertext: vec![1; 20],
                signature: [2; 64],
            }),
        ]
    }

    #[test]
    fn round_trips() {
        for e in samples() {
            assert_eq!(Envelope::parse(&e.encode()).unwrap(), e);
        }
    }

    #[test]
    fn header_bytes_are_the_encoded_prefix() {
        for e in samples() {
            let bytes = e.encode();
            let header = match &e {
                Envelope::PreKey(p) => p.message.header_bytes(Some(&p.prekey)),
                Envelope::Message(m) => m.header_bytes(None),
                Envelope::Group(g) => g.signed_bytes(),
            };
            assert!(bytes.starts_with(&header));
        }
    }

    #[test]
    fn truncations_wrong_version_kind_and_oversize_are_typed_errors() {
        for e in samples() {
            let bytes = e.encode();
            for len in 0..bytes.len() {
                assert!(Envelope::parse(&bytes[..len]).is_err());
            }
            let mut v = bytes.clone();
            v[0] = 0;
            assert!(matches!(
                Envelope::parse(&v),
                Err(WireError::UnsupportedVersion { found: 0, .. })
            ));
            let mut k = bytes.clone();
            k[1] = 99;
            assert_eq!(Envelope::parse(&k), Err(WireError::UnknownKind(99)));
        }
        let huge = vec![1u8; MAX_ENVELOPE_LEN + 1];
        assert!(matches!(
            Envelope::parse(&huge),
            Err(WireError::TooLarge {
                field: "envelope",
                ..
            })
        ));
        // A length field claiming more than the limit is refused without allocating.
        let mut w = Writer::new();
        w.u8(VERSION).u8(KIND_MESSAGE).raw(&[0; 40]).u32(u32::MAX);
        assert!(matches!(
            Envelope::parse(w.as_slice()),
            Err(WireError::TooLarge {
                field: "ciphertext",
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Envelope::parse(&bytes);
        }

        #[test]
        fn accepted_input_re_encodes_identically(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(e) = Envelope::parse(&bytes) {
                prop_assert_eq!(e.encode(), bytes);
            }
        }
    }
}
