//! End-to-end behaviour of the crypto core: 1:1 sessions, threads, tampering,
//! replay, forged keys, prekey reuse, persistence and bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use occ_core::crypto::group::SENDER_KEY_MAX_MESSAGES;
use occ_core::crypto::prekeys::SIGNED_PREKEY_MAX_AGE;
use occ_core::crypto::ratchet::{MAX_SKIP, MAX_SKIPPED_PER_SESSION};
use occ_core::crypto::{Account, CryptoError, DeviceId, Role, Session, ThreadKeys};
use occ_protocol::{Envelope, PreKeyMessage, SenderKeyDistribution, WireError};

const NOW: u64 = 1_800_000_000;

fn account() -> Account {
    let mut a = Account::generate(NOW).unwrap();
    a.generate_one_time_prekeys(5).unwrap();
    a
}

fn first_one_time_id(a: &Account) -> u32 {
    a.one_time_prekeys()[0].0
}

fn prekey(bytes: &[u8]) -> PreKeyMessage {
    match Envelope::parse(bytes).unwrap() {
        Envelope::PreKey(p) => p,
        other => panic!("expected a prekey message, got {other:?}"),
    }
}

/// Alice starts a session with Bob and Bob accepts it; Bob replies once so both
/// sides are past the handshake.
fn established(alice: &Account, bob: &mut Account) -> (Session, Session) {
    let bundle = bob.bundle(Some(first_one_time_id(bob))).unwrap();
    let mut a = Session::initiate(alice.identity(), &bundle).unwrap();
    let first = a.encrypt(b"hello bob").unwrap();
    let (mut b, pt) = bob.accept(prekey(&first)).unwrap();
    assert_eq!(pt, b"hello bob");
    let reply = b.encrypt(b"hello alice").unwrap();
    assert_eq!(a.decrypt(&reply).unwrap(), b"hello alice");
    (a, b)
}

#[test]
fn one_to_one_round_trip() {
    let alice = account();
    let mut bob = account();
    let bundle = bob.bundle(Some(first_one_time_id(&bob))).unwrap();
    let mut a = Session::initiate(alice.identity(), &bundle).unwrap();
    assert_eq!(a.role(), Role::Initiator);

    // Until Alice hears back, every message carries the handshake.
    let m1 = a.encrypt(b"one").unwrap();
    let m2 = a.encrypt(b"two").unwrap();
    assert!(matches!(Envelope::parse(&m2).unwrap(), Envelope::PreKey(_)));
    let (mut b, pt) = bob.accept(prekey(&m1)).unwrap();
    assert_eq!(pt, b"one");
    assert_eq!(b.role(), Role::Responder);
    assert_eq!(b.remote_identity().device_id(), alice.device_id());
    // The second prekey message goes to the existing session, not a new accept.
    assert!(b.matches(&prekey(&m2).prekey));
    assert_eq!(b.decrypt(&m2).unwrap(), b"two");

    // Many messages each way, several DH ratchet steps.
    for round in 0..5u8 {
        for i in 0..3u8 {
            let msg = [round, i, 0xB0];
            let e = b.encrypt(&msg).unwrap();
            assert_eq!(a.decrypt(&e).unwrap(), msg);
        }
        for i in 0..3u8 {
            let msg = [round, i, 0xA0];
            let e = a.encrypt(&msg).unwrap();
            assert!(matches!(Envelope::parse(&e).unwrap(), Envelope::Message(_)));
            assert_eq!(b.decrypt(&e).unwrap(), msg);
        }
    }
    // The relay only sees ciphertext: the plaintext is not in the envelope.
    let secret = b"the plaintext marker 1234567890";
    let e = a.encrypt(secret).unwrap();
    assert!(!e.windows(secret.len()).any(|w| w == secret));
    assert_eq!(b.decrypt(&e).unwrap(), secret);
}

#[test]
fn responder_cannot_send_before_receiving_and_session_without_one_time_prekey_works() {
    let alice = account();
    let mut bob = Account::generate(NOW).unwrap();
    let bundle = bob.bundle(None).unwrap();
    let mut a = Session::initiate(alice.identity(), &bundle).unwrap();
    let (mut b, pt) = bob.accept(prekey(&a.encrypt(b"x").unwrap())).unwrap();
    assert_eq!(pt, b"x");
    let e = b.encrypt(b"y").unwrap();
    assert_eq!(a.decrypt(&e).unwrap(), b"y");
}

