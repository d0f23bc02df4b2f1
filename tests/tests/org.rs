//! Organisation-certified identities: the organisation key (held by an
//! administrator, never by the relay) certifies each device. A client
//! enrolled with it messages and believes only certified devices — so a relay
//! that substitutes a key is refused even on first contact, where trust on
//! first use cannot help.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::sync::Arc;

use common::{Env, certify_and_install, count, member, org_key, real_now_ms, to};
use occ_core::crypto::org::{certify, revoke};
use occ_core::{Error, ItemOutcome, SecurityEventKind};

const HOUR: i64 = 3_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_certified_devices_are_messaged_or_believed() {
    let env = Env::start().await;
    let org = org_key();
    let alice = member(&env, &org, "alice").await;
    let bob = member(&env, &org, "bob").await;
    let carol = member(&env, &org, "carol").await;
    let events = Arc::new(common::Recorder::default());
    alice.set_listener(Some(events.clone())).unwrap();

    // Bob has no certificate yet: alice will not encrypt to him.
    alice
        .send(to("bob"), b"not yet".to_vec(), 600, None)
        .await
        .unwrap();
    let e = alice.flush().await.unwrap_err();
    assert!(matches!(e, Error::Untrusted { .. }), "{e:?}");
    assert!(events.alerts().contains(&SecurityEventKind::Uncertified));

    // A certificate from another key, or for another device, is not installed.
    let stranger = org_key();
    let bob_device: [u8; 32] = hex::decode(bob.device_id().await.unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let now = real_now_ms();
    let forged = certify(&stranger, "bob", &bob_device, now - HOUR, now + HOUR);
    assert!(matches!(
        bob.install_certificate(forged.encode()).await,
        Err(Error::InvalidInput { .. })
    ));
    let wrong_device = certify(&org, "bob", &[7; 32], now - HOUR, now + HOUR);
    assert!(matches!(
        bob.install_certificate(wrong_device.encode()).await,
        Err(Error::InvalidInput { .. })
    ));

    for (c, n) in [(&alice, "alice"), (&bob, "bob"), (&carol, "carol")] {
        certify_and_install(&org, c, n).await;
    }
    let report = alice.flush().await.unwrap();
    assert_eq!((report.sent, report.pending), (1, 0), "{report:?}");
    let r = bob.receive(0).await.unwrap();
    assert_eq!(r.received().len(), 1, "{r:?}");

    // The relay swaps its own device in for bob. Carol has never talked to
    // bob — trust on first use would believe the relay — but the substitute
    // has no certificate (then one from another key): refused, raised,
    // nothing reaches it.
    let mut substitute = env.raw_device("mallory").await;
    let fake = substitute.device_id();
    let db = common::relay_db_rw(&env.relay_dir);
    db.execute_batch(&format!(
        "INSERT INTO users (name, created_ms) VALUES ('bob-gone', 0);
         UPDATE devices SET user = 'bob-gone' WHERE device_id = '{}';
         UPDATE devices SET user = 'bob' WHERE device_id = '{fake}';",
        hex::encode(bob_device)
    ))
    .unwrap();
    let carol_events = Arc::new(common::Recorder::default());
    carol.set_listener(Some(carol_events.clone())).unwrap();
    carol
        .send(to("bob"), b"for bob".to_vec(), 600, None)
        .await
        .unwrap();
    let e = carol.flush().await.unwrap_err();
    assert!(matches!(e, Error::Untrusted { .. }), "{e:?}");
    assert!(
        carol_events
            .alerts()
            .contains(&SecurityEventKind::Uncertified)
    );
    let fake_id: [u8; 32] = hex::decode(&fake).unwrap().try_into().unwrap();
    let self_signed = certify(&stranger, "bob", &fake_id, now - HOUR, now + HOUR);
    substitute
        .api
        .install_certificate(&self_signed.encode())
        .await
        .unwrap();
    let e = carol.flush().await.unwrap_err();
    assert!(matches!(e, Error::Untrusted { .. }), "{e:?}");
    let to_fake = format!("SELECT count(*) FROM envelopes WHERE recipient = '{fake}'");
    assert_eq!(count(&db, &to_fake), 0, "nothing reached the substitute");

    // Nor is the substitute believed when it writes as bob.
    substitute.user = "bob".into();
    let carol_device = carol.device_id().await.unwrap();
    let m = substitute.text("carol", "forged", "it is me, bob");
    substitute.send_payload(&carol_device, &m).await;
    let r = carol.receive(0).await.unwrap();
    assert!(
        matches!(r.items[0].outcome, ItemOutcome::Rejected { .. }),
        "{r:?}"
    );
    assert!(carol.message("forged").await.is_err());
}

/// The organisation revokes bob's device: from then on nobody encrypts to
/// it or believes it — neither the member who published the list nor one who
/// learns it from the relay. A forged or older list changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_receives_nothing_sent_after_the_revocation() {
    let org = org_key();
    let public = org.verifying_key().to_bytes();
    let env = Env::start_with(|c| c.org_key = Some(public)).await;
    let alice = member(&env, &org, "alice").await;
    let bob = member(&env, &org, "bob").await;
    let carol = member(&env, &org, "carol").await;
    for (c, n) in [(&alice, "alice"), (&bob, "bob"), (&carol, "carol")] {
        certify_and_install(&org, c, n).await;
    }
    let bob_device = bob.device_id().await.unwrap();
    // Before: carol and alice reach bob, and bob reaches carol.
    for c in [&alice, &carol] {
        c.send(to("bob"), b"before".to_vec(), 600, None)
            .await
            .unwrap();
        assert_eq!(c.flush().await.unwrap().sent, 1);
    }
    let db = env.relay_db();
    let to_bob = format!("SELECT count(*) FROM envelopes WHERE recipient = '{bob_device}'");
    let queued_before = count(&db, &to_bob);
    assert_eq!(queued_before, 2);

    // A list signed by someone else is refused by the client and the relay.
    let bob_id: [u8; 32] = hex::decode(&bob_device).unwrap().try_into().unwrap();
    let forged = revoke(&org_key(), 5, real_now_ms(), vec![bob_id]);
    assert!(matches!(
        alice.publish_revocations(forged.encode()).await,
        Err(Error::InvalidInput { .. })
    ));

    let list = revoke(&org, 1, real_now_ms(), vec![bob_id]);
    alice.publish_revocations(list.encode()).await.unwrap();
    // The same version again is not newer: the relay keeps what it has.
    assert!(alice.publish_revocations(list.encode()).await.is_err());

    // The publisher applies it at once.
    let events = Arc::new(common::Recorder::default());
    alice.set_listener(Some(events.clone())).unwrap();
    alice
        .send(to("bob"), b"after".to_vec(), 600, None)
        .await
        .unwrap();
    let e = alice.flush().await.unwrap_err();
    assert!(matches!(e, Error::Untrusted { .. }), "{e:?}");
    assert!(events.alerts().contains(&SecurityEventKind::Uncertified));
    assert!(
        alice
            .security_events()
            .await
            .unwrap()
            .iter()
            .any(|e| e.kind == SecurityEventKind::Uncertified && e.detail.contains("revoked"))
    );
    // Carol checked for a list less than a minute ago and may still seal for
    // bob; the relay, which holds the organisation's list, queues nothing for
    // a revoked device. A fresh process of hers learns the list at once.
    carol
        .send(to("bob"), b"after".to_vec(), 600, None)
        .await
        .unwrap();
    let _ = carol.flush().await;
    assert_eq!(count(&db, &to_bob), queued_before, "nothing new for bob");
    carol.close();
    drop(carol);
    let carol = env.reopen("carol");
    carol
        .send(to("bob"), b"after, again".to_vec(), 600, None)
        .await
        .unwrap();
    let e = carol.flush().await.unwrap_err();
    assert!(matches!(e, Error::Untrusted { .. }), "{e:?}");
    assert_eq!(count(&db, &to_bob), queued_before, "nothing new for bob");
    // The revoked device cannot even sign in to fetch what it had.
    assert!(bob.receive(0).await.is_err());
}
