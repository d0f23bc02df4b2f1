//! Persisted cryptographic state: the device account (identity and
//! prekeys), pairwise sessions and thread sender keys, as the versioned blobs
//! `crypto` produces. The blobs are secret; SQLCipher encrypts them at rest and
//! `secure_delete` scrubs replaced versions.
//!
//! Several sessions per peer device are kept (at most
//! [`MAX_SESSIONS_PER_PEER`], most recently used first): when two devices start
//! sessions with each other at the same time, each must still be able to
//! decrypt what was sent on the other's.

use rusqlite::{Connection, OptionalExtension, params};

use super::threads::{self, OnExisting, ThreadKind};
use super::{Store, StoreError, persist_high_water};
use crate::crypto::{Account, DeviceId, Session, ThreadKeys};

/// Most sessions kept per peer device.
pub const MAX_SESSIONS_PER_PEER: usize = 5;

pub(crate) fn save_account_in(conn: &Connection, account: &Account) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO account (id, state) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET state = excluded.state",
        [&account.to_bytes()[..]],
    )?;
    Ok(())
}

pub(crate) fn save_session_in(
    conn: &Connection,
    now: i64,
    session: &Session,
) -> Result<(), StoreError> {
    let peer = session.remote_identity().device_id();
    conn.execute(
        "INSERT INTO sessions (peer_device, base_key, state, used_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(peer_device, base_key) DO UPDATE SET state = excluded.state, used_ms = excluded.used_ms",
        params![&peer.0[..], &session.base_key()[..], &session.to_bytes()[..], now],
    )?;
    conn.execute(
        "DELETE FROM sessions WHERE peer_device = ?1 AND base_key NOT IN
           (SELECT base_key FROM sessions WHERE peer_device = ?1 ORDER BY used_ms DESC, base_key LIMIT ?2)",
        params![&peer.0[..], MAX_SESSIONS_PER_PEER as i64],
    )?;
    Ok(())
}

pub(crate) fn save_thread_keys_in(
    conn: &Connection,
    now: i64,
    keys: &ThreadKeys,
) -> Result<(), StoreError> {
    let thread_id = std::str::from_utf8(keys.thread_id())
        .map_err(|_| StoreError::InvalidInput("thread ids are UTF-8".into()))?;
    threads::upsert_in(
        conn,
        thread_id,
        thread_id,
        ThreadKind::Group,
        now,
        OnExisting::Keep,
    )?;
    conn.execute(
        "INSERT INTO sender_keys (thread_id, state) VALUES (?1, ?2)
         ON CONFLICT(thread_id) DO UPDATE SET state = excluded.state",
        params![thread_id, &keys.to_bytes()[..]],
    )?;
    Ok(())
}

pub(crate) fn load_sessions_in(
    conn: &Connection,
    peer: &DeviceId,
) -> Result<Vec<Session>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT state FROM sessions WHERE peer_device = ?1 ORDER BY used_ms DESC, base_key",
    )?;
    let blobs = stmt
        .query_map([&peer.0[..]], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    blobs
        .into_iter()
        .map(|b| Session::from_bytes(&zeroize::Zeroizing::new(b)).map_err(StoreError::from))
        .collect()
}

/// Whether any session with `peer` is stored.
pub(crate) fn has_session(conn: &Connection, peer: &DeviceId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM sessions WHERE peer_device = ?1")?
        .exists([&peer.0[..]])?)
}

pub(crate) fn load_thread_keys_in(
    conn: &Connection,
    thread_id: &str,
) -> Result<Option<ThreadKeys>, StoreError> {
    let blob: Option<Vec<u8>> = conn
        .query_row(
            "SELECT state FROM sender_keys WHERE thread_id = ?1",
            [thread_id],
            |r| r.get(0),
        )
        .optional()?;
    let blob = zeroize::Zeroizing::new(blob);
    Ok(blob.as_deref().map(ThreadKeys::from_bytes).transpose()?)
}

/// The device account as stored (inside the caller's transaction).
pub(crate) fn load_account_in(conn: &Connection) -> Result<Option<Account>, StoreError> {
    let blob: Option<Vec<u8>> = conn
        .query_row("SELECT state FROM account WHERE id = 1", [], |r| r.get(0))
        .optional()?;
    let blob = zeroize::Zeroizing::new(blob);
    Ok(blob.as_deref().map(Account::from_bytes).transpose()?)
}

impl Store {
    /// The device account, if one was saved.
    pub fn account(&self) -> Result<Option<Account>, StoreError> {
        load_account_in(&self.conn)
    }

    /// Saves the device account.
    pub fn save_account(&mut self, account: &Account) -> Result<(), StoreError> {
        let now = self.now_ms();
        let tx = self.conn.transaction()?;
        save_account_in(&tx, account)?;
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(())
    }
}
