//! White-box store tests: what is physically on disk, before and after a
//! purge, read through SQLCipher's decrypted pages; schema migrations.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::retention::{DAY_MS, ManualClock};

const T0: i64 = 1_800_000_000_000;

pub(crate) fn store_at(dir: &Path, clock: Arc<ManualClock>) -> (Store, DbKey) {
    let key = DbKey::generate().unwrap();
    let store = Store::create(dir, &key, clock).unwrap();
    (store, key)
}

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

/// Every page of the database as SQLCipher decrypts it (free pages included),
/// read through the `sqlite_dbpage` virtual table.
fn decrypted_pages(store: &Store) -> Vec<u8> {
    let mut stmt = store
        .conn
        .prepare("SELECT data FROM sqlite_dbpage ORDER BY pgno")
        .unwrap();
    let pages = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap();
    pages.flat_map(|p| p.unwrap()).collect()
}

fn page_count(store: &Store) -> i64 {
    store
        .conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap()
}

fn free_pages(store: &Store) -> i64 {
    store
        .conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap()
}

/// The raw bytes of the database, WAL and shared-memory files.
fn raw_files(dir: &Path) -> Vec<u8> {
    ["occ.db", "occ.db-wal", "occ.db-shm"]
        .iter()
        .filter_map(|f| std::fs::read(dir.join(f)).ok())
        .flatten()
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn marker() -> Vec<u8> {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).unwrap();
    format!("PLAINTEXT-MARKER-{}", hex::encode(r)).into_bytes()
}

/// Writes marked and unmarked messages, expires the marked ones, purges with
/// `secure_delete` as given, and says whether the marker is still in any
/// decrypted page.
fn marker_survives_purge(secure_delete: bool) -> bool {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let (mut store, _key) = store_at(tmp.path(), clock.clone());
    let mark = marker();
    let short = T0 + 60_000;
    let long = T0 + 10 * DAY_MS;
    let mut big = mark.clone();
    big.extend(std::iter::repeat_n(b'x', 9000)); // spills into overflow pages
    big.extend_from_slice(&mark);
    for i in 0..200 {
        let id = format!("m{i}");
        let mut body = format!("message {i} ").into_bytes();
        if i % 2 == 0 {
            body.extend_from_slice(&mark);
        }
        let body = if i == 10 { big.clone() } else { body };
        let ttl = if i % 2 == 0 { short } else { long };
        assert_eq!(
            store.insert_message(&msg(&id, "t1", &body, ttl)).unwrap(),
            Inserted::New
        );
    }
    // Encrypted at rest: the marker is in no raw file, but it is in the
    // decrypted pages (so the page scan below can see it).
    assert!(!contains(&raw_files(tmp.path()), &mark));
    assert!(contains(&decrypted_pages(&store), &mark));

    if !secure_delete {
        store
            .conn
            .execute_batch("PRAGMA secure_delete = OFF")
            .unwrap();
    }
    clock.advance(120_000);
    let report = store.purge().unwrap();
    assert_eq!(report.expired_ids.len(), 100);
    assert!(
        free_pages(&store) > 0,
        "the purge must have freed pages to scan"
    );
    assert!(page_count(&store) > 2);
    // The WAL was truncated and the raw files stay ciphertext either way.
    assert_eq!(
        std::fs::metadata(tmp.path().join("occ.db-wal"))
            .unwrap()
            .len(),
        0
    );
    assert!(!contains(&raw_files(tmp.path()), &mark));
    // The survivors are intact.
    assert_eq!(store.thread_messages("t1", 500, None).unwrap().len(), 100);
    contains(&decrypted_pages(&store), &mark)
}

#[test]
fn purged_content_is_scrubbed_from_every_decrypted_page() {
    assert!(!marker_survives_purge(true));
}

#[test]
fn without_secure_delete_the_page_scan_finds_the_marker() {
    // The same scenario with secure_delete off: freed cells and pages keep the
    // plaintext, and the scan sees it. This is what makes the test above able
    // to fail.
    assert!(marker_survives_purge(false));
}

