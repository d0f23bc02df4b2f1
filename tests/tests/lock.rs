//! The shared-device lock and the locked push path, against a real relay:
//! a profile opens only with its user's credential; guessing is counted,
//! slowed and ends in a wipe; a locked profile's push notices are verified
//! without its key and show nothing of it; the push endpoint follows the
//! distributor.

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

use common::{Env, Recorder, to};
use occ_core::client::credential::{FIRST_BACKOFF_MS, FREE_ATTEMPTS};
use occ_core::{
    ClientEvent, Error, LockOptions, ManualClock, ProfileManager, SecurityEventKind,
    WithdrawReason, verify_notice_locked,
};
use occ_relay::push_sink::PushSink;

const PIN: &[u8] = b"482913";
const SECRET: &[u8] = b"from-the-platform-keystore-0001";

fn fast(max_failures: u32) -> LockOptions {
    LockOptions {
        max_failures,
        cost: 10,
    }
}

fn files_of(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_locked_profile_opens_only_with_its_credential_and_the_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let m =
        ProfileManager::with_clock(tmp.path().join("p").to_str().unwrap(), clock.clone()).unwrap();
    let alice = m
        .create_locked("alice", PIN.to_vec(), SECRET.to_vec(), fast(10))
        .unwrap();
    alice.close();
    // Nothing on disk holds the key in the clear: the lock file is the
    // only way in, and it needs both the PIN and the platform's secret.
    let dir = tmp.path().join("p").join("alice");
    assert!(files_of(&dir).contains(&"credential.lock".to_string()));
    let e = m
        .unlock("alice", b"000000".to_vec(), SECRET.to_vec())
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::WrongCredential {
                attempts_left: 9,
                retry_after_ms: 0
            }
        ),
        "{e:?}"
    );
    let e = m
        .unlock("alice", PIN.to_vec(), b"another device".to_vec())
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::WrongCredential {
                attempts_left: 8,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(m.lock_status("alice").unwrap().failures, 2);
    let alice = m.unlock("alice", PIN.to_vec(), SECRET.to_vec()).unwrap();
    assert!(!alice.is_closed());
    assert_eq!(
        m.lock_status("alice").unwrap().failures,
        0,
        "a success resets"
    );
    // Open once: a second unlock while it is open is refused, not counted.
    assert!(matches!(
        m.unlock("alice", PIN.to_vec(), SECRET.to_vec()),
        Err(Error::InvalidInput { .. })
    ));
    alice.close();
    // The credential changes; the old one no longer opens it.
    m.change_credential(
        "alice",
        PIN.to_vec(),
        b"new-pass".to_vec(),
        SECRET.to_vec(),
        SECRET.to_vec(),
    )
    .unwrap();
    assert!(matches!(
        m.unlock("alice", PIN.to_vec(), SECRET.to_vec()),
        Err(Error::WrongCredential { .. })
    ));
    m.unlock("alice", b"new-pass".to_vec(), SECRET.to_vec())
        .unwrap()
        .close();
    // A lock file moved to another profile opens nothing there.
    m.create_locked("bob", PIN.to_vec(), SECRET.to_vec(), fast(10))
        .unwrap()
        .close();
    std::fs::copy(
        dir.join("credential.lock"),
        tmp.path().join("p/bob/credential.lock"),
    )
    .unwrap();
    assert!(matches!(
        m.unlock("bob", b"new-pass".to_vec(), SECRET.to_vec()),
        Err(Error::WrongCredential { .. })
    ));
    // Bad input: short credentials are refused at creation; a profile
    // without a credential says so.
    assert!(matches!(
        m.create_locked("carol", b"123".to_vec(), Vec::new(), fast(10)),
        Err(Error::InvalidInput { .. })
    ));
    assert!(!m.exists("carol"), "nothing left behind");
}