/// Pairwise sessions between every pair of `n` accounts: `sessions[i][j]` is
/// i's session with j.
#[allow(clippy::needless_range_loop)]
fn mesh(accounts: &mut [Account]) -> Vec<Vec<Option<Session>>> {
    let n = accounts.len();
    let mut sessions: Vec<Vec<Option<Session>>> =
        (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    for i in 0..n {
        for j in (i + 1)..n {
            let (left, right) = accounts.split_at_mut(j);
            let (a, b) = established(&left[i], &mut right[0]);
            sessions[i][j] = Some(a);
            sessions[j][i] = Some(b);
        }
    }
    sessions
}

/// Seals `d` from `from` to `to` over their pairwise session and installs it.
fn deliver_distribution(
    sessions: &mut [Vec<Option<Session>>],
    threads: &mut [ThreadKeys],
    ids: &[DeviceId],
    from: usize,
    to: usize,
    d: &SenderKeyDistribution,
) {
    let sealed = sessions[from][to]
        .as_mut()
        .unwrap()
        .encrypt(&d.encode())
        .unwrap();
    let opened = sessions[to][from]
        .as_mut()
        .unwrap()
        .decrypt(&sealed)
        .unwrap();
    let d = SenderKeyDistribution::parse(&opened).unwrap();
    threads[to].add_member_key(ids[from], &d).unwrap();
}

#[test]
fn five_member_thread_round_trip_and_removed_member_cannot_decrypt() {
    let mut accounts: Vec<Account> = (0..5).map(|_| account()).collect();
    let ids: Vec<DeviceId> = accounts.iter().map(|a| a.device_id()).collect();
    let mut sessions = mesh(&mut accounts);
    let mut threads: Vec<ThreadKeys> = (0..5)
        .map(|_| ThreadKeys::new(b"incident-7", NOW).unwrap())
        .collect();
    for from in 0..5 {
        let d = threads[from].distribution();
        for to in (0..5).filter(|&t| t != from) {
            deliver_distribution(&mut sessions, &mut threads, &ids, from, to, &d);
        }
    }
    for from in 0..5 {
        for k in 0..3u8 {
            let text = [from as u8, k];
            let e = threads[from].encrypt(&text).unwrap();
            for to in (0..5).filter(|&t| t != from) {
                let (sender, pt) = threads[to].decrypt(ids[from], &e).unwrap();
                assert_eq!(sender, ids[from]);
                assert_eq!(pt, text);
            }
        }
    }

    // Member 4 leaves: every remaining member forgets its keys, rotates, and
    // sends the new key to the remaining members only.
    let removed = 4;
    for m in 0..4 {
        let d = threads[m].remove_member(ids[removed], NOW).unwrap();
        for to in (0..4).filter(|&t| t != m) {
            deliver_distribution(&mut sessions, &mut threads, &ids, m, to, &d);
        }
    }
    for from in 0..4 {
        let e = threads[from].encrypt(b"after removal").unwrap();
        for to in (0..4).filter(|&t| t != from) {
            assert_eq!(
                threads[to].decrypt(ids[from], &e).unwrap().1,
                b"after removal"
            );
        }
        let before = threads[removed].to_bytes();
        assert!(matches!(
            threads[removed].decrypt(ids[from], &e),
            Err(CryptoError::UnknownSenderKey)
        ));
        assert_eq!(threads[removed].to_bytes(), before);
    }
    // And the removed member's own messages are no longer accepted.
    let e = threads[removed].encrypt(b"still here?").unwrap();
    assert!(matches!(
        threads[0].decrypt(ids[removed], &e),
        Err(CryptoError::UnknownSenderKey)
    ));
}

#[test]
fn a_members_key_is_only_its_own_whatever_id_another_member_claims() {
    let carol = DeviceId([3; 32]);
    let mallory = DeviceId([4; 32]);
    let mut bob = ThreadKeys::new(b"t", NOW).unwrap();
    let mut carols = ThreadKeys::new(b"t", NOW).unwrap();
    let mut mallorys = ThreadKeys::new(b"t", NOW).unwrap();
    // Mallory claims carol's distribution id first, with her own chain.
    let mut claim = mallorys.distribution();
    claim.distribution_id = carols.distribution().distribution_id;
    bob.add_member_key(mallory, &claim).unwrap();
    bob.add_member_key(carol, &carols.distribution()).unwrap();
    let from_carol = carols.encrypt(b"carol").unwrap();
    // Tried under carol's keys only: hers decrypts; claimed as mallory's, not.
    let before = bob.to_bytes();
    assert!(bob.decrypt(mallory, &from_carol).is_err());
    assert_eq!(bob.to_bytes(), before);
    assert_eq!(
        bob.decrypt(carol, &from_carol).unwrap(),
        (carol, b"carol".to_vec())
    );
    let _ = mallorys.encrypt(b"x").unwrap();
    // An unknown member device has no key at all.
    assert!(matches!(
        bob.decrypt(DeviceId([9; 32]), &carols.encrypt(b"y").unwrap()),
        Err(CryptoError::UnknownSenderKey)
    ));
}

#[test]
fn a_members_previous_key_still_opens_late_messages_until_the_next_rotation() {
    let member = DeviceId([5; 32]);
    let mut source = ThreadKeys::new(b"t", NOW).unwrap();
    let mut t = ThreadKeys::new(b"t", NOW).unwrap();
    t.add_member_key(member, &source.distribution()).unwrap();
    let first_a = source.encrypt(b"first a").unwrap();
    let first_b = source.encrypt(b"first b").unwrap();
    t.add_member_key(member, &source.rotate(NOW).unwrap())
        .unwrap();
    let second = source.encrypt(b"second").unwrap();
    assert_eq!(t.decrypt(member, &second).unwrap().1, b"second");
    // Sent before the rotation, arriving after it: still readable.
    assert_eq!(t.decrypt(member, &first_a).unwrap().1, b"first a");
    t.add_member_key(member, &source.rotate(NOW).unwrap())
        .unwrap();
    // Two keys per member at most: the first is gone now.
    assert!(matches!(
        t.decrypt(member, &first_b),
        Err(CryptoError::UnknownSenderKey)
    ));
}

#[test]
fn a_full_thread_refuses_a_new_member_device_but_not_a_members_new_key() {
    let source = ThreadKeys::new(b"t", NOW).unwrap();
    let mut t = ThreadKeys::new(b"t", NOW).unwrap();
    let mut d = source.distribution();
    let device = |i: usize| {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&(i as u64).to_be_bytes());
        DeviceId(id)
    };
    for i in 0..occ_core::crypto::group::MAX_MEMBER_DEVICES {
        d.distribution_id[..8].copy_from_slice(&(i as u64).to_be_bytes());
        t.add_member_key(device(i), &d).unwrap();
    }
    d.distribution_id = [0xee; 16];
    assert!(matches!(
        t.add_member_key(device(usize::MAX >> 1), &d),
        Err(CryptoError::InvalidInput(_))
    ));
    // A member already in the thread rotates its key as usual.
    t.add_member_key(device(7), &d).unwrap();
}

