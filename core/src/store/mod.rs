//! The encrypted local store: one SQLCipher database per profile.
//!
//! - [`db`]: keying, pragmas, key check, rekey.
//! - [`migrations`]: the schema, versioned in `user_version`.
//! - [`messages`]: messages; every content read filters on the deletion
//!   deadline against trusted time.
//! - [`threads`]: threads and their member lists (one upsert).
//! - [`attachments`]: files encrypted with their own random key, kept only in
//!   the database (crypto-shredding).
//! - [`crypto_state`]: persisted crypto state (account, sessions, sender keys).
//! - `outbox`: the durable outbox.
//! - `config`, `contacts`, `distributions`: the sync engine's bookkeeping
//!   (enrolment and inbox cursor; which user each device belongs to; who
//!   holds which thread sender key).
//! - `alerts`: urgent alerts sent (deadline, recipients) and their receipts.
//! - `notices`: push notices seen (replays) and each prompt's decision.
//! - `audit`: the hash-chained audit trail's rows and countersigned heads.
//! - [`security_events`]: refused input and relay failures (metadata only).
//! - `settings`: the keep period and the organisation maximum.
//! - [`purge`]: real deletion of everything past its deadline.
//! - [`profiles`]: [`ProfileDirs`], the directory layout of shared-device
//!   profiles (apps use `occ_core::ProfileManager`, which hands out clients).
//!
//! Every SQL statement of occ-core lives in this module.
//!
//! Invariants:
//! - Every write is one transaction; a crash leaves whole rows or none.
//! - Every read of message content (bodies, attachments) applies the deadline
//!   `min(ttl_expiry, received + keep_period, first_read + read_timer)` at
//!   trusted time ([`crate::retention`]).
//! - Errors are [`StoreError`]; none carries message content or key material.
//! - Profiles share nothing: each has its own directory, database and key.
//!
//! Layout of a profile directory: `occ.db` (+ `-wal`, `-shm`), `keycheck`,
//! `attachments/<random>.bin`.

pub(crate) mod alerts;
pub mod attachments;
pub(crate) mod audit;
pub(crate) mod config;
pub(crate) mod contacts;
pub mod crypto_state;
pub mod db;
pub(crate) mod distributions;
pub(crate) mod files;
pub(crate) mod lockfile;
pub mod messages;
pub mod migrations;
pub(crate) mod notices;
pub(crate) mod outbox;
pub mod profiles;
pub mod purge;
pub mod security_events;
mod settings;
pub mod threads;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, ErrorCode};

pub use alerts::RecipientState;
pub use attachments::AttachmentInfo;
pub use contacts::Trust;
pub use db::DbKey;
pub use messages::{Inserted, NewMessage, StoredMessage};
pub use profiles::ProfileDirs;
pub use purge::PurgeLogEntry;
pub use security_events::{SecurityEvent, SecurityEventKind};
pub use threads::{ThreadKind, ThreadSummary};

use crate::crypto::CryptoError;
use crate::retention::{Clock, ServerTime, TrustedTime};

/// The page cache of a profile opened for the push path, KiB.
pub const LIGHT_CACHE_KIB: u32 = 256;

/// Database file name inside a profile directory.
pub const DB_FILE: &str = "occ.db";
/// Attachment directory inside a profile directory.
pub const ATTACHMENT_DIR: &str = "attachments";
/// The profile's public push verifier (see [`crate::push`]).
pub const VERIFIER_FILE: &str = "push-verifier.json";
/// What the locked push path saw, for the next unlock (see [`crate::push`]).
pub const LOCKED_LOG_FILE: &str = "push-locked.json";
/// Serialises writers of the two push files.
pub const PUSH_GUARD_FILE: &str = "push.guard";

