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
const ORG_POLICY: &str = "org_policy";
const LOCKED: &str = "locked";
const LAST_COMMAND_MS: &str = "last_command_ms";

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

    /// Replaces the enrolment record (a changed push endpoint).
    pub(crate) fn update_enrolment(&mut self, json: &[u8]) -> Result<(), StoreError> {
        set_enrolment(&self.conn, json)
    }

    /// Records that the relay holds signed prekey `id`.
    pub(crate) fn set_published_signed_prekey(&mut self, id: i64) -> Result<(), StoreError> {
        set_published_signed_prekey(&self.conn, id)
    }
}

/// The newest verified organisation policy document (encoded), if any.
pub(crate) fn org_policy(conn: &Connection) -> Result<Option<Vec<u8>>, StoreError> {
    get(conn, ORG_POLICY)
}

/// Stores a verified policy document (the caller checked it is newer).
pub(crate) fn set_org_policy(conn: &Connection, doc: &[u8]) -> Result<(), StoreError> {
    set(conn, ORG_POLICY, doc)
}

/// Whether the organisation locked this profile.
pub(crate) fn locked(conn: &Connection) -> Result<bool, StoreError> {
    Ok(get_i64(conn, LOCKED)?.unwrap_or(0) != 0)
}

/// Locks or unlocks the profile.
pub(crate) fn set_locked(conn: &Connection, locked: bool) -> Result<(), StoreError> {
    set(conn, LOCKED, &i64::from(locked).to_be_bytes())
}

/// The issue time of the last organisation command obeyed.
pub(crate) fn last_command_ms(conn: &Connection) -> Result<i64, StoreError> {
    Ok(get_i64(conn, LAST_COMMAND_MS)?.unwrap_or(i64::MIN))
}

/// Records the issue time of an obeyed command.
pub(crate) fn set_last_command_ms(conn: &Connection, ms: i64) -> Result<(), StoreError> {
    set(conn, LAST_COMMAND_MS, &ms.to_be_bytes())
}

/// Whether this organisation document (by SHA-256) was judged before: the
/// relay serves the same ones at every contact, and each is judged (and, if
/// refused, recorded) once.
pub(crate) fn doc_seen(conn: &Connection, doc: &[u8]) -> Result<bool, StoreError> {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(doc);
    Ok(conn
        .prepare_cached("SELECT 1 FROM org_docs_seen WHERE hash = ?1")?
        .exists([&hash[..]])?)
}

/// Records that this organisation document was judged (applied or refused).
pub(crate) fn mark_doc_seen(conn: &Connection, now: i64, doc: &[u8]) -> Result<(), StoreError> {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(doc);
    conn.execute(
        "INSERT INTO org_docs_seen (hash, seen_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![&hash[..], now],
    )?;
    Ok(())
}
