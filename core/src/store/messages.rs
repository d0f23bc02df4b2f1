//! Messages.
//!
//! Every read of a message applies the deletion deadline at trusted time: a
//! row past `deadline_ms` or older than the keep period is never returned,
//! whether or not the purge has run. Paging is by local arrival order (`seq`)
//! on the `(thread_id, seq)` index, so the newest page of a thread costs the
//! same however many messages are stored.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::threads::{self, OnExisting, ThreadKind};
use super::{Store, StoreError, persist_high_water};
use crate::retention::intrinsic_deadline;

/// Largest message body the store accepts (1 MiB; bigger content travels as
/// an attachment).
pub const MAX_BODY_LEN: usize = 1 << 20;

/// A message to store.
#[derive(Clone, Debug)]
pub struct NewMessage<'a> {
    /// Globally unique id (sender-chosen; de-duplicates redelivery).
    pub id: &'a str,
    /// The thread it belongs to (created if new).
    pub thread_id: &'a str,
    /// Who sent it (user or device identifier; not secret).
    pub sender: &'a str,
    /// Sent by this user (from this device, or a copy from another of its
    /// devices).
    pub outgoing: bool,
    /// The plaintext body.
    pub body: &'a [u8],
    /// Sender's timestamp (informational), ms.
    pub sent_ms: i64,
    /// Absolute TTL expiry, ms since the epoch.
    pub ttl_expiry_ms: i64,
    /// Optional read timer: expire this long after first opened, ms.
    pub read_timer_ms: Option<i64>,
}

/// Outcome of storing a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored.
    New,
    /// A message with this id is stored, or was purged and its TTL has not
    /// passed yet (a tombstone remembers it); nothing changed.
    Duplicate,
    /// Already past its TTL on arrival; not stored.
    Expired,
}

/// A stored, readable message.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Local arrival order (paging cursor).
    pub seq: i64,
    /// Identifier.
    pub id: String,
    /// Thread.
    pub thread_id: String,
    /// Sender.
    pub sender: String,
    /// Sent by this user (from this device, or a copy from another of its
    /// devices).
    pub outgoing: bool,
    /// Plaintext body.
    pub body: Vec<u8>,
    /// Sender's timestamp, ms.
    pub sent_ms: i64,
    /// When stored here (trusted time), ms.
    pub received_ms: i64,
    /// TTL expiry, ms.
    pub ttl_expiry_ms: i64,
    /// Read timer, ms.
    pub read_timer_ms: Option<i64>,
    /// First opened (trusted time), ms.
    pub first_read_ms: Option<i64>,
    /// When it will be removed: min(TTL, received + keep period, first read +
    /// read timer), ms.
    pub deadline_ms: i64,
    /// An urgent alert (it asks for receipts).
    pub urgent: bool,
    /// Acknowledge by then (the sender's time), ms, if asked.
    pub ack_by_ms: Option<i64>,
}

impl std::fmt::Debug for StoredMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMessage")
            .field("seq", &self.seq)
            .field("id", &self.id)
            .field("thread_id", &self.thread_id)
            .field("body_len", &self.body.len())
            .field("deadline_ms", &self.deadline_ms)
            .finish_non_exhaustive()
    }
}

/// A message id must follow [`occ_protocol::ids::valid_message_id`].
pub(crate) fn check_id(id: &str) -> Result<(), StoreError> {
    if occ_protocol::ids::valid_message_id(id) {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "a message id must be 1 to {} characters of A-Z a-z 0-9 - _ . : @",
            occ_protocol::ids::MAX_MESSAGE_ID_LEN
        )))
    }
}

fn validate(m: &NewMessage<'_>) -> Result<(), StoreError> {
    check_id(m.id)?;
    threads::check_id(m.thread_id)?;
    if m.sender.is_empty() || m.sender.len() > 256 {
        return Err(StoreError::InvalidInput(
            "a sender is 1 to 256 bytes".into(),
        ));
    }
    if m.body.len() > MAX_BODY_LEN {
        return Err(StoreError::InvalidInput(format!(
            "message body of {} bytes exceeds {MAX_BODY_LEN}; send it as an attachment",
            m.body.len()
        )));
    }
    if m.read_timer_ms.is_some_and(|t| t <= 0) {
        return Err(StoreError::InvalidInput(
            "a read timer must be positive".into(),
        ));
    }
    Ok(())
}

const COLUMNS: &str = "seq, id, thread_id, sender, outgoing, body, sent_ms, received_ms, \
                       ttl_expiry_ms, read_timer_ms, first_read_ms, deadline_ms, urgent, ack_by_ms";

fn row_to_message(r: &Row<'_>, keep_ms: i64) -> rusqlite::Result<StoredMessage> {
    let received_ms: i64 = r.get(7)?;
    let deadline_ms: i64 = r.get(11)?;
    Ok(StoredMessage {
        seq: r.get(0)?,
        id: r.get(1)?,
        thread_id: r.get(2)?,
        sender: r.get(3)?,
        outgoing: r.get(4)?,
        body: r.get(5)?,
        sent_ms: r.get(6)?,
        received_ms,
        ttl_expiry_ms: r.get(8)?,
        read_timer_ms: r.get(9)?,
        first_read_ms: r.get(10)?,
        deadline_ms: deadline_ms.min(received_ms.saturating_add(keep_ms)),
        urgent: r.get(12)?,
        ack_by_ms: r.get(13)?,
    })
}