#[test]
fn sender_key_rotation_is_due_by_count_and_age() {
    let mut t = ThreadKeys::new(b"t", NOW).unwrap();
    assert!(!t.needs_rotation(NOW));
    assert!(t.needs_rotation(NOW + 7 * 24 * 3600));
    for _ in 0..SENDER_KEY_MAX_MESSAGES {
        t.encrypt(b"m").unwrap();
    }
    assert!(t.needs_rotation(NOW));
    let old = t.distribution().distribution_id;
    let new = t.rotate(NOW).unwrap();
    assert_ne!(new.distribution_id, old);
    assert_eq!(new.iteration, 0);
    assert!(!t.needs_rotation(NOW));
}

#[test]
fn thread_key_for_another_thread_or_member_is_refused() {
    let mut a = ThreadKeys::new(b"alpha", NOW).unwrap();
    let b = ThreadKeys::new(b"beta", NOW).unwrap();
    let c = ThreadKeys::new(b"alpha", NOW).unwrap();
    assert!(matches!(
        a.add_member_key(DeviceId([1; 32]), &b.distribution()),
        Err(CryptoError::WrongThread)
    ));
    a.add_member_key(DeviceId([1; 32]), &c.distribution())
        .unwrap();
    // Idempotent for the same member (no second copy of the key)...
    let once = a.to_bytes();
    a.add_member_key(DeviceId([1; 32]), &c.distribution())
        .unwrap();
    assert_eq!(a.to_bytes(), once);
    // ...and another member naming the same id gets a key of its own, which
    // decrypts nothing of member 1's (see the claim test below).
    a.add_member_key(DeviceId([2; 32]), &c.distribution())
        .unwrap();
    assert_ne!(a.to_bytes(), once);
}