#[test]
fn guessing_backs_off_on_the_boot_clock_and_the_last_failure_wipes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("p");
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let m = ProfileManager::with_clock(root.to_str().unwrap(), clock.clone()).unwrap();
    m.create_locked("alice", PIN.to_vec(), SECRET.to_vec(), fast(6))
        .unwrap()
        .close();
    let wrong = || {
        m.unlock("alice", b"111111".to_vec(), SECRET.to_vec())
            .unwrap_err()
    };
    for i in 1..FREE_ATTEMPTS {
        assert!(
            matches!(
                wrong(),
                Error::WrongCredential {
                    retry_after_ms: 0,
                    ..
                }
            ),
            "free attempt {i}"
        );
    }
    assert!(matches!(
        wrong(),
        Error::WrongCredential { attempts_left: 3, retry_after_ms } if retry_after_ms == FIRST_BACKOFF_MS
    ));
    // Too soon: not tried, not counted — the right PIN too.
    assert!(matches!(
        m.unlock("alice", PIN.to_vec(), SECRET.to_vec()),
        Err(Error::TryLater { retry_after_ms }) if retry_after_ms == FIRST_BACKOFF_MS
    ));
    assert_eq!(m.lock_status("alice").unwrap().failures, FREE_ATTEMPTS);
    // Setting the device clock forward does not skip the wait.
    clock.set_wall(1_900_000_000_000);
    assert!(matches!(wrong(), Error::TryLater { .. }));
    clock.advance(i64::try_from(FIRST_BACKOFF_MS).unwrap());
    assert!(matches!(
        wrong(),
        Error::WrongCredential { attempts_left: 2, retry_after_ms } if retry_after_ms == 2 * FIRST_BACKOFF_MS
    ));
    clock.advance(i64::try_from(2 * FIRST_BACKOFF_MS).unwrap());
    assert!(matches!(
        wrong(),
        Error::WrongCredential {
            attempts_left: 1,
            ..
        }
    ));
    clock.advance(i64::try_from(4 * FIRST_BACKOFF_MS).unwrap());
    assert!(matches!(wrong(), Error::ProfileWiped));
    assert!(!m.exists("alice"));
    assert!(!root.join("alice").exists(), "files and wrapped key gone");
    assert!(matches!(
        m.unlock("alice", PIN.to_vec(), SECRET.to_vec()),
        Err(Error::NotFound { .. } | Error::InvalidInput { .. })
    ));
}

#[tokio::test]
async fn a_profile_set_never_to_wipe_counts_but_never_wipes_and_the_credential_changes_off_thread()
{
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let m =
        ProfileManager::with_clock(tmp.path().join("p").to_str().unwrap(), clock.clone()).unwrap();
    m.create_locked_async("gil".into(), PIN.to_vec(), SECRET.to_vec(), fast(0))
        .await
        .unwrap()
        .close();
    for _ in 0..12 {
        let e = m
            .unlock("gil", b"999999".to_vec(), SECRET.to_vec())
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::WrongCredential {
                    attempts_left: u32::MAX,
                    ..
                }
            ),
            "{e:?}"
        );
        clock.advance(i64::try_from(occ_core::client::credential::MAX_BACKOFF_MS).unwrap());
    }
    assert!(m.exists("gil"), "never wiped");
    assert_eq!(m.lock_status("gil").unwrap().failures, 12);
    m.change_credential_async(
        "gil".into(),
        PIN.to_vec(),
        b"next-pass".to_vec(),
        SECRET.to_vec(),
        SECRET.to_vec(),
    )
    .await
    .unwrap();
    assert!(matches!(
        m.unlock_async("gil".into(), PIN.to_vec(), SECRET.to_vec())
            .await,
        Err(Error::WrongCredential { .. })
    ));
    clock.advance(i64::try_from(occ_core::client::credential::MAX_BACKOFF_MS).unwrap());
    let gil = m
        .unlock_async("gil".into(), b"next-pass".to_vec(), SECRET.to_vec())
        .await
        .unwrap();
    assert!(!gil.is_closed());
    assert_eq!(m.lock_status_async("gil".into()).await.unwrap().failures, 0);
}

#[test]
fn a_hostile_lock_file_is_refused_without_exhausting_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("p");
    let m = ProfileManager::new(root.to_str().unwrap()).unwrap();
    m.create_locked("alice", PIN.to_vec(), SECRET.to_vec(), fast(10))
        .unwrap()
        .close();
    let path = root.join("alice/credential.lock");
    let good = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["log_n"] = 40.into();
    std::fs::write(&path, v.to_string()).unwrap();
    assert!(m.unlock("alice", PIN.to_vec(), SECRET.to_vec()).is_err());
    std::fs::write(&path, "{not json").unwrap();
    assert!(matches!(
        m.unlock("alice", PIN.to_vec(), SECRET.to_vec()),
        Err(Error::Corrupt { .. })
    ));
    std::fs::write(&path, vec![b' '; 1 << 20]).unwrap();
    assert!(matches!(
        m.unlock("alice", PIN.to_vec(), SECRET.to_vec()),
        Err(Error::Corrupt { .. })
    ));
    // At the limit already (a wipe that failed, a policy that lowered it):
    // not even the right PIN is tried.
    let mut at_limit = v.clone();
    at_limit["log_n"] = 10.into();
    at_limit["failures"] = 10.into();
    std::fs::write(&path, at_limit.to_string()).unwrap();
    assert!(matches!(
        m.unlock("alice", PIN.to_vec(), SECRET.to_vec()),
        Err(Error::ProfileWiped)
    ));
    assert!(!m.exists("alice"));
}

