//! White-box tests: secrets never reach `Debug`, and associated data binds.

use occ_protocol::{Envelope, SenderKeyDistribution};

use super::kdf::Key32;
use super::ratchet::RatchetState;
use super::*;

const NOW: u64 = 1_800_000_000;

/// Fails if `debug` shows any 4-byte window of `secret` as hex (either case)
/// or any 3-byte window as a decimal list (the derived `Debug` of arrays).
fn assert_hidden(debug: &str, secret: &[u8], what: &str) {
    assert!(secret.len() >= 4);
    let lower = debug.to_lowercase();
    let compact: String = debug.chars().filter(|c| !c.is_whitespace()).collect();
    for w in secret.windows(4) {
        let hex: String = w.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !lower.contains(&hex),
            "{what}: Debug shows secret bytes as hex: {debug}"
        );
    }
    for w in secret.windows(3) {
        let list = format!("{},{},{}", w[0], w[1], w[2]);
        assert!(
            !compact.contains(&list),
            "{what}: Debug shows secret bytes as a list: {debug}"
        );
    }
}

fn pair() -> (Account, Account, Session, Session) {
    let alice = Account::generate(NOW).unwrap();
    let mut bob = Account::generate(NOW).unwrap();
    bob.generate_one_time_prekeys(2).unwrap();
    let id = bob.one_time_prekeys()[0].0;
    let mut a = Session::initiate(alice.identity(), &bob.bundle(Some(id)).unwrap()).unwrap();
    let Ok(Envelope::PreKey(p)) = Envelope::parse(&a.encrypt(b"hi").unwrap()) else {
        panic!("expected a prekey message")
    };
    let (mut b, _) = bob.accept(p).unwrap();
    // Leave a skipped key on Alice's side so it is covered too.
    let _lost = b.encrypt(b"lost").unwrap();
    a.decrypt(&b.encrypt(b"r").unwrap()).unwrap();
    (alice, bob, a, b)
}

#[test]
fn debug_output_of_every_key_holding_type_has_no_key_bytes() {
    let (alice, bob, a, b) = pair();
    let (sign, dh) = alice.identity().secrets();
    for secret in [&sign[..], &dh[..]] {
        assert_hidden(&format!("{alice:?}"), secret, "Account");
        assert_hidden(
            &format!("{:#?}", alice.identity()),
            secret,
            "IdentityKeyPair",
        );
    }
    let (sign, dh) = bob.identity().secrets();
    assert_hidden(&format!("{bob:?}"), &sign[..], "Account");
    assert_hidden(&format!("{bob:?}"), &dh[..], "Account");

    // Every secret of a session is in its serialized state; check each
    // 32-byte secret field by re-reading the ratchet state.
    for s in [&a, &b] {
        let debug = format!("{s:?} {s:#?}");
        for secret in s.ratchet.secrets() {
            assert_hidden(&debug, &secret, "Session");
        }
        assert!(debug.contains("Session"));
    }

    let mut own = SenderKey::generate(b"thread", NOW).unwrap();
    let d = own.distribution();
    let debug = format!("{own:?} {own:#?}");
    assert_hidden(&debug, &d.chain_key[..], "SenderKey");
    assert_hidden(&debug, own.signing_secret(), "SenderKey");
    let mut received = ReceivedSenderKey::from_distribution(&d).unwrap();
    let msg = own.encrypt(b"x").unwrap();
    let Ok(Envelope::Group(g)) = Envelope::parse(&msg) else {
        panic!("expected a group message")
    };
    received.decrypt(b"thread", g).unwrap();
    assert_hidden(
        &format!("{received:?}"),
        &d.chain_key[..],
        "ReceivedSenderKey",
    );

    let mut t = ThreadKeys::new(b"thread", NOW).unwrap();
    t.add_member_key(DeviceId([1; 32]), &d).unwrap();
    let debug = format!("{t:?} {t:#?}");
    assert_hidden(&debug, &t.distribution().chain_key[..], "ThreadKeys");
    assert_hidden(&debug, &d.chain_key[..], "ThreadKeys");
    assert_hidden(&format!("{d:?}"), &d.chain_key[..], "SenderKeyDistribution");

    let k = Key32::from_bytes([0x5c; 32]);
    assert_hidden(&format!("{k:?}"), k.as_bytes(), "Key32");

    // The helper itself can fail: a derived Debug of the bytes is caught.
    let leaked = std::panic::catch_unwind(|| {
        assert_hidden(&format!("{:?}", [7u8, 8, 9, 10]), &[7, 8, 9, 10], "t")
    });
    assert!(leaked.is_err());
}

#[test]
fn wrong_associated_data_fails_and_changes_nothing() {
    let shared = Key32::from_bytes([3; 32]);
    let spk = x25519_dalek::StaticSecret::from([4u8; 32]);
    let spk_pub = x25519_dalek::PublicKey::from(&spk).to_bytes();
    let mut alice = RatchetState::initiator(shared.clone(), spk_pub).unwrap();
    let mut bob = RatchetState::responder(shared, spk);
    let e = alice.encrypt(b"AD-A", None, b"bound").unwrap();
    let Ok(Envelope::Message(m)) = Envelope::parse(&e) else {
        panic!("expected a ratchet message")
    };
    let mut before = occ_protocol::codec::Writer::new();
    bob.write(&mut before);
    assert!(matches!(
        bob.decrypt(b"AD-B", None, m.clone()),
        Err(CryptoError::DecryptionFailed)
    ));
    let mut after = occ_protocol::codec::Writer::new();
    bob.write(&mut after);
    assert_eq!(before.as_slice(), after.as_slice());
    assert_eq!(bob.decrypt(b"AD-A", None, m).unwrap(), b"bound");
}

#[test]
fn distribution_encoding_is_what_members_import() {
    let own = SenderKey::generate(b"t", NOW).unwrap();
    let d = own.distribution();
    let parsed = SenderKeyDistribution::parse(&d.encode()).unwrap();
    assert_eq!(parsed, d);
}