#[test]
fn replays_are_rejected_pairwise_prekey_and_thread() {
    let alice = account();
    let mut bob = account();
    let bundle = bob.bundle(Some(first_one_time_id(&bob))).unwrap();
    let mut a = Session::initiate(alice.identity(), &bundle).unwrap();
    let m1 = a.encrypt(b"first").unwrap();
    let (mut b, _) = bob.accept(prekey(&m1)).unwrap();
    // The same prekey message again: its one-time prekey is gone, and the
    // session it created has already used the key.
    assert!(matches!(
        bob.accept(prekey(&m1)),
        Err(CryptoError::UnknownOneTimePreKey(_))
    ));
    let before = b.to_bytes();
    assert!(matches!(b.decrypt(&m1), Err(CryptoError::DuplicateMessage)));
    assert_eq!(b.to_bytes(), before);

    let r = b.encrypt(b"reply").unwrap();
    a.decrypt(&r).unwrap();
    let before = a.to_bytes();
    assert!(matches!(a.decrypt(&r), Err(CryptoError::DuplicateMessage)));
    assert_eq!(a.to_bytes(), before);

    // An out-of-order message is accepted once, from the skipped keys, then refused.
    let x1 = a.encrypt(b"x1").unwrap();
    let x2 = a.encrypt(b"x2").unwrap();
    assert_eq!(b.decrypt(&x2).unwrap(), b"x2");
    assert_eq!(b.decrypt(&x1).unwrap(), b"x1");
    assert!(matches!(b.decrypt(&x1), Err(CryptoError::DuplicateMessage)));
    assert!(matches!(b.decrypt(&x2), Err(CryptoError::DuplicateMessage)));

    // A message from an older chain, replayed after further ratchet steps.
    let old = a.encrypt(b"old chain").unwrap();
    b.decrypt(&old).unwrap();
    for _ in 0..2 {
        let e = b.encrypt(b"ping").unwrap();
        a.decrypt(&e).unwrap();
        let e = a.encrypt(b"pong").unwrap();
        b.decrypt(&e).unwrap();
    }
    let before = b.to_bytes();
    assert!(b.decrypt(&old).is_err());
    assert_eq!(b.to_bytes(), before);

    let mut ta = ThreadKeys::new(b"t", NOW).unwrap();
    let mut tb = ThreadKeys::new(b"t", NOW).unwrap();
    tb.add_member_key(alice.device_id(), &ta.distribution())
        .unwrap();
    let g1 = ta.encrypt(b"g1").unwrap();
    let g2 = ta.encrypt(b"g2").unwrap();
    let from = alice.device_id();
    tb.decrypt(from, &g2).unwrap();
    tb.decrypt(from, &g1).unwrap();
    for g in [&g1, &g2] {
        let before = tb.to_bytes();
        assert!(matches!(
            tb.decrypt(from, g),
            Err(CryptoError::DuplicateMessage)
        ));
        assert_eq!(tb.to_bytes(), before);
    }
    // Replaying the distribution cannot rewind the chain and revive old messages.
    tb.add_member_key(alice.device_id(), &ta.distribution())
        .unwrap();
    assert!(matches!(
        tb.decrypt(from, &g1),
        Err(CryptoError::DuplicateMessage)
    ));
}

fn flip_every_bit(envelope: &[u8], mut attempt: impl FnMut(&[u8]) -> bool) {
    for i in 0..envelope.len() * 8 {
        let mut e = envelope.to_vec();
        e[i / 8] ^= 1 << (i % 8);
        assert!(attempt(&e), "flipping bit {i} was not rejected");
    }
}

