//! The organisation's signed policy and device commands: obeyed when the
//! organisation signed them and they are newer; refused (and audited) when
//! anyone else signed them, when they are older, or when the relay operator
//! serves another device's command.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Env, certify_and_install, member, org_key, relay_db_rw, to};
use ed25519_dalek::SigningKey;
use occ_core::{Client, ClientEvent, Decision, Error, ItemOutcome, SecurityEventKind};
use occ_protocol::org::{ClassRule, CommandAction, DeviceCommand, OrgPolicy, VolumeAlert};
use occ_relay::admin;
use occ_relay::push_sink::PushSink;

struct Org {
    env: Env,
    org: SigningKey,
    push: PushSink,
    alice: Client,
    bob: Client,
}

/// Alice and bob, certified members of one organisation; bob has a push
/// endpoint.
async fn org() -> Org {
    let env = Env::start().await;
    let org = org_key();
    let push = PushSink::start(&env.ca()).await.unwrap();
    let alice = member(&env, &org, "alice").await;
    let mut opts = env.options("bob");
    opts.org_key = Some(hex::encode(org.verifying_key().to_bytes()));
    opts.push_endpoint = Some(push.url.clone());
    let bob = env.client_with("bob", opts).await;
    certify_and_install(&org, &alice, "alice").await;
    certify_and_install(&org, &bob, "bob").await;
    Org {
        env,
        org,
        push,
        alice,
        bob,
    }
}

fn policy(version: u64) -> OrgPolicy {
    OrgPolicy {
        version,
        ..OrgPolicy::default()
    }
}

fn signed_policy(key: &SigningKey, p: &OrgPolicy) -> Vec<u8> {
    admin::sign(
        key,
        occ_protocol::org::OrgDocKind::Policy,
        serde_json::to_vec(p).unwrap(),
    )
    .encode()
}

fn command(key: &SigningKey, action: CommandAction, user: &str, device: &str, at: i64) -> Vec<u8> {
    admin::sign(
        key,
        occ_protocol::org::OrgDocKind::Command,
        serde_json::to_vec(&DeviceCommand {
            action,
            user: user.into(),
            device_id: device.into(),
            issued_ms: at,
        })
        .unwrap(),
    )
    .encode()
}

