//! The encrypted store from the outside: retention under clock changes,
//! profiles on a shared device, crash safety, and bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::path::Path;
use std::sync::Arc;

use occ_core::retention::{Clock, DAY_MS, ManualClock, ServerTime};
use occ_core::store::{DbKey, Inserted, NewMessage, ProfileDirs, Store, StoreError};

const T0: i64 = 1_800_000_000_000;
const MIN: i64 = 60_000;

fn msg<'a>(id: &'a str, thread: &'a str, body: &'a [u8], ttl_expiry_ms: i64) -> NewMessage<'a> {
    NewMessage {
        id,
        thread_id: thread,
        sender: "alice",
        outgoing: false,
        body,
        sent_ms: T0,
        ttl_expiry_ms,
        read_timer_ms: None,
    }
}

fn ids(store: &Store, thread: &str) -> Vec<String> {
    let mut v: Vec<String> = store
        .thread_messages(thread, 1000, None)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    v.sort();
    v
}

/// Every read path, for one message id: is it visible anywhere?
fn visible(store: &Store, id: &str) -> bool {
    let in_page = store
        .thread_messages("t", 1000, None)
        .unwrap()
        .iter()
        .any(|m| m.id == id);
    let by_id = store.message(id).is_ok();
    let attachments = store.attachments_of(id).is_ok();
    assert_eq!(in_page, by_id, "page and by-id reads disagree for {id}");
    assert_eq!(by_id, attachments, "attachment listing disagrees for {id}");
    by_id
}

#[test]
fn expired_and_past_keep_period_messages_are_never_returned_whatever_the_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let profiles = ProfileDirs::with_clock(tmp.path().join("profiles"), clock.clone()).unwrap();
    let key = DbKey::generate().unwrap();
    let mut store = profiles.create("alice", &key).unwrap();
    store.set_keep_period_ms(DAY_MS).unwrap();
    store
        .insert_message(&msg("ttl", "t", b"short ttl", T0 + 10 * MIN))
        .unwrap();
    store
        .insert_message(&msg("keep", "t", b"long ttl", T0 + 30 * DAY_MS))
        .unwrap();
    let mut timed = msg("timer", "t", b"read timer", T0 + 30 * DAY_MS);
    timed.read_timer_ms = Some(5 * MIN);
    store.insert_message(&timed).unwrap();
    let att = store
        .add_attachment("ttl", "image/png", b"png bytes")
        .unwrap();
    assert!(visible(&store, "ttl") && visible(&store, "keep") && visible(&store, "timer"));

    // Opening starts the read timer.
    store.mark_read("timer").unwrap();
    clock.advance(6 * MIN);
    assert!(!visible(&store, "timer"));
    assert!(matches!(store.message("timer"), Err(StoreError::Expired)));
    assert!(matches!(store.mark_read("timer"), Err(StoreError::Expired)));

    // Clock forward past the TTL: gone from every read, before any purge.
    clock.advance(5 * MIN);
    assert!(!visible(&store, "ttl"));
    assert!(matches!(store.attachment(&att), Err(StoreError::Expired)));
    assert!(visible(&store, "keep"));
    assert_eq!(
        store.stored_message_count().unwrap(),
        3,
        "nothing purged yet"
    );

    // The user turns the device clock back an hour: nothing comes back.
    clock.set_wall(T0 - 60 * MIN);
    assert_eq!(
        clock.wall_ms(),
        T0 - 60 * MIN,
        "the device clock did go back"
    );
    assert!(!visible(&store, "ttl"));
    assert!(!visible(&store, "timer"));
    assert!(store.now_ms() >= T0 + 11 * MIN);

    // Across a restart with the clock still turned back: nothing comes back.
    drop(store);
    let store = profiles.open("alice", &key).unwrap();
    assert!(!visible(&store, "ttl"));
    assert!(!visible(&store, "timer"));
    assert!(visible(&store, "keep"));
    assert!(matches!(store.attachment(&att), Err(StoreError::Expired)));

    // Past the keep period (1 day) although its TTL is 30 days.
    clock.set_wall(T0);
    clock.advance(DAY_MS);
    assert!(!visible(&store, "keep"));
    clock.set_wall(T0);
    assert!(!visible(&store, "keep"));
    drop(store);
    let mut store = profiles.open("alice", &key).unwrap();
    assert!(!visible(&store, "keep"));

    // Lengthening the keep period does not revive it.
    store.set_keep_period_ms(20 * DAY_MS).unwrap();
    assert!(!visible(&store, "keep"));
    assert_eq!(store.stored_message_count().unwrap(), 0);

    // A relay redelivering a purged message cannot revive it either.
    assert_eq!(
        store
            .insert_message(&msg("keep", "t", b"long ttl", T0 + 30 * DAY_MS))
            .unwrap(),
        Inserted::Duplicate
    );
    assert!(!visible(&store, "keep"));
    // And a message that arrives already expired is not stored.
    assert_eq!(
        store.insert_message(&msg("late", "t", b"x", T0)).unwrap(),
        Inserted::Expired
    );
    assert_eq!(store.stored_message_count().unwrap(), 0);
}