/// Remembers `id` as gone until `until_ms` (a declined download), so its
/// redelivery is recognised and nothing is stored.
pub(crate) fn tombstone_in(conn: &Connection, id: &str, until_ms: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO tombstones (id, until_ms) VALUES (?1, ?2)
         ON CONFLICT(id) DO UPDATE SET until_ms = max(until_ms, excluded.until_ms)",
        params![id, until_ms],
    )?;
    Ok(())
}

/// Inserts one message inside the caller's transaction.
pub(crate) fn insert_in(
    conn: &Connection,
    now: i64,
    m: &NewMessage<'_>,
) -> Result<Inserted, StoreError> {
    validate(m)?;
    if m.ttl_expiry_ms <= now {
        return Ok(Inserted::Expired);
    }
    let purged: bool = conn
        .prepare_cached("SELECT 1 FROM tombstones WHERE id = ?1")?
        .exists([m.id])?;
    if purged {
        return Ok(Inserted::Duplicate);
    }
    threads::upsert_in(
        conn,
        m.thread_id,
        m.thread_id,
        ThreadKind::Direct,
        now,
        OnExisting::MarkActive,
    )?;
    let deadline = intrinsic_deadline(m.ttl_expiry_ms, None, m.read_timer_ms);
    let n = conn.execute(
        "INSERT INTO messages (id, thread_id, sender, outgoing, body, sent_ms, received_ms,
                               ttl_expiry_ms, read_timer_ms, first_read_ms, deadline_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10)
         ON CONFLICT(id) DO NOTHING",
        params![
            m.id,
            m.thread_id,
            m.sender,
            m.outgoing,
            m.body,
            m.sent_ms,
            now,
            m.ttl_expiry_ms,
            m.read_timer_ms,
            deadline
        ],
    )?;
    Ok(if n == 1 {
        Inserted::New
    } else {
        Inserted::Duplicate
    })
}

impl Store {
    /// Stores one message (one transaction).
    pub fn insert_message(&mut self, m: &NewMessage<'_>) -> Result<Inserted, StoreError> {
        let now = self.now_ms();
        let tx = self.conn.transaction()?;
        let out = insert_in(&tx, now, m)?;
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(out)
    }

    /// Stores a batch in one transaction: all or nothing. Returns each outcome.
    pub fn insert_messages(
        &mut self,
        batch: &[NewMessage<'_>],
    ) -> Result<Vec<Inserted>, StoreError> {
        let now = self.now_ms();
        let tx = self.conn.transaction()?;
        let out = batch
            .iter()
            .map(|m| insert_in(&tx, now, m))
            .collect::<Result<Vec<_>, _>>()?;
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(out)
    }

    /// One message by id: [`StoreError::Expired`] once past its deadline,
    /// [`StoreError::NotFound`] if unknown or purged.
    pub fn message(&self, id: &str) -> Result<StoredMessage, StoreError> {
        let now = self.now_ms();
        let keep = self.keep_period_ms()?;
        let m = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"),
                [id],
                |r| row_to_message(r, keep),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound("message".into()))?;
        if m.deadline_ms <= now {
            return Err(StoreError::Expired);
        }
        Ok(m)
    }

    /// A page of a thread, newest first: at most `limit` live messages with
    /// `seq < before` (or the newest, without a cursor).
    pub fn thread_messages(
        &self,
        thread_id: &str,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let now = self.now_ms();
        let keep = self.keep_period_ms()?;
        let limit = i64::try_from(limit.min(10_000)).unwrap_or(10_000);
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM messages INDEXED BY messages_thread
             WHERE thread_id = ?1 AND seq < ?2 AND deadline_ms > ?3 AND received_ms > ?4
             ORDER BY seq DESC LIMIT ?5"
        ))?;
        let rows = stmt.query_map(
            params![
                thread_id,
                before.unwrap_or(i64::MAX),
                now,
                now.saturating_sub(keep),
                limit
            ],
            |r| row_to_message(r, keep),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks a message opened. The first time, this starts its read timer.
    pub fn mark_read(&mut self, id: &str) -> Result<StoredMessage, StoreError> {
        let m = self.message(id)?;
        if m.first_read_ms.is_none() {
            let now = self.now_ms();
            let deadline = intrinsic_deadline(m.ttl_expiry_ms, Some(now), m.read_timer_ms);
            let tx = self.conn.transaction()?;
            tx.execute(
                "UPDATE messages SET first_read_ms = ?2, deadline_ms = min(deadline_ms, ?3)
                 WHERE id = ?1 AND first_read_ms IS NULL",
                params![id, now, deadline],
            )?;
            super::audit::append_in(
                &tx,
                now,
                &super::audit::NewEntry::of(crate::audit::AuditKind::Opened)
                    .thread(&m.thread_id)
                    .message(id),
            )?;
            persist_high_water(&tx, now)?;
            tx.commit()?;
        }
        self.message(id)
    }

    /// Number of message rows physically stored (live or awaiting purge).
    pub fn stored_message_count(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?)
    }
}
