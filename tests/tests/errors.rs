//! Every variant of the public `Error`, produced by the real condition it
//! names, through the `Client` and `ProfileManager` an app uses — plus bad
//! input of every kind: typed errors, nothing stored, no panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Env, to};
use occ_core::store::DbKey;
use occ_core::{Client, Clock, EnrolOptions, Error, ManualClock, ProfileManager, Recipient};

fn key() -> Vec<u8> {
    DbKey::generate().unwrap().as_bytes().to_vec()
}

fn new_profile(root: &Path, name: &str) -> (String, Vec<u8>) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.to_str().unwrap().to_string();
    let k = key();
    Client::create(&dir, k.clone()).unwrap().close();
    (dir, k)
}

/// A tmpfs of `size` (needs root to mount; `None` otherwise).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn wrong_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = new_profile(tmp.path(), "p");
    assert_eq!(Client::open(&dir, key()).unwrap_err(), Error::WrongKey);
}

#[test]
fn corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, k) = new_profile(tmp.path(), "p");
    let db = Path::new(&dir).join("occ.db");
    let mut bytes = std::fs::read(&db).unwrap();
    for b in &mut bytes[100..400] {
        *b ^= 0x5a;
    }
    std::fs::write(&db, bytes).unwrap();
    let r = Client::open(&dir, k);
    assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
}

#[test]
fn schema_too_new() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, k) = new_profile(tmp.path(), "p");
    let conn = rusqlite::Connection::open(Path::new(&dir).join("occ.db")).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{}'\"; PRAGMA user_version = 999;",
        hex::encode(&k)
    ))
    .unwrap();
    drop(conn);
    let r = Client::open(&dir, k);
    assert!(
        matches!(r, Err(Error::SchemaTooNew { found: 999, .. })),
        "{r:?}"
    );
}

#[tokio::test]
async fn disk_full() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    let Some(_fs) = Tmpfs::mount(&mnt, "2m") else {
        eprintln!("skipping: cannot mount a tmpfs (not root?)");
        return;
    };
    let profiles = ProfileManager::new(mnt.to_str().unwrap()).unwrap();
    let client = profiles.create("p", key()).unwrap();
    // Fill the disk to the last byte.
    let mut filler = std::fs::File::create(mnt.join("filler")).unwrap();
    let block = vec![0u8; 64 * 1024];
    use std::io::Write;
    while filler.write_all(&block).is_ok() {}
    let _ = filler.write_all(&[0u8; 1]);
    // Writes may first reuse space the WAL already holds (after a
    // checkpoint it restarts from its beginning), so keep writing until the
    // disk refuses one.
    let mut result = Ok(());
    for secs in 1..5000u64 {
        result = client.set_keep_period_secs(86_400 + secs).await;
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(Error::DiskFull));
    // Nothing acknowledged was lost: space freed, the last good value holds.
    drop(filler);
    std::fs::remove_file(mnt.join("filler")).unwrap();
    assert!(client.settings().await.unwrap().keep_period_secs > 86_400);
}

