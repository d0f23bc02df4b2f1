//! Authentication challenges that hold no per-device state.
//!
//! A challenge is `nonce (16) ‖ expires_ms (8, big-endian) ‖ tag (32)`, the
//! tag an HMAC-SHA-256 under a key the relay draws at start over the device
//! id, the nonce and the expiry. Anyone may ask for challenges for any
//! device, as often as the rate limit allows, and none of them displaces
//! another: there is no slot to overwrite. A used challenge is remembered
//! (bounded, until it expires) so it cannot be spent twice.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Bytes in a challenge.
pub(crate) const CHALLENGE_LEN: usize = 16 + 8 + 32;

/// Issues and checks challenges.
pub(crate) struct Challenges {
    key: [u8; 32],
}

impl Challenges {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, device_id: &str, nonce: &[u8], expires_ms: i64) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).ok()?;
        mac.update(b"occ/relay/challenge");
        mac.update(&(device_id.len() as u64).to_be_bytes());
        mac.update(device_id.as_bytes());
        mac.update(nonce);
        mac.update(&expires_ms.to_be_bytes());
        Some(mac)
    }

    /// A challenge for `device_id`, valid until `expires_ms`.
    pub(crate) fn issue(
        &self,
        device_id: &str,
        nonce: [u8; 16],
        expires_ms: i64,
    ) -> Option<Vec<u8>> {
        let tag = self
            .mac(device_id, &nonce, expires_ms)?
            .finalize()
            .into_bytes();
        let mut out = Vec::with_capacity(CHALLENGE_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&expires_ms.to_be_bytes());
        out.extend_from_slice(&tag);
        Some(out)
    }

    /// Whether `challenge` was issued by this relay for `device_id` and is
    /// still live; returns its expiry.
    pub(crate) fn check(&self, device_id: &str, challenge: &[u8], now_ms: i64) -> Option<i64> {
        if challenge.len() != CHALLENGE_LEN {
            return None;
        }
        let (nonce, rest) = challenge.split_at(16);
        let (exp, tag) = rest.split_at(8);
        let expires_ms = i64::from_be_bytes(exp.try_into().ok()?);
        self.mac(device_id, nonce, expires_ms)?
            .verify_slice(tag)
            .ok()?;
        (expires_ms > now_ms).then_some(expires_ms)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_challenge_is_bound_to_its_device_key_and_expiry() {
        let c = Challenges::new([7; 32]);
        let ch = c.issue("dev-a", [1; 16], 1_000).unwrap();
        assert_eq!(ch.len(), CHALLENGE_LEN);
        assert_eq!(c.check("dev-a", &ch, 999), Some(1_000));
        assert_eq!(c.check("dev-a", &ch, 1_000), None, "expired");
        assert_eq!(c.check("dev-b", &ch, 0), None, "another device");
        assert_eq!(Challenges::new([8; 32]).check("dev-a", &ch, 0), None);
        for i in 0..ch.len() {
            let mut bad = ch.clone();
            bad[i] ^= 1;
            assert_eq!(c.check("dev-a", &bad, 0), None, "byte {i}");
        }
        assert_eq!(c.check("dev-a", &ch[..ch.len() - 1], 0), None);
        assert_eq!(c.check("dev-a", &[], 0), None);
    }
}