/// Errors of the store. Messages say what failed and what to do; they never
/// contain message content or key material.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not open this profile.
    #[error("wrong key: this key does not open the profile database")]
    WrongKey,
    /// The database file is damaged.
    #[error("the profile database is corrupt: {0}; restore it or wipe the profile")]
    Corrupt(String),
    /// Something asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The message exists but its deadline has passed.
    #[error("the message has expired and can no longer be read")]
    Expired,
    /// Creating something that exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The storage is read-only or not writable.
    #[error("storage is read-only: {0}")]
    ReadOnly(String),
    /// The disk (or the database's size limit) is full; nothing was written.
    #[error("the disk is full; nothing was written — free some space and retry")]
    DiskFull,
    /// A file-system operation failed.
    #[error("could not {op} ({path}): {kind}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error kind.
        kind: std::io::ErrorKind,
    },
    /// The database was written by a newer occ.
    #[error(
        "the database schema is version {found}, newer than this build supports ({supported}); update the app"
    )]
    SchemaTooNew {
        /// Version found.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The caller passed something unusable.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Storing this would pass the profile's attachment quota; nothing was
    /// written.
    #[error(
        "the attachment needs {needed} bytes but only {available} of the profile's {quota}-byte quota are free; nothing was written"
    )]
    QuotaExceeded {
        /// Bytes this attachment needs on disk.
        needed: u64,
        /// Bytes still free under the quota.
        available: u64,
        /// The quota.
        quota: u64,
    },
    /// Stored crypto state could not be used.
    #[error("stored cryptographic state: {0}")]
    Crypto(#[from] CryptoError),
    /// The OS random generator failed.
    #[error("the operating system's random number generator failed")]
    Randomness,
    /// Any other SQLite failure.
    #[error("database error ({code}): {message}")]
    Sqlite {
        /// SQLite's result code name.
        code: String,
        /// SQLite's message (never contains content: all values are bound).
        message: String,
    },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: &Path, e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::StorageFull => StoreError::DiskFull,
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                StoreError::ReadOnly(format!("could not {op} ({})", path.display()))
            }
            kind => StoreError::Io {
                op,
                path: path.to_path_buf(),
                kind,
            },
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match db::code(&e) {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::ReadOnly) => {
                StoreError::ReadOnly("the database cannot be written".into())
            }
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                StoreError::Corrupt(e.to_string())
            }
            Some(code) => StoreError::Sqlite {
                code: format!("{code:?}"),
                message: e.to_string(),
            },
            None => match e {
                rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound("row".into()),
                other => StoreError::Sqlite {
                    code: "rusqlite".into(),
                    message: other.to_string(),
                },
            },
        }
    }
}

/// An open profile store.
pub struct Store {
    pub(crate) conn: Connection,
    dir: PathBuf,
    pub(crate) clock: Arc<dyn Clock>,
    time: TrustedTime,
}

impl Store {
    /// Opens the existing profile database in `dir` with `key`, migrating it to
    /// the current schema.
    pub fn open(dir: &Path, key: &DbKey, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        Self::open_inner(dir, Some(key), false, clock, None)
    }

    /// Opens the profile for the push path (a Notification Service
    /// Extension): the same database with a page cache of 256 KiB instead
    /// of SQLite's 2 MB default, and no sweep of orphan attachment files
    /// (the app, in another process, may be writing one).
    pub fn open_light(dir: &Path, key: &DbKey, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        Self::open_inner(dir, Some(key), false, clock, Some(LIGHT_CACHE_KIB))
    }

    /// Creates a new profile database in the existing directory `dir`.
    pub fn create(dir: &Path, key: &DbKey, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        if dir.join(DB_FILE).exists() {
            return Err(StoreError::AlreadyExists(format!(
                "a database in {}",
                dir.display()
            )));
        }
        db::write_key_check(dir, key)?;
        let db = dir.join(DB_FILE);
        files::create_new_private(&db)
            .map_err(|e| StoreError::io("create the database", &db, e))?;
        Self::open_inner(dir, Some(key), true, clock, None)
    }

    /// Benchmarks only: the same store with *no* encryption (SQLCipher without
    /// a key is plain SQLite), to measure what the encryption costs.
    #[cfg(feature = "bench-internals")]
    pub fn create_unencrypted_for_benchmark(
        dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        Self::open_inner(dir, None, true, clock, None)
    }

