//! The audit trail's rows (hashing and verification: [`crate::audit`]).
//!
//! `audit` holds the entries (sequence = rowid, never reused: the table is
//! `AUTOINCREMENT`-free but rows are never deleted by occ), `audit_heads`
//! the relay's countersignatures of chain heads. Appends happen inside the
//! caller's transaction.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};
use crate::audit::{AuditEntry, AuditKind, EntryFields, StoredEntry, entry_hash};

/// What to record.
pub(crate) struct NewEntry<'a> {
    pub(crate) kind: &'a str,
    pub(crate) thread_id: Option<&'a str>,
    pub(crate) message_id: Option<&'a str>,
    pub(crate) subject: &'a str,
    pub(crate) detail: &'a str,
}

impl<'a> NewEntry<'a> {
    /// An entry of `kind` with no subject yet.
    pub(crate) fn of(kind: AuditKind) -> Self {
        Self {
            kind: kind.as_str(),
            thread_id: None,
            message_id: None,
            subject: "",
            detail: "",
        }
    }

    pub(crate) fn thread(mut self, thread: &'a str) -> Self {
        self.thread_id = Some(thread);
        self
    }

    pub(crate) fn message(mut self, message: &'a str) -> Self {
        self.message_id = Some(message);
        self
    }

    pub(crate) fn subject(mut self, subject: &'a str) -> Self {
        self.subject = subject;
        self
    }

    pub(crate) fn detail(mut self, detail: &'a str) -> Self {
        self.detail = detail;
        self
    }
}

/// The newest entry's sequence number and hash.
pub(crate) fn head_in(conn: &Connection) -> Result<Option<(u64, [u8; 32])>, StoreError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(seq, hash)| {
        let hash = <[u8; 32]>::try_from(hash.as_slice())
            .map_err(|_| StoreError::Corrupt("an audit hash is malformed".into()))?;
        Ok((u64::try_from(seq).unwrap_or(0), hash))
    })
    .transpose()
}

/// Appends an entry at `now` inside the caller's transaction.
pub(crate) fn append_in(conn: &Connection, now: i64, e: &NewEntry<'_>) -> Result<u64, StoreError> {
    let (seq, prev) = match head_in(conn)? {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, [0u8; 32]),
    };
    let hash = entry_hash(
        &EntryFields {
            seq,
            at_ms: now,
            kind: e.kind,
            thread_id: e.thread_id,
            message_id: e.message_id,
            subject: e.subject,
            detail: e.detail,
        },
        &prev,
    );
    conn.prepare_cached(
        "INSERT INTO audit (seq, at_ms, kind, thread_id, message_id, subject, detail, prev, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        i64::try_from(seq).map_err(|_| StoreError::Corrupt("audit sequence overflow".into()))?,
        now,
        e.kind,
        e.thread_id,
        e.message_id,
        e.subject,
        e.detail,
        &prev[..],
        &hash[..],
    ])?;
    Ok(seq)
}

/// How many entries of `kind` were made since `since_ms`.
pub(crate) fn count_since_in(
    conn: &Connection,
    kind: AuditKind,
    since_ms: i64,
) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM audit WHERE kind = ?1 AND at_ms >= ?2",
        params![kind.as_str(), since_ms],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEntry> {
    Ok(StoredEntry {
        seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
        at_ms: r.get(1)?,
        kind: r.get(2)?,
        thread_id: r.get(3)?,
        message_id: r.get(4)?,
        subject: r.get(5)?,
        detail: r.get(6)?,
        prev: r.get(7)?,
        hash: r.get(8)?,
    })
}

const COLUMNS: &str = "seq, at_ms, kind, thread_id, message_id, subject, detail, prev, hash";

fn public(e: StoredEntry) -> AuditEntry {
    AuditEntry {
        seq: e.seq,
        at_ms: e.at_ms,
        kind: e.kind,
        thread_id: e.thread_id,
        message_id: e.message_id,
        subject: e.subject,
        detail: e.detail,
        hash: hex::encode(&e.hash),
    }
}

impl Store {
    /// Runs `f` over every entry in sequence order (streamed: 100,000
    /// entries are never held at once).
    pub(crate) fn audit_walk<T>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = StoredEntry>) -> T,
    ) -> Result<T, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY seq"))?;
        let mut rows = stmt.query([])?;
        let mut failed = None;
        let mut iter = std::iter::from_fn(|| match rows.next() {
            Ok(Some(r)) => match stored(r) {
                Ok(e) => Some(e),
                Err(e) => {
                    failed = Some(e);
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                failed = Some(e);
                None
            }
        });
        let out = f(&mut iter);
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(out),
        }
    }

    /// Entries with `seq > after`, at most `limit`, in order.
    pub fn audit_entries(&self, after: u64, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![i64::try_from(after).unwrap_or(i64::MAX), limit],
            stored,
        )?;
        Ok(rows.map(|r| r.map(public)).collect::<Result<Vec<_>, _>>()?)
    }

    /// The entries about one thread (and its messages), in order: the
    /// thread's timeline, kept after its messages expire.
    pub fn audit_timeline(&self, thread_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM audit WHERE thread_id = ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([thread_id], stored)?;
        Ok(rows.map(|r| r.map(public)).collect::<Result<Vec<_>, _>>()?)
    }

    /// The newest entry's sequence number and hash.
    pub fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        head_in(&self.conn)
    }

    /// Benchmarks only: appends an entry now, in its own transaction.
    #[cfg(feature = "bench-internals")]
    pub fn audit_append_for_benchmark(&mut self, detail: &str) -> Result<u64, StoreError> {
        let now = self.now_ms();
        let tx = self.conn.transaction()?;
        let seq = append_in(
            &tx,
            now,
            &NewEntry::of(AuditKind::Received)
                .thread("bench")
                .message(detail)
                .subject("bench")
                .detail(detail),
        )?;
        super::persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(seq)
    }

    /// Benchmarks only: verifies the chain (no countersigned heads).
    #[cfg(feature = "bench-internals")]
    pub fn audit_verify_for_benchmark(
        &self,
    ) -> Result<Result<u64, crate::audit::AuditBreak>, StoreError> {
        self.audit_walk(|it| crate::audit::verify_chain(it, &[]).map(|(n, _)| n))
    }

    /// Countersigned heads held, `(seq, hash)`.
    pub(crate) fn audit_countersigned(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, hash FROM audit_heads ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The newest countersigned head's sequence number.
    pub(crate) fn audit_countersigned_seq(&self) -> Result<Option<u64>, StoreError> {
        let seq: Option<i64> =
            self.conn
                .query_row("SELECT max(seq) FROM audit_heads", [], |r| r.get(0))?;
        Ok(seq.and_then(|s| u64::try_from(s).ok()))
    }

    /// Keeps a verified countersignature of head `(seq, hash)`.
    pub(crate) fn save_audit_countersignature(
        &mut self,
        seq: u64,
        hash: &[u8],
        server_ms: i64,
        signature: &[u8],
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO audit_heads (seq, hash, server_ms, signature) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(seq) DO UPDATE SET hash = excluded.hash, server_ms = excluded.server_ms,
                 signature = excluded.signature",
            params![
                i64::try_from(seq).unwrap_or(i64::MAX),
                hash,
                server_ms,
                signature
            ],
        )?;
        Ok(())
    }
}
