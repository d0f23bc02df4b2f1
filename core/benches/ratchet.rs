//! occ's Double Ratchet against vodozemac (Olm) and against the floor, in one run.
//!
//! `cargo bench -p occ-core --bench ratchet` prints a ratio table; each ratio
//! is the median of alternating A/B rounds measured in this run (see
//! `support`). Both libraries are measured bytes-in, bytes-out: occ encrypts
//! to envelope bytes and decrypts from them; vodozemac encrypts to an
//! `OlmMessage` and serialises it (`to_parts`), and decrypts after parsing it
//! (`from_parts`). The floor is the least any ratchet must do per message: one
//! HMAC chain step (two HMACs), HKDF expansion to key and nonce, and
//! ChaCha20-Poly1305 over the payload.
//!
//! Targets (issue 2): occ encrypt ≤ 0.5× vodozemac, occ decrypt ≤ 1.2×
//! vodozemac, both ≤ 1.5× the floor.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod support;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use occ_core::crypto::{Account, Session};
use occ_protocol::Envelope;
use sha2::Sha256;
use std::hint::black_box;
use std::time::{Duration, Instant};
use support::{Comparison, compare};
use vodozemac::olm::{Account as VAccount, OlmMessage, Session as VSession, SessionConfig};

const NOW: u64 = 1_800_000_000;
const SIZES: [usize; 2] = [256, 4096];

fn occ_bob_with_prekey() -> (Account, occ_protocol::PreKeyBundle) {
    let mut bob = Account::generate(NOW).unwrap();
    let id = bob.generate_one_time_prekeys(1).unwrap()[0].0;
    let bundle = bob.bundle(Some(id)).unwrap();
    (bob, bundle)
}

fn occ_setup(
    alice: &Account,
    bob: &mut Account,
    bundle: &occ_protocol::PreKeyBundle,
) -> (Session, Session) {
    let mut a = Session::initiate(alice.identity(), bundle).unwrap();
    let Envelope::PreKey(p) = Envelope::parse(&a.encrypt(b"hi").unwrap()).unwrap() else {
        unreachable!("first message is a prekey message")
    };
    let (b, _) = bob.accept(p).unwrap();
    (a, b)
}

/// An occ session pair past the handshake in both directions.
fn occ_pair() -> (Session, Session) {
    let alice = Account::generate(NOW).unwrap();
    let (mut bob, bundle) = occ_bob_with_prekey();
    let (mut a, mut b) = occ_setup(&alice, &mut bob, &bundle);
    a.decrypt(&b.encrypt(b"hi").unwrap()).unwrap();
    (a, b)
}

fn voz_bob() -> (VAccount, vodozemac::Curve25519PublicKey) {
    let mut bob = VAccount::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().unwrap();
    bob.mark_keys_as_published();
    (bob, otk)
}

fn voz_setup(
    alice: &VAccount,
    bob: &mut VAccount,
    otk: vodozemac::Curve25519PublicKey,
) -> (VSession, VSession) {
    let mut a = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .unwrap();
    let OlmMessage::PreKey(m) = a.encrypt(b"hi").unwrap() else {
        unreachable!("first message is a prekey message")
    };
    let b = bob
        .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &m)
        .unwrap()
        .session;
    (a, b)
}

/// A vodozemac session pair past the handshake in both directions.
fn voz_pair() -> (VSession, VSession) {
    let alice = VAccount::new();
    let (mut bob, otk) = voz_bob();
    let (mut a, mut b) = voz_setup(&alice, &mut bob, otk);
    a.decrypt(&b.encrypt(b"hi").unwrap()).unwrap();
    (a, b)
}

fn voz_encrypt(s: &mut VSession, pt: &[u8]) -> Vec<u8> {
    s.encrypt(pt).unwrap().to_parts().1
}

fn voz_decrypt(s: &mut VSession, bytes: &[u8]) -> Vec<u8> {
    s.decrypt(&OlmMessage::from_parts(1, bytes).unwrap())
        .unwrap()
}

/// The floor: chain step + expansion + AEAD, nothing else.
struct Floor {
    chain: [u8; 32],
}

impl Floor {
    fn step(&mut self) -> ChaCha20Poly1305AndNonce {
        let mut mk = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.chain).unwrap();
        mk.update(&[1]);
        let mk = mk.finalize().into_bytes();
        let mut ck = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.chain).unwrap();
        ck.update(&[2]);
        self.chain = ck.finalize().into_bytes().into();
        let mut okm = [0u8; 44];
        Hkdf::<Sha256>::new(None, &mk)
            .expand(b"floor", &mut okm)
            .unwrap();
        let key: [u8; 32] = okm[..32].try_into().unwrap();
        let nonce: [u8; 12] = okm[32..].try_into().unwrap();
        (ChaCha20Poly1305::new(&key.into()), nonce)
    }

    fn encrypt(&mut self, pt: &[u8]) -> Vec<u8> {
        let (cipher, nonce) = self.step();
        let mut buf = Vec::with_capacity(pt.len() + 16);
        buf.extend_from_slice(pt);
        let tag = cipher
            .encrypt_inout_detached(&nonce.into(), b"", buf.as_mut_slice().into())
            .unwrap();
        buf.extend_from_slice(&tag);
        buf
    }

    /// Verifies and decrypts the next message of the chain.
    fn decrypt(&mut self, ct: &[u8]) -> Vec<u8> {
        let (cipher, nonce) = self.step();
        let (body, tag) = ct.split_at(ct.len() - 16);
        let mut buf = body.to_vec();
        let tag = chacha20poly1305::Tag::try_from(tag).unwrap();
        cipher
            .decrypt_inout_detached(&nonce.into(), b"", buf.as_mut_slice().into(), &tag)
            .unwrap();
        buf
    }
}