#[test]
fn crypto_shredded_attachment_key_is_gone_from_every_page() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let (mut store, _key) = store_at(tmp.path(), clock.clone());
    store
        .insert_message(&msg("m1", "t", b"see attached", T0 + 1000))
        .unwrap();
    let secret = b"voice note: the gate code is 4471".repeat(100);
    let id = store.add_attachment("m1", "audio/ogg", &secret).unwrap();
    let path = store.attachment_file(&id).unwrap();
    let kept_aside = std::fs::read(&path).unwrap();
    assert!(!contains(&kept_aside, b"gate code"));
    let key: Vec<u8> = store
        .conn
        .query_row(
            "SELECT file_key FROM attachments WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    let key: [u8; 32] = key.try_into().unwrap();
    // With its key the kept bytes decrypt...
    assert_eq!(
        attachments::decrypt_file(&key, &id, &kept_aside).unwrap(),
        secret
    );
    assert!(contains(&decrypted_pages(&store), &key));

    clock.advance(2000);
    let report = store.purge().unwrap();
    assert_eq!(report.attachments, 1);
    // ...after the purge the key exists nowhere: not in any decrypted page
    // (free pages included), not in the raw database, WAL or shm files; the
    // file is gone and the store no longer knows the attachment.
    assert!(!contains(&decrypted_pages(&store), &key));
    assert!(!contains(&raw_files(tmp.path()), &key));
    assert!(!path.exists());
    assert!(matches!(
        store.attachment(&id),
        Err(StoreError::NotFound(_))
    ));
    let any: i64 = store
        .conn
        .query_row("SELECT count(*) FROM attachments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(any, 0);
    // A wrong key (all anyone has now) cannot open the kept bytes.
    assert!(attachments::decrypt_file(&[0u8; 32], &id, &kept_aside).is_err());
}

#[test]
fn an_older_schema_is_upgraded_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let key = DbKey::generate().unwrap();
    db::write_key_check(tmp.path(), &key).unwrap();
    {
        // A profile written by a build that only knew schema version 1.
        let mut conn =
            db::open_connection(&tmp.path().join(DB_FILE), Some(&key), true, None).unwrap();
        migrations::migrate_to(&mut conn, 1).unwrap();
        assert_eq!(migrations::version(&conn).unwrap(), 1);
        conn.execute_batch(
            "INSERT INTO threads VALUES ('t', 't', 0, 1, 1);
             INSERT INTO messages (id, thread_id, sender, outgoing, body, sent_ms, received_ms,
                                   ttl_expiry_ms, read_timer_ms, first_read_ms, deadline_ms)
             VALUES ('old', 't', 'bob', 0, x'6869', 1, 1800000000000, 4000000000000, NULL, NULL, 4000000000000);",
        )
        .unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'attachments'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }
    let clock = Arc::new(ManualClock::new(T0));
    let mut store = Store::open(tmp.path(), &key, clock).unwrap();
    assert_eq!(
        migrations::version(&store.conn).unwrap(),
        migrations::SCHEMA_VERSION
    );
    assert_eq!(store.message("old").unwrap().body, b"hi");
    // The new tables work.
    let id = store
        .add_attachment("old", "text/plain", b"new in v2")
        .unwrap();
    assert_eq!(store.attachment(&id).unwrap(), b"new in v2");
}

#[test]
fn a_newer_schema_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let (store, key) = store_at(tmp.path(), clock.clone());
    store.conn.pragma_update(None, "user_version", 99).unwrap();
    drop(store);
    assert!(matches!(
        Store::open(tmp.path(), &key, clock),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}

#[test]
fn pragmas_are_in_force() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = store_at(tmp.path(), Arc::new(ManualClock::new(T0)));
    let q = |p: &str| -> String {
        store
            .conn
            .query_row(&format!("PRAGMA {p}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
    };
    assert_eq!(q("secure_delete"), "Integer(1)");
    assert_eq!(q("journal_mode"), "Text(\"wal\")");
    assert_eq!(q("foreign_keys"), "Integer(1)");
    assert_eq!(q("temp_store"), "Integer(2)");
    assert_eq!(q("synchronous"), "Integer(2)");
    // The database really is SQLCipher-encrypted (a plain SQLite header would
    // start with "SQLite format 3").
    let head = std::fs::read(tmp.path().join(DB_FILE)).unwrap();
    assert!(!head.starts_with(b"SQLite format 3"));
}

#[test]
fn thread_page_query_uses_the_thread_index() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = store_at(tmp.path(), Arc::new(ManualClock::new(T0)));
    let plan: Vec<String> = store
        .conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT seq FROM messages INDEXED BY messages_thread
             WHERE thread_id = 't' AND seq < 9 AND deadline_ms > 1 AND received_ms > 1 ORDER BY seq DESC LIMIT 50",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        plan.iter().any(|p| p.contains("messages_thread")),
        "{plan:?}"
    );
    assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
    for (sql, index) in [
        (
            "DELETE FROM messages WHERE deadline_ms <= 5",
            "messages_deadline",
        ),
        (
            "DELETE FROM messages WHERE received_ms <= 5",
            "messages_received",
        ),
    ] {
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(plan.iter().any(|p| p.contains(index)), "{sql}: {plan:?}");
    }
}