#[test]
fn flipping_any_bit_of_a_prekey_message_is_rejected_and_changes_nothing() {
    let alice = account();
    let mut bob = account();
    let bundle = bob.bundle(Some(first_one_time_id(&bob))).unwrap();
    let mut a = Session::initiate(alice.identity(), &bundle).unwrap();
    let m1 = a.encrypt(b"tamper me").unwrap();
    let before = bob.to_bytes();
    flip_every_bit(&m1, |e| {
        let rejected = match Envelope::parse(e) {
            Err(_) => true,
            Ok(Envelope::PreKey(p)) => bob.accept(p).is_err(),
            Ok(_) => true,
        };
        rejected && bob.to_bytes() == before
    });
    let (_, pt) = bob.accept(prekey(&m1)).unwrap();
    assert_eq!(pt, b"tamper me");
}

#[test]
fn flipping_any_bit_of_a_ratchet_message_is_rejected_and_changes_nothing() {
    let alice = account();
    let mut bob = account();
    let (mut a, mut b) = established(&alice, &mut bob);
    // One message that needs a DH ratchet step on Bob's side, one that doesn't.
    let step = a.encrypt(b"new chain").unwrap();
    let same = a.encrypt(b"same chain").unwrap();
    for genuine in [&step, &same] {
        let before = b.to_bytes();
        flip_every_bit(genuine, |e| b.decrypt(e).is_err() && b.to_bytes() == before);
        assert!(b.decrypt(genuine).is_ok());
    }
}

#[test]
fn flipping_any_bit_of_a_thread_message_is_rejected_and_changes_nothing() {
    let mut ta = ThreadKeys::new(b"t", NOW).unwrap();
    let mut tb = ThreadKeys::new(b"t", NOW).unwrap();
    tb.add_member_key(DeviceId([9; 32]), &ta.distribution())
        .unwrap();
    let g = ta.encrypt(b"thread text").unwrap();
    let before = tb.to_bytes();
    flip_every_bit(&g, |e| {
        tb.decrypt(DeviceId([9; 32]), e).is_err() && tb.to_bytes() == before
    });
    assert_eq!(tb.decrypt(DeviceId([9; 32]), &g).unwrap().1, b"thread text");
}

#[test]
fn wrong_identity_and_wrong_session_fail() {
    let alice = account();
    let mallory = account();
    let mut bob = account();
    // Mallory claims to be Alice: she can sign nothing as Alice, so she sends
    // Alice's (validly signed) identity keys but cannot compute DH(IK_A, SPK_B).
    let bundle = bob.bundle(Some(first_one_time_id(&bob))).unwrap();
    let mut m = Session::initiate(mallory.identity(), &bundle).unwrap();
    let mut forged = prekey(&m.encrypt(b"i am alice").unwrap());
    forged.prekey.sender = alice.identity().public().keys().clone();
    let before = bob.to_bytes();
    assert!(matches!(
        bob.accept(forged),
        Err(CryptoError::DecryptionFailed)
    ));
    assert_eq!(bob.to_bytes(), before);

    // A message of the Alice–Bob session cannot be read in the Alice–Carol
    // session (different root keys and associated data).
    let mut carol = account();
    let (mut ab, _) = established(&alice, &mut bob);
    let (_, mut ca) = established(&alice, &mut carol);
    let e = ab.encrypt(b"for bob").unwrap();
    assert!(ca.decrypt(&e).is_err());
    // A prekey message for Bob presented to another responder session.
    let bundle = bob.bundle(Some(bob.one_time_prekeys()[0].0)).unwrap();
    let mut a2 = Session::initiate(alice.identity(), &bundle).unwrap();
    let p = a2.encrypt(b"x").unwrap();
    assert!(matches!(ca.decrypt(&p), Err(CryptoError::SessionMismatch)));
}

