//! Profiles for shared devices: each user of the device has their own
//! profile — its own directory, database and key — and the manager hands
//! out a [`Client`] for each. Profiles share nothing. Wiping a profile closes
//! its client first (a logout that wipes), then removes every file of it.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::guard::guarded_sync;
use super::{Client, key_from, open_engine};
use crate::error::Result;
use crate::retention::{Clock, SystemClock};
use crate::store::ProfileDirs;

/// Creates, opens, lists and wipes the profiles under one root directory.
#[derive(Debug)]
pub struct ProfileManager {
    dirs: ProfileDirs,
}

impl ProfileManager {
    /// A manager for profiles under `root` (created, private, if missing),
    /// using the system clock.
    pub fn new(root: &str) -> Result<Self> {
        Self::with_clock(root, Arc::new(SystemClock::new()))
    }

    /// As [`ProfileManager::new`] with an injected clock (tests, demos).
    pub fn with_clock(root: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        Ok(Self {
            dirs: ProfileDirs::with_clock(root, clock)?,
        })
    }

    /// Creates profile `name` (1–64 of `a-z A-Z 0-9 - _`) encrypted with the
    /// 32-byte `key`, and opens it.
    pub fn create(&self, name: &str, key: Vec<u8>) -> Result<Client> {
        let key = Zeroizing::new(key);
        guarded_sync(|| {
            let store = self.dirs.create(name, &key_from(&key)?)?;
            Client::from_store(store)
        })
    }

    /// Opens profile `name` with its key.
    pub fn open(&self, name: &str, key: Vec<u8>) -> Result<Client> {
        let key = Zeroizing::new(key);
        guarded_sync(|| {
            Client::refuse_if_open(&self.dirs.profile_dir(name)?)?;
            let store = self.dirs.open(name, &key_from(&key)?)?;
            Client::from_store(store)
        })
    }

    /// Names of every profile, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        Ok(self.dirs.list()?)
    }

    /// Whether profile `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.dirs.exists(name)
    }

    /// Wipes profile `name`: its client (if open) is closed, then every file
    /// of it is removed. The app must also delete its key from the keystore.
    pub fn wipe(&self, name: &str) -> Result<()> {
        guarded_sync(|| {
            if let Some(engine) = open_engine(&self.dirs.profile_dir(name)?) {
                engine.close();
            }
            Ok(self.dirs.wipe(name)?)
        })
    }
}