#[test]
fn metadata_is_forgotten_after_its_retention_and_state_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let (mut store, _) = store_at(tmp.path(), clock.clone());
    let count = |s: &Store, sql: &str| -> i64 { s.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    store
        .record_security_event(SecurityEventKind::Undecryptable, "old event")
        .unwrap();
    store
        .conn
        .execute_batch(&format!(
            "INSERT INTO threads (id, title, kind, created_ms, last_ms) VALUES ('dm-old', 'old chat', 0, {T0}, {T0});
             INSERT INTO threads (id, title, kind, created_ms, last_ms) VALUES ('dm-busy', 'busy chat', 0, {T0}, {T0});
             INSERT INTO threads (id, title, kind, created_ms, last_ms) VALUES ('grp', 'the group', 1, {T0}, {T0});
             INSERT INTO thread_members VALUES ('grp', 'carol');
             INSERT INTO contacts (device_id, user, identity, first_seen_ms) VALUES (x'01', 'stranger', x'00', {T0});
             INSERT INTO contacts (device_id, user, identity, first_seen_ms) VALUES (x'02', 'carol', x'00', {T0});
             INSERT INTO contacts (device_id, user, identity, first_seen_ms) VALUES (x'03', 'dave', x'00', {T0});
             INSERT INTO sessions VALUES (x'03', x'00', x'00', {T0});"
        ))
        .unwrap();
    store
        .insert_message(&msg("kept", "dm-busy", b"x", T0 + 400 * DAY_MS))
        .unwrap();
    store.purge().unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM security_events"), 1);
    assert_eq!(count(&store, "SELECT count(*) FROM threads"), 3);
    assert_eq!(count(&store, "SELECT count(*) FROM contacts"), 3);
    assert_eq!(
        store.metadata_retention_ms().unwrap(),
        store.keep_period_ms().unwrap(),
        "the default is the keep period"
    );

    // Thirty days and a second later (the default keep period).
    clock.advance(30 * DAY_MS + 1_000);
    store.purge().unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM security_events"), 0);
    assert_eq!(
        count(&store, "SELECT count(*) FROM purge_log"),
        1,
        "this pass's entry"
    );
    let threads: Vec<String> = store
        .conn
        .prepare("SELECT id FROM threads ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // "dm-busy" lost its message to the keep period in this pass, so it is
    // empty and idle too; the group stays (it is membership, not history).
    assert_eq!(threads, ["grp"]);
    let contacts: Vec<String> = store
        .conn
        .prepare("SELECT user FROM contacts ORDER BY user")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(contacts, ["carol", "dave"], "member and session peer kept");

    // A shorter setting applies at once; a zero one is refused.
    store
        .record_security_event(SecurityEventKind::Undecryptable, "new event")
        .unwrap();
    clock.advance(2_000);
    store.set_metadata_retention_ms(1_000).unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM security_events"), 0);
    assert!(store.set_metadata_retention_ms(0).is_err());
    assert_eq!(store.metadata_retention_ms().unwrap(), 1_000);
}

/// Only a full open sweeps orphan attachment files: a light open (the push
/// extension) must not delete a file the app is still writing.
#[test]
fn a_light_open_leaves_the_attachment_directory_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let (store, key) = store_at(tmp.path(), clock.clone());
    drop(store);
    let orphan = tmp.path().join(ATTACHMENT_DIR).join("being-written.bin");
    std::fs::write(&orphan, b"partial").unwrap();
    let light = Store::open_light(tmp.path(), &key, clock.clone()).unwrap();
    let cache: i64 = light
        .conn
        .query_row("PRAGMA cache_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(cache, -i64::from(LIGHT_CACHE_KIB));
    drop(light);
    assert!(orphan.exists());
    drop(Store::open(tmp.path(), &key, clock).unwrap());
    assert!(!orphan.exists());
}
