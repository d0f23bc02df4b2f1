//! Thread sender-key distribution message.
//!
//! ```text
//! SenderKeyDistribution = version(1) thread_id_len:u32 thread_id
//!                         distribution_id[16] iteration:u32 chain_key[32] signing_key[32]
//! ```
//!
//! It carries a *secret* chain key, so it is only ever transmitted sealed inside
//! a pairwise Double Ratchet session, its `Debug` output omits the chain key and
//! the key is zeroized on drop.

use zeroize::Zeroizing;

use crate::codec::{Reader, Writer};
use crate::ids::valid_thread_id_bytes;
use crate::{Hex, MAX_THREAD_ID_LEN, VERSION, WireError};

/// A member device's sender key for one thread, as handed to the other members.
#[derive(Clone, PartialEq, Eq)]
pub struct SenderKeyDistribution {
    /// The thread this key encrypts for: a thread id as
    /// [`crate::ids::valid_thread_id`] defines it, as bytes.
    pub thread_id: Vec<u8>,
    /// Random identifier of this sender key; group messages name it.
    pub distribution_id: [u8; 16],
    /// The chain position `chain_key` belongs to.
    pub iteration: u32,
    /// The chain key at `iteration` (secret).
    pub chain_key: Zeroizing<[u8; 32]>,
    /// Ed25519 public key that signs every message under this sender key.
    pub signing_key: [u8; 32],
}

impl SenderKeyDistribution {
    /// The canonical encoding. The returned buffer holds the chain key and is
    /// zeroized on drop.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(1 + 4 + self.thread_id.len() + 16 + 4 + 64);
        w.u8(VERSION)
            .var_bytes(&self.thread_id)
            .raw(&self.distribution_id)
            .u32(self.iteration)
            .raw(self.chain_key.as_ref())
            .raw(&self.signing_key);
        Zeroizing::new(w.into_vec())
    }

    /// Parses the canonical encoding.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        r.version(VERSION)?;
        let thread_id = r.var_bytes("thread_id", MAX_THREAD_ID_LEN)?.to_vec();
        if !valid_thread_id_bytes(&thread_id) {
            return Err(WireError::Invalid { field: "thread_id" });
        }
        let d = Self {
            thread_id,
            distribution_id: r.array("distribution_id")?,
            iteration: r.u32("iteration")?,
            chain_key: Zeroizing::new(r.array("chain_key")?),
            signing_key: r.array("signing_key")?,
        };
        r.finish()?;
        Ok(d)
    }
}

impl std::fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyDistribution")
            .field("thread_id", &Hex(&self.thread_id))
            .field("distribution_id", &Hex(&self.distribution_id))
            .field("iteration", &self.iteration)
            .field("chain_key", &"<redacted>")
            .field("signing_key", &Hex(&self.signing_key))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SenderKeyDistribution {
        SenderKeyDistribution {
            thread_id: b"ops-north".to_vec(),
            distribution_id: [3; 16],
            iteration: 42,
            chain_key: Zeroizing::new([0xAB; 32]),
            signing_key: [5; 32],
        }
    }

    #[test]
    fn round_trip_and_errors() {
        let d = sample();
        let bytes = d.encode();
        assert_eq!(SenderKeyDistribution::parse(&bytes).unwrap(), d);
        for len in 0..bytes.len() {
            assert!(SenderKeyDistribution::parse(&bytes[..len]).is_err());
        }
        let mut long = d.clone();
        long.thread_id = vec![1; MAX_THREAD_ID_LEN + 1];
        assert!(matches!(
            SenderKeyDistribution::parse(&long.encode()),
            Err(WireError::TooLarge {
                field: "thread_id",
                ..
            })
        ));
    }

    #[test]
    fn debug_hides_the_chain_key() {
        let s = format!("{:?}", sample());
        assert!(!s.to_lowercase().contains("abab"));
        assert!(!s.contains("171"));
        assert!(s.contains("redacted"));
    }
}