#[tokio::test]
async fn read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("ro");
    let Some(_fs) = Tmpfs::mount(&mnt, "8m") else {
        eprintln!("skipping: cannot mount a tmpfs (not root?)");
        return;
    };
    let profiles = ProfileManager::new(mnt.to_str().unwrap()).unwrap();
    let k = key();
    profiles.create("p", k.clone()).unwrap().close();
    assert!(
        std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&mnt)
            .status()
            .unwrap()
            .success()
    );
    let r = profiles.open("p", k);
    assert!(matches!(r, Err(Error::ReadOnly { .. })), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_mismatch_untrusted_network_not_enrolled() {
    let mut env = Env::start().await;
    // A pin that is not the relay's: typed, with what the relay presented.
    let c = env.new_client("a");
    let mut opts = env.options("a");
    opts.relay.pins = vec![format!("sha256/{}", "A".repeat(43) + "=")];
    match c.enrol(opts).await {
        Err(Error::PinMismatch { host, presented }) => {
            assert_eq!(host, "localhost");
            assert!(presented.contains(&env.pin), "{presented:?}");
        }
        other => panic!("{other:?}"),
    }
    // A chain nobody vouches for (the dev CA is not among the public roots).
    let mut opts = env.options("a");
    opts.relay.ca_pem = None;
    let r = c.enrol(opts).await;
    assert!(matches!(r, Err(Error::Untrusted { .. })), "{r:?}");
    // Not enrolled: nothing can be sent or synced.
    assert_eq!(
        c.send(to("bob"), b"x".to_vec(), 60, None).await,
        Err(Error::NotEnrolled)
    );
    assert_eq!(c.sync().await.unwrap_err(), Error::NotEnrolled);
    assert_eq!(c.outbox_len().await.unwrap(), 0);
    // The relay is down: a network error, retryable.
    let b = env.client("b").await;
    let _addr = env.stop_relay().await;
    let r = b.connect().await;
    assert!(
        matches!(&r, Err(e @ Error::Network { .. }) if e.is_transient()),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_not_found_invalid_input_closed() {
    let env = Env::start().await;
    let clock = Arc::new(ManualClock::new(now_ms()));
    let dir = env.profile_dir("alice");
    std::fs::create_dir_all(&dir).unwrap();
    let alice = Client::create_with_clock(dir.to_str().unwrap(), key(), clock.clone()).unwrap();
    alice.enrol(env.options("alice")).await.unwrap();
    let _bob = env.client("bob").await;
    let events = Arc::new(common::Recorder::default());
    alice.set_listener(Some(events.clone())).unwrap();
    let id = alice
        .send(to("bob"), b"brief".to_vec(), 1, None)
        .await
        .unwrap();
    assert_eq!(alice.message(&id).await.unwrap().id, id);
    clock.advance(1_500);
    assert_eq!(alice.message(&id).await.unwrap_err(), Error::Expired);
    // It expired before it could be sent: the purge drops it from the
    // outbox and tells the app it was never delivered.
    let report = alice.purge().await.unwrap();
    assert_eq!(report.undelivered_ids, std::slice::from_ref(&id));
    assert_eq!(report.expired_ids, std::slice::from_ref(&id));
    assert_eq!(alice.outbox_len().await.unwrap(), 0);
    assert!(
        events
            .events()
            .contains(&occ_core::ClientEvent::DeliveryFailed {
                message_id: id.clone(),
                reason: "its TTL passed before it could be sent".into(),
            })
    );
    assert!(matches!(
        alice.message("no-such-message").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        alice.send(to("bob"), b"x".to_vec(), 0, None).await,
        Err(Error::InvalidInput { .. })
    ));
    alice.close();
    alice.close();
    assert_eq!(alice.threads().await.unwrap_err(), Error::Closed);
    assert_eq!(
        alice.send(to("bob"), b"x".to_vec(), 60, None).await,
        Err(Error::Closed)
    );
    assert_eq!(alice.receive(0).await.unwrap_err(), Error::Closed);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A clock that panics on demand: a bug below the facade.
struct PanickingClock {
    armed: AtomicBool,
    inner: ManualClock,
}

impl Clock for PanickingClock {
    fn wall_ms(&self) -> i64 {
        assert!(!self.armed.load(Ordering::SeqCst), "clock failure");
        self.inner.wall_ms()
    }

    fn monotonic_ms(&self) -> i64 {
        self.inner.monotonic_ms()
    }
}

#[tokio::test]
async fn internal_a_panic_below_the_facade_is_contained() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, k) = new_profile(tmp.path(), "p");
    let clock = Arc::new(PanickingClock {
        armed: AtomicBool::new(false),
        inner: ManualClock::new(now_ms()),
    });
    let client = Client::open_with_clock(&dir, k, clock.clone()).unwrap();
    clock.armed.store(true, Ordering::SeqCst);
    let r = client.now_ms().await;
    assert!(matches!(r, Err(Error::Internal { .. })), "{r:?}");
    let r = client.set_keep_period_secs(60).await;
    assert!(matches!(r, Err(Error::Internal { .. })), "{r:?}");
    // The client survives its bug: nothing half-done, still usable.
    clock.armed.store(false, Ordering::SeqCst);
    assert!(client.threads().await.unwrap().is_empty());
    client.set_keep_period_secs(60).await.unwrap();
    assert_eq!(client.settings().await.unwrap().keep_period_secs, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_typed_stores_nothing_and_never_panics() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let _bob = env.client("bob").await;
    let thread = |id: &str| Recipient::Thread {
        id: id.into(),
        members: vec!["bob".into()],
    };
    let huge = u64::MAX;
    let cases: Vec<(Recipient, Vec<u8>, u64, Option<u64>)> = vec![
        (to("bob"), b"x".to_vec(), 0, None),
        (to("bob"), b"x".to_vec(), huge, None),
        (to("bob"), b"x".to_vec(), 30 * 86_400 + 1, None),
        (to("bob"), b"x".to_vec(), 60, Some(0)),
        (to("bob"), b"x".to_vec(), 60, Some(huge)),
        (to("bob"), b"x".to_vec(), 60, Some(huge / 1000 + 1)),
        (to("bob"), vec![b'x'; 2 << 20], 60, None),
        (to("Bob"), b"x".to_vec(), 60, None),
        (to("alice"), b"x".to_vec(), 60, None),
        (thread("x y"), b"x".to_vec(), 60, None),
        (thread("dm-0123"), b"x".to_vec(), 60, None),
        (thread(&"t".repeat(65)), b"x".to_vec(), 60, None),
        (
            Recipient::Thread {
                id: "ops".into(),
                members: vec!["Not A User".into()],
            },
            b"x".to_vec(),
            60,
            None,
        ),
    ];
    for (to, text, ttl, timer) in cases {
        let what = format!("{to:?} ttl={ttl} timer={timer:?} len={}", text.len());
        let r = alice.send(to, text, ttl, timer).await;
        assert!(
            matches!(r, Err(Error::InvalidInput { .. })),
            "{what}: {r:?}"
        );
    }
    assert!(matches!(
        alice.set_keep_period_secs(huge).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        alice.set_keep_period_secs(0).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        alice.messages("no-such-thread", 10).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        alice.messages("not a thread id", 10).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        alice.remove_member("no-such-thread", "bob").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        alice.mark_read("no-such-message").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        alice.fetch("../../x").await,
        Err(Error::InvalidInput { .. })
    ));
    let mut bad_pins = env.options("carol");
    bad_pins.relay.pins = vec!["md5/nothing".into()];
    assert!(matches!(
        env.new_client("carol").enrol(bad_pins).await,
        Err(Error::InvalidInput { .. })
    ));
    // Nothing was stored.
    assert_eq!(alice.outbox_len().await.unwrap(), 0);
    assert!(alice.threads().await.unwrap().is_empty());
    assert_eq!(
        alice.settings().await.unwrap().keep_period_secs,
        30 * 86_400
    );
    // A profile key of the wrong length, an unusable profile name.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    assert!(matches!(
        Client::create(dir, vec![1; 31]),
        Err(Error::InvalidInput { .. })
    ));
    let profiles = ProfileManager::new(dir).unwrap();
    assert!(matches!(
        profiles.create("../escape", key()),
        Err(Error::InvalidInput { .. })
    ));
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[test]
fn one_profile_is_open_once_per_process_and_wiping_closes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let profiles = ProfileManager::new(tmp.path().to_str().unwrap()).unwrap();
    let k = key();
    let a = profiles.create("alice", k.clone()).unwrap();
    assert!(matches!(
        profiles.open("alice", k.clone()),
        Err(Error::InvalidInput { .. })
    ));
    let b = profiles.create("bob", key()).unwrap();
    assert_eq!(profiles.list().unwrap(), ["alice", "bob"]);
    profiles.wipe("alice").unwrap();
    assert!(a.is_closed());
    assert!(!b.is_closed());
    assert_eq!(profiles.list().unwrap(), ["bob"]);
    assert!(!tmp.path().join("alice").exists());
    assert!(matches!(
        profiles.open("alice", k),
        Err(Error::NotFound { .. })
    ));
    let _ = EnrolOptions::default();
}
