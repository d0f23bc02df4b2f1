//! The purge: the SQL side of retention ([`crate::retention`] decides *when*
//! content dies; this file deletes it for real).
//!
//! - Rows are deleted with `secure_delete` on (their pages are zeroed, free
//!   pages included).
//! - Attachment keys go with their rows (crypto-shredding) and the files are
//!   unlinked after the commit; a failed unlink leaves a file whose key is
//!   already gone, removed as an orphan at the next open.
//! - Purged ids are remembered as tombstones until their TTL, so a redelivery
//!   cannot bring them back.
//! - Outgoing messages whose TTL passed before they could be sent leave the
//!   outbox; their ids are reported so the app hears `DeliveryFailed`.
//! - Metadata (purge log, security events, empty idle direct conversations,
//!   unreferenced contacts) is forgotten after the metadata retention period
//!   (default: the keep period in force).
//! - The WAL is checkpointed with `TRUNCATE`, so no old page lingers in it.
//!
//! Work is proportional to what expired: each delete is a range scan of an
//! index (`deadline_ms`, `received_ms`, `tombstones.until_ms`,
//! `outbox.expires_ms`).

use rusqlite::{Connection, params};

use super::{ATTACHMENT_DIR, Store, StoreError, outbox, persist_high_water};
use crate::retention::PurgeReport;

/// Forgets metadata older than `cutoff`: purge-log entries, security events,
/// direct conversations with no message left and no activity since, and
/// contacts nothing refers to any more (no session, no thread membership).
/// Group threads and their members are state, not only metadata (the device
/// is still in the group), and are kept; so are sessions (crypto continuity).
fn purge_metadata_in(conn: &Connection, cutoff: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM purge_log WHERE at_ms <= ?1", [cutoff])?;
    conn.execute("DELETE FROM security_events WHERE at_ms <= ?1", [cutoff])?;
    conn.execute(
        "DELETE FROM threads WHERE kind = 0 AND last_ms <= ?1
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.thread_id = threads.id)",
        [cutoff],
    )?;
    conn.execute(
        "DELETE FROM contacts WHERE first_seen_ms <= ?1
           AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.peer_device = contacts.device_id)
           AND NOT EXISTS (SELECT 1 FROM thread_members t WHERE t.user = contacts.user)",
        [cutoff],
    )?;
    Ok(())
}

