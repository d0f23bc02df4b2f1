//! Opening a profile database: SQLCipher keying, pragmas, key check, errors.
//!
//! - The key is a raw 256-bit key given as `PRAGMA key = "x'<64 hex>'"`, which
//!   skips SQLCipher's PBKDF2 (the key is already random; the app keeps it in
//!   the Android Keystore / iOS Keychain).
//! - Pragmas: `secure_delete = ON` (checked, not assumed), `journal_mode = WAL`,
//!   `synchronous = FULL` (an acknowledged message survives power loss),
//!   `temp_store = MEMORY`, `foreign_keys = ON`.
//! - A wrong key and a corrupt file both make SQLCipher fail to decrypt page 1.
//!   To tell them apart, the profile keeps a *key check* beside the database:
//!   HMAC-SHA256(key, "occ/v1/db-key-check"). It reveals nothing usable about a
//!   random 256-bit key. If the key matches the check but the file will not
//!   open, the file is [`StoreError::Corrupt`]; otherwise [`StoreError::WrongKey`].

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::StoreError;

/// A profile database key: 32 random bytes. Zeroized on drop; never in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DbKey([u8; 32]);

impl DbKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, StoreError> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|_| StoreError::Randomness)?;
        Ok(Self(k))
    }

    /// Wraps raw key bytes (e.g. from the platform keystore).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Wraps a key given as a slice; it must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, StoreError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::InvalidInput("a database key is exactly 32 bytes".into()))?;
        Ok(Self(arr))
    }

    /// The raw bytes, to hand back to the platform keystore.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn pragma(&self, name: &str) -> Zeroizing<String> {
        let mut hex = Zeroizing::new(hex::encode(self.0));
        let sql = Zeroizing::new(format!("PRAGMA {name} = \"x'{}'\";", hex.as_str()));
        hex.zeroize();
        sql
    }

    fn check_value(&self) -> [u8; 32] {
        let block: &[u8; 32] = &self.0;
        let mut padded = Zeroizing::new([0u8; 64]);
        padded[..32].copy_from_slice(block);
        let padded_ref: &[u8; 64] = &padded;
        let mut mac = Hmac::<Sha256>::new(padded_ref.into());
        mac.update(b"occ/v1/db-key-check");
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for DbKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbKey(<redacted>)")
    }
}

/// File name of the key check beside the database.
pub(crate) const KEY_CHECK_FILE: &str = "keycheck";
const KEY_CHECK_NEW: &str = "keycheck.new";

/// Writes the key check for `key` atomically (temp file, fsync, rename).
pub(crate) fn write_key_check(dir: &Path, key: &DbKey) -> Result<(), StoreError> {
    let tmp = dir.join(KEY_CHECK_NEW);
    super::files::write_private(&tmp, &key.check_value())
        .map_err(|e| StoreError::io("write the key check", &tmp, e))?;
    let dst = dir.join(KEY_CHECK_FILE);
    std::fs::rename(&tmp, &dst).map_err(|e| StoreError::io("write the key check", &dst, e))
}

fn key_matches_check(dir: &Path, key: &DbKey) -> bool {
    let expect = key.check_value();
    [KEY_CHECK_FILE, KEY_CHECK_NEW]
        .iter()
        .any(|f| std::fs::read(dir.join(f)).is_ok_and(|v| v == expect))
}

/// Opens (or creates) the database at `path` with `key` (`None` only for the
/// unkeyed benchmark baseline) and applies the pragmas.
pub(crate) fn open_connection(
    path: &Path,
    key: Option<&DbKey>,
    create: bool,
    cache_kib: Option<u32>,
) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    } else if !path.exists() {
        return Err(StoreError::NotFound("profile database".into()));
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| map_open_error(path, e))?;
    // SQLCipher would otherwise print its own diagnostics (e.g. every failed
    // page HMAC on a wrong key) to stderr / logcat; failures reach the caller
    // as typed errors instead.
    conn.execute_batch("PRAGMA cipher_log_level = NONE;")
        .map_err(|e| map_open_error(path, e))?;
    if let Some(key) = key {
        conn.execute_batch(&key.pragma("key"))
            .map_err(|e| map_open_error(path, e))?;
    }
    if let Some(kib) = cache_kib {
        // Before the first read, so the default cache is never filled.
        conn.execute_batch(&format!("PRAGMA cache_size = -{kib};"))
            .map_err(|e| map_open_error(path, e))?;
    }
    // The first real read decrypts page 1: this is where a bad key shows.
    if let Err(e) = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    }) {
        return Err(match (code(&e), key) {
            (Some(ErrorCode::NotADatabase), Some(key)) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                if key_matches_check(dir, key) {
                    StoreError::Corrupt(
                        "the database file cannot be decrypted with the right key".into(),
                    )
                } else {
                    StoreError::WrongKey
                }
            }
            _ => map_open_error(path, e),
        });
    }
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        return Err(StoreError::ReadOnly(format!(
            "{} is not writable",
            path.display()
        )));
    }
    apply_pragmas(&conn)?;
    Ok(conn)
}

fn apply_pragmas(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let secure: i64 = conn.query_row("PRAGMA secure_delete = ON", [], |r| r.get(0))?;
    if secure != 1 {
        return Err(StoreError::Sqlite {
            code: "secure_delete".into(),
            message: "SQLite refused to enable secure_delete".into(),
        });
    }
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Sqlite {
            code: "journal_mode".into(),
            message: format!("could not switch to WAL (got {mode})"),
        });
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = ON;",
    )?;
    Ok(())
}

/// Changes the database key. SQLCipher 4 rekeys reliably only outside WAL
/// mode, so the WAL is checkpointed away, the journal switched to DELETE for
/// the (atomic, journaled) rekey, and WAL restored. The key check is replaced
/// afterwards; until then either key's check is accepted for classification.
pub(crate) fn rekey(conn: &Connection, dir: &Path, new_key: &DbKey) -> Result<(), StoreError> {
    let tmp = dir.join(KEY_CHECK_NEW);
    super::files::write_private(&tmp, &new_key.check_value())
        .map_err(|e| StoreError::io("write the key check", &tmp, e))?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(StoreError::Sqlite {
            code: "journal_mode".into(),
            message: "could not leave WAL mode to rekey (is another connection open?)".into(),
        });
    }
    conn.execute_batch(&new_key.pragma("rekey"))?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    write_key_check(dir, new_key)
}

/// The SQLite result code of an error, if it has one.
pub(crate) fn code(e: &rusqlite::Error) -> Option<ErrorCode> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    }
}

fn map_open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    match code(&e) {
        Some(ErrorCode::CannotOpen) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            if !dir.exists() {
                StoreError::NotFound(format!("profile directory {}", dir.display()))
            } else {
                StoreError::ReadOnly(format!("cannot open {} for writing", path.display()))
            }
        }
        _ => StoreError::from(e),
    }
}
