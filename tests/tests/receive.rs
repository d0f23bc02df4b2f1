//! The receive path under attack and under failure: one bad item never
//! blocks the inbox, a failed page loses nothing, reads never wait for the
//! network, and a broken outbox never stops receiving.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Env, Recorder, count, texts, to};
use occ_core::sync::direct_thread_id;
use occ_core::{ClientEvent, Error, ItemOutcome, Recipient, SecurityEventKind};
use occ_protocol::Envelope;
use occ_protocol::payload::{Payload, TextMessage};

fn ops(id: &str, members: &[&str]) -> Recipient {
    Recipient::Thread {
        id: id.into(),
        members: members.iter().map(|s| s.to_string()).collect(),
    }
}

/// A registered user who is also a member of a thread sends, between two
/// good messages, payloads built to wedge the receiver: an id the store
/// cannot hold, a thread id outside the rules, and a sender key claiming
/// another member's key id. The receiver keeps both good messages, refuses
/// and reports the three, acknowledges everything, and keeps receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_payloads_between_good_messages_are_refused_and_the_inbox_flows() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let carol = env.client("carol").await;
    let mut mallory = env.raw_device("mallory").await;
    let bob_events = Arc::new(Recorder::default());
    bob.set_listener(Some(bob_events.clone())).unwrap();

    // A thread of four; carol speaks in it, so bob holds her sender key and
    // mallory (a member) sees its id on the envelopes she receives.
    let team = alice.new_thread_id().await.unwrap();
    alice
        .send(
            ops(&team, &["bob", "carol", "mallory"]),
            b"hello ops".to_vec(),
            600,
            None,
        )
        .await
        .unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    carol
        .send(ops(&team, &[]), b"carol here".to_vec(), 600, None)
        .await
        .unwrap();
    carol.sync().await.unwrap();
    assert_eq!(bob.sync().await.unwrap().received.received().len(), 1);
    let carol_device = carol.device_id().await.unwrap();
    let inbox = mallory.api.inbox(0, 0, 500).await.unwrap();
    let carol_distribution = inbox
        .messages
        .iter()
        .filter(|i| i.sender_device == carol_device)
        .find_map(|i| match Envelope::parse(i.envelope.as_slice()) {
            Ok(Envelope::Group(g)) => Some(g.distribution_id),
            _ => None,
        })
        .expect("carol's thread message reached mallory");

    let bob_device = bob.device_id().await.unwrap();
    let good1 = mallory.text("bob", "m-good-1", "first good");
    let bad_id = mallory.text("bob", "bad id!", "never stored");
    let bad_thread = {
        let Payload::Text(mut t) = Payload::parse(&mallory.text("bob", "m-x", "x")).unwrap() else {
            unreachable!()
        };
        t.thread_id = "../../etc".into();
        t.group = true;
        Payload::Text(t).encode().to_vec()
    };
    let stolen_key = Payload::SenderKey(occ_protocol::SenderKeyDistribution {
        thread_id: team.as_bytes().to_vec(),
        distribution_id: carol_distribution,
        iteration: 0,
        chain_key: zeroize_key([7; 32]),
        signing_key: mallory.account.identity().public().keys().signing_key,
    })
    .encode()
    .to_vec();
    let good2 = mallory.text("bob", "m-good-2", "second good");
    for p in [&good1, &bad_id, &bad_thread, &stolen_key, &good2] {
        mallory.send_payload(&bob_device, p).await;
    }

    let report = bob.receive(0).await.unwrap();
    let outcomes: Vec<&ItemOutcome> = report.items.iter().map(|i| &i.outcome).collect();
    assert_eq!(outcomes.len(), 5, "{outcomes:?}");
    assert!(matches!(outcomes[0], ItemOutcome::Stored { .. }));
    assert!(matches!(
        outcomes[1],
        ItemOutcome::Rejected {
            kind: SecurityEventKind::InvalidPayload,
            ..
        }
    ));
    assert!(matches!(
        outcomes[2],
        ItemOutcome::Rejected {
            kind: SecurityEventKind::InvalidPayload,
            ..
        }
    ));
    // Mallory's key under carol's distribution id is only ever mallory's:
    // keys are held per sending device, so it claims nothing of carol's.
    assert!(matches!(outcomes[3], ItemOutcome::Applied));
    assert!(matches!(outcomes[4], ItemOutcome::Stored { .. }));
    assert_eq!(report.rejected(), 2);
    assert_eq!(
        texts(
            &bob.messages(&direct_thread_id("bob", "mallory"), 10)
                .await
                .unwrap()
        ),
        ["second good", "first good"]
    );
    // Reported: to the app, and in the security log (metadata only).
    assert_eq!(
        bob_events.alerts(),
        [
            SecurityEventKind::InvalidPayload,
            SecurityEventKind::InvalidPayload,
        ]
    );
    let logged: Vec<_> = bob.security_events().await.unwrap();
    assert_eq!(logged.len(), 2);
    assert!(logged.iter().all(|e| !e.detail.contains("never stored")));
    // Acknowledged: nothing of it waits on the relay.
    let waiting = env
        .relay_db()
        .query_row(
            "SELECT count(*) FROM envelopes WHERE recipient = ?1",
            [&bob_device],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
    assert_eq!(waiting, 0);
    // The inbox flows: carol's key was not replaced, alice still reaches bob.
    carol
        .send(ops(&team, &[]), b"carol again".to_vec(), 600, None)
        .await
        .unwrap();
    carol.sync().await.unwrap();
    alice
        .send(to("bob"), b"after the attack".to_vec(), 600, None)
        .await
        .unwrap();
    alice.sync().await.unwrap();
    let r = bob.sync().await.unwrap();
    assert_eq!(r.received.received().len(), 2, "{:?}", r.received);
    assert!(texts(&bob.messages(&team, 10).await.unwrap()).contains(&"carol again".to_string()));
}

