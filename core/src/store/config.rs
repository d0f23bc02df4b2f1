//! Small named values of the sync engine, kept in the `config` table: the
//! enrolment record, the inbox cursor, and which signed prekey the relay
//! holds. Each has its own typed accessor; the key names never leave this
//! file.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError, persist_high_water};

const ENROLMENT: &str = "enrolment";
const INBOX_CURSOR: &str = "inbox_cursor";
const PUBLISHED_SIGNED_PREKEY: &str = "published_signed_prekey";
const REVOCATIONS: &str = "revocations";

fn get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM config WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

fn set(conn: &Connection, key: &str, value: &[u8]) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO config (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

fn get_i64(conn: &Connection, key: &str) -> Result<Option<i64>, StoreError> {
    match get(conn, key)? {
        None => Ok(None),
        Some(v) => <[u8; 8]>::try_from(v.as_slice())
            .map(|b| Some(i64::from_be_bytes(b)))
            .map_err(|_| StoreError::Corrupt(format!("config value {key} is malformed"))),
    }
}

/// The enrolment record (JSON, owned by the sync engine), if enrolled.
pub(crate) fn enrolment(conn: &Connection) -> Result<Option<Vec<u8>>, StoreError> {
    get(conn, ENROLMENT)
}

/// Stores the enrolment record.
pub(crate) fn set_enrolment(conn: &Connection, json: &[u8]) -> Result<(), StoreError> {
    set(conn, ENROLMENT, json)
}

/// The highest inbox sequence number durably processed (0 before any).
pub(crate) fn inbox_cursor(conn: &Connection) -> Result<i64, StoreError> {
    Ok(get_i64(conn, INBOX_CURSOR)?.unwrap_or(0))
}

/// Moves the inbox cursor forward to `seq` (inside the page's transaction);
/// never back, so drains that overlap cannot rewind it.
pub(crate) fn advance_inbox_cursor(conn: &Connection, seq: i64) -> Result<(), StoreError> {
    if seq > inbox_cursor(conn)? {
        set(conn, INBOX_CURSOR, &seq.to_be_bytes())?;
    }
    Ok(())
}

/// The id of the signed prekey the relay is known to hold.
pub(crate) fn published_signed_prekey(conn: &Connection) -> Result<Option<i64>, StoreError> {
    get_i64(conn, PUBLISHED_SIGNED_PREKEY)
}

/// Records that the relay holds signed prekey `id`.
pub(crate) fn set_published_signed_prekey(conn: &Connection, id: i64) -> Result<(), StoreError> {
    set(conn, PUBLISHED_SIGNED_PREKEY, &id.to_be_bytes())
}

/// The newest verified organisation revocation list (encoded), if any.
pub(crate) fn revocations(conn: &Connection) -> Result<Option<Vec<u8>>, StoreError> {
    get(conn, REVOCATIONS)
}

/// Stores a verified revocation list (the caller checked it is newer).
pub(crate) fn set_revocations(conn: &Connection, list: &[u8]) -> Result<(), StoreError> {
    set(conn, REVOCATIONS, list)
}

impl Store {
    /// Stores a new enrolment record and the signed prekey it published, in
    /// one transaction.
    pub(crate) fn save_enrolment(
        &mut self,
        json: &[u8],
        published_signed_prekey: i64,
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        let tx = self.conn.transaction()?;
        set_enrolment(&tx, json)?;
        set_published_signed_prekey(&tx, published_signed_prekey)?;
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(())
    }

    /// Records that the relay holds signed prekey `id`.
    pub(crate) fn set_published_signed_prekey(&mut self, id: i64) -> Result<(), StoreError> {
        set_published_signed_prekey(&self.conn, id)
    }
}
