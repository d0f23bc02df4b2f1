//! Urgent alerts: receipts back to the sender, escalation at the deadline,
//! late acknowledgements, and receipts from someone the alert was not for.
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

use common::Env;
use occ_core::{ClientEvent, Recipient, SecurityEventKind};
use occ_protocol::payload::{Payload, Receipt, ReceiptState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_acknowledge_one_is_offline_escalation_fires_and_the_late_ack_arrives() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let carol = env.client("carol").await;
    let dave = env.client("dave").await;
    let events = Arc::new(common::Recorder::default());
    alice.set_listener(Some(events.clone())).unwrap();

    let thread = alice.new_thread_id().await.unwrap();
    let members = vec!["bob".to_string(), "carol".into(), "dave".into()];
    let to = Recipient::Thread {
        id: thread.clone(),
        members,
    };
    let id = alice
        .send_urgent(to, b"fire on level 3".to_vec(), 3600, Some(3))
        .await
        .unwrap();
    let sent_at = common::real_now_ms();
    alice.flush().await.unwrap();

    // Bob and carol are online: they receive (a delivered receipt goes back
    // by itself), open it and acknowledge; dave's phone is off.
    let alice_device = alice.device_id().await.unwrap();
    // Carol's reply is as long as a reply may be.
    let longest = "y".repeat(occ_protocol::payload::MAX_REPLY_LEN);
    for (c, reply) in [
        (&bob, Some("on my way".to_string())),
        (&carol, Some(longest.clone())),
    ] {
        let got = c.receive(0).await.unwrap().received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].message_id, id, "every device derives the same id");
        let m = c.mark_read(&id).await.unwrap();
        assert!(m.urgent);
        assert!(m.ack_by_ms.is_some());
        c.mark_read(&id).await.unwrap(); // a second opening sends nothing more
        assert!(matches!(
            c.acknowledge(&id, Some("x".repeat(257))).await,
            Err(occ_core::Error::InvalidInput { .. })
        ));
        c.acknowledge(&id, reply).await.unwrap();
        c.flush().await.unwrap();
        let acks: Vec<String> = c
            .audit_entries(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "acknowledged")
            .map(|e| e.detail)
            .collect();
        assert_eq!(acks, ["with a reply"], "one entry, for the acknowledgement");
    }
    // Delivered, read, acknowledged from each: six receipts, no more.
    let queued = common::count(
        &env.relay_db(),
        &format!("SELECT count(*) FROM envelopes WHERE recipient = '{alice_device}'"),
    );
    assert_eq!(queued, 6);
    alice.sync().await.unwrap();
    let r = alice.receipts(&id).await.unwrap();
    let users: Vec<&str> = r.iter().map(|s| s.user.as_str()).collect();
    assert_eq!(users, ["bob", "carol", "dave"]);
    for s in &r[..2] {
        let (d, rd, a) = (
            s.delivered_ms.unwrap(),
            s.read_ms.unwrap(),
            s.acknowledged_ms.unwrap(),
        );
        assert!(sent_at - 5_000 <= d && d <= rd && rd <= a, "{s:?}");
    }
    assert_eq!(r[0].reply.as_deref(), Some("on my way"));
    assert_eq!(r[1].reply.as_deref(), Some(longest.as_str()));
    assert_eq!(
        (r[2].delivered_ms, r[2].read_ms, r[2].acknowledged_ms),
        (None, None, None)
    );
    // Not before the deadline...
    assert_eq!(alice.check_alerts().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    // ...then once, naming dave only.
    assert_eq!(alice.check_alerts().await.unwrap(), 1);
    assert_eq!(alice.check_alerts().await.unwrap(), 0);
    let escalations: Vec<_> = events
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::AlertEscalated {
                message_id,
                unacknowledged,
                ..
            } => Some((message_id, unacknowledged)),
            _ => None,
        })
        .collect();
    assert_eq!(escalations, vec![(id.clone(), vec!["dave".to_string()])]);

    // Dave comes online and acknowledges late; alice hears it.
    assert_eq!(dave.receive(0).await.unwrap().received().len(), 1);
    dave.acknowledge(&id, Some("sorry, was driving".into()))
        .await
        .unwrap();
    dave.flush().await.unwrap();
    alice.sync().await.unwrap();
    let r = alice.receipts(&id).await.unwrap();
    assert!(r[2].acknowledged_ms.is_some());
    assert!(r[2].delivered_ms.is_some());
    assert!(events.events().contains(&ClientEvent::ReceiptReceived {
        message_id: id.clone(),
        user: "dave".into(),
        state: "acknowledged".into(),
    }));

    // The timeline keeps it all in order, without content.
    let timeline = alice.timeline(&thread).await.unwrap();
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"sent"));
    let escalated = kinds.iter().position(|k| *k == "escalated").unwrap();
    let dave_ack = timeline
        .iter()
        .position(|e| {
            e.kind == "receipt" && e.subject == "dave" && e.detail.starts_with("acknowledged")
        })
        .unwrap();
    assert!(escalated < dave_ack);
    assert_eq!(kinds.iter().filter(|k| **k == "receipt").count(), 3 + 3 + 2);
    for e in &timeline {
        assert!(!e.detail.contains("fire on level"));
        assert!(!e.detail.contains("on my way"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_from_someone_the_alert_was_not_for_are_refused() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    env.client("bob").await;
    let id = alice
        .send_urgent(common::to("bob"), b"only bob".to_vec(), 600, Some(600))
        .await
        .unwrap();
    alice.flush().await.unwrap();
    let thread = occ_core::sync::direct_thread_id("alice", "bob");
    let receipt = |message_id: &str| {
        Payload::Receipt(Receipt {
            message_id: message_id.into(),
            thread_id: thread.clone(),
            state: ReceiptState::Acknowledged,
            at_ms: 0,
            reply: None,
        })
        .encode()
        .to_vec()
    };
    let alice_device = alice.device_id().await.unwrap();
    // Mallory (registered on the relay) claims to have acknowledged, and
    // acknowledges a message alice never sent.
    let mut mallory = env.raw_device("mallory").await;
    mallory.open_session(&alice_device).await;
    mallory.send_payload(&alice_device, &receipt(&id)).await;
    mallory
        .send_payload(&alice_device, &receipt("0123456789abcdef0123456789abcdef"))
        .await;
    let report = alice.receive(0).await.unwrap();
    let refused: Vec<SecurityEventKind> = report
        .items
        .iter()
        .filter_map(|i| match &i.outcome {
            occ_core::ItemOutcome::Rejected { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        refused,
        [
            SecurityEventKind::NonMember,
            SecurityEventKind::InvalidPayload
        ]
    );
    let r = alice.receipts(&id).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].acknowledged_ms, None);
}