fn zeroize_key(k: [u8; 32]) -> zeroize::Zeroizing<[u8; 32]> {
    zeroize::Zeroizing::new(k)
}

/// A payload that claims another sender, or another conversation, is refused
/// one by one — the messages around it arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_senders_and_misrouted_messages_are_refused_one_by_one() {
    let env = Env::start().await;
    let bob = env.client("bob").await;
    let _alice = env.client("alice").await;
    let mut mallory = env.raw_device("mallory").await;
    let bob_device = bob.device_id().await.unwrap();
    let forged = |sender: &str, thread: String, id: &str| {
        Payload::Text(TextMessage {
            message_id: id.into(),
            thread_id: thread,
            thread_title: "t".into(),
            group: false,
            sender_user: sender.into(),
            sent_ms: 0,
            ttl_expiry_ms: i64::MAX / 2,
            read_timer_ms: None,
            body: b"forged".to_vec(),
            urgent: None,
            attachment: None,
        })
        .encode()
        .to_vec()
    };
    let payloads = [
        mallory.text("bob", "ok-1", "one"),
        forged("alice", direct_thread_id("alice", "bob"), "f-1"),
        forged("mallory", direct_thread_id("alice", "bob"), "f-2"),
        forged("mallory", direct_thread_id("bob", "mallory"), "f-3"),
        mallory.text("bob", "ok-2", "two"),
    ];
    for p in &payloads {
        mallory.send_payload(&bob_device, p).await;
    }
    let r = bob.receive(0).await.unwrap();
    let kinds: Vec<Option<SecurityEventKind>> = r
        .items
        .iter()
        .map(|i| match &i.outcome {
            ItemOutcome::Rejected { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            None,
            Some(SecurityEventKind::SenderMismatch),
            Some(SecurityEventKind::Misrouted),
            None,
            None
        ]
    );
    // f-3 is well-formed: mallory writing to bob in their own conversation.
    assert_eq!(
        texts(
            &bob.messages(&direct_thread_id("bob", "mallory"), 10)
                .await
                .unwrap()
        ),
        ["two", "forged", "one"]
    );
    // Nothing was stored under alice's name: not even the conversation.
    assert!(matches!(
        bob.messages(&direct_thread_id("alice", "bob"), 10).await,
        Err(Error::NotFound { .. })
    ));
}

/// The page fails after a prekey message was decrypted (another process
/// holds the database's write lock): nothing is acknowledged, the one-time
/// prekey is not lost in memory, and the retry decrypts the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_fails_after_a_prekey_message_decrypts_on_the_retry() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    alice
        .send(to("bob"), b"first words".to_vec(), 600, None)
        .await
        .unwrap();
    alice.sync().await.unwrap();

    let lock = env.client_db("bob");
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let failed = bob.receive(0).await;
    assert!(failed.is_err(), "{failed:?}");
    let bob_device = bob.device_id().await.unwrap();
    let waiting = |env: &Env| {
        env.relay_db()
            .query_row(
                "SELECT count(*) FROM envelopes WHERE recipient = ?1",
                [&bob_device],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
    };
    assert_eq!(waiting(&env), 1, "a failed page is not acknowledged");
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);

    let r = bob.receive(0).await.unwrap();
    assert_eq!(r.received().len(), 1, "{r:?}");
    assert_eq!(r.rejected(), 0);
    assert_eq!(
        texts(
            &bob.messages(&direct_thread_id("alice", "bob"), 10)
                .await
                .unwrap()
        ),
        ["first words"]
    );
    assert_eq!(waiting(&env), 0);
    // And the session works both ways afterwards.
    bob.send(to("alice"), b"reply".to_vec(), 600, None)
        .await
        .unwrap();
    bob.sync().await.unwrap();
    assert_eq!(alice.sync().await.unwrap().received.received().len(), 1);
}