#[test]
fn signed_server_time_moves_trusted_time_forward_only_within_bounds() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let key = DbKey::generate().unwrap();
    let mut store = Store::create(tmp.path(), &key, clock.clone()).unwrap();
    store
        .insert_message(&msg("a", "t", b"x", T0 + 10 * MIN))
        .unwrap();
    // The device clock is five minutes slow: the signed time is adopted.
    assert_eq!(
        store.observe_server_time(T0 + 5 * MIN).unwrap(),
        (ServerTime::Adopted, T0 + 5 * MIN)
    );
    assert!(store.message("a").is_ok());
    // An hour ahead is held back: the message stays.
    assert_eq!(
        store.observe_server_time(T0 + 60 * MIN).unwrap(),
        (ServerTime::Held { lead_ms: 55 * MIN }, T0 + 5 * MIN)
    );
    assert!(store.message("a").is_ok());
    // A minute later the relay tells the same story: now it is believed.
    clock.advance(MIN);
    assert_eq!(
        store.observe_server_time(T0 + 61 * MIN).unwrap(),
        (ServerTime::Corroborated, T0 + 61 * MIN)
    );
    assert!(store.message("a").is_err());
    assert_eq!(
        store.observe_server_time(T0).unwrap(),
        (ServerTime::Behind, T0 + 61 * MIN)
    );
    drop(store);
    let store = Store::open(tmp.path(), &key, clock).unwrap();
    assert!(store.now_ms() >= T0 + 61 * MIN);
    assert!(store.message("a").is_err());
}

#[test]
fn keep_period_is_capped_by_the_organisation() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let mut store = Store::create(tmp.path(), &DbKey::generate().unwrap(), clock).unwrap();
    store.set_org_max_keep_period_ms(7 * DAY_MS).unwrap();
    assert_eq!(store.keep_period_ms().unwrap(), 7 * DAY_MS);
    assert!(matches!(
        store.set_keep_period_ms(8 * DAY_MS),
        Err(StoreError::InvalidInput { .. })
    ));
    store.set_keep_period_ms(DAY_MS).unwrap();
    assert_eq!(store.keep_period_ms().unwrap(), DAY_MS);
    store.set_org_max_keep_period_ms(DAY_MS / 2).unwrap();
    assert_eq!(store.keep_period_ms().unwrap(), DAY_MS / 2);
    assert!(matches!(
        store.set_keep_period_ms(0),
        Err(StoreError::InvalidInput { .. })
    ));
}

#[test]
fn purge_reports_ids_and_counts_without_content() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let mut store = Store::create(tmp.path(), &DbKey::generate().unwrap(), clock.clone()).unwrap();
    store
        .insert_message(&msg("e1", "t", b"secret one", T0 + MIN))
        .unwrap();
    store
        .insert_message(&msg("e2", "t", b"secret two", T0 + MIN))
        .unwrap();
    store
        .insert_message(&msg("live", "t", b"stays", T0 + DAY_MS))
        .unwrap();
    store
        .add_attachment("e1", "text/plain", b"attached")
        .unwrap();
    clock.advance(2 * MIN);
    let report = store.purge().unwrap();
    let mut expired = report.expired_ids.clone();
    expired.sort();
    assert_eq!(expired, ["e1", "e2"]);
    assert_eq!(report.attachments, 1);
    assert_eq!(report.messages(), 2);
    assert!(!format!("{report:?}").contains("secret"));
    assert_eq!(ids(&store, "t"), ["live"]);
    // The purge log holds ids and counts, never content.
    let log = store.purge_log().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].at_ms, report.at_ms);
    assert_eq!((log[0].messages, log[0].attachments), (2, 1));
    let mut logged = log[0].message_ids.clone();
    logged.sort();
    assert_eq!(logged, ["e1", "e2"]);
    // A second purge finds nothing more, and logs nothing.
    assert_eq!(store.purge().unwrap().messages(), 0);
    assert_eq!(store.purge_log().unwrap().len(), 1);
}

