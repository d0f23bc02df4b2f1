//! Several devices per user: a device links another of its user's devices;
//! messages fan out to every device of each recipient and to the sender's
//! own other devices. Played against the relay too: it cannot add a device
//! to a user — unlinked registrations are refused, and a device it inserts
//! itself is neither messaged nor believed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::sync::Arc;

use common::{Env, count, real_now_ms, texts, to};
use occ_core::ItemOutcome;
use occ_core::crypto::link::link_device;
use occ_core::sync::direct_thread_id;
use occ_core::transport::TransportError;
use occ_core::{Client, Error, Recipient, SecurityEventKind};
use occ_protocol::api::parse_device_id;
use occ_protocol::payload::Payload;

/// A second profile `profile` for `user`, linked by `from`.
async fn linked(env: &Env, from: &Client, profile: &str, user: &str) -> Client {
    let c = env.new_client(profile);
    let link = from
        .link_device(&c.device_id().await.unwrap())
        .await
        .unwrap();
    let mut opts = env.options(user);
    opts.link = Some(link);
    c.enrol(opts).await.unwrap();
    c
}

/// A thread's bodies, oldest first, and whether each was sent by this user.
async fn bodies(c: &Client, thread: &str) -> Vec<(String, bool)> {
    let list = c
        .messages(thread, 50)
        .await
        .unwrap_or_else(|e| panic!("{thread}: {e}"));
    let mut out: Vec<(String, bool)> = texts(&list)
        .into_iter()
        .zip(list.iter().map(|m| m.outgoing))
        .collect();
    out.reverse();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bob_receives_on_both_devices_and_alice_sees_what_she_sent() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let carol = env.client("carol").await;
    let bob2 = linked(&env, &bob, "bob2", "bob").await;
    let alice2 = linked(&env, &alice, "alice2", "alice").await;
    let recorders: Vec<_> = [&alice, &bob, &carol, &bob2, &alice2]
        .iter()
        .map(|c| {
            let r = Arc::new(common::Recorder::default());
            c.set_listener(Some(r.clone())).unwrap();
            r
        })
        .collect();

    alice
        .send(to("bob"), b"hi bob".to_vec(), 600, None)
        .await
        .unwrap();
    let team = alice.new_thread_id().await.unwrap();
    alice
        .send(
            Recipient::Thread {
                id: team.clone(),
                members: vec!["bob".into(), "carol".into()],
            },
            b"to the team".to_vec(),
            600,
            None,
        )
        .await
        .unwrap();
    assert_eq!(alice.flush().await.unwrap().sent, 2);
    for c in [&bob, &bob2, &carol, &alice2] {
        c.receive(0).await.unwrap();
    }
    let dm = direct_thread_id("alice", "bob");
    for b in [&bob, &bob2] {
        assert_eq!(bodies(b, &dm).await, vec![("hi bob".into(), false)]);
        assert_eq!(bodies(b, &team).await, vec![("to the team".into(), false)]);
    }
    assert_eq!(
        bodies(&carol, &team).await,
        vec![("to the team".into(), false)]
    );
    // Alice's second device shows what she sent from the first, as sent,
    // in the same conversations (the direct one titled with its peer).
    assert_eq!(bodies(&alice2, &dm).await, vec![("hi bob".into(), true)]);
    assert_eq!(
        bodies(&alice2, &team).await,
        vec![("to the team".into(), true)]
    );
    let threads = alice2.threads().await.unwrap();
    assert!(
        threads.iter().any(|t| t.id == dm && t.title == "bob"),
        "{threads:?}"
    );

    // Bob answers from his second device: both of alice's devices get it,
    // and bob's first device shows it as sent.
    bob2.send(to("alice"), b"got it".to_vec(), 600, None)
        .await
        .unwrap();
    bob2.send(
        Recipient::Thread {
            id: team.clone(),
            members: vec![],
        },
        b"on my way".to_vec(),
        600,
        None,
    )
    .await
    .unwrap();
    assert_eq!(bob2.flush().await.unwrap().sent, 2);
    for c in [&alice, &alice2, &bob, &carol] {
        c.receive(0).await.unwrap();
    }
    for a in [&alice, &alice2] {
        assert_eq!(
            bodies(a, &dm).await,
            vec![("hi bob".into(), true), ("got it".into(), false)]
        );
    }
    assert_eq!(
        bodies(&bob, &dm).await,
        vec![("hi bob".into(), false), ("got it".into(), true)]
    );
    for c in [&alice, &alice2, &carol] {
        assert_eq!(
            bodies(c, &team).await.last().unwrap(),
            &("on my way".to_string(), false)
        );
    }
    assert_eq!(
        bodies(&bob, &team).await.last().unwrap(),
        &("on my way".to_string(), true)
    );
    // Linked devices are trusted: no key change anywhere, nothing refused.
    for r in &recorders {
        assert!(r.alerts().is_empty(), "{:?}", r.alerts());
    }
    let devices = alice.contact_identity("bob").await.unwrap().devices;
    assert_eq!(devices.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_but_a_users_device_adds_a_device_to_it() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    // Any registrant: a second "bob" without a link is refused by the
    // client's relay...
    let squatter = env.new_client("squatter");
    let err = squatter.enrol(env.options("bob")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    // ... and a link made for another user or device is refused before
    // anything is sent.
    let mut stolen = env.options("bob");
    stolen.link = Some(bob.link_device(&"ab".repeat(32)).await.unwrap());
    let err = squatter.enrol(stolen).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    // By hand, against the relay: a link signed by a device of another
    // user, and one whose signature does not verify.
    let eve = env.raw_device("eve").await;
    let api = env.api();
    api.start_session(None).await.unwrap();
    let newcomer = occ_core::crypto::Account::generate(0).unwrap();
    let id = newcomer.device_id().0;
    let by_eve = link_device(eve.account.identity(), "bob", &id, real_now_ms()).encode();
    let mut forged = link_device(eve.account.identity(), "bob", &id, real_now_ms());
    forged.linker = parse_device_id(&bob.device_id().await.unwrap()).unwrap();
    for (link, status) in [(by_eve, 409), (forged.encode(), 400)] {
        let req = occ_core::sync::registration_with_link(
            &newcomer,
            "bob",
            None,
            real_now_ms(),
            Some(&link),
        )
        .unwrap();
        match api.register(&req).await.unwrap_err() {
            TransportError::Rejected { status: s, .. } => assert_eq!(s, status),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        count(
            &env.relay_db(),
            "SELECT count(*) FROM devices WHERE user = 'bob'"
        ),
        1
    );

    // The relay operator inserts devices itself: one for bob (whom alice
    // knows) and one for alice's own user.
    alice
        .send(to("bob"), b"before".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    let rogue_bob = env.raw_device("rogue1").await.device_id();
    let rogue_alice = env.raw_device("rogue2").await.device_id();
    common::relay_db_rw(&env.relay_dir)
        .execute_batch(&format!(
            "UPDATE devices SET user = 'bob' WHERE device_id = '{rogue_bob}';
             UPDATE devices SET user = 'alice' WHERE device_id = '{rogue_alice}';"
        ))
        .unwrap();
    alice.close();
    drop(alice);
    let alice = env.reopen("alice");
    let events = Arc::new(common::Recorder::default());
    alice.set_listener(Some(events.clone())).unwrap();
    let carol = env.client("carol").await;
    alice
        .send(to("bob"), b"held".to_vec(), 600, None)
        .await
        .unwrap();
    alice
        .send(to("carol"), b"for carol".to_vec(), 600, None)
        .await
        .unwrap();
    let report = alice.flush().await.unwrap();
    // Bob's added device is a key change (held); alice's own is left out
    // of her copies (never a reason to hold her messages to carol).
    assert_eq!((report.sent, report.pending), (1, 1), "{report:?}");
    assert!(events.alerts().contains(&SecurityEventKind::KeyChanged));
    for rogue in [&rogue_bob, &rogue_alice] {
        assert_eq!(
            count(
                &env.relay_db(),
                &format!("SELECT count(*) FROM envelopes WHERE recipient = '{rogue}'")
            ),
            0,
            "nothing is encrypted to a device the relay added"
        );
    }
    carol.receive(0).await.unwrap();
    assert_eq!(
        texts(
            &carol
                .messages(&direct_thread_id("alice", "carol"), 10)
                .await
                .unwrap()
        ),
        vec!["for carol"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_device_receives_nothing_more_and_cannot_come_back() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let tablet = linked(&env, &bob, "bob-tablet", "bob").await;
    let tablet_id = tablet.device_id().await.unwrap();
    alice
        .send(to("bob"), b"one".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    bob.receive(0).await.unwrap();
    tablet.receive(0).await.unwrap();
    let dm = direct_thread_id("alice", "bob");
    assert_eq!(bodies(&tablet, &dm).await, vec![("one".into(), false)]);

    // Nobody else removes bob's devices: not alice, not a registrant.
    let eve = env.raw_device("eve").await;
    assert!(matches!(
        eve.api.remove_device(&tablet_id).await,
        Err(TransportError::NotFound(_))
    ));
    assert!(matches!(
        alice.remove_device(&tablet_id).await,
        Err(Error::NotFound { .. })
    ));

    // Bob removes the lost tablet. Alice's directory (cached) still lists
    // it: her message goes to bob at once, nothing is queued for the tablet.
    bob.remove_device(&tablet_id).await.unwrap();
    alice
        .send(to("bob"), b"two".to_vec(), 600, None)
        .await
        .unwrap();
    let report = alice.flush().await.unwrap();
    assert_eq!((report.sent, report.failed.len()), (1, 0), "{report:?}");
    let relay = env.relay_db();
    assert_eq!(
        count(
            &relay,
            &format!("SELECT count(*) FROM envelopes WHERE recipient = '{tablet_id}'")
        ),
        0
    );
    assert_eq!(
        count(
            &relay,
            &format!("SELECT count(*) FROM devices WHERE device_id = '{tablet_id}'")
        ),
        0
    );
    bob.receive(0).await.unwrap();
    assert_eq!(
        bodies(&bob, &dm).await,
        vec![("one".into(), false), ("two".into(), false)]
    );
    assert!(tablet.receive(0).await.is_err(), "the tablet is out");
    assert_eq!(bodies(&tablet, &dm).await, vec![("one".into(), false)]);

    // A removed device cannot register again, even with the link it had.
    let newcomer = occ_core::crypto::Account::generate(0).unwrap();
    let link = bob
        .link_device(&newcomer.device_id().to_hex())
        .await
        .unwrap();
    let api = env.api();
    api.start_session(None).await.unwrap();
    let register = || {
        occ_core::sync::registration_with_link(&newcomer, "bob", None, real_now_ms(), Some(&link))
            .unwrap()
    };
    api.register(&register()).await.unwrap();
    bob.remove_device(&newcomer.device_id().to_hex())
        .await
        .unwrap();
    match api.register(&register()).await.unwrap_err() {
        TransportError::Rejected { status, .. } => assert_eq!(status, 409),
        other => panic!("{other:?}"),
    }
}

/// A device linked after a sender looked its user up (the sender's
/// directory is cached) still gets the sender's next message: the relay
/// refuses a batch sealed for a stale device list and the sender seals again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_linked_a_moment_ago_gets_the_next_message() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let team = alice.new_thread_id().await.unwrap();
    let ops = |members: &[&str]| Recipient::Thread {
        id: team.clone(),
        members: members.iter().map(|s| s.to_string()).collect(),
    };
    alice
        .send(ops(&["bob"]), b"before".to_vec(), 600, None)
        .await
        .unwrap();
    alice
        .send(to("bob"), b"direct before".to_vec(), 600, None)
        .await
        .unwrap();
    assert_eq!(alice.flush().await.unwrap().sent, 2);
    bob.receive(0).await.unwrap();
    // Bob links a tablet; alice's cached directory does not know it, and
    // her own second device joins too.
    let tablet = linked(&env, &bob, "bob-tablet", "bob").await;
    let alice2 = linked(&env, &alice, "alice2", "alice").await;
    alice
        .send(ops(&[]), b"after".to_vec(), 600, None)
        .await
        .unwrap();
    alice
        .send(to("bob"), b"direct after".to_vec(), 600, None)
        .await
        .unwrap();
    let report = alice.flush().await.unwrap();
    assert_eq!((report.sent, report.failed.len()), (2, 0), "{report:?}");
    for c in [&bob, &tablet, &alice2] {
        c.receive(0).await.unwrap();
    }
    let dm = direct_thread_id("alice", "bob");
    assert_eq!(
        bodies(&tablet, &team).await,
        vec![("after".to_string(), false)]
    );
    assert_eq!(
        bodies(&tablet, &dm).await,
        vec![("direct after".to_string(), false)]
    );
    assert_eq!(
        bodies(&alice2, &team).await,
        vec![("after".to_string(), true)]
    );
    assert_eq!(
        bodies(&bob, &team).await,
        vec![("before".to_string(), false), ("after".to_string(), false)]
    );
}

/// Links vouch only within a user and only from a trusted device: the relay
/// operator files devices under bob and alice whose links come from a
/// device of another user, from an untrusted device of the same user, or
/// from nobody; none of them is trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_from_an_untrusted_or_foreign_device_vouches_for_nothing() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let _bob = env.client("bob").await;
    let carol_raw = env.raw_device("carol").await;
    alice
        .send(to("bob"), b"hi".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    // Alice trusts carol's device (first use).
    let mut carol_raw = carol_raw;
    let alice_device = alice.device_id().await.unwrap();
    carol_raw
        .send_payload(&alice_device, &carol_raw.text("alice", "c1", "hello"))
        .await;
    alice.receive(0).await.unwrap();

    let rogue = || occ_core::crypto::Account::generate(0).unwrap();
    let (r1, r2, r3, r4, r5) = (rogue(), rogue(), rogue(), rogue(), rogue());
    let now = real_now_ms();
    let id = |a: &occ_core::crypto::Account| a.device_id().0;
    // bob: r1 unlinked; r2 linked by r1 (untrusted); r3 linked by carol's
    // trusted device, claiming user bob.
    let by_r1 = link_device(r1.identity(), "bob", &id(&r2), now).encode();
    let by_carol = link_device(carol_raw.account.identity(), "bob", &id(&r3), now).encode();
    // alice's own user: r4 unlinked; r5 linked by r4.
    let by_r4 = link_device(r4.identity(), "alice", &id(&r5), now).encode();
    let db = common::relay_db_rw(&env.relay_dir);
    for (a, user, link) in [
        (&r1, "bob", None),
        (&r2, "bob", Some(by_r1)),
        (&r3, "bob", Some(by_carol)),
        (&r4, "alice", None),
        (&r5, "alice", Some(by_r4)),
    ] {
        let req =
            occ_core::sync::registration_with_link(a, user, None, now, link.as_deref()).unwrap();
        db.execute(
            "INSERT INTO devices (device_id, user, identity, spk_id, spk, spk_signature, created_ms, registered_ms, link)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
            rusqlite::params![
                a.device_id().to_hex(),
                user,
                req.identity.as_slice(),
                req.signed_prekey.id,
                req.signed_prekey.key.as_slice(),
                req.signed_prekey.signature.as_slice(),
                now,
                link
            ],
        )
        .unwrap();
    }
    alice.close();
    drop(alice);
    let alice = env.reopen("alice");
    alice
        .send(to("bob"), b"held".to_vec(), 600, None)
        .await
        .unwrap();
    let report = alice.flush().await.unwrap();
    assert_eq!((report.sent, report.pending), (0, 1), "{report:?}");
    let trust = |list: &occ_core::ContactIdentity, a: &occ_core::crypto::Account| {
        list.devices
            .iter()
            .find(|d| d.device_id == a.device_id().to_hex())
            .map(|d| d.trust)
    };
    let bobs = alice.contact_identity("bob").await.unwrap();
    for r in [&r1, &r2, &r3] {
        assert_eq!(trust(&bobs, r), Some(occ_core::Trust::Pending));
    }
    // Alice's own rogue devices get none of her copies (a message to carol
    // goes out, to carol only).
    alice
        .send(to("carol"), b"to carol".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    for r in [&r4, &r5] {
        assert_eq!(
            count(
                &env.relay_db(),
                &format!(
                    "SELECT count(*) FROM envelopes WHERE recipient = '{}'",
                    r.device_id().to_hex()
                )
            ),
            0
        );
    }
}

/// A device of alice's own user (linked, so trusted) cannot file a copy
/// under a direct conversation with herself or with a name that is no user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_own_copy_for_a_conversation_with_oneself_or_nobody_is_refused() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let mut tablet = env.raw_device_linked("alice", Some(&alice)).await;
    let alice_device = alice.device_id().await.unwrap();
    let copy = |title: &str| {
        let Payload::Text(mut t) = Payload::parse(&tablet.text("bob", "m1", "x")).unwrap() else {
            unreachable!()
        };
        t.thread_title = title.into();
        t.thread_id = direct_thread_id("alice", title);
        Payload::Text(t).encode().to_vec()
    };
    let (to_self, to_nobody, to_bob) = (copy("alice"), copy("Not A User"), copy("bob"));
    for p in [&to_self, &to_nobody, &to_bob] {
        tablet.send_payload(&alice_device, p).await;
    }
    let r = alice.receive(0).await.unwrap();
    let kinds: Vec<_> = r.items.iter().map(|i| i.outcome.clone()).collect();
    for k in &kinds[..2] {
        assert!(
            matches!(
                k,
                ItemOutcome::Rejected {
                    kind: SecurityEventKind::Misrouted,
                    ..
                }
            ),
            "{kinds:?}"
        );
    }
    assert!(matches!(kinds[2], ItemOutcome::Stored { .. }), "{kinds:?}");
    let copy = alice
        .messages(&direct_thread_id("alice", "bob"), 10)
        .await
        .unwrap();
    assert!(copy[0].outgoing);
}

/// The relay checks a registration's link names the registering device,
/// and refuses a send to a device it never knew (one removed is skipped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_refuses_a_link_for_another_device_and_a_send_to_nobody() {
    let env = Env::start().await;
    let bob = env.client("bob").await;
    let meant = occ_core::crypto::Account::generate(0).unwrap();
    let other = occ_core::crypto::Account::generate(0).unwrap();
    let link = bob.link_device(&meant.device_id().to_hex()).await.unwrap();
    let api = env.api();
    api.start_session(None).await.unwrap();
    let req =
        occ_core::sync::registration_with_link(&other, "bob", None, real_now_ms(), Some(&link))
            .unwrap();
    match api.register(&req).await.unwrap_err() {
        TransportError::Rejected { status, .. } => assert_eq!(status, 400),
        e => panic!("{e:?}"),
    }
    // A well-formed envelope (made for bob) addressed to a device the relay
    // never knew.
    let mut eve = env.raw_device("eve").await;
    let bob_device = bob.device_id().await.unwrap();
    eve.send_payload(&bob_device, b"x").await;
    let valid = common::last_envelope_to(&env, &bob_device);
    let nobody = "ab".repeat(32);
    assert!(matches!(
        eve.send_envelope(&nobody, &valid).await,
        Err(TransportError::NotFound(_))
    ));
}
