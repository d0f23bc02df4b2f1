//! The durable outbox and the sync bookkeeping tables.
//!
//! A message accepted by `send` is one transaction: its row in `messages`
//! (the sender's own copy) and its outbox row holding the plaintext payload.
//! Sealing (encrypting for every recipient device) replaces the plaintext with
//! the ready `SendRequest` — ciphertext plus the idempotency key — in the same
//! transaction that saves the advanced ratchet states. From then on a retry
//! resends exactly those bytes under the same key, so the relay queues the
//! message exactly once however often the client crashes and retries.
//!
//! The other tables here: enrolment `config`, `contacts` (which user a device
//! belongs to, first seen), `thread_members`, sender-key bookkeeping (which
//! device has our current distribution; which thread a distribution id
//! belongs to) and `security_events` (for the audit trail).

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// An outbox row.
#[derive(Clone, Debug)]
pub struct OutboxRow {
    /// Queue position.
    pub seq: i64,
    /// The relay idempotency key.
    pub idempotency_key: String,
    /// The local message id.
    pub message_id: String,
    /// `user:<name>` or `thread:<id>`.
    pub target: String,
    /// Encoded plaintext payload (empty once sealed).
    pub payload: Vec<u8>,
    /// TTL to ask the relay for.
    pub ttl_secs: i64,
    /// When the message expires (not sent after that).
    pub expires_ms: i64,
    /// The sealed `SendRequest` JSON, once encrypted.
    pub sealed: Option<String>,
    /// Attempts so far.
    pub attempts: i64,
    /// Not before.
    pub next_attempt_ms: i64,
}

/// Adds an outbox row.
#[allow(clippy::too_many_arguments)]
pub(crate) fn enqueue_in(
    conn: &Connection,
    now: i64,
    idempotency_key: &str,
    message_id: &str,
    target: &str,
    payload: &[u8],
    ttl_secs: i64,
    expires_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO outbox (idempotency_key, message_id, payload, created_ms, attempts, next_attempt_ms,
                             target, ttl_secs, expires_ms, sealed)
         VALUES (?1, ?2, ?3, ?4, 0, ?4, ?5, ?6, ?7, NULL)",
        params![idempotency_key, message_id, payload, now, target, ttl_secs, expires_ms],
    )?;
    Ok(())
}

/// Every outbox row, oldest first.
pub(crate) fn rows(conn: &Connection) -> Result<Vec<OutboxRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT seq, idempotency_key, message_id, target, payload, ttl_secs, expires_ms, sealed, attempts,
                next_attempt_ms FROM outbox ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(OutboxRow {
            seq: r.get(0)?,
            idempotency_key: r.get(1)?,
            message_id: r.get(2)?,
            target: r.get(3)?,
            payload: r.get(4)?,
            ttl_secs: r.get(5)?,
            expires_ms: r.get(6)?,
            sealed: r.get(7)?,
            attempts: r.get(8)?,
            next_attempt_ms: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Stores the sealed request and drops the plaintext payload.
pub(crate) fn seal_in(conn: &Connection, seq: i64, sealed: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE outbox SET sealed = ?2, payload = x'' WHERE seq = ?1",
        params![seq, sealed],
    )?;
    Ok(())
}

/// Removes a row (sent, expired or undeliverable).
pub(crate) fn remove_in(conn: &Connection, seq: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM outbox WHERE seq = ?1", [seq])?;
    Ok(())
}

/// Records a failed attempt and when to try again.
pub(crate) fn defer_in(
    conn: &Connection,
    seq: i64,
    next_attempt_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2 WHERE seq = ?1",
        params![seq, next_attempt_ms],
    )?;
    Ok(())
}

/// A config value.
pub(crate) fn config_get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM config WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Sets a config value.
pub(crate) fn config_set(conn: &Connection, key: &str, value: &[u8]) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO config (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// The user a device belongs to, if known.
pub(crate) fn contact_user(
    conn: &Connection,
    device: &[u8; 32],
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT user FROM contacts WHERE device_id = ?1",
            [&device[..]],
            |r| r.get(0),
        )
        .optional()?)
}

