//! Identities the relay cannot silently swap (open mode: trust on first use).
//!
//! The relay operator replaces bob's device with one of its own. Alice, who
//! has talked to bob before, sees a key change: it is recorded and raised,
//! nothing is encrypted to the substitute, nothing from it is believed, her
//! messages to others still flow, and the safety number she would compare
//! with bob changes. Only when she accepts does anything reach the new key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::sync::Arc;

use common::{Env, count, to};
use occ_core::{ItemOutcome, SecurityEventKind, Trust};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_substitutes_bobs_key_is_held_until_accepted() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let _carol = env.client("carol").await;
    let bob_device = bob.device_id().await.unwrap();
    alice
        .send(to("bob"), b"hello bob".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    bob.receive(0).await.unwrap();
    let before = alice.contact_identity("bob").await.unwrap();
    assert_eq!(before.devices.len(), 1);
    assert_eq!(
        before.devices[0].trust,
        Trust::Trusted,
        "trust on first use"
    );
    // Bob computes the same number for alice.
    assert_eq!(
        bob.contact_identity("alice").await.unwrap().safety_number,
        before.safety_number
    );

    // The relay swaps in a device of its own for "bob".
    let mut substitute = env.raw_device("mallory").await;
    let fake = substitute.device_id();
    let db = common::relay_db_rw(&env.relay_dir);
    db.execute_batch(&format!(
        "INSERT INTO users (name, created_ms) VALUES ('bob-gone', 0);
         UPDATE devices SET user = 'bob-gone' WHERE device_id = '{bob_device}';
         UPDATE devices SET user = 'bob' WHERE device_id = '{fake}';"
    ))
    .unwrap();
    // A fresh process (no cached directory).
    alice.close();
    drop(alice);
    let alice = env.reopen("alice");
    let events = Arc::new(common::Recorder::default());
    alice.set_listener(Some(events.clone()));

    let held = alice
        .send(to("bob"), b"for bob only".to_vec(), 600, None)
        .await
        .unwrap();
    alice
        .send(to("carol"), b"carol is unaffected".to_vec(), 600, None)
        .await
        .unwrap();
    let report = alice.flush().await.unwrap();
    assert_eq!((report.sent, report.pending), (1, 1), "{report:?}");
    assert!(events.alerts().contains(&SecurityEventKind::KeyChanged));
    assert!(
        alice
            .security_events()
            .await
            .unwrap()
            .iter()
            .any(|e| e.kind == SecurityEventKind::KeyChanged && e.detail.contains("bob"))
    );
    let to_fake = format!("SELECT count(*) FROM envelopes WHERE recipient = '{fake}'");
    assert_eq!(count(&db, &to_fake), 0, "nothing reached the substitute");
    // Flushing again changes nothing.
    assert_eq!(alice.flush().await.unwrap().pending, 1);
    assert_eq!(count(&db, &to_fake), 0);

    let now = alice.contact_identity("bob").await.unwrap();
    assert_ne!(now.safety_number, before.safety_number);
    let pending: Vec<_> = now
        .devices
        .iter()
        .filter(|d| d.trust == Trust::Pending)
        .map(|d| d.device_id.clone())
        .collect();
    assert_eq!(pending, vec![fake.clone()]);

    // The substitute writes to alice as "bob": refused.
    substitute.user = "bob".into();
    let alice_device = alice.device_id().await.unwrap();
    let m = substitute.text("alice", "forged", "it is me, bob");
    substitute.send_payload(&alice_device, &m).await;
    let r = alice.receive(0).await.unwrap();
    match &r.items[0].outcome {
        ItemOutcome::Rejected { kind, .. } => assert_eq!(*kind, SecurityEventKind::KeyChanged),
        other => panic!("{other:?}"),
    }
    assert!(alice.message("forged").await.is_err());

    // Alice accepts (she compared numbers with whoever now holds "bob"):
    // the held message goes out, to the new key.
    alice.accept_identity("bob", false).await.unwrap();
    let report = alice.flush().await.unwrap();
    assert_eq!((report.sent, report.pending), (1, 0), "{report:?}");
    assert_eq!(count(&db, &to_fake), 1);
    assert!(alice.message(&held).await.is_ok());
    let after = alice.contact_identity("bob").await.unwrap();
    assert!(after.devices.iter().all(|d| d.trust != Trust::Pending));
    alice.accept_identity("bob", true).await.unwrap();
    assert!(
        alice
            .contact_identity("bob")
            .await
            .unwrap()
            .devices
            .iter()
            .all(|d| d.trust == Trust::Verified)
    );
    assert!(alice.accept_identity("nobody", false).await.is_err());
}