#[tokio::test]
async fn a_locked_profiles_notice_is_verified_without_its_key_and_shows_nothing_of_it() {
    let env = Env::start().await;
    let push = PushSink::start(&env.ca()).await.unwrap();
    let alice = env.client("alice").await;
    let mut opts = env.options("bob");
    opts.push_endpoint = Some(push.url.clone());
    let bob = env.client_with("bob", opts).await;
    let bob_dir = env.profile_dir("bob");
    // Bob locks his profile; alice writes.
    bob.close();
    alice
        .send(to("bob"), b"MARKER-shift handover".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    let bodies = {
        push.wait_for(1, Duration::from_secs(5)).await;
        push.raw_bodies()
    };
    let body = bodies.last().unwrap().clone();
    let dir = bob_dir.to_str().unwrap();
    let shown = verify_notice_locked(dir, &body).unwrap();
    assert_eq!(shown.message_class, "text");
    assert!(
        !format!("{shown:?}").contains("alice"),
        "no sender: {shown:?}"
    );
    // The same notice again is a replay; a forged one is refused.
    assert!(matches!(
        verify_notice_locked(dir, &body),
        Err(Error::Untrusted { .. })
    ));
    let mut forged: serde_json::Value = serde_json::from_slice(&body).unwrap();
    forged["notice"]["count"] = 7.into();
    let forged = serde_json::to_vec(&forged).unwrap();
    assert!(matches!(
        verify_notice_locked(dir, &forged),
        Err(Error::Untrusted { .. })
    ));
    assert!(matches!(
        verify_notice_locked(dir, b"garbage"),
        Err(Error::InvalidInput { .. })
    ));
    // The record of the locked time holds no content, no sender (user or
    // device) and nothing the forger chose.
    let record = std::fs::read_to_string(bob_dir.join("push-locked.json")).unwrap();
    let alice_device = alice.device_id().await.unwrap();
    assert!(
        !record.contains("MARKER") && !record.contains("alice") && !record.contains(&alice_device),
        "{record}"
    );
    // At the next unlock it is imported: refusals become security events
    // (audited), the shown notice stays a replay with the key too.
    let bob = env.reopen("bob");
    assert!(!bob_dir.join("push-locked.json").exists());
    let events = bob.security_events().await.unwrap();
    let forged_seen = events
        .iter()
        .filter(|e| e.kind == SecurityEventKind::ForgedNotice && e.detail.contains("while locked"))
        .count();
    assert_eq!(forged_seen, 3, "{events:?}");
    assert!(matches!(
        bob.verify_notice(body.clone()).await,
        Err(Error::Untrusted { .. })
    ));
    // And the message itself arrives with the next sync.
    assert_eq!(bob.sync().await.unwrap().received.received().len(), 1);
}

#[tokio::test]
async fn a_flood_of_forged_notices_while_locked_is_bounded_and_evicts_no_shown_notice() {
    let env = Env::start().await;
    let push = PushSink::start(&env.ca()).await.unwrap();
    let alice = env.client("alice").await;
    let mut opts = env.options("bob");
    opts.push_endpoint = Some(push.url.clone());
    let bob = env.client_with("bob", opts).await;
    bob.close();
    let dir = env.profile_dir("bob");
    let d = dir.to_str().unwrap();
    alice
        .send(to("bob"), b"x".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    push.wait_for(1, Duration::from_secs(5)).await;
    let shown = push.raw_bodies().last().unwrap().clone();
    verify_notice_locked(d, &shown).unwrap();
    let forged = br#"{"notice":{"message_id":"00","recipient_device":"00","sender_device":"00","thread":null,"size":1,"expires_ms":1,"class":"text","sent_ms":1,"urgent":false,"count":1},"signature":"AA"}"#;
    for _ in 0..(occ_core::push::MAX_LOCKED_RECORDS + 100) {
        assert!(verify_notice_locked(d, forged).is_err());
    }
    assert!(
        std::fs::metadata(dir.join("push-locked.json"))
            .unwrap()
            .len()
            < 64 * 1024
    );
    // The flood did not push the shown notice out: it is still a replay.
    assert!(matches!(
        verify_notice_locked(d, &shown),
        Err(Error::Untrusted { .. })
    ));
    let bob = env.reopen("bob");
    let events = bob.security_events().await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.detail.contains("101 more refused notices not recorded")),
        "what was dropped is counted: {:?}",
        events.last()
    );
}

