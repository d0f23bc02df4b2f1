//! The durable outbox.
//!
//! A message accepted by `send` is one transaction: its row in `messages`
//! (the sender's own copy) and its outbox row holding the plaintext payload.
//! Sealing (encrypting for every recipient device) stores the ready
//! `SendRequest` — ciphertext plus the idempotency key — in the same
//! transaction that saves the advanced ratchet states. From then on a retry
//! resends exactly those bytes under the same key, so the relay queues the
//! message exactly once however often the client crashes and retries. The
//! payload stays (it is the sender's own copy, also in `messages`) until the
//! row goes: a request the relay refuses as sealed for a stale device list
//! (it queued nothing) is sealed again for the fresh one.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};

/// The message-id prefix of a *control row*: an outbox row that carries a
/// thread's membership change rather than a message (no message row, no
/// message events, not counted as a message).
pub(crate) const CONTROL_PREFIX: &str = "control-";

/// An outbox row. Its plaintext payload is wiped when the row is dropped
/// and never shown by `Debug`.
#[derive(Clone)]
pub(crate) struct OutboxRow {
    /// Queue position.
    pub(crate) seq: i64,
    /// The relay idempotency key.
    pub(crate) idempotency_key: String,
    /// The local message id.
    pub(crate) message_id: String,
    /// Where it goes.
    pub(crate) target: Target,
    /// Encoded plaintext payload (empty once sealed).
    pub(crate) payload: Vec<u8>,
    /// TTL to ask the relay for, seconds.
    pub(crate) ttl_secs: i64,
    /// When the message expires (never sent after that).
    pub(crate) expires_ms: i64,
    /// The sealed `SendRequest` JSON, once encrypted.
    pub(crate) sealed: Option<String>,
    /// Failed attempts so far.
    pub(crate) attempts: i64,
    /// Not before, ms.
    pub(crate) next_attempt_ms: i64,
}

impl Drop for OutboxRow {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.payload);
    }
}

impl std::fmt::Debug for OutboxRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRow")
            .field("seq", &self.seq)
            .field("message_id", &self.message_id)
            .field("payload_len", &self.payload.len())
            .field("sealed", &self.sealed.is_some())
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Where an outbox row goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Every device of one user.
    User(String),
    /// Every member device of a thread.
    Thread(String),
}

impl Target {
    fn encode(&self) -> String {
        match self {
            Target::User(u) => format!("user:{u}"),
            Target::Thread(t) => format!("thread:{t}"),
        }
    }

    fn decode(s: &str) -> Result<Self, StoreError> {
        if let Some(u) = s.strip_prefix("user:") {
            Ok(Target::User(u.to_string()))
        } else if let Some(t) = s.strip_prefix("thread:") {
            Ok(Target::Thread(t.to_string()))
        } else {
            Err(StoreError::Corrupt(format!("unknown outbox target {s:?}")))
        }
    }
}

/// A row to queue.
pub(crate) struct NewOutboxRow<'a> {
    pub(crate) idempotency_key: &'a str,
    pub(crate) message_id: &'a str,
    pub(crate) target: &'a Target,
    pub(crate) payload: &'a [u8],
    pub(crate) ttl_secs: i64,
    pub(crate) expires_ms: i64,
}

/// Adds an outbox row (inside the caller's transaction).
pub(crate) fn enqueue_in(
    conn: &Connection,
    now: i64,
    row: &NewOutboxRow<'_>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO outbox (idempotency_key, message_id, payload, created_ms, attempts, next_attempt_ms,
                             target, ttl_secs, expires_ms, sealed)
         VALUES (?1, ?2, ?3, ?4, 0, ?4, ?5, ?6, ?7, NULL)",
        params![
            row.idempotency_key,
            row.message_id,
            row.payload,
            now,
            row.target.encode(),
            row.ttl_secs,
            row.expires_ms
        ],
    )?;
    Ok(())
}

const COLUMNS: &str = "seq, idempotency_key, message_id, target, payload, ttl_secs, expires_ms, \
                       sealed, attempts, next_attempt_ms";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(OutboxRow, String)> {
    Ok((
        OutboxRow {
            seq: r.get(0)?,
            idempotency_key: r.get(1)?,
            message_id: r.get(2)?,
            target: Target::User(String::new()),
            payload: r.get(4)?,
            ttl_secs: r.get(5)?,
            expires_ms: r.get(6)?,
            sealed: r.get(7)?,
            attempts: r.get(8)?,
            next_attempt_ms: r.get(9)?,
        },
        r.get(3)?,
    ))
}

fn with_target((mut row, target): (OutboxRow, String)) -> Result<OutboxRow, StoreError> {
    row.target = Target::decode(&target)?;
    Ok(row)
}

/// Every outbox row, oldest first.
pub(crate) fn rows(conn: &Connection) -> Result<Vec<OutboxRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM outbox ORDER BY seq"))?;
    let rows = stmt.query_map([], from_row)?;
    rows.map(|r| with_target(r?)).collect()
}

/// One outbox row, if it is still queued.
pub(crate) fn row(conn: &Connection, seq: i64) -> Result<Option<OutboxRow>, StoreError> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM outbox WHERE seq = ?1"))?
        .query_row([seq], from_row)
        .optional()?
        .map(with_target)
        .transpose()
}

/// Stores the sealed request and drops the plaintext payload.
pub(crate) fn seal_in(conn: &Connection, seq: i64, sealed: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE outbox SET sealed = ?2 WHERE seq = ?1",
        params![seq, sealed],
    )?;
    Ok(())
}

/// Drops a row's sealed request (sealed for a stale device list) so the
/// next attempt seals its payload again.
pub(crate) fn unseal_in(conn: &Connection, seq: i64) -> Result<(), StoreError> {
    conn.execute("UPDATE outbox SET sealed = NULL WHERE seq = ?1", [seq])?;
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

/// When the oldest row may next be attempted (`None` when the outbox is
/// empty). A row that has expired is due at once (to be dropped).
pub(crate) fn next_due_ms(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT min(next_attempt_ms, expires_ms) FROM outbox ORDER BY seq LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?)
}

/// Drops every row whose message expired before it could be sent; returns
/// their message ids (inside the purge's transaction).
pub(crate) fn drop_expired_in(conn: &Connection, now: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("DELETE FROM outbox WHERE expires_ms <= ?1 RETURNING message_id")?;
    let ids = stmt
        .query_map([now], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    // A control row is no message the app knows of.
    Ok(ids
        .into_iter()
        .filter(|id| !id.starts_with(CONTROL_PREFIX))
        .collect())
}

impl Store {
    /// Number of messages waiting in the outbox (control rows not
    /// counted).
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM outbox WHERE substr(message_id, 1, length(?1)) != ?1",
            [CONTROL_PREFIX],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
