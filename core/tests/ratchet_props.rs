//! Property tests of the Double Ratchet under reordering, loss and replay.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use occ_core::crypto::ratchet::MAX_SKIP;
use occ_core::crypto::{Account, CryptoError, Session};
use occ_protocol::Envelope;
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;

fn established() -> (Session, Session) {
    let alice = Account::generate(NOW).unwrap();
    let mut bob = Account::generate(NOW).unwrap();
    let id = bob.generate_one_time_prekeys(1).unwrap()[0].0;
    let mut a = Session::initiate(alice.identity(), &bob.bundle(Some(id)).unwrap()).unwrap();
    let Envelope::PreKey(p) = Envelope::parse(&a.encrypt(b"hi").unwrap()).unwrap() else {
        panic!("first message must be a prekey message")
    };
    let (mut b, _) = bob.accept(p).unwrap();
    a.decrypt(&b.encrypt(b"hi").unwrap()).unwrap();
    (a, b)
}

#[derive(Debug, Clone)]
enum Op {
    /// Alice (true) or Bob (false) sends a message.
    Send(bool),
    /// Deliver the in-flight message picked by the index.
    Deliver(usize),
    /// Lose the in-flight message picked by the index.
    Drop(usize),
    /// Deliver an already-delivered message again.
    Replay(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(Op::Send),
        3 => any::<usize>().prop_map(Op::Deliver),
        1 => any::<usize>().prop_map(Op::Drop),
        1 => any::<usize>().prop_map(Op::Replay),
    ]
}

struct Flight {
    to_bob: bool,
    envelope: Vec<u8>,
    plaintext: Vec<u8>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    /// Any interleaving of sends, out-of-order deliveries, losses and replays
    /// (within the skip limits): every delivered message decrypts exactly
    /// once, to its plaintext, and every replay is refused without changing
    /// the session.
    #[test]
    fn every_delivered_message_decrypts_exactly_once(ops in proptest::collection::vec(op(), 1..300)) {
        let (mut a, mut b) = established();
        let mut in_flight: Vec<Flight> = Vec::new();
        let mut delivered: Vec<Flight> = Vec::new();
        let mut sent = 0u32;
        for op in ops {
            match op {
                Op::Send(from_alice) => {
                    sent += 1;
                    let plaintext = format!("message {sent}").into_bytes();
                    let s = if from_alice { &mut a } else { &mut b };
                    let envelope = s.encrypt(&plaintext).unwrap();
                    in_flight.push(Flight { to_bob: from_alice, envelope, plaintext });
                }
                Op::Deliver(i) if !in_flight.is_empty() => {
                    let f = in_flight.remove(i % in_flight.len());
                    let s = if f.to_bob { &mut b } else { &mut a };
                    prop_assert_eq!(s.decrypt(&f.envelope).unwrap(), f.plaintext.clone());
                    delivered.push(f);
                }
                Op::Drop(i) if !in_flight.is_empty() => {
                    in_flight.remove(i % in_flight.len());
                }
                Op::Replay(i) if !delivered.is_empty() => {
                    let f = &delivered[i % delivered.len()];
                    let s = if f.to_bob { &mut b } else { &mut a };
                    let before = s.to_bytes();
                    prop_assert!(s.decrypt(&f.envelope).is_err());
                    prop_assert_eq!(s.to_bytes(), before);
                }
                _ => {}
            }
        }
        // Whatever is still in flight arrives last, newest first.
        while let Some(f) = in_flight.pop() {
            let s = if f.to_bob { &mut b } else { &mut a };
            prop_assert_eq!(s.decrypt(&f.envelope).unwrap(), f.plaintext);
        }
    }

    /// A gap beyond the limit is a clear error, not a hang, and changes nothing.
    #[test]
    fn gaps_beyond_the_limit_are_refused(extra in 1u32..40, replied in any::<bool>()) {
        let (mut a, mut b) = established();
        if replied {
            // Make the long chain a fresh one (exercises the DH-step path).
            a.decrypt(&b.encrypt(b"r").unwrap()).unwrap();
        }
        let mut last = Vec::new();
        for _ in 0..=MAX_SKIP + extra {
            last = a.encrypt(b"x").unwrap();
        }
        let before = b.to_bytes();
        let refused = matches!(b.decrypt(&last), Err(CryptoError::TooManySkipped { limit: MAX_SKIP, .. }));
        prop_assert!(refused);
        prop_assert_eq!(b.to_bytes(), before);
    }
}