async fn kinds(c: &Client) -> Vec<String> {
    c.audit_entries(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

fn n_of(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

async fn version_of(c: &Client) -> Option<u64> {
    c.policy_json()
        .await
        .unwrap()
        .map(|j| serde_json::from_str::<OrgPolicy>(&j).unwrap().version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_signed_by_another_key_or_older_than_the_held_one_is_refused() {
    let o = org().await;
    let events = Arc::new(common::Recorder::default());
    o.bob.set_listener(Some(events.clone())).unwrap();
    assert_eq!(version_of(&o.bob).await, None);
    admin::publish_policy(&o.env.relay_dir, &o.org, &policy(2)).unwrap();
    assert!(!o.bob.org_sync().await.unwrap());
    assert_eq!(version_of(&o.bob).await, Some(2));
    assert!(events.events().contains(&ClientEvent::PolicyChanged));

    // Signed by someone else (version 9 would win if it were believed).
    let stranger = org_key();
    let forged = signed_policy(&stranger, &policy(9));
    assert!(matches!(
        o.bob.apply_policy(forged.clone()).await,
        Err(Error::Untrusted { .. })
    ));
    // Older than the held one, though the organisation signed it.
    let old = signed_policy(&o.org, &policy(1));
    assert!(matches!(
        o.bob.apply_policy(old.clone()).await,
        Err(Error::Untrusted { .. })
    ));
    // The relay operator serves a forged one, then an old one.
    let forged = signed_policy(&stranger, &policy(8));
    let mut older = policy(1);
    older.issued_ms = 5;
    let old = signed_policy(&o.org, &older);
    for doc in [&forged, &old] {
        relay_db_rw(&o.env.relay_dir)
            .execute("UPDATE org_policy SET doc = ?1", [doc])
            .unwrap();
        o.bob.org_sync().await.unwrap();
        assert_eq!(version_of(&o.bob).await, Some(2));
    }
    assert_eq!(n_of(&kinds(&o.bob).await, "org_doc_refused"), 4);
    // A newer one from the organisation is taken.
    assert!(
        o.bob
            .apply_policy(signed_policy(&o.org, &policy(3)))
            .await
            .unwrap()
    );
    assert_eq!(version_of(&o.bob).await, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_class_is_neither_offered_nor_downloaded_nor_stored() {
    let o = org().await;
    let mut p = policy(1);
    p.classes = vec![ClassRule {
        class: "alert".into(),
        download: false,
        export: false,
        devices: vec![],
    }];
    admin::publish_policy(&o.env.relay_dir, &o.org, &p).unwrap();
    o.bob.org_sync().await.unwrap();

    o.alice
        .send_urgent(to("bob"), b"denied alert".to_vec(), 600, None)
        .await
        .unwrap();
    o.alice.flush().await.unwrap();
    let n = o
        .push
        .wait_for(1, Duration::from_secs(5))
        .await
        .pop()
        .unwrap();
    let prompt = occ_core::verify_notice(
        o.env.profile_dir("bob").to_str().unwrap(),
        o.env.key_of("bob").as_bytes().to_vec(),
        serde_json::to_vec(&n).unwrap(),
    )
    .unwrap();
    assert_eq!(prompt.message_class, "alert");
    assert!(prompt.urgent);
    assert!(matches!(prompt.decision, Decision::Deny { .. }));
    assert!(matches!(
        o.bob.download(&n.notice.message_id).await,
        Err(Error::PolicyDenied { .. })
    ));
    // Through the inbox it is refused too (the class is end-to-end: the
    // relay cannot relabel it to slip it past the policy).
    let report = o.bob.receive(0).await.unwrap();
    assert!(report.items.iter().any(|i| matches!(
        i.outcome,
        ItemOutcome::Rejected {
            kind: SecurityEventKind::PolicyDenied,
            ..
        }
    )));
    assert!(report.received().is_empty());
    // An ordinary text is still delivered.
    o.alice
        .send(to("bob"), b"plain".to_vec(), 600, None)
        .await
        .unwrap();
    o.alice.flush().await.unwrap();
    assert_eq!(o.bob.receive(0).await.unwrap().received().len(), 1);
    assert!(n_of(&kinds(&o.bob).await, "policy_denied") >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_volume_alert_fires_at_n_downloads_and_not_at_n_minus_one() {
    let o = org().await;
    let mut p = policy(1);
    p.download_alert = Some(VolumeAlert {
        count: 3,
        minutes: 10,
    });
    admin::publish_policy(&o.env.relay_dir, &o.org, &p).unwrap();
    o.bob.org_sync().await.unwrap();
    let events = Arc::new(common::Recorder::default());
    o.bob.set_listener(Some(events.clone())).unwrap();
    for i in 0..3 {
        o.alice
            .send(to("bob"), format!("m{i}").into_bytes(), 600, None)
            .await
            .unwrap();
    }
    o.alice.flush().await.unwrap();
    let bob_device = o.bob.device_id().await.unwrap();
    let ids: Vec<String> = {
        let db = o.env.relay_db();
        let mut stmt = db
            .prepare("SELECT id FROM envelopes WHERE recipient = ?1 ORDER BY seq")
            .unwrap();
        stmt.query_map([&bob_device], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(ids.len(), 3);
    let alerts = |e: &Recorder| {
        e.events()
            .iter()
            .filter(|e| matches!(e, ClientEvent::VolumeAlert { .. }))
            .count()
    };
    use common::Recorder;
    o.bob.download(&ids[0]).await.unwrap();
    o.bob.download(&ids[1]).await.unwrap();
    assert_eq!(alerts(&events), 0, "not at N-1");
    assert_eq!(n_of(&kinds(&o.bob).await, "volume_alert"), 0);
    o.bob.download(&ids[2]).await.unwrap();
    assert_eq!(alerts(&events), 1, "at N");
    assert_eq!(n_of(&kinds(&o.bob).await, "volume_alert"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_bounds_of_the_policy_hold_when_sending() {
    let o = org().await;
    let mut p = policy(1);
    p.min_ttl_secs = Some(60);
    p.max_ttl_secs = Some(3600);
    p.max_keep_secs = Some(7200);
    assert!(
        o.alice
            .apply_policy(signed_policy(&o.org, &p))
            .await
            .unwrap()
    );
    for bad in [30, 7200] {
        assert!(matches!(
            o.alice.send(to("bob"), b"x".to_vec(), bad, None).await,
            Err(Error::PolicyDenied { .. })
        ));
    }
    o.alice
        .send(to("bob"), b"x".to_vec(), 600, None)
        .await
        .unwrap();
    let s = o.alice.settings().await.unwrap();
    assert_eq!(s.org_max_keep_period_secs, Some(7200));
    assert!(s.keep_period_secs <= 7200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_and_wipe_from_the_organisation_are_obeyed_and_nobody_elses() {
    let o = org().await;
    let events = Arc::new(common::Recorder::default());
    o.bob.set_listener(Some(events.clone())).unwrap();
    let bob_device = o.bob.device_id().await.unwrap();
    let alice_device = o.alice.device_id().await.unwrap();
    let stranger = org_key();
    let t0 = common::real_now_ms();

    // Signed by anyone else: stored by the relay, refused by the device.
    admin::store_doc(
        &o.env.relay_dir,
        &command(&stranger, CommandAction::Lock, "bob", &bob_device, t0),
    )
    .unwrap();
    o.bob.org_sync().await.unwrap();
    assert!(!o.bob.is_locked().await.unwrap());

    // The organisation's lock is obeyed at the next contact.
    admin::issue_command(
        &o.env.relay_dir,
        &o.org,
        &DeviceCommand {
            action: CommandAction::Lock,
            user: "bob".into(),
            device_id: bob_device.clone(),
            issued_ms: t0 + 1,
        },
    )
    .unwrap();
    o.bob.sync().await.unwrap();
    assert!(o.bob.is_locked().await.unwrap());
    assert!(
        events
            .events()
            .contains(&ClientEvent::Locked { locked: true })
    );
    assert!(matches!(
        o.bob.threads().await,
        Err(Error::PolicyDenied { .. })
    ));
    let thread = occ_core::sync::direct_thread_id("alice", "bob");
    assert!(matches!(
        o.bob.messages(&thread, 10).await,
        Err(Error::PolicyDenied { .. })
    ));
    assert!(matches!(
        o.bob.send(to("alice"), b"x".to_vec(), 600, None).await,
        Err(Error::PolicyDenied { .. })
    ));

    // An unlock by a stranger, and alice's (older) unlock moved to bob's
    // queue by the relay operator, change nothing.
    admin::store_doc(
        &o.env.relay_dir,
        &command(&stranger, CommandAction::Unlock, "bob", &bob_device, t0 + 5),
    )
    .unwrap();
    admin::store_doc(
        &o.env.relay_dir,
        &command(
            &o.org,
            CommandAction::Unlock,
            "alice",
            &alice_device,
            t0 + 6,
        ),
    )
    .unwrap();
    relay_db_rw(&o.env.relay_dir)
        .execute(
            "UPDATE org_commands SET device_id = ?1 WHERE device_id = ?2",
            [&bob_device, &alice_device],
        )
        .unwrap();
    o.bob.org_sync().await.unwrap();
    assert!(o.bob.is_locked().await.unwrap());
    assert_eq!(n_of(&kinds(&o.bob).await, "org_doc_refused"), 3);

    // The organisation unlocks; a replay of its old lock changes nothing.
    admin::store_doc(
        &o.env.relay_dir,
        &command(&o.org, CommandAction::Unlock, "bob", &bob_device, t0 + 10),
    )
    .unwrap();
    admin::store_doc(
        &o.env.relay_dir,
        &command(&o.org, CommandAction::Lock, "bob", &bob_device, t0 + 1),
    )
    .unwrap();
    o.bob.org_sync().await.unwrap();
    assert!(!o.bob.is_locked().await.unwrap());
    o.bob.threads().await.unwrap();

    // A wipe by a stranger is refused; the organisation's is obeyed.
    admin::store_doc(
        &o.env.relay_dir,
        &command(&stranger, CommandAction::Wipe, "bob", &bob_device, t0 + 20),
    )
    .unwrap();
    assert!(!o.bob.org_sync().await.unwrap());
    assert!(o.env.profile_dir("bob").join("occ.db").exists());
    admin::store_doc(
        &o.env.relay_dir,
        &command(&o.org, CommandAction::Wipe, "bob", &bob_device, t0 + 21),
    )
    .unwrap();
    let entries_before = o.bob.audit_entries(0, 100_000).await.unwrap().len() as i64;
    assert!(o.bob.org_sync().await.unwrap());
    assert!(o.bob.is_closed());
    // The relay holds a countersigned head that includes the wipe entry.
    let head: i64 = o
        .env
        .relay_db()
        .query_row(
            "SELECT seq FROM audit_heads WHERE device_id = ?1",
            [&bob_device],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        head,
        entries_before + 1,
        "the last entry, `wipe`, is countersigned"
    );
    assert!(events.events().contains(&ClientEvent::ProfileWiped));
    let left: Vec<_> = std::fs::read_dir(o.env.profile_dir("bob"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        Client::open(
            o.env.profile_dir("bob").to_str().unwrap(),
            o.env.key_of("bob").as_bytes().to_vec()
        )
        .is_err()
    );
}
