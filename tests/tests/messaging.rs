//! Messaging end to end against a real relay over loopback TLS: 1:1 and
//! thread delivery, offline recipients, relay restarts, TTL expiry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::time::Duration;

use common::{Env, count, texts};
use occ_core::sync::direct_thread_id;
use std::sync::Arc;

use occ_core::{ClientEvent, Error, Recipient};
use occ_relay::push_sink::PushSink;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_and_three_clients_exchange_direct_and_thread_messages() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let carol = env.client("carol").await;

    // 1:1 both ways, several ratchet steps.
    for i in 0..3 {
        alice
            .send(
                Recipient::User { name: "bob".into() },
                format!("a{i}").into_bytes(),
                600,
                None,
            )
            .await
            .unwrap();
        assert_eq!(alice.sync().await.unwrap().sent, 1);
        let r = bob.sync().await.unwrap();
        assert_eq!(r.received.received().len(), 1);
        assert_eq!(r.received.received()[0].sender, "alice");
        bob.send(
            Recipient::User {
                name: "alice".into(),
            },
            format!("b{i}").into_bytes(),
            600,
            None,
        )
        .await
        .unwrap();
        bob.sync().await.unwrap();
        assert_eq!(alice.sync().await.unwrap().received.received().len(), 1);
    }
    let dm = direct_thread_id("alice", "bob");
    assert_eq!(
        texts(&alice.messages(&dm, 50).await.unwrap()),
        ["b2", "a2", "b1", "a1", "b0", "a0"]
    );
    assert_eq!(
        texts(&bob.messages(&dm, 50).await.unwrap()),
        texts(&alice.messages(&dm, 50).await.unwrap())
    );

    // A thread of three; everyone writes.
    let ops_id = alice.new_thread_id().await.unwrap();
    let thread = |members: &[&str]| Recipient::Thread {
        id: ops_id.clone(),
        members: members.iter().map(|s| s.to_string()).collect(),
    };
    alice
        .send(thread(&["bob", "carol"]), b"from alice".to_vec(), 600, None)
        .await
        .unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    bob.send(thread(&[]), b"from bob".to_vec(), 600, None)
        .await
        .unwrap();
    bob.sync().await.unwrap();
    carol
        .send(thread(&[]), b"from carol".to_vec(), 600, None)
        .await
        .unwrap();
    carol.sync().await.unwrap();
    for c in [&alice, &bob, &carol] {
        c.sync().await.unwrap();
        let mut got = texts(&c.messages(&ops_id, 50).await.unwrap());
        got.sort();
        assert_eq!(got, ["from alice", "from bob", "from carol"]);
    }
    let senders: Vec<String> = carol
        .messages(&ops_id, 50)
        .await
        .unwrap()
        .iter()
        .map(|m| m.sender.clone())
        .collect();
    assert!(senders.contains(&"alice".to_string()) && senders.contains(&"bob".to_string()));
    // The relay only ever held ciphertext.
    let db = env.relay_db();
    let mut stmt = db.prepare("SELECT envelope FROM envelopes").unwrap();
    for env_bytes in stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap() {
        let b = env_bytes.unwrap();
        assert!(!b.windows(4).any(|w| w == b"from"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_recipient_gets_everything_and_a_relay_restart_loses_nothing() {
    let mut env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let carol = env.client("carol").await;
    // Carol goes offline (closes her profile).
    drop(carol);
    for i in 0..5 {
        alice
            .send(
                Recipient::User {
                    name: "carol".into(),
                },
                format!("direct {i}").into_bytes(),
                600,
                None,
            )
            .await
            .unwrap();
    }
    let night = alice.new_thread_id().await.unwrap();
    for i in 0..3 {
        alice
            .send(
                Recipient::Thread {
                    id: night.clone(),
                    members: vec!["bob".into(), "carol".into()],
                },
                format!("thread {i}").into_bytes(),
                600,
                None,
            )
            .await
            .unwrap();
    }
    assert_eq!(alice.sync().await.unwrap().sent, 8);
    assert_eq!(bob.sync().await.unwrap().received.received().len(), 3);

    // The relay restarts while carol's copies are queued.
    let queued = count(&env.relay_db(), "SELECT count(*) FROM envelopes");
    env.restart_relay().await;
    assert_eq!(
        count(&env.relay_db(), "SELECT count(*) FROM envelopes"),
        queued
    );

    let carol = env.reopen("carol");
    let r = carol.sync().await.unwrap();
    assert_eq!(r.received.received().len(), 8);
    let dm = direct_thread_id("alice", "carol");
    assert_eq!(
        texts(&carol.messages(&dm, 50).await.unwrap()),
        ["direct 4", "direct 3", "direct 2", "direct 1", "direct 0"]
    );
    assert_eq!(
        texts(&carol.messages(&night, 50).await.unwrap()),
        ["thread 2", "thread 1", "thread 0"]
    );
    // Acknowledged: nothing is left for carol, and a second sync gets nothing.
    assert_eq!(carol.sync().await.unwrap().received.received().len(), 0);
    let carol_id = carol.device_id().await.unwrap();
    let left: i64 = env
        .relay_db()
        .query_row(
            "SELECT count(*) FROM envelopes WHERE recipient = ?1",
            [&carol_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    // The others keep working across the restart (they re-authenticate).
    alice
        .send(
            Recipient::User { name: "bob".into() },
            b"after restart".to_vec(),
            600,
            None,
        )
        .await
        .unwrap();
    alice.sync().await.unwrap();
    assert_eq!(bob.sync().await.unwrap().received.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_its_ttl_the_relay_answers_410_purges_it_and_no_client_returns_it() {
    let env = Env::start().await;
    let push = PushSink::start(&env.ca()).await.unwrap();
    let alice = env.client("alice").await;
    let mut opts = env.options("bob");
    opts.push_endpoint = Some(push.url.clone());
    let bob = env.client_with("bob", opts).await;

    let alice_events = Arc::new(common::Recorder::default());
    alice.set_listener(Some(alice_events.clone())).unwrap();
    let bob_events = Arc::new(common::Recorder::default());
    bob.set_listener(Some(bob_events.clone())).unwrap();
    let marker = "SHORT-LIVED-4471";
    let id = alice
        .send(
            Recipient::User { name: "bob".into() },
            marker.as_bytes().to_vec(),
            1,
            None,
        )
        .await
        .unwrap();
    alice.flush().await.unwrap();
    let notices = push.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(notices.len(), 1);
    let relay_id = notices[0].notice.message_id.clone();
    // The push notice carries no content.
    for body in push.raw_bodies() {
        assert!(!String::from_utf8_lossy(&body).contains(marker));
    }

    tokio::time::sleep(Duration::from_millis(1300)).await;
    // 410 Gone, before and after the purge.
    assert!(matches!(bob.fetch(&relay_id).await, Err(Error::Expired)));
    let db = env.relay_db();
    let mut gone = false;
    for _ in 0..50 {
        let n: i64 = db
            .query_row(
                "SELECT count(*) FROM envelopes WHERE id = ?1",
                [&relay_id],
                |r| r.get(0),
            )
            .unwrap();
        if n == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the relay purged the envelope from its database");
    assert!(matches!(bob.fetch(&relay_id).await, Err(Error::Expired)));
    // No client returns it: bob never gets it, alice's copy is filtered.
    assert_eq!(bob.sync().await.unwrap().received.received().len(), 0);
    let dm = direct_thread_id("alice", "bob");
    assert!(matches!(
        bob.messages(&dm, 10).await,
        Err(Error::NotFound { .. })
    ));
    assert!(alice.messages(&dm, 10).await.unwrap().is_empty());
    assert!(matches!(alice.message(&id).await, Err(Error::Expired)));
    assert_eq!(
        alice.purge().await.unwrap().expired_ids,
        std::slice::from_ref(&id)
    );
    // Events: the expiry was announced to alice's app, with the
    // withdrawal of any notification it shows; bob's app heard nothing.
    assert_eq!(
        alice_events.events(),
        [
            ClientEvent::MessageSent {
                message_id: id.clone()
            },
            ClientEvent::MessagesExpired {
                message_ids: vec![id.clone()]
            },
            ClientEvent::WithdrawNotifications {
                message_ids: vec![id],
                relay_message_ids: vec![],
                all: false,
                reason: occ_core::WithdrawReason::Expired,
            }
        ]
    );
    assert!(bob_events.events().is_empty());
    // A live message is announced on arrival.
    alice
        .send(
            Recipient::User { name: "bob".into() },
            b"live".to_vec(),
            600,
            None,
        )
        .await
        .unwrap();
    alice.flush().await.unwrap();
    bob.receive(0).await.unwrap();
    assert!(matches!(
        bob_events.events().as_slice(),
        [ClientEvent::MessagesReceived { messages }] if messages.len() == 1 && messages[0].sender == "alice"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_notices_are_signed_by_the_service_key() {
    use ed25519_dalek::{Signature, VerifyingKey};
    let env = Env::start().await;
    let push = PushSink::start(&env.ca()).await.unwrap();
    let alice = env.client("alice").await;
    let mut opts = env.options("bob");
    opts.push_endpoint = Some(push.url.clone());
    let bob = env.client_with("bob", opts).await;
    alice
        .send(
            Recipient::User { name: "bob".into() },
            b"hello".to_vec(),
            60,
            None,
        )
        .await
        .unwrap();
    alice.flush().await.unwrap();
    let n = push.wait_for(1, Duration::from_secs(5)).await.remove(0);
    let key = VerifyingKey::from_bytes(&env.relay.as_ref().unwrap().service_key).unwrap();
    let sig = Signature::from_bytes(&n.signature.array().unwrap());
    key.verify_strict(&occ_protocol::api::push_notice_message(&n.notice), &sig)
        .unwrap();
    let mut forged = n.notice.clone();
    forged.size += 1;
    assert!(
        key.verify_strict(&occ_protocol::api::push_notice_message(&forged), &sig)
            .is_err()
    );
    assert_eq!(n.notice.recipient_device, bob.device_id().await.unwrap());
    assert_eq!(n.notice.sender_device, alice.device_id().await.unwrap());
    // The downloaded message is the one announced.
    let r = bob.fetch(&n.notice.message_id).await.unwrap();
    assert_eq!(r.received().len(), 1);
    // And the later inbox delivery of it is recognised, not duplicated.
    assert_eq!(bob.sync().await.unwrap().received.received().len(), 0);
    assert_eq!(
        bob.messages(&direct_thread_id("alice", "bob"), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sends_are_typed_errors() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    for (to, ttl) in [
        (
            Recipient::User {
                name: "Bad Name".into(),
            },
            60,
        ),
        (
            Recipient::User {
                name: "alice".into(),
            },
            60,
        ),
        (Recipient::User { name: "bob".into() }, 0),
        (
            Recipient::Thread {
                id: "x y".into(),
                members: vec!["bob".into()],
            },
            60,
        ),
        (
            Recipient::Thread {
                id: "lonely".into(),
                members: vec![],
            },
            60,
        ),
    ] {
        assert!(matches!(
            alice.send(to, b"x".to_vec(), ttl, None).await,
            Err(Error::InvalidInput { .. })
        ));
    }
    assert_eq!(alice.outbox_len().await.unwrap(), 0);
    // A user the relay does not know: the message is dropped with a failure
    // event, not retried forever.
    let id = alice
        .send(
            Recipient::User {
                name: "nobody".into(),
            },
            b"x".to_vec(),
            60,
            None,
        )
        .await
        .unwrap();
    let r = alice.flush().await.unwrap();
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].message_id, id);
    assert_eq!(alice.outbox_len().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_while_the_relay_is_down_go_out_in_order_once_it_returns() {
    let mut env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    alice
        .send(
            Recipient::User { name: "bob".into() },
            b"before".to_vec(),
            600,
            None,
        )
        .await
        .unwrap();
    alice.sync().await.unwrap();
    let addr = env.stop_relay().await;
    for i in 0..3 {
        alice
            .send(
                Recipient::User { name: "bob".into() },
                format!("offline {i}").into_bytes(),
                600,
                None,
            )
            .await
            .unwrap();
    }
    assert!(matches!(alice.flush().await, Err(Error::Network { .. })));
    assert_eq!(alice.outbox_len().await.unwrap(), 3);
    env.start_relay_at(addr).await;
    // Backing off: a sync pass sends nothing yet, and keeps the order.
    let r = alice.sync().await.unwrap();
    assert_eq!((r.sent, r.pending), (0, 3));
    let r = alice.flush().await.unwrap();
    assert_eq!(r.sent, 3);
    bob.sync().await.unwrap();
    assert_eq!(
        texts(
            &bob.messages(&direct_thread_id("alice", "bob"), 10)
                .await
                .unwrap()
        ),
        ["offline 2", "offline 1", "offline 0", "before"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_gets_nothing_sent_after_the_removal() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let carol = env.client("carol").await;
    let ops_id = alice.new_thread_id().await.unwrap();
    let ops = |members: &[&str]| Recipient::Thread {
        id: ops_id.clone(),
        members: members.iter().map(|s| s.to_string()).collect(),
    };
    alice
        .send(ops(&["bob", "carol"]), b"before".to_vec(), 600, None)
        .await
        .unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    bob.send(ops(&[]), b"bob speaking".to_vec(), 600, None)
        .await
        .unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    alice.sync().await.unwrap();

    alice.remove_member(&ops_id, "bob").await.unwrap();
    assert!(matches!(
        alice.remove_member(&ops_id, "bob").await,
        Err(Error::NotFound { .. })
    ));
    alice
        .send(ops(&[]), b"after bob left".to_vec(), 600, None)
        .await
        .unwrap();
    alice.sync().await.unwrap();
    // Carol gets it (with alice's new key and the new member list)...
    carol.sync().await.unwrap();
    let mut got = texts(&carol.messages(&ops_id, 10).await.unwrap());
    got.sort();
    assert_eq!(got, ["after bob left", "before", "bob speaking"]);
    // ...bob gets nothing more.
    assert_eq!(bob.sync().await.unwrap().received.received().len(), 0);
    assert!(
        !texts(&bob.messages(&ops_id, 10).await.unwrap()).contains(&"after bob left".to_string())
    );
    // Carol learned of the removal: her next message goes to alice only, under
    // a rotated key, and bob's messages to the thread are refused.
    carol
        .send(ops(&[]), b"carol after".to_vec(), 600, None)
        .await
        .unwrap();
    carol.sync().await.unwrap();
    assert_eq!(bob.sync().await.unwrap().received.received().len(), 0);
    assert_eq!(alice.sync().await.unwrap().received.received().len(), 1);
    bob.send(ops(&[]), b"bob again".to_vec(), 600, None)
        .await
        .unwrap();
    bob.sync().await.unwrap();
    assert_eq!(alice.sync().await.unwrap().received.received().len(), 0);
    assert_eq!(carol.sync().await.unwrap().received.received().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_later_is_known_to_everyone() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let carol = env.client("carol").await;
    let ops_id = alice.new_thread_id().await.unwrap();
    let ops = |members: &[&str]| Recipient::Thread {
        id: ops_id.clone(),
        members: members.iter().map(|s| s.to_string()).collect(),
    };
    alice
        .send(ops(&["bob"]), b"just us".to_vec(), 600, None)
        .await
        .unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    // Alice adds carol; carol writes; bob accepts her as a member.
    alice
        .send(ops(&["carol"]), b"welcome carol".to_vec(), 600, None)
        .await
        .unwrap();
    alice.sync().await.unwrap();
    assert_eq!(bob.sync().await.unwrap().received.received().len(), 1);
    assert_eq!(carol.sync().await.unwrap().received.received().len(), 1);
    carol
        .send(ops(&[]), b"carol here".to_vec(), 600, None)
        .await
        .unwrap();
    carol.sync().await.unwrap();
    let r = bob.sync().await.unwrap();
    assert_eq!((r.received.received().len(), r.received.rejected()), (1, 0));
    assert_eq!(alice.sync().await.unwrap().received.received().len(), 1);
    // Carol never sees what was said before she joined.
    assert_eq!(
        texts(&carol.messages(&ops_id, 10).await.unwrap()),
        ["carol here", "welcome carol"]
    );
}
