//! Safety numbers: what two people compare, in person or by reading aloud,
//! to know that no one (the relay included) substituted a key between them.
//!
//! Each side's half is 30 digits derived from its user name and the sorted
//! signing keys of all its devices: SHA-512 over a version label, the name
//! and the keys, re-hashed 5,200 times (so a relay searching for a key whose
//! half collides with someone's pays that much per try), cut into six
//! 5-byte chunks each reduced modulo 100,000. The number is the two halves,
//! lower first, so both people see the same 60 digits. Any change of any
//! device key on either side changes it.

use sha2::{Digest, Sha512};

const VERSION: &[u8] = b"occ-safety-number-v1";
const ITERATIONS: usize = 5_200;

/// One side's 30 digits.
fn half(user: &str, signing_keys: &[[u8; 32]]) -> String {
    let mut keys = signing_keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    let mut h = Sha512::new();
    h.update(VERSION);
    h.update((user.len() as u64).to_be_bytes());
    h.update(user.as_bytes());
    h.update((keys.len() as u64).to_be_bytes());
    for k in &keys {
        h.update(k);
    }
    let mut digest = h.finalize();
    for _ in 0..ITERATIONS {
        let mut h = Sha512::new();
        h.update(digest);
        for k in &keys {
            h.update(k);
        }
        digest = h.finalize();
    }
    let mut out = String::with_capacity(30);
    for chunk in digest[..30].chunks(5) {
        let mut v: u64 = 0;
        for b in chunk {
            v = (v << 8) | u64::from(*b);
        }
        out.push_str(&format!("{:05}", v % 100_000));
    }
    out
}

/// The 60-digit safety number between `(user_a, keys_a)` and
/// `(user_b, keys_b)`; the same whichever side computes it. Shown as twelve
/// groups of five digits.
pub fn safety_number(
    user_a: &str,
    keys_a: &[[u8; 32]],
    user_b: &str,
    keys_b: &[[u8; 32]],
) -> String {
    let (a, b) = (half(user_a, keys_a), half(user_b, keys_b));
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    let digits = format!("{first}{second}");
    digits
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_see_the_same_number_and_any_key_change_shows() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let n = safety_number("alice", &[a], "bob", &[b]);
        assert_eq!(n, safety_number("bob", &[b], "alice", &[a]));
        assert_eq!(n.len(), 60 + 11);
        assert_eq!(n.split(' ').count(), 12);
        assert!(
            n.split(' ')
                .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_digit()))
        );
        // Another key for bob, another device, another name: another number.
        assert_ne!(n, safety_number("alice", &[a], "bob", &[[3u8; 32]]));
        assert_ne!(n, safety_number("alice", &[a], "bob", &[b, [3u8; 32]]));
        assert_ne!(n, safety_number("alice", &[a], "bobby", &[b]));
        // Device order does not matter.
        assert_eq!(
            safety_number("alice", &[a], "bob", &[b, [3u8; 32]]),
            safety_number("alice", &[a], "bob", &[[3u8; 32], b])
        );
        // Stable across builds (a change here breaks every comparison).
        assert_eq!(half("alice", &[a]).len(), 30);
        // Known answer, computed independently (Python hashlib) from the
        // description at the top of this file.
        assert_eq!(
            safety_number("alice", &[a], "bob", &[b]),
            "28297 30532 43107 43390 05346 01370 96918 46026 43771 74591 05718 38650"
        );
    }
}
