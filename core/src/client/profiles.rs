//! Profiles for shared devices: each user of the device has their own
//! profile — its own directory, database and key — and the manager hands
//! out a [`Client`] for each. Profiles share nothing. Wiping a profile closes
//! its client first (a logout that wipes), then removes every file of it.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::guard::guarded_sync;
use super::{Client, key_from, open_engine, runtime};
use crate::error::Result;
use crate::events::{ClientEvent, WithdrawReason};
use crate::retention::{Clock, SystemClock};
use crate::store::ProfileDirs;

/// Creates, opens, lists and wipes the profiles under one root directory.
/// Each operation has an `_async` twin that runs it on the core's blocking
/// pool, for callers that must not wait on disk (a UI thread).
#[derive(Clone, Debug)]
pub struct ProfileManager {
    pub(super) dirs: ProfileDirs,
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
            let key = key_from(&key)?;
            let store = self.dirs.create(name, &key)?;
            Client::from_store(store, key)
        })
    }

    /// Opens profile `name` with its key.
    pub fn open(&self, name: &str, key: Vec<u8>) -> Result<Client> {
        let key = Zeroizing::new(key);
        guarded_sync(|| {
            Client::refuse_if_open(&self.dirs.profile_dir(name)?)?;
            let key = key_from(&key)?;
            let store = self.dirs.open(name, &key)?;
            Client::from_store(store, key)
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
            let open = open_engine(&self.dirs.profile_dir(name)?);
            if let Some(engine) = &open {
                engine.close();
            }
            self.dirs.wipe(name)?;
            if let Some(engine) = open {
                engine.events.emit(ClientEvent::WithdrawNotifications {
                    message_ids: Vec::new(),
                    relay_message_ids: Vec::new(),
                    all: true,
                    reason: WithdrawReason::Wiped,
                });
                engine.events.emit(ClientEvent::ProfileWiped);
                engine.events.end();
            }
            Ok(())
        })
    }

    /// The directory of profile `name`.
    pub fn profile_dir(&self, name: &str) -> Result<String> {
        Ok(self.dirs.profile_dir(name)?.to_string_lossy().into_owned())
    }

    /// Which profile a push notice is for, by the device it names
    /// ([`crate::push::profile_for_notice`]), off the caller's thread.
    pub async fn profile_for_notice_async(&self, notice: Vec<u8>) -> Result<Option<String>> {
        let root = self.dirs.root().to_string_lossy().into_owned();
        runtime::blocking(move || crate::push::profile_for_notice(&root, &notice)).await
    }

    /// [`ProfileManager::create`] off the caller's thread.
    pub async fn create_async(&self, name: String, key: Vec<u8>) -> Result<Client> {
        let m = self.clone();
        runtime::blocking(move || m.create(&name, key)).await
    }

    /// [`ProfileManager::open`] off the caller's thread.
    pub async fn open_async(&self, name: String, key: Vec<u8>) -> Result<Client> {
        let m = self.clone();
        runtime::blocking(move || m.open(&name, key)).await
    }

    /// [`ProfileManager::list`] off the caller's thread.
    pub async fn list_async(&self) -> Result<Vec<String>> {
        let m = self.clone();
        runtime::blocking(move || m.list()).await
    }

    /// [`ProfileManager::exists`] off the caller's thread.
    pub async fn exists_async(&self, name: String) -> Result<bool> {
        let m = self.clone();
        runtime::blocking(move || Ok(m.exists(&name))).await
    }

    /// [`ProfileManager::wipe`] off the caller's thread.
    pub async fn wipe_async(&self, name: String) -> Result<()> {
        let m = self.clone();
        runtime::blocking(move || m.wipe(&name)).await
    }
}