#[test]
fn forged_bundle_signatures_are_refused() {
    let alice = account();
    let bob = account();
    let good = bob.bundle(Some(first_one_time_id(&bob))).unwrap();

    let mut b = good.clone();
    b.signed_prekey_signature[10] ^= 1;
    assert!(matches!(
        Session::initiate(alice.identity(), &b),
        Err(CryptoError::InvalidSignature("signed prekey"))
    ));
    // A substituted signed prekey under the genuine signature.
    let mut b = good.clone();
    b.signed_prekey = alice.bundle(None).unwrap().signed_prekey;
    assert!(matches!(
        Session::initiate(alice.identity(), &b),
        Err(CryptoError::InvalidSignature(_))
    ));
    // A substituted X25519 identity key.
    let mut b = good.clone();
    b.identity.dh_key = alice.identity().public().keys().dh_key;
    assert!(matches!(
        Session::initiate(alice.identity(), &b),
        Err(CryptoError::InvalidSignature("identity key"))
    ));
    // Someone else's signed prekey (validly signed by them) under Bob's identity.
    let mut b = good;
    let other = alice.bundle(None).unwrap();
    b.signed_prekey = other.signed_prekey;
    b.signed_prekey_signature = other.signed_prekey_signature;
    assert!(matches!(
        Session::initiate(alice.identity(), &b),
        Err(CryptoError::InvalidSignature(_))
    ));
}

#[test]
fn a_one_time_prekey_is_used_once() {
    let alice = account();
    let carol = account();
    let mut bob = account();
    let id = first_one_time_id(&bob);
    let bundle = bob.bundle(Some(id)).unwrap();
    let mut a = Session::initiate(alice.identity(), &bundle).unwrap();
    let mut c = Session::initiate(carol.identity(), &bundle).unwrap();
    let count = bob.one_time_prekey_count();
    bob.accept(prekey(&a.encrypt(b"a").unwrap())).unwrap();
    assert_eq!(bob.one_time_prekey_count(), count - 1);
    let before = bob.to_bytes();
    assert!(matches!(
        bob.accept(prekey(&c.encrypt(b"c").unwrap())),
        Err(CryptoError::UnknownOneTimePreKey(x)) if x == id
    ));
    assert_eq!(bob.to_bytes(), before);
    assert!(matches!(
        bob.bundle(Some(id)),
        Err(CryptoError::UnknownOneTimePreKey(_))
    ));
}

#[test]
fn signed_prekey_rotation_keeps_one_previous_key() {
    let alice = account();
    let mut bob = account();
    let old_bundle = bob.bundle(None).unwrap();
    assert!(
        !bob.rotate_signed_prekey_if_due(NOW + 10, SIGNED_PREKEY_MAX_AGE)
            .unwrap()
    );
    assert!(
        bob.rotate_signed_prekey_if_due(NOW + SIGNED_PREKEY_MAX_AGE, SIGNED_PREKEY_MAX_AGE)
            .unwrap()
    );
    assert_ne!(
        bob.bundle(None).unwrap().signed_prekey_id,
        old_bundle.signed_prekey_id
    );
    // A message started from the previous bundle still works after one rotation...
    let mut a = Session::initiate(alice.identity(), &old_bundle).unwrap();
    let m = a.encrypt(b"in flight").unwrap();
    assert_eq!(bob.accept(prekey(&m)).unwrap().1, b"in flight");
    // ...but not after two.
    assert!(
        bob.rotate_signed_prekey_if_due(NOW + 2 * SIGNED_PREKEY_MAX_AGE, SIGNED_PREKEY_MAX_AGE)
            .unwrap()
    );
    let mut a = Session::initiate(alice.identity(), &old_bundle).unwrap();
    assert!(matches!(
        bob.accept(prekey(&a.encrypt(b"late").unwrap())),
        Err(CryptoError::UnknownSignedPreKey(_))
    ));
}

#[test]
fn non_contributory_keys_are_refused() {
    let alice = account();
    let mut bob = account();
    let (mut a, mut b) = established(&alice, &mut bob);
    // A ratchet message whose ratchet key is a low-order point (all zeros).
    let e = a.encrypt(b"x").unwrap();
    let Envelope::Message(mut m) = Envelope::parse(&e).unwrap() else {
        panic!("expected a ratchet message")
    };
    m.header.ratchet_key = [0; 32];
    let before = b.to_bytes();
    assert!(matches!(
        b.decrypt(&Envelope::Message(m).encode()),
        Err(CryptoError::NonContributory)
    ));
    assert_eq!(b.to_bytes(), before);
    assert_eq!(b.decrypt(&e).unwrap(), b"x");

    // A prekey message whose base key is a low-order point.
    let bundle = bob.bundle(Some(bob.one_time_prekeys()[0].0)).unwrap();
    let mut s = Session::initiate(alice.identity(), &bundle).unwrap();
    let mut p = prekey(&s.encrypt(b"y").unwrap());
    p.prekey.base_key = [0; 32];
    assert!(matches!(bob.accept(p), Err(CryptoError::NonContributory)));
}

