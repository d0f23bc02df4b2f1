//! Sender-key bookkeeping for threads: which member device already holds our
//! current distribution (so it is sealed to each device once), and which
//! thread a distribution id received from a device belongs to (so a thread
//! message finds its keys; scoped to the device, so nobody can claim
//! another's id).

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// Which distribution of ours a device holds for a thread.
pub(crate) fn shared_with(
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
pub(crate) fn mark_shared_in(
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

/// Forgets who holds our distribution for a thread: the next message seals
/// it (and the member list) to every member device again.
pub(crate) fn forget_shared_in(conn: &Connection, thread_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM sender_key_shared WHERE thread_id = ?1",
        [thread_id],
    )?;
    Ok(())
}

/// Maps a distribution id received from `device` to its thread (the first
/// mapping of that device wins). Scoped to the sending device: another
/// device naming the same id maps only its own.
pub(crate) fn index_in(
    conn: &Connection,
    device: &[u8; 32],
    distribution: &[u8],
    thread_id: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sender_key_owner (device_id, distribution_id, thread_id) VALUES (?1, ?2, ?3)
         ON CONFLICT(device_id, distribution_id) DO NOTHING",
        params![&device[..], distribution, thread_id],
    )?;
    Ok(())
}

/// The thread a distribution id from `device` belongs to (mappings from
/// before schema 7 carry no device and are the fallback).
pub(crate) fn thread_of(
    conn: &Connection,
    device: &[u8; 32],
    distribution: &[u8],
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT thread_id FROM sender_key_owner
             WHERE distribution_id = ?2 AND device_id IN (?1, X'')
             ORDER BY length(device_id) DESC LIMIT 1",
            params![&device[..], distribution],
            |r| r.get(0),
        )
        .optional()?)
}
