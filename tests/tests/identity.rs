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
use occ_core::{ItemOutcome, Recipient, SecurityEventKind, Trust};

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
    alice.set_listener(Some(events.clone())).unwrap();

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

/// Only a thread's admin (its creator) changes its members: bob, a member,
/// cannot add mallory from his client, and a hand-made member list from him
/// is refused by carol; alice, the admin, can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_admin_membership_change_is_refused() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let carol = env.client("carol").await;
    let _mallory = env.client("mallory").await;
    let ops_id = alice.new_thread_id().await.unwrap();
    let thread = |add: &[&str]| occ_core::Recipient::Thread {
        id: ops_id.clone(),
        members: add.iter().map(|s| s.to_string()).collect(),
    };
    alice
        .send(thread(&["bob", "carol"]), b"ops open".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    bob.receive(0).await.unwrap();
    carol.receive(0).await.unwrap();

    // Bob's own client will not add anyone.
    let e = bob
        .send(thread(&["mallory"]), b"join us".to_vec(), 600, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, occ_core::Error::InvalidInput { reason } if reason.contains("alice")),
        "{e:?}"
    );
    // Nor remove anyone.
    assert!(bob.remove_member(&ops_id, "carol").await.is_err());

    // A hand-made update from a member who is not the admin: refused.
    let mut raw = env.raw_device("bob2").await;
    raw.user = "bob".into();
    let db = common::relay_db_rw(&env.relay_dir);
    // (The relay operator files the raw device under bob, and carol has
    // accepted it, so only the admin rule stands in the way.)
    db.execute_batch(&format!(
        "UPDATE devices SET user = 'bob' WHERE device_id = '{}';",
        raw.device_id()
    ))
    .unwrap();
    let carol_device = carol.device_id().await.unwrap();
    let info = occ_protocol::payload::Payload::ThreadInfo(occ_protocol::payload::ThreadInfo {
        thread_id: ops_id.clone(),
        title: "taken over".into(),
        members: vec![
            "alice".into(),
            "bob".into(),
            "carol".into(),
            "mallory".into(),
        ],
    })
    .encode()
    .to_vec();
    raw.send_payload(&carol_device, &info).await;
    let r = carol.receive(0).await.unwrap();
    // First sight of the second "bob" device is a key change (held); accept
    // it and have the same update arrive again.
    assert!(matches!(r.items[0].outcome, ItemOutcome::Rejected { .. }));
    carol.accept_identity("bob", false).await.unwrap();
    raw.send_payload(&carol_device, &info).await;
    let r = carol.receive(0).await.unwrap();
    match &r.items[0].outcome {
        ItemOutcome::Rejected { kind, reason } => {
            assert_eq!(*kind, SecurityEventKind::NonMember);
            assert!(reason.contains("admin"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let mut members = carol.thread_members(&ops_id).await.unwrap();
    members.sort();
    assert_eq!(members, ["alice", "bob", "carol"]);
    assert_ne!(
        carol
            .threads()
            .await
            .unwrap()
            .iter()
            .find(|t| t.id == ops_id)
            .unwrap()
            .title,
        "taken over"
    );

    // The operator files the raw device away again (alice, who never saw
    // it, would otherwise hold her messages to bob for a key change).
    db.execute_batch(&format!(
        "INSERT INTO users (name, created_ms) VALUES ('nobody', 0) ON CONFLICT DO NOTHING;
         UPDATE devices SET user = 'nobody' WHERE device_id = '{}';",
        raw.device_id()
    ))
    .unwrap();
    // The admin adds mallory: everyone takes it.
    alice
        .send(thread(&["mallory"]), b"welcome".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    carol.receive(0).await.unwrap();
    assert!(
        carol
            .thread_members(&ops_id)
            .await
            .unwrap()
            .contains(&"mallory".to_string())
    );
}

/// A thread id bound to its creator (`g:alice:<random>`) cannot be squatted:
/// mallory, who learned the id, starts it with bob first — refused — and
/// alice's real thread then works for bob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_thread_id_cannot_be_squatted() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let mallory = env.client("mallory").await;
    let id = alice.new_thread_id().await.unwrap();
    assert!(id.starts_with("g:alice:"), "{id}");
    // Mallory's own client will not start alice's thread.
    let squat = occ_core::Recipient::Thread {
        id: id.clone(),
        members: vec!["bob".into()],
    };
    assert!(matches!(
        mallory.send(squat, b"first!".to_vec(), 600, None).await,
        Err(occ_core::Error::InvalidInput { .. })
    ));
    // A hand-made one from her device is refused by bob.
    let mut raw = env.raw_device("mallory2").await;
    let bob_device = bob.device_id().await.unwrap();
    let info = occ_protocol::payload::Payload::ThreadInfo(occ_protocol::payload::ThreadInfo {
        thread_id: id.clone(),
        title: "squatted".into(),
        members: vec!["bob".into(), "mallory2".into()],
    })
    .encode()
    .to_vec();
    raw.send_payload(&bob_device, &info).await;
    let r = bob.receive(0).await.unwrap();
    match &r.items[0].outcome {
        ItemOutcome::Rejected { kind, reason } => {
            assert_eq!(*kind, SecurityEventKind::NonMember);
            assert!(reason.contains("not bound to them"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(bob.thread_members(&id).await.unwrap_or_default().is_empty());
    // A free-form id cannot be started by anyone: not by mallory's device
    // (so no name can be squatted before its real creator uses it)...
    let free = occ_protocol::payload::Payload::ThreadInfo(occ_protocol::payload::ThreadInfo {
        thread_id: "incident-42".into(),
        title: "squatted".into(),
        members: vec!["bob".into(), "mallory2".into()],
    })
    .encode()
    .to_vec();
    raw.send_payload(&bob_device, &free).await;
    let r = bob.receive(0).await.unwrap();
    assert!(
        matches!(
            r.items[0].outcome,
            ItemOutcome::Rejected {
                kind: SecurityEventKind::NonMember,
                ..
            }
        ),
        "{r:?}"
    );
    assert!(bob.threads().await.unwrap().is_empty());
    // ...nor by alice's client, which points to a bound id.
    let e = alice
        .send(
            occ_core::Recipient::Thread {
                id: "incident-42".into(),
                members: vec!["bob".into()],
            },
            b"x".to_vec(),
            600,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, occ_core::Error::InvalidInput { reason } if reason.contains("new_thread_id")),
        "{e:?}"
    );
    // Alice's real thread.
    alice
        .send(
            occ_core::Recipient::Thread {
                id: id.clone(),
                members: vec!["bob".into()],
            },
            b"the real one".to_vec(),
            600,
            None,
        )
        .await
        .unwrap();
    alice.flush().await.unwrap();
    let r = bob.receive(0).await.unwrap();
    assert_eq!(r.received().len(), 1, "{r:?}");
    let mut members = bob.thread_members(&id).await.unwrap();
    members.sort();
    assert_eq!(members, ["alice", "bob"]);
}

/// A member who learns another sender's message id or sender-key id first
/// (a colluding relay delivers theirs first) pre-empts nothing: message ids
/// and distribution ids are scoped to their sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_senders_message_or_key_id_cannot_be_pre_empted() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let carol = env.client("carol").await;
    let mut mallory = env.raw_device("mallory").await;
    let mut eve = env.raw_device("eve").await;
    let bob_device = bob.device_id().await.unwrap();
    // Message ids: mallory sends first under the id eve will use.
    mallory
        .send_payload(&bob_device, &mallory.text("bob", "0123abcd", "mallory's"))
        .await;
    eve.send_payload(&bob_device, &eve.text("bob", "0123abcd", "eve's"))
        .await;
    let r = bob.receive(0).await.unwrap();
    assert_eq!(r.received().len(), 2, "{r:?}");
    let eves = &r.received()[1];
    assert_eq!(eves.sender, "eve");
    assert_eq!(
        common::texts(&[bob.message(&eves.message_id).await.unwrap()]),
        ["eve's"]
    );

    // Distribution ids: in a thread with mallory, carol speaks while bob is
    // away; mallory claims carol's sender-key id to bob, and the relay hands
    // bob mallory's claim before carol's key.
    let team = alice.new_thread_id().await.unwrap();
    let ops = |members: &[&str]| Recipient::Thread {
        id: team.clone(),
        members: members.iter().map(|s| s.to_string()).collect(),
    };
    alice
        .send(ops(&["bob", "carol", "mallory"]), b"hi".to_vec(), 600, None)
        .await
        .unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    carol
        .send(ops(&[]), b"carol's report".to_vec(), 600, None)
        .await
        .unwrap();
    carol.sync().await.unwrap();
    let carol_device = carol.device_id().await.unwrap();
    let carol_distribution = mallory
        .api
        .inbox(0, 0, 500)
        .await
        .unwrap()
        .messages
        .iter()
        .filter(|i| i.sender_device == carol_device)
        .find_map(
            |i| match occ_protocol::Envelope::parse(i.envelope.as_slice()) {
                Ok(occ_protocol::Envelope::Group(g)) => Some(g.distribution_id),
                _ => None,
            },
        )
        .expect("carol's thread message reached mallory");
    let claim = occ_protocol::payload::Payload::SenderKey(occ_protocol::SenderKeyDistribution {
        thread_id: team.as_bytes().to_vec(),
        distribution_id: carol_distribution,
        iteration: 0,
        chain_key: zeroize::Zeroizing::new([7; 32]),
        signing_key: mallory.account.identity().public().keys().signing_key,
    })
    .encode()
    .to_vec();
    mallory.send_payload(&bob_device, &claim).await;
    let queued = mallory_first(&env, &bob_device);
    for id in &queued {
        bob.fetch(id).await.unwrap();
    }
    bob.receive(0).await.unwrap();
    let got = common::texts(&bob.messages(&team, 10).await.unwrap());
    assert_eq!(got, ["carol's report", "hi"]);
    let report = &bob.messages(&team, 10).await.unwrap()[0];
    assert_eq!(report.sender, "carol");
}

/// Bob's queued relay ids, mallory's first (the relay reordering them).
fn mallory_first(env: &Env, bob_device: &str) -> Vec<String> {
    let db = env.relay_db();
    let mut stmt = db
        .prepare(
            "SELECT e.id FROM envelopes e JOIN devices d ON d.device_id = e.sender
             WHERE e.recipient = ?1 ORDER BY (d.user = 'mallory') DESC, e.seq",
        )
        .unwrap();
    stmt.query_map([bob_device], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Removing a member reaches every other member at once (no message from
/// the remover needed): the next thing any of them sends is unreadable by
/// the removed member, and nothing of it is even addressed to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_receives_nothing_any_member_sends_afterwards() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let carol = env.client("carol").await;
    let dave = env.client("dave").await;
    let team = alice.new_thread_id().await.unwrap();
    let ops = |members: &[&str]| Recipient::Thread {
        id: team.clone(),
        members: members.iter().map(|s| s.to_string()).collect(),
    };
    alice
        .send(
            ops(&["bob", "carol", "dave"]),
            b"all four".to_vec(),
            600,
            None,
        )
        .await
        .unwrap();
    alice.sync().await.unwrap();
    for c in [&bob, &carol, &dave] {
        c.sync().await.unwrap();
    }
    // Everyone has spoken, so everyone holds everyone's key.
    for (c, text) in [(&bob, "bob"), (&carol, "carol"), (&dave, "dave")] {
        c.send(ops(&[]), text.as_bytes().to_vec(), 600, None)
            .await
            .unwrap();
        c.sync().await.unwrap();
    }
    for c in [&alice, &bob, &carol, &dave] {
        c.sync().await.unwrap();
    }

    alice.remove_member(&team, "bob").await.unwrap();
    // Queued, but no message of the app's: not counted as one.
    assert_eq!(alice.outbox_len().await.unwrap(), 0);
    let report = alice.flush().await.unwrap();
    assert_eq!(report.sent, 0, "a control row is not a message: {report:?}");
    assert_eq!(alice.outbox_len().await.unwrap(), 0);
    carol.sync().await.unwrap();
    dave.sync().await.unwrap();
    for c in [&carol, &dave] {
        let mut members = c.thread_members(&team).await.unwrap();
        members.sort();
        assert_eq!(members, ["alice", "carol", "dave"]);
    }
    let bob_device = bob.device_id().await.unwrap();
    let before = common::count(
        &env.relay_db(),
        &format!("SELECT count(*) FROM envelopes WHERE recipient = '{bob_device}'"),
    );
    carol
        .send(ops(&[]), b"carol after".to_vec(), 600, None)
        .await
        .unwrap();
    carol.sync().await.unwrap();
    dave.send(ops(&[]), b"dave after".to_vec(), 600, None)
        .await
        .unwrap();
    dave.sync().await.unwrap();
    assert_eq!(
        common::count(
            &env.relay_db(),
            &format!("SELECT count(*) FROM envelopes WHERE recipient = '{bob_device}'"),
        ),
        before,
        "nothing addressed to bob"
    );
    bob.sync().await.unwrap();
    let seen = common::texts(&bob.messages(&team, 20).await.unwrap());
    assert!(!seen.iter().any(|t| t.contains("after")), "{seen:?}");
    alice.sync().await.unwrap();
    let got = common::texts(&alice.messages(&team, 20).await.unwrap());
    assert!(got.contains(&"carol after".to_string()) && got.contains(&"dave after".to_string()));
}