#[test]
fn skip_limits_are_enforced_and_state_is_unchanged() {
    let alice = account();
    let mut bob = account();
    let (mut a, mut b) = established(&alice, &mut bob);
    // A gap of exactly MAX_SKIP is fine...
    let mut msgs: Vec<Vec<u8>> = (0..=MAX_SKIP).map(|_| a.encrypt(b"m").unwrap()).collect();
    let last = msgs.pop().unwrap();
    assert_eq!(b.decrypt(&last).unwrap(), b"m");
    assert_eq!(b.skipped_keys(), MAX_SKIP as usize);
    // ...a gap of MAX_SKIP + 1 is a clear error and changes nothing.
    let far: Vec<Vec<u8>> = (0..MAX_SKIP + 2)
        .map(|_| a.encrypt(b"n").unwrap())
        .collect();
    let before = b.to_bytes();
    match b.decrypt(far.last().unwrap()) {
        Err(CryptoError::TooManySkipped { gap, limit }) => {
            assert_eq!(gap, u64::from(MAX_SKIP) + 1);
            assert_eq!(limit, MAX_SKIP);
        }
        other => panic!("expected TooManySkipped, got {other:?}"),
    }
    assert_eq!(b.to_bytes(), before);
    // Skipped keys from the first gap still work.
    assert_eq!(b.decrypt(&msgs[5]).unwrap(), b"m");
}

#[test]
fn skipped_keys_are_capped_per_chain_and_session_oldest_first() {
    let alice = account();
    let mut bob = account();
    let (mut a, mut b) = established(&alice, &mut bob);
    let mut oldest = Vec::new();
    // Three chains from Alice, each leaving 900 undelivered messages.
    for chain in 0..3 {
        let msgs: Vec<Vec<u8>> = (0..901).map(|_| a.encrypt(b"z").unwrap()).collect();
        b.decrypt(&msgs[900]).unwrap();
        oldest.push(msgs);
        // Bob replies so Alice starts a new chain.
        let r = b.encrypt(b"r").unwrap();
        a.decrypt(&r).unwrap();
        assert!(b.skipped_keys() <= MAX_SKIPPED_PER_SESSION, "chain {chain}");
    }
    assert_eq!(b.skipped_keys(), MAX_SKIPPED_PER_SESSION);
    // The first chain's oldest keys were evicted, the newest chain's kept.
    assert!(matches!(
        b.decrypt(&oldest[0][0]),
        Err(CryptoError::DecryptionFailed | CryptoError::DuplicateMessage)
    ));
    assert_eq!(b.decrypt(&oldest[2][0]).unwrap(), b"z");
    assert_eq!(b.decrypt(&oldest[1][899]).unwrap(), b"z");
}

#[test]
fn state_round_trips_exactly_and_keeps_working() {
    let alice = account();
    let mut bob = account();
    let (mut a, mut b) = established(&alice, &mut bob);
    let skipped = a.encrypt(b"late").unwrap();
    let e = a.encrypt(b"now").unwrap();
    b.decrypt(&e).unwrap();

    let a_bytes = a.to_bytes();
    let b_bytes = b.to_bytes();
    let mut a2 = Session::from_bytes(&a_bytes).unwrap();
    let mut b2 = Session::from_bytes(&b_bytes).unwrap();
    assert_eq!(a2.to_bytes(), a_bytes);
    assert_eq!(b2.to_bytes(), b_bytes);
    assert_eq!(b2.decrypt(&skipped).unwrap(), b"late");
    let r = b2.encrypt(b"after restore").unwrap();
    assert_eq!(a2.decrypt(&r).unwrap(), b"after restore");

    let acc = Account::from_bytes(&bob.to_bytes()).unwrap();
    assert_eq!(acc.to_bytes(), bob.to_bytes());
    assert_eq!(acc.device_id(), bob.device_id());

    let mut t = ThreadKeys::new(b"t", NOW).unwrap();
    let other = ThreadKeys::new(b"t", NOW).unwrap();
    t.add_member_key(DeviceId([3; 32]), &other.distribution())
        .unwrap();
    let t2 = ThreadKeys::from_bytes(&t.to_bytes()).unwrap();
    assert_eq!(t2.to_bytes(), t.to_bytes());
    assert_eq!(t2.distribution(), t.distribution());
}

