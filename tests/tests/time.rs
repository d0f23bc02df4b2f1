//! Trusted time under attack: a relay whose signed time runs far ahead, and
//! the holder of a device who turns its clock back while the app is closed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::sync::Arc;

use common::{Env, real_now_ms, to};
use occ_core::retention::{CORROBORATION_DELAY_MS, DAY_MS};
use occ_core::store::DbKey;
use occ_core::{Client, Error, ManualClock, SecurityEventKind};

fn key() -> Vec<u8> {
    DbKey::generate().unwrap().as_bytes().to_vec()
}

/// Alice's device believes it is a year earlier than the relay says: to her
/// the relay's genuinely signed time is a year ahead — exactly what a relay
/// that signs a forged time would show. It is not adopted (a message she
/// holds is not purged), the jump is recorded and raised, and a second
/// answer a minute later that does not continue the same story is not
/// adopted either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_time_far_ahead_is_not_adopted() {
    let env = Env::start().await;
    let year_ago = real_now_ms() - 365 * DAY_MS;
    let clock = Arc::new(ManualClock::new(year_ago));
    let dir = env.profile_dir("alice");
    std::fs::create_dir_all(&dir).unwrap();
    let alice = Client::create_with_clock(dir.to_str().unwrap(), key(), clock.clone()).unwrap();
    let events = Arc::new(common::Recorder::default());
    alice.set_listener(Some(events.clone())).unwrap();
    let _bob = env.client("bob").await;
    alice.enrol(env.options("alice")).await.unwrap();
    // A message kept for an hour of her time: a year-ahead trusted time
    // would purge it.
    let id = alice
        .send(to("bob"), b"kept for an hour".to_vec(), 3600, None)
        .await
        .unwrap();
    let now = alice.now_ms().await.unwrap();
    assert!(now < year_ago + DAY_MS, "the year-ahead time was adopted");
    assert!(events.alerts().contains(&SecurityEventKind::TimeJump));
    let recorded = alice.security_events().await.unwrap();
    assert!(
        recorded
            .iter()
            .any(|e| e.kind == SecurityEventKind::TimeJump && e.detail.contains("ahead")),
        "{recorded:?}"
    );
    alice.purge().await.unwrap();
    assert_eq!(alice.message(&id).await.unwrap().id, id);

    // A minute later (by the device's monotonic clock) the relay answers
    // with a time that is not the first claim plus a minute: still held.
    let before = jumps(&alice).await;
    clock.advance(CORROBORATION_DELAY_MS + 1_000);
    alice.connect().await.unwrap();
    assert!(alice.now_ms().await.unwrap() < year_ago + DAY_MS);
    assert_eq!(alice.message(&id).await.unwrap().id, id);
    assert_eq!(jumps(&alice).await, before + 1);
}

async fn jumps(client: &Client) -> usize {
    client
        .security_events()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == SecurityEventKind::TimeJump)
        .count()
}

/// Bob receives a message with a one-hour TTL and closes the app. Two hours
/// pass in the same boot; the device clock is turned back three hours and
/// the app reopened (without network): the message is gone, because the
/// trusted time at boot plus the time since boot is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_back_while_closed_does_not_revive_a_message() {
    let env = Env::start().await;
    let start = real_now_ms();
    let clock = Arc::new(ManualClock::new(start));
    let dir = env.profile_dir("bob");
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.to_str().unwrap().to_string();
    let k = key();
    let bob = Client::create_with_clock(&dir, k.clone(), clock.clone()).unwrap();
    bob.enrol(env.options("bob")).await.unwrap();
    let alice = env.client("alice").await;
    let id = alice
        .send(to("bob"), b"one hour only".to_vec(), 3600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    bob.receive(0).await.unwrap();
    assert_eq!(bob.message(&id).await.unwrap().id, id);
    bob.close();
    drop(bob);

    clock.advance(2 * 3_600_000);
    clock.set_wall(start - 3 * 3_600_000);
    let bob = Client::open_with_clock(&dir, k.clone(), clock.clone()).unwrap();
    assert!(bob.now_ms().await.unwrap() >= start + 2 * 3_600_000);
    assert_eq!(bob.message(&id).await.unwrap_err(), Error::Expired);
    let report = bob.purge().await.unwrap();
    assert_eq!(report.expired_ids, vec![id.clone()]);
    bob.close();
    drop(bob);

    // Across a reboot the boot clock restarts: trusted time still never goes
    // below its persisted high-water mark.
    clock.reboot();
    clock.set_wall(start - DAY_MS);
    let bob = Client::open_with_clock(&dir, k, clock).unwrap();
    assert!(bob.now_ms().await.unwrap() >= start + 2 * 3_600_000);
    assert!(matches!(
        bob.message(&id).await,
        Err(Error::NotFound { .. })
    ));
}