    fn open_inner(
        dir: &Path,
        key: Option<&DbKey>,
        create: bool,
        clock: Arc<dyn Clock>,
        cache_kib: Option<u32>,
    ) -> Result<Self, StoreError> {
        if !dir.is_dir() {
            return Err(StoreError::NotFound(format!(
                "profile directory {}",
                dir.display()
            )));
        }
        let mut conn = db::open_connection(&dir.join(DB_FILE), key, create, cache_kib)?;
        migrations::migrate_to(&mut conn, migrations::SCHEMA_VERSION)?;
        let attachments = dir.join(ATTACHMENT_DIR);
        files::create_private_dir_all(&attachments)
            .map_err(|e| StoreError::io("create the attachment directory", &attachments, e))?;
        let (high_water, boot_id, boot_base): (i64, Option<String>, Option<i64>) = conn.query_row(
            "SELECT high_water_ms, boot_id, boot_base_ms FROM clock WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let boot = boot_id.as_deref().zip(boot_base);
        let time = TrustedTime::new(clock.as_ref(), high_water, boot);
        let mut store = Self {
            conn,
            dir: dir.to_path_buf(),
            clock,
            time,
        };
        store.persist_time()?;
        // Only a full open sweeps: a light open (the push extension, while
        // the app may be writing a file whose row is not committed yet)
        // leaves the attachment directory alone.
        if cache_kib.is_none() {
            store.remove_orphan_files()?;
        }
        Ok(store)
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Trusted time now, in milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.time.now_ms(self.clock.as_ref())
    }

    /// Considers a verified server time (from a signed relay
    /// acknowledgement): trusted time moves forward to it within the bounds
    /// described on [`ServerTime`], never back. Returns what happened and the
    /// trusted time after it.
    pub fn observe_server_time(&mut self, server_ms: i64) -> Result<(ServerTime, i64), StoreError> {
        let outcome = self.time.observe(self.clock.as_ref(), server_ms);
        self.conn
            .execute("UPDATE clock SET server_ms = ?1 WHERE id = 1", [server_ms])?;
        self.persist_time()?;
        Ok((outcome, self.now_ms()))
    }

    /// Persists the trusted-time high-water mark (also done by every write)
    /// and the trusted time at the start of this boot.
    pub fn persist_time(&mut self) -> Result<(), StoreError> {
        let now = self.now_ms();
        persist_high_water(&self.conn, now)?;
        if let Some(boot) = self.clock.boot() {
            let base = now.saturating_sub(boot.elapsed_ms);
            // Same boot: keep the larger base (suspended time may have run
            // the boot clock ahead of the monotonic one). New boot: replace.
            self.conn.execute(
                "UPDATE clock SET boot_base_ms = CASE WHEN boot_id IS ?1 \
                 THEN max(coalesce(boot_base_ms, ?2), ?2) ELSE ?2 END, boot_id = ?1 WHERE id = 1",
                (&boot.id, base),
            )?;
        }
        Ok(())
    }

    /// Changes the database key (the app stores the new key first).
    pub fn rekey(&mut self, new_key: &DbKey) -> Result<(), StoreError> {
        db::rekey(&self.conn, &self.dir, new_key)
    }

    /// Deletes files in the attachment directory that no row references: left
    /// by a crash between writing a file and committing its row, or between a
    /// purge's commit and its unlink (a `.part` download belongs to its row). Their keys are not in the database, so
    /// they were unreadable anyway.
    fn remove_orphan_files(&mut self) -> Result<(), StoreError> {
        let dir = self.dir.join(ATTACHMENT_DIR);
        let entries =
            std::fs::read_dir(&dir).map_err(|e| StoreError::io("list attachments", &dir, e))?;
        let mut stmt = self
            .conn
            .prepare("SELECT 1 FROM attachments WHERE file_name = ?1")?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // A partial download is kept while its row exists (it resumes).
            let owner = match name.strip_suffix(".part") {
                Some(base) => format!("{base}.bin"),
                None => name.to_string(),
            };
            if !stmt.exists([owner])? {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.persist_time();
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Runs `f` inside a savepoint of the caller's open transaction: its writes
/// are kept if it returns `Ok` and undone if it returns `Err`, while the rest
/// of the transaction goes on.
pub(crate) fn savepoint<T, E: From<StoreError>>(
    conn: &Connection,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    // Cached statements: a page runs this once per item.
    let run = |sql: &str| -> Result<(), E> {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(drop)
            .map_err(|e| E::from(e.into()))
    };
    run("SAVEPOINT item")?;
    match f() {
        Ok(v) => {
            run("RELEASE item")?;
            Ok(v)
        }
        Err(err) => {
            run("ROLLBACK TO item")?;
            run("RELEASE item")?;
            Err(err)
        }
    }
}

pub(crate) fn persist_high_water(conn: &Connection, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE clock SET high_water_ms = max(high_water_ms, ?1) WHERE id = 1",
        [now],
    )?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