#[test]
fn corrupt_state_is_a_typed_error() {
    let alice = account();
    let mut bob = account();
    let (a, _) = established(&alice, &mut bob);
    let bytes = a.to_bytes();
    for len in [0, 1, 2, 10, bytes.len() - 1] {
        assert!(matches!(
            Session::from_bytes(&bytes[..len]),
            Err(CryptoError::CorruptState(_))
        ));
    }
    let mut wrong_version = bytes.to_vec();
    wrong_version[0] = 9;
    assert!(matches!(
        Session::from_bytes(&wrong_version),
        Err(CryptoError::CorruptState(
            WireError::UnsupportedVersion { .. }
        ))
    ));
    // A session blob is not an account or a thread.
    assert!(Account::from_bytes(&bytes).is_err());
    assert!(ThreadKeys::from_bytes(&bytes).is_err());
    let mut trailing = bytes.to_vec();
    trailing.push(0);
    assert!(Session::from_bytes(&trailing).is_err());
}

#[test]
fn truncated_oversized_wrong_version_and_random_envelopes_are_typed_errors() {
    let alice = account();
    let mut bob = account();
    let (mut a, mut b) = established(&alice, &mut bob);
    let mut t = ThreadKeys::new(b"t", NOW).unwrap();
    let e = a.encrypt(b"payload").unwrap();
    let before = b.to_bytes();
    let acct_before = bob.to_bytes();
    let thread_before = t.to_bytes();

    let mut inputs: Vec<Vec<u8>> = (0..e.len()).map(|n| e[..n].to_vec()).collect();
    let mut v = e.clone();
    v[0] = 2;
    inputs.push(v);
    inputs.push(vec![1u8; occ_protocol::MAX_ENVELOPE_LEN + 1]);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for len in [1usize, 2, 40, 80, 200, 1000] {
        let mut r = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            r.push(seed as u8);
        }
        inputs.push(r.clone());
        // Random bodies behind a valid version and each kind byte.
        for kind in 1..=3u8 {
            let mut k = r.clone();
            k.insert(0, kind);
            k.insert(0, 1);
            inputs.push(k);
        }
    }
    for input in &inputs {
        assert!(b.decrypt(input).is_err());
        assert!(t.decrypt(DeviceId([1; 32]), input).is_err());
        if let Ok(Envelope::PreKey(p)) = Envelope::parse(input) {
            assert!(bob.accept(p).is_err());
        }
    }
    assert_eq!(b.to_bytes(), before);
    assert_eq!(bob.to_bytes(), acct_before);
    assert_eq!(t.to_bytes(), thread_before);
    assert_eq!(b.decrypt(&e).unwrap(), b"payload");

    // Too large to send is a typed error too.
    let big = vec![0u8; occ_protocol::MAX_CIPHERTEXT_LEN];
    assert!(matches!(
        a.encrypt(&big),
        Err(CryptoError::MessageTooLarge { .. })
    ));
    assert!(matches!(
        t.encrypt(&big),
        Err(CryptoError::MessageTooLarge { .. })
    ));
}

#[test]
fn one_time_prekey_batches_are_bounded() {
    let mut a = Account::generate(NOW).unwrap();
    let keys = a.generate_one_time_prekeys(100).unwrap();
    assert_eq!(keys.len(), 100);
    let ids: std::collections::BTreeSet<u32> = keys.iter().map(|k| k.0).collect();
    assert_eq!(ids.len(), 100);
    assert!(matches!(
        a.generate_one_time_prekeys(occ_core::crypto::prekeys::MAX_ONE_TIME_PREKEYS),
        Err(CryptoError::TooManyPreKeys { .. })
    ));
    assert_eq!(a.one_time_prekey_count(), 100);
}