/// While `receive` waits 20 s on an empty inbox, reads answer at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_in_milliseconds_while_a_long_poll_waits() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = Arc::new(env.client("bob").await);
    alice
        .send(to("bob"), b"earlier".to_vec(), 600, None)
        .await
        .unwrap();
    alice.sync().await.unwrap();
    let id = bob.sync().await.unwrap().received.received()[0]
        .message_id
        .clone();
    let dm = direct_thread_id("alice", "bob");

    let polling = {
        let bob = bob.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = bob.receive(20_000).await;
            (r, started.elapsed())
        })
    };
    // Let the long-poll reach the relay and wait there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!polling.is_finished());
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(bob.threads().await.unwrap().len(), 1);
        assert_eq!(bob.messages(&dm, 50).await.unwrap().len(), 1);
        assert_eq!(bob.message(&id).await.unwrap().id, id);
        bob.mark_read(&id).await.unwrap();
        bob.settings().await.unwrap();
        bob.purge().await.unwrap();
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(100),
        "a read took {slowest:?} during the long-poll"
    );
    assert!(!polling.is_finished(), "the long-poll is still waiting");
    // A new message ends the wait early.
    alice
        .send(to("bob"), b"wake up".to_vec(), 600, None)
        .await
        .unwrap();
    alice.sync().await.unwrap();
    let (r, waited) = polling.await.unwrap();
    assert_eq!(r.unwrap().received().len(), 1);
    assert!(waited < Duration::from_secs(15), "{waited:?}");
}

/// Sending that fails — a message that can never be sent, or a relay whose
/// directory lies — never stops receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_outbox_never_stops_receiving() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let _carol = env.client("carol").await;
    let events = Arc::new(Recorder::default());
    alice.set_listener(Some(events.clone())).unwrap();

    // 1. A queued message damaged on disk: dropped with DeliveryFailed, and
    // the messages behind it still go out.
    alice
        .send(to("bob"), b"will be damaged".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    let damaged = alice
        .send(to("bob"), b"damaged".to_vec(), 600, None)
        .await
        .unwrap();
    env.client_db("alice")
        .execute("UPDATE outbox SET payload = x'00ff'", [])
        .unwrap();
    alice
        .send(to("bob"), b"behind it".to_vec(), 600, None)
        .await
        .unwrap();
    bob.send(to("alice"), b"for alice".to_vec(), 600, None)
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let r = alice.sync().await.unwrap();
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].message_id, damaged);
    assert_eq!(r.sent, 1);
    assert_eq!(r.received.received().len(), 1);
    assert!(events.events().iter().any(
        |e| matches!(e, ClientEvent::DeliveryFailed { message_id, .. } if *message_id == damaged)
    ));

    // 2. The relay operator re-assigns carol's device to bob's account in
    // its directory. Alice knows carol's device as carol's: sending to bob
    // is refused as untrusted (the message stays queued), yet alice still
    // receives.
    alice
        .send(to("carol"), b"learn carol".to_vec(), 600, None)
        .await
        .unwrap();
    alice.sync().await.unwrap();
    let relay = rusqlite::Connection::open(env.relay_dir.join("relay.db")).unwrap();
    relay
        .execute("UPDATE devices SET user = 'bob' WHERE user = 'carol'", [])
        .unwrap();
    // Alice's directory cache (one minute) would hide the lie: reopen her.
    alice.close();
    let alice = env.reopen("alice");
    alice
        .send(to("bob"), b"to bob".to_vec(), 600, None)
        .await
        .unwrap();
    bob.send(to("alice"), b"still flowing".to_vec(), 600, None)
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let r = alice.sync().await.unwrap();
    assert!(
        matches!(r.send_error, Some(Error::Untrusted { .. })),
        "{:?}",
        r.send_error
    );
    assert_eq!(r.pending, 1);
    assert_eq!(r.received.received().len(), 1);
    assert!(
        alice
            .security_events()
            .await
            .unwrap()
            .iter()
            .any(|e| e.kind == SecurityEventKind::DirectoryMismatch)
    );
    // Nothing went to bob's real device (nor to carol's, posing as bob's).
    let bob_device = bob.device_id().await.unwrap();
    assert_eq!(
        count(
            &env.relay_db(),
            &format!("SELECT count(*) FROM envelopes WHERE recipient = '{bob_device}'")
        ),
        0
    );
}
