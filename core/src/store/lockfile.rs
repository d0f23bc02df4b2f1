//! The profile's credential lock file, `credential.lock`, beside its
//! database: the database key wrapped under the user's credential
//! ([`crate::crypto::credential`]) and the count of failed attempts that
//! rate-limits guessing.
//!
//! Invariants:
//! - Written atomically (a private temporary file, synced, renamed): a
//!   crash leaves the old file or the new one, never a torn one.
//! - A failed attempt is counted *before* the credential is tried, and the
//!   count is on disk before the answer is known, so cutting the power
//!   after a wrong guess does not give the guess back.
//! - The file holds no secret in the clear: a salt, a nonce, the sealed
//!   key, counters and times.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::crypto::credential::WrappedKey;

/// The lock file's name in a profile directory.
pub(crate) const LOCK_FILE: &str = "credential.lock";
/// Held (an OS file lock) by whoever reads and rewrites the lock file, so
/// two threads or two processes never interleave an attempt.
pub(crate) const GUARD_FILE: &str = "credential.guard";

/// Largest lock file read (a real one is a few hundred bytes).
const MAX_LOCK_FILE: u64 = 16 * 1024;

/// When a failed attempt happened, by the clocks that can tell.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct FailedAt {
    /// The device's wall clock.
    pub(crate) wall_ms: i64,
    /// The boot it happened in and the time since that boot, if known.
    pub(crate) boot: Option<(String, i64)>,
}

/// The lock file's content.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LockFile {
    pub(crate) format: u32,
    pub(crate) log_n: u8,
    pub(crate) salt: String,
    pub(crate) nonce: String,
    pub(crate) sealed: String,
    /// Failed attempts since the last success.
    pub(crate) failures: u32,
    /// Failures after which the profile is wiped (0: never).
    pub(crate) max_failures: u32,
    /// The last failed attempt.
    #[serde(default)]
    pub(crate) last_failure: Option<FailedAt>,
}

impl LockFile {
    pub(crate) fn new(wrapped: &WrappedKey, max_failures: u32) -> Self {
        Self {
            format: 1,
            log_n: wrapped.log_n,
            salt: hex::encode(wrapped.salt),
            nonce: hex::encode(wrapped.nonce),
            sealed: hex::encode(&wrapped.sealed),
            failures: 0,
            max_failures,
            last_failure: None,
        }
    }

    /// The wrapped key it holds.
    pub(crate) fn wrapped(&self) -> Result<WrappedKey, StoreError> {
        let bad = || StoreError::Corrupt("the credential lock file".into());
        let salt = hex::decode(&self.salt).map_err(|_| bad())?;
        let nonce = hex::decode(&self.nonce).map_err(|_| bad())?;
        Ok(WrappedKey {
            log_n: self.log_n,
            salt: <[u8; 32]>::try_from(salt.as_slice()).map_err(|_| bad())?,
            nonce: <[u8; 12]>::try_from(nonce.as_slice()).map_err(|_| bad())?,
            sealed: hex::decode(&self.sealed).map_err(|_| bad())?,
        })
    }

    /// Replaces the wrapped key (a changed credential), keeping the policy.
    pub(crate) fn rewrap(&mut self, wrapped: &WrappedKey) {
        self.log_n = wrapped.log_n;
        self.salt = hex::encode(wrapped.salt);
        self.nonce = hex::encode(wrapped.nonce);
        self.sealed = hex::encode(&wrapped.sealed);
    }
}

/// Exclusive use of the lock file of the profile in `dir` until dropped.
pub(crate) struct Guard(#[allow(dead_code)] std::fs::File);

/// Takes the exclusive use of the lock file (waits for another holder).
pub(crate) fn exclusive(dir: &Path) -> Result<Guard, StoreError> {
    let p = dir.join(GUARD_FILE);
    let f = super::files::lock_file(&p)
        .map_err(|e| StoreError::io("lock the credential guard", &p, e))?;
    Ok(Guard(f))
}

fn path(dir: &Path) -> PathBuf {
    dir.join(LOCK_FILE)
}

/// The lock file of the profile in `dir`, if it has one.
pub(crate) fn read(dir: &Path) -> Result<Option<LockFile>, StoreError> {
    let p = path(dir);
    let meta = match std::fs::metadata(&p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read the credential lock", &p, e)),
    };
    if meta.len() > MAX_LOCK_FILE {
        return Err(StoreError::Corrupt(
            "the credential lock file is too large".into(),
        ));
    }
    let bytes = std::fs::read(&p).map_err(|e| StoreError::io("read the credential lock", &p, e))?;
    let file: LockFile = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::Corrupt(format!("the credential lock file: {e}")))?;
    if file.format != 1 {
        return Err(StoreError::Corrupt(
            "the credential lock file has an unknown format".into(),
        ));
    }
    Ok(Some(file))
}

/// Writes the lock file of the profile in `dir` atomically and durably
/// (hold [`exclusive`] when it already exists).
pub(crate) fn write(dir: &Path, file: &LockFile) -> Result<(), StoreError> {
    let p = path(dir);
    let tmp = dir.join(format!("{LOCK_FILE}.new"));
    let io = |e| StoreError::io("write the credential lock", &p, e);
    let _ = std::fs::remove_file(&tmp);
    let bytes = serde_json::to_vec(file)
        .map_err(|e| StoreError::Corrupt(format!("encoding the credential lock: {e}")))?;
    let mut f = super::files::create_new_private(&tmp).map_err(io)?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, &p).map_err(io)?;
    // The rename itself is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Sets the failures after which the profile in `dir` is wiped, if it has
/// a lock file (the organisation's policy sets it).
pub(crate) fn set_max_failures(dir: &Path, max: u32) -> Result<(), StoreError> {
    if read(dir)?.is_none() {
        return Ok(());
    }
    let _guard = exclusive(dir)?;
    if let Some(mut file) = read(dir)?
        && file.max_failures != max
    {
        file.max_failures = max;
        write(dir, &file)?;
    }
    Ok(())
}