/// Records a device of a user (first seen wins; a device never changes user).
pub(crate) fn contact_add(
    conn: &Connection,
    now: i64,
    device: &[u8; 32],
    user: &str,
    identity: &[u8],
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO contacts (device_id, user, identity, first_seen_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(device_id) DO NOTHING",
        params![&device[..], user, identity, now],
    )?;
    Ok(())
}

/// Members of a thread.
pub(crate) fn members(conn: &Connection, thread_id: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT user FROM thread_members WHERE thread_id = ?1 ORDER BY user")?;
    let rows = stmt.query_map([thread_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Replaces the member list of a thread.
pub(crate) fn set_members(
    conn: &Connection,
    thread_id: &str,
    users: &[String],
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM thread_members WHERE thread_id = ?1",
        [thread_id],
    )?;
    let mut stmt = conn
        .prepare_cached("INSERT OR IGNORE INTO thread_members (thread_id, user) VALUES (?1, ?2)")?;
    for u in users {
        stmt.execute([thread_id, u.as_str()])?;
    }
    Ok(())
}

/// Which distribution of ours a device holds for a thread.
pub(crate) fn shared_distribution(
    conn: &Connection,
    thread_id: &str,
    device: &[u8; 32],
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT distribution_id FROM sender_key_shared WHERE thread_id = ?1 AND device_id = ?2",
            params![thread_id, &device[..]],
            |r| r.get(0),
        )
        .optional()?)
}

/// Notes that a device now holds our distribution for a thread.
pub(crate) fn mark_shared(
    conn: &Connection,
    thread_id: &str,
    device: &[u8; 32],
    distribution: &[u8],
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sender_key_shared (thread_id, device_id, distribution_id) VALUES (?1, ?2, ?3)
         ON CONFLICT(thread_id, device_id) DO UPDATE SET distribution_id = excluded.distribution_id",
        params![thread_id, &device[..], distribution],
    )?;
    Ok(())
}

/// Maps a received distribution id to its thread.
pub(crate) fn index_distribution(
    conn: &Connection,
    distribution: &[u8],
    thread_id: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sender_key_index (distribution_id, thread_id) VALUES (?1, ?2)
         ON CONFLICT(distribution_id) DO NOTHING",
        params![distribution, thread_id],
    )?;
    Ok(())
}

/// The thread a distribution id belongs to.
pub(crate) fn thread_of_distribution(
    conn: &Connection,
    distribution: &[u8],
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT thread_id FROM sender_key_index WHERE distribution_id = ?1",
            [distribution],
            |r| r.get(0),
        )
        .optional()?)
}

/// Appends a security event (no content, no secrets).
pub(crate) fn security_event_in(
    conn: &Connection,
    now: i64,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO security_events (at_ms, kind, detail) VALUES (?1, ?2, ?3)",
        params![now, kind, detail],
    )?;
    Ok(())
}

/// A recorded security event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityEvent {
    /// When (trusted time), ms.
    pub at_ms: i64,
    /// Kind, e.g. `pin_failure`.
    pub kind: String,
    /// Metadata only.
    pub detail: String,
}

impl super::Store {
    /// Security events recorded so far, oldest first.
    pub fn security_events(&self) -> Result<Vec<SecurityEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT at_ms, kind, detail FROM security_events ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok(SecurityEvent {
                at_ms: r.get(0)?,
                kind: r.get(1)?,
                detail: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a security event.
    pub fn record_security_event(&mut self, kind: &str, detail: &str) -> Result<(), StoreError> {
        let now = self.now_ms();
        security_event_in(&self.conn, now, kind, detail)
    }

    /// Number of messages waiting in the outbox.
    pub fn outbox_len(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?)
    }
}