type ChaCha20Poly1305AndNonce = (ChaCha20Poly1305, [u8; 12]);

fn timed(n: u64, mut op: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        op();
    }
    t.elapsed()
}

/// Times `n` decryptions of messages the sender made beforehand (untimed).
fn decrypt_timed<M>(n: u64, mut make: impl FnMut() -> M, mut open: impl FnMut(M)) -> Duration {
    let msgs: Vec<M> = (0..n).map(|_| make()).collect();
    let t = Instant::now();
    for m in msgs {
        open(m);
    }
    t.elapsed()
}

fn encrypt_rows(rows: &mut Vec<Comparison>, size: usize) {
    let pt = vec![0x42u8; size];
    let n = 4000;
    for (other, target) in [("vodozemac", 0.5), ("floor", 1.5)] {
        let (mut a, _b) = occ_pair();
        let (mut va, _vb) = voz_pair();
        let mut floor = Floor { chain: [7; 32] };
        let occ = |n| timed(n, || drop(black_box(a.encrypt(black_box(&pt)).unwrap())));
        let row = if other == "vodozemac" {
            compare(
                format!("encrypt {size} B, occ vs vodozemac"),
                ("occ", occ),
                ("vodozemac", |n| {
                    timed(n, || drop(black_box(voz_encrypt(&mut va, black_box(&pt)))))
                }),
                n,
                Some(target),
            )
        } else {
            compare(
                format!("encrypt {size} B, occ vs floor"),
                ("occ", occ),
                ("floor", |n| {
                    timed(n, || drop(black_box(floor.encrypt(black_box(&pt)))))
                }),
                n,
                Some(target),
            )
        };
        rows.push(row);
    }
}

fn decrypt_rows(rows: &mut Vec<Comparison>, size: usize) {
    let pt = vec![0x42u8; size];
    let n = 4000;
    for (other, target) in [("vodozemac", 1.2), ("floor", 1.5)] {
        let (mut a, mut b) = occ_pair();
        let occ = |n| {
            decrypt_timed(
                n,
                || a.encrypt(&pt).unwrap(),
                |m| drop(black_box(b.decrypt(&m).unwrap())),
            )
        };
        let row = if other == "vodozemac" {
            let (mut va, mut vb) = voz_pair();
            compare(
                format!("decrypt {size} B, occ vs vodozemac"),
                ("occ", occ),
                ("vodozemac", |n| {
                    decrypt_timed(
                        n,
                        || voz_encrypt(&mut va, &pt),
                        |m| drop(black_box(voz_decrypt(&mut vb, &m))),
                    )
                }),
                n,
                Some(target),
            )
        } else {
            let mut sender = Floor { chain: [7; 32] };
            let mut floor = Floor { chain: [7; 32] };
            compare(
                format!("decrypt {size} B, occ vs floor"),
                ("occ", occ),
                ("floor", |n| {
                    decrypt_timed(
                        n,
                        || sender.encrypt(&pt),
                        |m| drop(black_box(floor.decrypt(&m))),
                    )
                }),
                n,
                Some(target),
            )
        };
        rows.push(row);
    }
}

/// A → B then B → A: each message starts a new chain, so each receiver
/// performs a DH ratchet step.
fn round_trip_row(rows: &mut Vec<Comparison>) {
    let pt = vec![0x42u8; 256];
    let (mut a, mut b) = occ_pair();
    let (mut va, mut vb) = voz_pair();
    rows.push(compare(
        "round trip with a DH step each way",
        ("occ", |n| {
            timed(n, || {
                let m = a.encrypt(&pt).unwrap();
                b.decrypt(&m).unwrap();
                let r = b.encrypt(&pt).unwrap();
                black_box(a.decrypt(&r).unwrap());
            })
        }),
        ("vodozemac", |n| {
            timed(n, || {
                let m = voz_encrypt(&mut va, &pt);
                voz_decrypt(&mut vb, &m);
                let r = voz_encrypt(&mut vb, &pt);
                black_box(voz_decrypt(&mut va, &r));
            })
        }),
        200,
        None,
    ));
}

/// Key generation (accounts, prekeys) is untimed; timed: initiate from the
/// bundle, first message, responder accepts it.
fn setup_row(rows: &mut Vec<Comparison>) {
    let alice = Account::generate(NOW).unwrap();
    let valice = VAccount::new();
    rows.push(compare(
        "session setup (X3DH + first message)",
        ("occ", |n| {
            decrypt_timed(n, occ_bob_with_prekey, |(mut bob, bundle)| {
                black_box(occ_setup(&alice, &mut bob, &bundle));
            })
        }),
        ("vodozemac", |n| {
            decrypt_timed(n, voz_bob, |(mut bob, otk)| {
                black_box(voz_setup(&valice, &mut bob, otk));
            })
        }),
        100,
        None,
    ));
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut rows = Vec::new();
    for size in SIZES {
        eprintln!("encrypt {size} B ...");
        encrypt_rows(&mut rows, size);
        eprintln!("decrypt {size} B ...");
        decrypt_rows(&mut rows, size);
    }
    eprintln!("round trip ...");
    round_trip_row(&mut rows);
    eprintln!("session setup ...");
    setup_row(&mut rows);
    support::print_table("occ ratchet vs vodozemac and the floor (same run)", &rows);
}
