//! Threads and their member lists.
//!
//! A thread row is created by the first thing that needs it (a message sent
//! or received, a membership update, a sender key) through one upsert,
//! `upsert_in`, which says what happens to an existing row: mark it active,
//! rename it, or leave it. Ids follow [`occ_protocol::ids`].

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};

/// Longest thread title, in bytes.
pub const MAX_TITLE_LEN: usize = occ_protocol::payload::MAX_TITLE_LEN;

/// A 1:1 conversation or a group thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadKind {
    /// Two users.
    Direct,
    /// A topic among users and teams (sender keys).
    Group,
}

impl ThreadKind {
    fn to_i64(self) -> i64 {
        match self {
            ThreadKind::Direct => 0,
            ThreadKind::Group => 1,
        }
    }

    fn from_i64(v: i64) -> Self {
        if v == 1 {
            ThreadKind::Group
        } else {
            ThreadKind::Direct
        }
    }
}

/// A thread as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadSummary {
    /// Identifier.
    pub id: String,
    /// Display title.
    pub title: String,
    /// Direct or group.
    pub kind: ThreadKind,
    /// When the thread was first stored (trusted time, ms).
    pub created_ms: i64,
    /// When its latest message was stored (trusted time, ms).
    pub last_ms: i64,
}

/// What [`upsert_in`] does to a thread that already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnExisting {
    /// A message arrived or left: move `last_ms` forward.
    MarkActive,
    /// A membership update or the user renamed it: take the new title and kind.
    Rename,
    /// Only make sure it exists.
    Keep,
}

pub(crate) fn check_id(id: &str) -> Result<(), StoreError> {
    if occ_protocol::ids::valid_thread_id(id) {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "a thread id must be 1 to {} characters of A-Z a-z 0-9 - _ . : @",
            occ_protocol::ids::MAX_THREAD_ID_LEN
        )))
    }
}

/// Creates thread `id` with `title` and `kind` at `now`, or updates the
/// existing row as `on_existing` says.
pub(crate) fn upsert_in(
    conn: &Connection,
    id: &str,
    title: &str,
    kind: ThreadKind,
    now: i64,
    on_existing: OnExisting,
) -> Result<(), StoreError> {
    check_id(id)?;
    if title.len() > MAX_TITLE_LEN {
        return Err(StoreError::InvalidInput(format!(
            "a thread title is at most {MAX_TITLE_LEN} bytes"
        )));
    }
    let sql = match on_existing {
        OnExisting::MarkActive => {
            "INSERT INTO threads (id, title, kind, created_ms, last_ms) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT(id) DO UPDATE SET last_ms = max(last_ms, excluded.last_ms)"
        }
        OnExisting::Rename => {
            "INSERT INTO threads (id, title, kind, created_ms, last_ms) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT(id) DO UPDATE SET title = excluded.title, kind = excluded.kind"
        }
        OnExisting::Keep => {
            "INSERT INTO threads (id, title, kind, created_ms, last_ms) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT(id) DO NOTHING"
        }
    };
    conn.prepare_cached(sql)?
        .execute(params![id, title, kind.to_i64(), now])?;
    Ok(())
}

/// A thread's title, if the thread exists.
pub(crate) fn title_of(conn: &Connection, thread_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT title FROM threads WHERE id = ?1",
            [thread_id],
            |r| r.get(0),
        )
        .optional()?)
}

/// The thread's admin (its creator), if recorded.
pub(crate) fn admin_of(conn: &Connection, thread_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT admin FROM threads WHERE id = ?1",
            [thread_id],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()?
        .flatten())
}

/// Records the thread's admin unless one is recorded already.
pub(crate) fn set_admin_if_unset_in(
    conn: &Connection,
    thread_id: &str,
    user: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE threads SET admin = ?2 WHERE id = ?1 AND admin IS NULL",
        params![thread_id, user],
    )?;
    Ok(())
}

pub(crate) fn members(conn: &Connection, thread_id: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT user FROM thread_members WHERE thread_id = ?1 ORDER BY user")?;
    let rows = stmt.query_map([thread_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether `user` is a member of `thread_id`.
pub(crate) fn is_member(
    conn: &Connection,
    thread_id: &str,
    user: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM thread_members WHERE thread_id = ?1 AND user = ?2")?
        .exists([thread_id, user])?)
}

/// Replaces the member list of a thread.
pub(crate) fn set_members_in(
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

impl Store {
    /// Every thread, most recently active first.
    pub fn threads(&self) -> Result<Vec<ThreadSummary>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, title, kind, created_ms, last_ms FROM threads ORDER BY last_ms DESC, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ThreadSummary {
                id: r.get(0)?,
                title: r.get(1)?,
                kind: ThreadKind::from_i64(r.get(2)?),
                created_ms: r.get(3)?,
                last_ms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether thread `id` exists; [`StoreError::InvalidInput`] for an id
    /// outside the rules.
    pub fn thread_exists(&self, id: &str) -> Result<bool, StoreError> {
        check_id(id)?;
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM threads WHERE id = ?1")?
            .exists([id])?)
    }

    /// Members of a thread, sorted (empty for a direct or unknown thread).
    pub fn thread_members(&self, thread_id: &str) -> Result<Vec<String>, StoreError> {
        members(&self.conn, thread_id)
    }
}