#[tokio::test]
async fn a_notice_seen_while_open_is_a_replay_once_locked() {
    let env = Env::start().await;
    let push = PushSink::start(&env.ca()).await.unwrap();
    let alice = env.client("alice").await;
    let mut opts = env.options("bob");
    opts.push_endpoint = Some(push.url.clone());
    let bob = env.client_with("bob", opts).await;
    alice
        .send(to("bob"), b"x".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    push.wait_for(1, Duration::from_secs(5)).await;
    let body = push.raw_bodies().last().unwrap().clone();
    bob.verify_notice(body.clone()).await.unwrap();
    bob.close();
    assert!(matches!(
        verify_notice_locked(env.profile_dir("bob").to_str().unwrap(), &body),
        Err(Error::Untrusted { .. })
    ));
}

#[tokio::test]
async fn the_push_endpoint_follows_the_distributor() {
    let env = Env::start().await;
    let first = PushSink::start(&env.ca()).await.unwrap();
    let second = PushSink::start(&env.ca()).await.unwrap();
    let alice = env.client("alice").await;
    let mut opts = env.options("bob");
    opts.push_endpoint = Some(first.url.clone());
    let bob = env.client_with("bob", opts).await;
    assert_eq!(
        bob.enrolment().await.unwrap().unwrap().push_endpoint,
        Some(first.url.clone())
    );
    bob.set_push_endpoint(Some(second.url.clone()))
        .await
        .unwrap();
    assert_eq!(
        bob.enrolment().await.unwrap().unwrap().push_endpoint,
        Some(second.url.clone())
    );
    alice
        .send(to("bob"), b"hi".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    assert_eq!(second.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    assert_eq!(first.notices().len(), 0, "the old endpoint hears nothing");
    // An endpoint off the relay's gateways is refused and changes nothing.
    let e = bob
        .set_push_endpoint(Some("https://attacker.example/p".into()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
    assert!(matches!(
        bob.set_push_endpoint(Some("http://localhost/p".into()))
            .await,
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(
        bob.enrolment().await.unwrap().unwrap().push_endpoint,
        Some(second.url.clone())
    );
    bob.set_push_endpoint(None).await.unwrap();
    alice
        .send(to("bob"), b"again".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(second.notices().len(), 1, "no endpoint, no push");
}

#[tokio::test]
async fn closing_and_wiping_withdraw_every_notification_and_end_subscriptions() {
    let env = Env::start().await;
    let bob = env.client("bob").await;
    let events = Arc::new(Recorder::default());
    bob.set_listener(Some(events.clone())).unwrap();
    let pull = bob.subscribe();
    bob.close_soon();
    assert!(bob.is_closed(), "closed at once");
    assert!(matches!(bob.threads().await, Err(Error::Closed)));
    let expected = [
        ClientEvent::WithdrawNotifications {
            message_ids: vec![],
            relay_message_ids: vec![],
            all: true,
            reason: WithdrawReason::Locked,
        },
        ClientEvent::ProfileClosed,
    ];
    assert_eq!(events.events(), expected);
    assert_eq!(pull.next().await, Some(expected[0].clone()));
    assert_eq!(pull.next().await, Some(expected[1].clone()));
    assert_eq!(pull.next().await, None, "the subscription ended");

    // A wipe through the manager while open tells its subscribers too.
    let tmp = tempfile::tempdir().unwrap();
    let m = ProfileManager::new(tmp.path().join("p").to_str().unwrap()).unwrap();
    let carol = m.create("carol", vec![7; 32]).unwrap();
    let sub = carol.subscribe();
    m.wipe("carol").unwrap();
    assert!(carol.is_closed());
    assert_eq!(
        sub.next().await,
        Some(ClientEvent::WithdrawNotifications {
            message_ids: vec![],
            relay_message_ids: vec![],
            all: true,
            reason: WithdrawReason::Wiped,
        })
    );
    assert_eq!(sub.next().await, Some(ClientEvent::ProfileWiped));
    assert_eq!(sub.next().await, None);
}
