//! Contacts: which user each device we have seen belongs to, and its
//! identity, as first learned from the relay directory. First seen wins: a
//! device never changes user.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// The user a device belongs to, if known.
pub(crate) fn user_of(conn: &Connection, device: &[u8; 32]) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT user FROM contacts WHERE device_id = ?1",
            [&device[..]],
            |r| r.get(0),
        )
        .optional()?)
}

/// Records a device of a user (first seen wins).
pub(crate) fn add_in(
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

/// Every known device of `user`.
pub(crate) fn devices_of(conn: &Connection, user: &str) -> Result<Vec<[u8; 32]>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT device_id FROM contacts WHERE user = ?1")?;
    let rows = stmt.query_map([user], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for r in rows {
        if let Ok(a) = <[u8; 32]>::try_from(r?.as_slice()) {
            out.push(a);
        }
    }
    Ok(out)
}
