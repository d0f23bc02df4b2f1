//! Background sync: messages arrive with no calls from the app, delivery
//! resumes after the relay dies and comes back, and `stop()` is prompt.
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

use common::{Env, Recorder, to};
use occ_core::{ClientEvent, SyncOptions};

fn quick() -> SyncOptions {
    SyncOptions {
        long_poll_ms: 2_000,
        purge_interval_ms: 500,
        max_retry_ms: 400,
    }
}

fn received(events: &Recorder, text_id: &str) -> bool {
    events.events().iter().any(
        |e| matches!(e, ClientEvent::MessagesReceived { messages } if messages.iter().any(|m| m.message_id == text_id)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_sync_delivers_survives_a_relay_restart_and_stops_promptly() {
    let mut env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let alice_events = Arc::new(Recorder::default());
    let bob_events = Arc::new(Recorder::default());
    alice.set_listener(Some(alice_events.clone())).unwrap();
    bob.set_listener(Some(bob_events.clone())).unwrap();
    let alice_sync = alice.start_sync(quick()).unwrap();
    let bob_sync = bob.start_sync(quick()).unwrap();

    // The app only calls send; everything else happens in the background.
    let first = alice
        .send(to("bob"), b"first".to_vec(), 600, None)
        .await
        .unwrap();
    assert!(
        bob_events
            .wait_for(10, |_| received(&bob_events, &first))
            .await
    );
    assert!(
        alice_events
            .wait_for(
                5,
                |e| matches!(e, ClientEvent::MessageSent { message_id } if *message_id == first)
            )
            .await
    );
    assert!(
        bob_events
            .wait_for(5, |e| matches!(
                e,
                ClientEvent::ConnectionChanged {
                    connected: true,
                    ..
                }
            ))
            .await
    );

    // The relay dies: both notice; a message queued meanwhile goes out once
    // the relay is back (both re-verify it and resume on their own).
    let addr = env.stop_relay().await;
    assert!(
        bob_events
            .wait_for(10, |e| matches!(
                e,
                ClientEvent::ConnectionChanged {
                    connected: false,
                    ..
                }
            ))
            .await
    );
    let second = alice
        .send(to("bob"), b"while the relay was down".to_vec(), 600, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.start_relay_at(addr).await;
    assert!(
        bob_events
            .wait_for(20, |_| received(&bob_events, &second))
            .await,
        "{:?}",
        bob_events.events()
    );
    assert!(bob_events.events().iter().rev().any(|e| matches!(
        e,
        ClientEvent::ConnectionChanged {
            connected: true,
            ..
        }
    )));

    // stop() returns at once and the tasks end promptly, mid long-poll.
    let t = Instant::now();
    bob_sync.stop();
    assert!(t.elapsed() < Duration::from_millis(50));
    tokio::time::timeout(Duration::from_secs(1), bob_sync.stopped())
        .await
        .expect("background sync stopped within a second");
    assert!(!bob_sync.is_running());
    // Nothing arrives by itself any more; an explicit receive still works,
    // and nothing was left half-done.
    let third = alice
        .send(to("bob"), b"after stop".to_vec(), 600, None)
        .await
        .unwrap();
    assert!(
        alice_events
            .wait_for(
                10,
                |e| matches!(e, ClientEvent::MessageSent { message_id } if *message_id == third)
            )
            .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!received(&bob_events, &third));
    let r = bob.receive(0).await.unwrap();
    assert_eq!(r.received().len(), 1);
    assert_eq!(r.rejected(), 0);
    drop(alice_sync);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_client_ends_its_background_sync_and_later_calls_fail_closed() {
    let env = Env::start().await;
    let bob = env.client("bob").await;
    let handle = bob.start_sync(quick()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    bob.close();
    tokio::time::timeout(Duration::from_secs(1), handle.stopped())
        .await
        .expect("closing stops background sync");
    assert!(matches!(bob.threads().await, Err(occ_core::Error::Closed)));
    assert!(matches!(
        bob.start_sync(quick()),
        Err(occ_core::Error::Closed)
    ));
    // The profile can be opened again at once.
    let bob = env.reopen("bob");
    assert!(bob.threads().await.unwrap().is_empty());
}

/// Background sync's 25-second long-poll never makes the app wait: a
/// pull-to-refresh `sync()` returns at once, and
/// a message both paths see is stored and announced once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_sync_never_waits_behind_the_long_poll() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let events = Arc::new(Recorder::default());
    bob.set_listener(Some(events.clone())).unwrap();
    let started = Instant::now();
    let _sync = bob.start_sync(SyncOptions::default()).unwrap();
    assert!(
        events
            .wait_for(5, |e| matches!(
                e,
                ClientEvent::ConnectionChanged {
                    connected: true,
                    ..
                }
            ))
            .await
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "connection state is known at once"
    );
    tokio::time::sleep(Duration::from_millis(300)).await; // the long-poll is waiting
    let t = Instant::now();
    bob.sync().await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    let id = alice
        .send(to("bob"), b"race".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    let t = Instant::now();
    bob.sync().await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(events.wait_for(5, |_| received(&events, &id)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let announced = events
        .events()
        .iter()
        .filter(
            |e| matches!(e, ClientEvent::MessagesReceived { messages } if messages.iter().any(|m| m.message_id == id)),
        )
        .count();
    assert_eq!(announced, 1);
    assert_eq!(
        bob.messages(&occ_core::sync::direct_thread_id("alice", "bob"), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}
