//! Profiles for shared devices.
//!
//! Each profile is a directory `<root>/<name>/` with its own database, key
//! check and attachments, and its own key (kept by the app in the Keystore /
//! Keychain, never here). Profiles share nothing.
//!
//! - Creation builds the profile in a hidden staging directory and renames it
//!   into place, so a failure (disk full, read-only) leaves no half-made
//!   profile behind.
//! - Wiping renames the directory away first (the profile disappears at once,
//!   atomically) and then deletes every file. Everything in it is encrypted
//!   under keys that die with it: the database key (the app deletes it from the
//!   keystore) and the attachment keys (inside the database).
//! - Names are 1–64 characters of `a-z A-Z 0-9 - _`, so a name can never reach
//!   outside the root.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::db::DbKey;
use super::{DB_FILE, Store, StoreError};
use crate::retention::{Clock, SystemClock};

/// Creates, lists, opens and wipes profiles under one root directory.
#[derive(Clone)]
pub struct ProfileDirs {
    root: PathBuf,
    clock: Arc<dyn Clock>,
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(
            "a profile name is 1 to 64 characters of a-z A-Z 0-9 - _".into(),
        ))
    }
}

fn random_suffix() -> Result<String, StoreError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|_| StoreError::Randomness)?;
    Ok(hex::encode(b))
}

use super::files::create_private_dir as make_private_dir;

impl ProfileDirs {
    /// A manager for profiles under `root` (created, private, if missing),
    /// using the system clock.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Self::with_clock(root, Arc::new(SystemClock::new()))
    }

    /// As [`ProfileDirs::new`] with a given clock.
    pub fn with_clock(root: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let root = root.into();
        if !root.exists() {
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty())
                && !parent.exists()
            {
                return Err(StoreError::NotFound(format!(
                    "directory {}",
                    parent.display()
                )));
            }
            make_private_dir(&root)
                .map_err(|e| StoreError::io("create the profile root", &root, e))?;
        }
        if !root.is_dir() {
            return Err(StoreError::InvalidInput(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        Ok(Self { root, clock })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The clock profiles are opened with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The directory of profile `name`.
    pub fn profile_dir(&self, name: &str) -> Result<PathBuf, StoreError> {
        check_name(name)?;
        Ok(self.root.join(name))
    }

    /// Whether profile `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.profile_dir(name)
            .is_ok_and(|d| d.join(DB_FILE).is_file())
    }

    /// Creates profile `name`, encrypted with `key`.
    pub fn create(&self, name: &str, key: &DbKey) -> Result<Store, StoreError> {
        self.create_with(name, key, |_| Ok(()))
    }

    /// As [`ProfileDirs::create`], with `extra` writing more files into the
    /// new profile before it appears under its name (a crash leaves either
    /// no profile or a complete one).
    pub(crate) fn create_with(
        &self,
        name: &str,
        key: &DbKey,
        extra: impl FnOnce(&Path) -> Result<(), StoreError>,
    ) -> Result<Store, StoreError> {
        let dir = self.profile_dir(name)?;
        if dir.exists() {
            return Err(StoreError::AlreadyExists(format!("profile {name}")));
        }
        let staging = self.root.join(format!(".{name}.new-{}", random_suffix()?));
        make_private_dir(&staging)
            .map_err(|e| StoreError::io("create the profile directory", &staging, e))?;
        let built = Store::create(&staging, key, self.clock.clone())
            .map(drop)
            .and_then(|()| extra(&staging));
        if let Err(e) = built {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        if let Err(e) = std::fs::rename(&staging, &dir) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(StoreError::io("move the new profile into place", &dir, e));
        }
        Store::open(&dir, key, self.clock.clone())
    }

    /// Opens profile `name` with `key` ([`StoreError::WrongKey`] if it is not
    /// this profile's key).
    pub fn open(&self, name: &str, key: &DbKey) -> Result<Store, StoreError> {
        let dir = self.profile_dir(name)?;
        if !dir.join(DB_FILE).is_file() {
            return Err(StoreError::NotFound(format!("profile {name}")));
        }
        Store::open(&dir, key, self.clock.clone())
    }

    /// Names of every profile, sorted. Leftovers of interrupted creations or
    /// wipes (hidden directories) are removed.
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let entries = std::fs::read_dir(&self.root)
            .map_err(|e| StoreError::io("list profiles", &self.root, e))?;
        let mut names = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.')
                && (name.contains(".new-") || name.contains(".wipe-"))
                && path.is_dir()
            {
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
            if check_name(&name).is_ok() && path.join(DB_FILE).is_file() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Wipes profile `name`: every file of it is removed. Close its
    /// [`Store`] first; the app must also delete the key from its keystore.
    pub fn wipe(&self, name: &str) -> Result<(), StoreError> {
        let dir = self.profile_dir(name)?;
        if !dir.exists() {
            return Err(StoreError::NotFound(format!("profile {name}")));
        }
        let doomed = self.root.join(format!(".{name}.wipe-{}", random_suffix()?));
        std::fs::rename(&dir, &doomed).map_err(|e| StoreError::io("wipe the profile", &dir, e))?;
        std::fs::remove_dir_all(&doomed).map_err(|e| StoreError::io("wipe the profile", &doomed, e))
    }
}

/// Removes a profile's files from `dir` (its store closed): the database
/// and its WAL, the key check, the credential lock (the wrapped key), the
/// push verifier and its record, and the attachments (whose keys were in
/// the database). The directory itself stays, empty.
pub(crate) fn wipe_dir(dir: &Path) -> Result<(), StoreError> {
    for name in [
        super::DB_FILE.to_string(),
        format!("{}-wal", super::DB_FILE),
        format!("{}-shm", super::DB_FILE),
        super::db::KEY_CHECK_FILE.to_string(),
        super::lockfile::LOCK_FILE.to_string(),
        format!("{}.new", super::lockfile::LOCK_FILE),
        super::lockfile::GUARD_FILE.to_string(),
        super::VERIFIER_FILE.to_string(),
        format!("{}.tmp", super::VERIFIER_FILE),
        super::LOCKED_LOG_FILE.to_string(),
        format!("{}.tmp", super::LOCKED_LOG_FILE),
        super::PUSH_GUARD_FILE.to_string(),
    ] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("wipe the profile", &path, e)),
        }
    }
    let attachments = dir.join(super::ATTACHMENT_DIR);
    match std::fs::remove_dir_all(&attachments) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("wipe the profile", &attachments, e)),
    }
}

impl std::fmt::Debug for ProfileDirs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileDirs")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}
