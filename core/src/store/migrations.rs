//! Schema migrations, tracked in `PRAGMA user_version`.
//!
//! Migration *n* (1-based) takes the schema from version *n − 1* to *n*. Each
//! runs in its own `IMMEDIATE` transaction together with the `user_version`
//! bump, so a crash mid-migration leaves the previous version intact. A
//! database newer than this build is refused ([`StoreError::SchemaTooNew`])
//! rather than guessed at. Tables are `STRICT`.
//!
//! Notes on the layout:
//! - `account` holds the device's identity, signed prekeys and one-time
//!   prekeys as one `crypto::Account` state blob: they change together (a
//!   one-time prekey is consumed in the same transaction that stores the new
//!   session), and `secure_delete` scrubs the replaced blob's pages.
//! - `messages.deadline_ms` is `min(ttl_expiry, first_read + read_timer)`;
//!   the keep period is applied against `received_ms` (both indexed), so a
//!   purge touches only expired rows.

use rusqlite::Connection;

use super::StoreError;

/// Every migration, in order. Never edit a shipped entry; append a new one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: settings, trusted time, crypto state, threads, messages, outbox.
    r#"
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE clock (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        high_water_ms INTEGER NOT NULL,
        server_ms     INTEGER
    ) STRICT;
    INSERT INTO clock (id, high_water_ms) VALUES (1, 0);
    CREATE TABLE account (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        state BLOB NOT NULL
    ) STRICT;
    CREATE TABLE sessions (
        peer_device BLOB NOT NULL,
        base_key    BLOB NOT NULL,
        state       BLOB NOT NULL,
        used_ms     INTEGER NOT NULL,
        PRIMARY KEY (peer_device, base_key)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE threads (
        id         TEXT PRIMARY KEY,
        title      TEXT NOT NULL,
        kind       INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        last_ms    INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE sender_keys (
        thread_id TEXT PRIMARY KEY REFERENCES threads(id) ON DELETE CASCADE,
        state     BLOB NOT NULL
    ) STRICT;
    CREATE TABLE messages (
        seq           INTEGER PRIMARY KEY,
        id            TEXT NOT NULL UNIQUE,
        thread_id     TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        sender        TEXT NOT NULL,
        outgoing      INTEGER NOT NULL,
        body          BLOB NOT NULL,
        sent_ms       INTEGER NOT NULL,
        received_ms   INTEGER NOT NULL,
        ttl_expiry_ms INTEGER NOT NULL,
        read_timer_ms INTEGER,
        first_read_ms INTEGER,
        deadline_ms   INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX messages_deadline ON messages (deadline_ms);
    CREATE INDEX messages_received ON messages (received_ms);
    CREATE INDEX messages_thread ON messages (thread_id, seq);
    CREATE TABLE outbox (
        seq             INTEGER PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        message_id      TEXT NOT NULL,
        payload         BLOB NOT NULL,
        created_ms      INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL
    ) STRICT;
    "#,
    // 2: attachments (per-file keys: crypto-shredding), tombstones of purged
    //    message ids (so a redelivery cannot revive them) and the purge log.
    r#"
    CREATE TABLE attachments (
        id         TEXT PRIMARY KEY,
        message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        file_name  TEXT NOT NULL UNIQUE,
        file_key   BLOB NOT NULL,
        size       INTEGER NOT NULL,
        sha256     BLOB NOT NULL,
        mime       TEXT NOT NULL
    ) STRICT;
    CREATE INDEX attachments_message ON attachments (message_id);
    CREATE TABLE tombstones (
        id       TEXT PRIMARY KEY,
        until_ms INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX tombstones_until ON tombstones (until_ms);
    CREATE TABLE purge_log (
        seq         INTEGER PRIMARY KEY,
        at_ms       INTEGER NOT NULL,
        messages    INTEGER NOT NULL,
        attachments INTEGER NOT NULL,
        message_ids TEXT NOT NULL
    ) STRICT;
    "#,
    // 3: sync: outbox sealing, enrolment config, contacts (device -> user,
    //    first seen), thread members, sender-key bookkeeping, security events.
    r#"
    ALTER TABLE outbox ADD COLUMN target TEXT NOT NULL DEFAULT '';
    ALTER TABLE outbox ADD COLUMN ttl_secs INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN sealed TEXT;
    CREATE INDEX outbox_expires ON outbox (expires_ms);
    CREATE TABLE config (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) STRICT;
    CREATE TABLE contacts (
        device_id     BLOB PRIMARY KEY,
        user          TEXT NOT NULL,
        identity      BLOB NOT NULL,
        first_seen_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX contacts_user ON contacts (user);
    CREATE TABLE thread_members (
        thread_id TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
        user      TEXT NOT NULL,
        PRIMARY KEY (thread_id, user)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE sender_key_shared (
        thread_id       TEXT NOT NULL,
        device_id       BLOB NOT NULL,
        distribution_id BLOB NOT NULL,
        PRIMARY KEY (thread_id, device_id)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE sender_key_index (
        distribution_id BLOB PRIMARY KEY,
        thread_id       TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE security_events (
        seq    INTEGER PRIMARY KEY,
        at_ms  INTEGER NOT NULL,
        kind   TEXT NOT NULL,
        detail TEXT NOT NULL
    ) STRICT;
    "#,
    // 4: trusted time at the start of the current boot, so time spent with
    // the app closed is counted within a boot.
    r#"
    ALTER TABLE clock ADD COLUMN boot_id TEXT;
    ALTER TABLE clock ADD COLUMN boot_base_ms INTEGER;
    "#,
    // 5: trust in each contact's identity (trust on first use, key changes
    // held until accepted, verified by safety number).
    r#"
    ALTER TABLE contacts ADD COLUMN trust INTEGER NOT NULL DEFAULT 1;
    "#,
    // 6: the admin of each group thread (its creator), who alone changes its
    // members; NULL for threads from before (any member, as then).
    r#"
    ALTER TABLE threads ADD COLUMN admin TEXT;
    "#,
    // 7: received distribution ids scoped to their sending device (a member
    // could claim another's id first); older mappings keep an empty device
    // and serve as the fallback.
    r#"
    CREATE TABLE sender_key_owner (
        device_id       BLOB NOT NULL,
        distribution_id BLOB NOT NULL,
        thread_id       TEXT NOT NULL,
        PRIMARY KEY (device_id, distribution_id)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO sender_key_owner (device_id, distribution_id, thread_id)
        SELECT X'', distribution_id, thread_id FROM sender_key_index;
    DROP TABLE sender_key_index;
    "#,
    // 8: the hash-chained audit trail and the relay's countersigned heads;
    //    push notices seen (replays) and their decisions; urgent alerts
    //    (sent: deadline and recipients; received: the flag) and receipts.
    r#"
    CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY,
        at_ms      INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        thread_id  TEXT,
        message_id TEXT,
        subject    TEXT NOT NULL,
        detail     TEXT NOT NULL,
        prev       BLOB NOT NULL,
        hash       BLOB NOT NULL
    ) STRICT;
    CREATE INDEX audit_thread ON audit (thread_id, seq);
    CREATE INDEX audit_kind ON audit (kind, at_ms);
    CREATE TABLE audit_heads (
        seq       INTEGER PRIMARY KEY,
        hash      BLOB NOT NULL,
        server_ms INTEGER NOT NULL,
        signature BLOB NOT NULL
    ) STRICT;
    CREATE TABLE notices (
        relay_id      TEXT PRIMARY KEY,
        sender_device TEXT NOT NULL,
        class         TEXT NOT NULL,
        expires_ms    INTEGER NOT NULL,
        state         TEXT NOT NULL,
        seen_ms       INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX notices_expires ON notices (expires_ms);
    ALTER TABLE messages ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN ack_by_ms INTEGER;
    CREATE TABLE alerts (
        message_id   TEXT PRIMARY KEY,
        thread_id    TEXT NOT NULL,
        sent_ms      INTEGER NOT NULL,
        ack_by_ms    INTEGER,
        recipients   TEXT NOT NULL,
        escalated_ms INTEGER
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX alerts_due ON alerts (escalated_ms, ack_by_ms);
    CREATE TABLE receipts (
        message_id  TEXT NOT NULL,
        user        TEXT NOT NULL,
        state       TEXT NOT NULL,
        at_ms       INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        reply       TEXT,
        PRIMARY KEY (message_id, user, state)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE org_docs_seen (
        hash    BLOB PRIMARY KEY,
        seen_ms INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    "#,
    // 9: attachments that travel through the relay: the encrypted blob's
    //    size and digest, the file name and thumbnail from the message, and
    //    where the local copy stands (0 remote, 1 downloading — its bytes
    //    reserved against the quota —, 2 present). Local-only rows are present.
    r#"
    ALTER TABLE attachments ADD COLUMN state INTEGER NOT NULL DEFAULT 2;
    ALTER TABLE attachments ADD COLUMN blob_size INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE attachments ADD COLUMN blob_sha256 BLOB;
    ALTER TABLE attachments ADD COLUMN name TEXT NOT NULL DEFAULT '';
    ALTER TABLE attachments ADD COLUMN thumb BLOB;
    UPDATE attachments SET blob_size = size + 5 + 16 * max(1, (size + 65535) / 65536);
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The database's schema version.
pub(crate) fn version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the schema up to `target` (normally [`SCHEMA_VERSION`]).
pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> Result<(), StoreError> {
    let current = version(conn)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let v = i as i64 + 1;
        if v <= current || v > target {
            continue;
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", v)?;
        tx.commit()?;
    }
    Ok(())
}