/// Attachment files of messages past `now` (deadline) or received at or
/// before `keep_cutoff`.
fn doomed_files(conn: &Connection, now: i64, keep_cutoff: i64) -> Result<Vec<String>, StoreError> {
    let mut files: Vec<String> = Vec::new();
    for (sql, cutoff) in [
        (
            "SELECT a.file_name FROM messages m JOIN attachments a ON a.message_id = m.id WHERE m.deadline_ms <= ?1",
            now,
        ),
        (
            "SELECT a.file_name FROM messages m JOIN attachments a ON a.message_id = m.id WHERE m.received_ms <= ?1",
            keep_cutoff,
        ),
    ] {
        let mut stmt = conn.prepare_cached(sql)?;
        for f in stmt.query_map([cutoff], |r| r.get::<_, String>(0))? {
            files.push(f?);
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Deletes with one statement; returns `(id, ttl_expiry_ms)` of each row.
/// Deletes with `sql` (which returns id, TTL expiry, thread); each deleted
/// message becomes an `expired` audit entry (`why` in its detail).
fn delete_returning(
    conn: &Connection,
    sql: &str,
    cutoff: i64,
    now: i64,
    why: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map([cutoff], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, String>(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, ttl, thread) in rows {
        super::audit::append_in(
            conn,
            now,
            &super::audit::NewEntry::of(crate::audit::AuditKind::Expired)
                .thread(&thread)
                .message(&id)
                .detail(why),
        )?;
        out.push((id, ttl));
    }
    Ok(out)
}

/// Remembers purged ids whose TTL has not passed, so a redelivery is
/// recognised; forgets tombstones whose TTL has.
fn update_tombstones<'a>(
    conn: &Connection,
    now: i64,
    purged: impl Iterator<Item = &'a (String, i64)>,
) -> Result<(), StoreError> {
    let mut tomb = conn.prepare_cached(
        "INSERT INTO tombstones (id, until_ms) VALUES (?1, ?2)
         ON CONFLICT(id) DO UPDATE SET until_ms = max(until_ms, excluded.until_ms)",
    )?;
    for (id, ttl) in purged.filter(|(_, ttl)| *ttl > now) {
        tomb.execute(params![id, ttl])?;
    }
    conn.execute("DELETE FROM tombstones WHERE until_ms <= ?1", [now])?;
    Ok(())
}

fn log_in(conn: &Connection, report: &PurgeReport) -> Result<(), StoreError> {
    if report.messages() == 0 && report.attachments == 0 {
        return Ok(());
    }
    let ids: Vec<&str> = report
        .expired_ids
        .iter()
        .chain(report.kept_too_long_ids.iter())
        .map(String::as_str)
        .collect();
    conn.execute(
        "INSERT INTO purge_log (at_ms, messages, attachments, message_ids) VALUES (?1, ?2, ?3, ?4)",
        params![
            report.at_ms,
            report.messages() as i64,
            report.attachments as i64,
            ids.join(",")
        ],
    )?;
    Ok(())
}

/// One entry of the purge log (ids and counts only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeLogEntry {
    /// When the purge ran (trusted time), ms.
    pub at_ms: i64,
    /// Messages removed.
    pub messages: u64,
    /// Attachments shredded.
    pub attachments: u64,
    /// Ids of the messages removed.
    pub message_ids: Vec<String>,
}

impl Store {
    /// Deletes everything past its deadline at trusted time, for real (see
    /// the module documentation).
    pub fn purge(&mut self) -> Result<PurgeReport, StoreError> {
        let now = self.now_ms();
        let keep_cutoff = now.saturating_sub(self.keep_period_ms()?);
        let meta_cutoff = now.saturating_sub(self.metadata_retention_ms()?);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let files = doomed_files(&tx, now, keep_cutoff)?;
        let expired = delete_returning(
            &tx,
            "DELETE FROM messages WHERE deadline_ms <= ?1 RETURNING id, ttl_expiry_ms, thread_id",
            now,
            now,
            "deadline",
        )?;
        let kept_too_long = delete_returning(
            &tx,
            "DELETE FROM messages WHERE received_ms <= ?1 RETURNING id, ttl_expiry_ms, thread_id",
            keep_cutoff,
            now,
            "keep period",
        )?;
        update_tombstones(&tx, now, expired.iter().chain(kept_too_long.iter()))?;
        let undelivered_ids = outbox::drop_expired_in(&tx, now)?;
        let lapsed_prompts = super::notices::lapse_in(&tx, now)?;
        let report = PurgeReport {
            at_ms: now,
            expired_ids: expired.into_iter().map(|(id, _)| id).collect(),
            kept_too_long_ids: kept_too_long.into_iter().map(|(id, _)| id).collect(),
            undelivered_ids,
            attachments: files.len() as u64,
            lapsed_prompts,
        };
        log_in(&tx, &report)?;
        purge_metadata_in(&tx, meta_cutoff)?;
        super::notices::purge_in(&tx, now)?;
        persist_high_water(&tx, now)?;
        tx.commit()?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        let dir = self.dir().join(ATTACHMENT_DIR);
        for f in &files {
            let path = dir.join(f);
            let _ = std::fs::remove_file(path.with_extension("part"));
            let _ = std::fs::remove_file(path);
        }
        Ok(report)
    }

    /// The purge log, oldest first.
    pub fn purge_log(&self) -> Result<Vec<PurgeLogEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at_ms, messages, attachments, message_ids FROM purge_log ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            let ids: String = r.get(3)?;
            Ok(PurgeLogEntry {
                at_ms: r.get(0)?,
                messages: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                attachments: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                message_ids: ids
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