#[test]
fn the_default_keep_period_is_thirty_days() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let mut store = Store::create(tmp.path(), &DbKey::generate().unwrap(), clock.clone()).unwrap();
    assert_eq!(store.keep_period_ms().unwrap(), 30 * 24 * 3600 * 1000);
    store
        .insert_message(&msg("old", "t", b"x", T0 + 60 * DAY_MS))
        .unwrap();
    clock.advance(30 * DAY_MS - 1);
    assert!(visible(&store, "old"), "still inside the keep period");
    clock.advance(1);
    assert!(!visible(&store, "old"), "exactly 30 days after arrival");
    let report = store.purge().unwrap();
    assert_eq!(report.kept_too_long_ids, ["old"]);
    assert!(report.expired_ids.is_empty());
    assert_eq!(store.purge_log().unwrap()[0].message_ids, ["old"]);
}

#[test]
fn profiles_share_nothing_and_wipe_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("device");
    let clock = Arc::new(ManualClock::new(T0));
    let profiles = ProfileDirs::with_clock(&root, clock.clone()).unwrap();
    let key_a = DbKey::generate().unwrap();
    let key_b = DbKey::generate().unwrap();
    let mut a = profiles.create("shift-a", &key_a).unwrap();
    let mut b = profiles.create("shift-b", &key_b).unwrap();
    a.insert_message(&msg("a1", "t", b"for shift A only", T0 + DAY_MS))
        .unwrap();
    a.add_attachment("a1", "text/plain", b"A's file").unwrap();
    b.insert_message(&msg("b1", "t", b"for shift B", T0 + DAY_MS))
        .unwrap();
    assert_eq!(profiles.list().unwrap(), ["shift-a", "shift-b"]);
    drop(a);

    // B's key does not open A, and says so clearly.
    assert!(matches!(
        profiles.open("shift-a", &key_b),
        Err(StoreError::WrongKey)
    ));
    assert!(matches!(
        profiles.create("shift-a", &key_b),
        Err(StoreError::AlreadyExists(_))
    ));

    profiles.wipe("shift-a").unwrap();
    let mut left = Vec::new();
    for e in walk(&root) {
        left.push(
            e.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    assert!(
        left.iter().all(|p| p.starts_with("shift-b")),
        "left after wipe: {left:?}"
    );
    assert!(!root.join("shift-a").exists());
    assert_eq!(profiles.list().unwrap(), ["shift-b"]);
    assert!(matches!(
        profiles.open("shift-a", &key_a),
        Err(StoreError::NotFound { .. })
    ));

    // B is intact, open or reopened.
    assert_eq!(b.message("b1").unwrap().body, b"for shift B");
    drop(b);
    let b = profiles.open("shift-b", &key_b).unwrap();
    assert_eq!(b.message("b1").unwrap().body, b"for shift B");

    // Names cannot escape the root.
    for bad in ["../x", "a/b", "", ".hidden", "x y"] {
        assert!(
            matches!(
                profiles.create(bad, &key_a),
                Err(StoreError::InvalidInput { .. })
            ),
            "{bad:?}"
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.clone());
        if p.is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

#[test]
fn rekey_changes_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let old = DbKey::generate().unwrap();
    let new = DbKey::generate().unwrap();
    let mut store = Store::create(tmp.path(), &old, clock.clone()).unwrap();
    store
        .insert_message(&msg("m", "t", b"survives rekey", T0 + DAY_MS))
        .unwrap();
    store.rekey(&new).unwrap();
    store
        .insert_message(&msg("n", "t", b"after rekey", T0 + DAY_MS))
        .unwrap();
    drop(store);
    assert!(matches!(
        Store::open(tmp.path(), &old, clock.clone()),
        Err(StoreError::WrongKey)
    ));
    let store = Store::open(tmp.path(), &new, clock).unwrap();
    assert_eq!(ids(&store, "t"), ["m", "n"]);
}

#[test]
fn bad_keys_directories_and_files_give_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let key = DbKey::generate().unwrap();
    // Missing directory.
    assert!(matches!(
        Store::open(&tmp.path().join("nope"), &key, clock.clone()),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        ProfileDirs::new(tmp.path().join("no/such/parent")),
        Err(StoreError::NotFound { .. })
    ));
    // A key of the wrong length.
    assert!(matches!(
        DbKey::from_slice(&[1; 31]),
        Err(StoreError::InvalidInput { .. })
    ));

    let profiles = ProfileDirs::with_clock(tmp.path().join("p"), clock.clone()).unwrap();
    let other_key = DbKey::generate().unwrap();
    let mut other = profiles.create("other", &other_key).unwrap();
    other
        .insert_message(&msg("o", "t", b"untouched", T0 + DAY_MS))
        .unwrap();
    drop(other);

    // A corrupt database file: the right key says "corrupt", a wrong key
    // still says "wrong key".
    let mut s = profiles.create("victim", &key).unwrap();
    s.insert_message(&msg("v", "t", b"x", T0 + DAY_MS)).unwrap();
    drop(s);
    let db = profiles.profile_dir("victim").unwrap().join("occ.db");
    let mut bytes = std::fs::read(&db).unwrap();
    for b in bytes.iter_mut().take(200) {
        *b ^= 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    assert!(matches!(
        profiles.open("victim", &key),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        profiles.open("victim", &other_key),
        Err(StoreError::WrongKey)
    ));
    // Damage past page 1: opening may succeed, reading reports corruption.
    let mut s = profiles.create("victim2", &key).unwrap();
    for i in 0..50 {
        s.insert_message(&msg(&format!("v{i}"), "t", &[7u8; 2000], T0 + DAY_MS))
            .unwrap();
    }
    drop(s);
    let db2 = profiles.profile_dir("victim2").unwrap().join("occ.db");
    let mut bytes = std::fs::read(&db2).unwrap();
    let n = bytes.len();
    for b in bytes[n / 2..n / 2 + 4096].iter_mut() {
        *b ^= 0xff;
    }
    std::fs::write(&db2, &bytes).unwrap();
    match profiles.open("victim2", &key) {
        Err(StoreError::Corrupt { .. }) => {}
        Ok(s) => {
            let r = (0..50)
                .map(|i| s.message(&format!("v{i}")))
                .find(|r| r.is_err());
            assert!(matches!(r, Some(Err(StoreError::Corrupt { .. }))), "{r:?}");
        }
        Err(e) => panic!("expected Corrupt, got {e:?}"),
    }
    // A file that is not a database at all.
    std::fs::write(&db, b"hello, I am not a database").unwrap();
    assert!(matches!(
        profiles.open("victim", &key),
        Err(StoreError::Corrupt { .. })
    ));

    // None of this touched the other profile.
    let other = profiles.open("other", &other_key).unwrap();
    assert_eq!(other.message("o").unwrap().body, b"untouched");
}

#[test]
fn invalid_messages_are_refused_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let mut store = Store::create(tmp.path(), &DbKey::generate().unwrap(), clock).unwrap();
    let big = vec![0u8; occ_core::store::messages::MAX_BODY_LEN + 1];
    let long_thread = "t".repeat(65);
    let bad = [
        msg("", "t", b"x", T0 + MIN),
        msg("has space", "t", b"x", T0 + MIN),
        msg("ok", "t/../x", b"x", T0 + MIN),
        msg("ok", "t", &big, T0 + MIN),
        msg("ok", &long_thread, b"x", T0 + MIN),
    ];
    for m in &bad {
        assert!(
            matches!(
                store.insert_message(m),
                Err(StoreError::InvalidInput { .. })
            ),
            "{m:?}"
        );
    }
    // A batch with one bad message stores nothing.
    let batch = [
        msg("good", "t", b"x", T0 + MIN),
        msg("bad id!", "t", b"x", T0 + MIN),
    ];
    assert!(store.insert_messages(&batch).is_err());
    assert_eq!(store.stored_message_count().unwrap(), 0);
    assert!(store.threads().unwrap().is_empty());
    assert!(matches!(
        store.add_attachment("missing", "text/plain", b"x"),
        Err(StoreError::NotFound { .. })
    ));
}

/// A real full disk: a 2 MiB tmpfs (needs root to mount; skipped otherwise).
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
fn a_full_disk_is_a_typed_error_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    let Some(_fs) = Tmpfs::mount(&mnt, "2m") else {
        eprintln!("skipping the tmpfs part: cannot mount (not root?)");
        return;
    };
    let clock = Arc::new(ManualClock::new(T0));
    let key = DbKey::generate().unwrap();
    let profiles = ProfileDirs::with_clock(&mnt, clock.clone()).unwrap();
    let mut store = profiles.create("full", &key).unwrap();
    let body = vec![b'z'; 16 * 1024];
    let mut stored = 0;
    let mut full = None;
    for i in 0..1000 {
        match store.insert_message(&msg(&format!("m{i}"), "t", &body, T0 + DAY_MS)) {
            Ok(Inserted::New) => stored += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    assert!(matches!(full, Some(StoreError::DiskFull)), "{full:?}");
    assert!(stored > 10);
    // Attachments on a full disk fail cleanly too, leaving no file behind.
    let att = store.add_attachment("m0", "video/mp4", &vec![1u8; 4 << 20]);
    assert!(matches!(att, Err(StoreError::DiskFull)), "{att:?}");
    let files = std::fs::read_dir(mnt.join("full/attachments"))
        .unwrap()
        .count();
    assert_eq!(files, 0);
    drop(store);
    // Creating another profile on the full disk fails without leaving debris.
    let _ = profiles.create("another", &DbKey::generate().unwrap());
    assert_eq!(profiles.list().unwrap(), ["full"]);
    // Everything acknowledged as stored is still there after reopening.
    let store = profiles.open("full", &key).unwrap();
    assert_eq!(store.stored_message_count().unwrap(), stored);
    assert_eq!(store.message("m0").unwrap().body, body);
}

#[test]
fn a_read_only_profile_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("ro");
    let Some(_fs) = Tmpfs::mount(&mnt, "8m") else {
        eprintln!("skipping: cannot mount (not root?)");
        return;
    };
    let clock = Arc::new(ManualClock::new(T0));
    let key = DbKey::generate().unwrap();
    let profiles = ProfileDirs::with_clock(&mnt, clock.clone()).unwrap();
    drop(profiles.create("p", &key).unwrap());
    let remount = std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(remount.success());
    let r = profiles.open("p", &key);
    assert!(matches!(r, Err(StoreError::ReadOnly { .. })), "{r:?}");
    assert!(matches!(
        profiles.create("q", &key),
        Err(StoreError::ReadOnly { .. })
    ));
}

/// Helper run as a child process by the kill test: writes whole messages (each
/// with a self-checking body, every third with an attachment) until killed.
#[test]
#[ignore = "child process of kill_test_every_reopen_holds_only_whole_messages"]
fn kill_test_child_writer() {
    let Ok(dir) = std::env::var("OCC_KILL_DIR") else {
        return;
    };
    let key = DbKey::from_slice(&hex_decode(&std::env::var("OCC_KILL_KEY").unwrap())).unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let mut store = Store::open(Path::new(&dir), &key, clock).unwrap();
    let start = store.stored_message_count().unwrap();
    for i in start.. {
        let id = format!("m{i}");
        let body = body_for(i);
        store
            .insert_message(&msg(&id, "t", &body, T0 + DAY_MS))
            .unwrap();
        if i % 3 == 0 {
            store
                .add_attachment(&id, "application/octet-stream", &body.repeat(20))
                .unwrap();
        }
    }
}

fn body_for(i: i64) -> Vec<u8> {
    let payload = format!("whole message {i} ").repeat(100).into_bytes();
    let sum: u64 = payload.iter().map(|&b| u64::from(b)).sum();
    let mut body = payload;
    body.extend_from_slice(format!("|{sum}").as_bytes());
    body
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn kill_test_every_reopen_holds_only_whole_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let key = DbKey::generate().unwrap();
    drop(Store::create(tmp.path(), &key, clock.clone()).unwrap());
    let key_hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut last_count = 0;
    let mut kills = 0;
    while kills < 60 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "kill_test_child_writer",
                "--ignored",
                "--test-threads=1",
            ])
            .env("OCC_KILL_DIR", tmp.path())
            .env("OCC_KILL_KEY", &key_hex)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(20 + seed % 120));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;

        let store = Store::open(tmp.path(), &key, clock.clone()).unwrap();
        let count = store.stored_message_count().unwrap();
        assert!(count >= last_count, "acknowledged messages were lost");
        let page = store.thread_messages("t", 100_000, None).unwrap();
        assert_eq!(page.len() as i64, count);
        for m in &page {
            let i: i64 = m.id[1..].parse().unwrap();
            assert_eq!(m.body, body_for(i), "message {i} is not whole");
            for a in store.attachments_of(&m.id).unwrap() {
                assert_eq!(store.attachment(&a.id).unwrap(), body_for(i).repeat(20));
            }
        }
        // No attachment file without its row survives a reopen.
        let files = std::fs::read_dir(tmp.path().join("attachments"))
            .unwrap()
            .count();
        let rows: usize = page
            .iter()
            .map(|m| store.attachments_of(&m.id).unwrap().len())
            .sum();
        assert_eq!(files, rows);
        last_count = count;
    }
    assert!(last_count > 0, "the child never wrote anything");
}
