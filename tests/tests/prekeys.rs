//! Prekey upkeep: one-time prekeys never run out under a stream of new
//! initiators, and the signed prekey rotates on (trusted) age with one
//! previous key kept for messages in flight — and no longer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::sync::Arc;

use common::{Env, real_now_ms};
use occ_core::store::DbKey;
use occ_core::{Client, ItemOutcome, ManualClock, SecurityEventKind};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// 150 devices start sessions with bob in waves of 30 while bob syncs
/// between waves: every bundle the relay hands out still carries a
/// one-time prekey (without upkeep the last 50 would get none), and every
/// first message decrypts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hundred_and_fifty_initiators_always_get_a_one_time_prekey() {
    let env = Env::start().await;
    let bob = env.client("bob").await;
    let bob_device = bob.device_id().await.unwrap();
    let mut used = std::collections::HashSet::new();
    let mut stored = 0;
    for wave in 0..5 {
        for i in 0..30 {
            let user = format!("initiator-{wave}-{i}");
            let mut d = env.raw_device(&user).await;
            let bundle = d.open_session(&bob_device).await;
            let (id, _) = bundle
                .one_time_prekey
                .unwrap_or_else(|| panic!("bundle {} had no one-time prekey", wave * 30 + i));
            assert!(used.insert(id), "one-time prekey {id} handed out twice");
            let hello = d.text("bob", &format!("hello-{wave}-{i}"), "hi");
            d.send_payload(&bob_device, &hello).await;
        }
        let r = bob.sync().await.unwrap();
        assert_eq!(r.received.rejected(), 0, "{:?}", r.received);
        stored += r.received.received().len();
    }
    assert_eq!(stored, 150);
    assert_eq!(used.len(), 150);
}

/// The signed prekey rotates once it is 7 days old by trusted time; a
/// message made for the previous key still decrypts; after the next
/// rotation that key is gone and a late message for it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signed_prekey_rotates_on_age_and_keeps_one_previous_key() {
    let env = Env::start().await;
    // Bob's clock runs by hand; time passes on his device only (the relay's
    // signed time then lags behind, which never moves trusted time back).
    let clock = Arc::new(ManualClock::new(real_now_ms()));
    let dir = env.profile_dir("bob");
    std::fs::create_dir_all(&dir).unwrap();
    let bob = Client::create_with_clock(
        dir.to_str().unwrap(),
        DbKey::generate().unwrap().as_bytes().to_vec(),
        clock.clone(),
    )
    .unwrap();
    bob.enrol(env.options("bob")).await.unwrap();
    let bob_device = bob.device_id().await.unwrap();

    let mut early = env.raw_device("early").await;
    let mut late = env.raw_device("late").await;
    early.envelope_ttl_secs = 30 * 24 * 3600;
    late.envelope_ttl_secs = 30 * 24 * 3600;
    let first_spk = early.open_session(&bob_device).await.signed_prekey_id;
    assert_eq!(
        late.open_session(&bob_device).await.signed_prekey_id,
        first_spk
    );
    let m = early.text_with_ttl("bob", "in-flight", "sent before the rotation", 9 * DAY_MS);
    early.send_payload(&bob_device, &m).await;

    // Eight days later the key is 8 days old by trusted time: it rotates, and the relay
    // hands out the new one from now on.
    assert!(!bob.maintain_prekeys().await.unwrap().rotated_signed_prekey);
    clock.advance(8 * DAY_MS);
    let r = bob.maintain_prekeys().await.unwrap();
    assert!(r.rotated_signed_prekey);
    assert!(!bob.maintain_prekeys().await.unwrap().rotated_signed_prekey);
    let mut newcomer = env.raw_device("newcomer").await;
    let second_spk = newcomer.open_session(&bob_device).await.signed_prekey_id;
    assert_ne!(second_spk, first_spk);

    // The message made for the previous key, in flight during the rotation,
    // still decrypts.
    let r = bob.receive(0).await.unwrap();
    assert!(
        matches!(r.items[0].outcome, ItemOutcome::Stored { .. }),
        "{r:?}"
    );

    // A week later the key rotates again and the first one is deleted: a
    // late message made for it can no longer be read.
    clock.advance(8 * DAY_MS);
    assert!(bob.maintain_prekeys().await.unwrap().rotated_signed_prekey);
    let m = late.text_with_ttl("bob", "too-late", "sent for a deleted key", 20 * DAY_MS);
    late.send_payload(&bob_device, &m).await;
    let r = bob.receive(0).await.unwrap();
    match &r.items[0].outcome {
        ItemOutcome::Rejected { kind, reason } => {
            assert_eq!(*kind, SecurityEventKind::Undecryptable);
            assert!(reason.contains("signed prekey"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
