//! The shared-device lock: a profile whose database key exists only
//! wrapped under its user's credential (a PIN or passphrase, and a secret
//! the app keeps in the platform keystore), with guessing rate-limited and,
//! past a limit, the profile wiped.
//!
//! - [`ProfileManager::create_locked`] makes a profile with a fresh random
//!   database key, wraps it ([`crate::crypto::credential`]) into the
//!   profile's `credential.lock` (written atomically beside its database)
//!   and opens it.
//! - [`ProfileManager::unlock`] takes the credential: the first
//!   [`FREE_ATTEMPTS`] failures cost nothing; after that each failure doubles
//!   the wait before the next attempt is taken ([`Error::TryLater`], not
//!   counted), from 5 s up to 15 min; at `max_failures` (the app's
//!   [`LockOptions`], or the organisation policy's `max_unlock_failures`)
//!   the profile's files are wiped ([`Error::ProfileWiped`]).
//! - The wait is measured on the boot clock within one boot (setting the
//!   device clock does not shorten it). After a reboot it is the smaller of
//!   the wall-clock difference and the time since this boot (a clock set
//!   forward does not help; the real time passed is at least the time since
//!   boot). Where the platform has no boot clock (iOS), the wall clock
//!   measures it, where a clock set back only lengthens it; there the
//!   failure count — on disk before each attempt is tried, and refused
//!   outright once at the limit — is what stops guessing.
//! - One attempt at a time per profile, across threads and processes (an OS
//!   file lock beside the lock file).
//!
//! Platform user authentication (a biometric prompt) is the other way to
//! unlock: the app wraps the database key with a keystore key that needs it
//! and opens with [`ProfileManager::open`]; both can exist for one profile.

use zeroize::Zeroizing;

use super::guard::guarded_sync;
use super::{Client, ProfileManager, runtime};
use crate::crypto::credential::{self, DEFAULT_LOG_N};
use crate::error::{Error, Result};
use crate::retention::Clock;
use crate::store::DbKey;
use crate::store::lockfile::{self, FailedAt, LockFile};

/// Failures that cost no wait.
pub const FREE_ATTEMPTS: u32 = 3;
/// The wait after the first failure that costs one, ms.
pub const FIRST_BACKOFF_MS: u64 = 5_000;
/// The longest wait between attempts, ms.
pub const MAX_BACKOFF_MS: u64 = 15 * 60 * 1000;
/// Failures after which a profile is wiped unless the app or the policy
/// says otherwise.
pub const DEFAULT_MAX_FAILURES: u32 = 10;

/// How a new locked profile is protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockOptions {
    /// Failed attempts after which the profile is wiped (0: never; the
    /// organisation's policy overrides it).
    pub max_failures: u32,
    /// The key derivation's cost (scrypt `log_n`, 10 to 18).
    pub cost: u8,
}

impl Default for LockOptions {
    fn default() -> Self {
        Self {
            max_failures: DEFAULT_MAX_FAILURES,
            cost: DEFAULT_LOG_N,
        }
    }
}

/// Where a locked profile stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockStatus {
    /// Whether it has a credential (else it opens only with its key).
    pub has_credential: bool,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// Failures after which it is wiped (0: never).
    pub max_failures: u32,
    /// How long until the next attempt is taken, ms (0: now).
    pub retry_after_ms: u64,
}

/// The wait after `failures` failures, ms.
pub fn backoff_ms(failures: u32) -> u64 {
    if failures < FREE_ATTEMPTS {
        return 0;
    }
    let doublings = (failures - FREE_ATTEMPTS).min(20);
    FIRST_BACKOFF_MS
        .saturating_mul(1u64 << doublings)
        .min(MAX_BACKOFF_MS)
}

fn failed_now(clock: &dyn Clock) -> FailedAt {
    FailedAt {
        wall_ms: clock.wall_ms(),
        boot: clock.boot().map(|b| (b.id, b.elapsed_ms)),
    }
}

/// Time since `at`, measured as the module documentation says, ms.
fn elapsed_ms(at: &FailedAt, clock: &dyn Clock) -> u64 {
    let wall = u64::try_from(clock.wall_ms().saturating_sub(at.wall_ms)).unwrap_or(0);
    match (&at.boot, clock.boot()) {
        (Some((id, then)), Some(now)) if *id == now.id => {
            u64::try_from(now.elapsed_ms.saturating_sub(*then)).unwrap_or(0)
        }
        // Another boot: at least the time since this boot has passed, and
        // no more than the wall clock claims.
        (_, Some(now)) => wall.min(u64::try_from(now.elapsed_ms).unwrap_or(0)),
        (_, None) => wall,
    }
}

fn retry_after_ms(file: &LockFile, clock: &dyn Clock) -> u64 {
    match &file.last_failure {
        Some(at) => backoff_ms(file.failures).saturating_sub(elapsed_ms(at, clock)),
        None => 0,
    }
}

impl ProfileManager {
    /// Creates profile `name` locked with `credential` (4 to 1024 bytes)
    /// and `device_secret` (from the platform keystore; may be empty), with
    /// a fresh random database key that is stored only wrapped, and opens
    /// it. Nothing is left behind if any step fails.
    pub fn create_locked(
        &self,
        name: &str,
        credential: Vec<u8>,
        device_secret: Vec<u8>,
        options: LockOptions,
    ) -> Result<Client> {
        let (credential, secret) = (Zeroizing::new(credential), Zeroizing::new(device_secret));
        guarded_sync(|| {
            credential::check_credential(&credential)?;
            let key = DbKey::generate()?;
            let wrapped =
                credential::wrap(key.as_bytes(), name, &credential, &secret, options.cost)?;
            let file = LockFile::new(&wrapped, options.max_failures);
            // The lock file is written before the profile appears under its
            // name: a crash leaves no profile, or one that can be unlocked.
            let store = self
                .dirs
                .create_with(name, &key, |staging| lockfile::write(staging, &file))?;
            Client::from_store(store, key)
        })
    }

    /// Opens the locked profile `name` with its user's credential (see the
    /// module documentation): [`Error::WrongCredential`] (counted),
    /// [`Error::TryLater`] (too soon; not counted) or
    /// [`Error::ProfileWiped`] (that was the last allowed failure).
    pub fn unlock(
        &self,
        name: &str,
        credential: Vec<u8>,
        device_secret: Vec<u8>,
    ) -> Result<Client> {
        let (credential, secret) = (Zeroizing::new(credential), Zeroizing::new(device_secret));
        guarded_sync(|| {
            Client::refuse_if_open(&self.dirs.profile_dir(name)?)?;
            let key = self.attempt(name, &credential, &secret)?;
            let key = DbKey::from_slice(key.as_slice())?;
            let store = self.dirs.open(name, &key)?;
            Client::from_store(store, key)
        })
    }

    /// Replaces the credential (and device secret) of the locked profile
    /// `name`; the old one must be given, and a wrong one counts as a
    /// failed attempt.
    pub fn change_credential(
        &self,
        name: &str,
        old: Vec<u8>,
        new: Vec<u8>,
        device_secret: Vec<u8>,
        new_device_secret: Vec<u8>,
    ) -> Result<()> {
        let (old, new) = (Zeroizing::new(old), Zeroizing::new(new));
        let (secret, new_secret) = (
            Zeroizing::new(device_secret),
            Zeroizing::new(new_device_secret),
        );
        guarded_sync(|| {
            credential::check_credential(&new)?;
            let key = self.attempt(name, &old, &secret)?;
            let dir = self.dirs.profile_dir(name)?;
            let _one = lockfile::exclusive(&dir)?;
            let mut file = lockfile::read(&dir)?.ok_or_else(|| no_credential(name))?;
            let wrapped = credential::wrap(&key, name, &new, &new_secret, file.log_n)?;
            file.rewrap(&wrapped);
            Ok(lockfile::write(&dir, &file)?)
        })
    }

    /// Where the lock of profile `name` stands (no credential needed).
    pub fn lock_status(&self, name: &str) -> Result<LockStatus> {
        guarded_sync(|| {
            let dir = self.dirs.profile_dir(name)?;
            if !self.dirs.exists(name) {
                return Err(Error::not_found(format!("profile {name}")));
            }
            Ok(match lockfile::read(&dir)? {
                Some(f) => LockStatus {
                    has_credential: true,
                    failures: f.failures,
                    max_failures: f.max_failures,
                    retry_after_ms: retry_after_ms(&f, self.dirs.clock().as_ref()),
                },
                None => LockStatus {
                    has_credential: false,
                    failures: 0,
                    max_failures: 0,
                    retry_after_ms: 0,
                },
            })
        })
    }

    /// [`ProfileManager::create_locked`] off the caller's thread.
    pub async fn create_locked_async(
        &self,
        name: String,
        credential: Vec<u8>,
        device_secret: Vec<u8>,
        options: LockOptions,
    ) -> Result<Client> {
        let m = self.clone();
        runtime::blocking(move || m.create_locked(&name, credential, device_secret, options)).await
    }

    /// [`ProfileManager::unlock`] off the caller's thread.
    pub async fn unlock_async(
        &self,
        name: String,
        credential: Vec<u8>,
        device_secret: Vec<u8>,
    ) -> Result<Client> {
        let m = self.clone();
        runtime::blocking(move || m.unlock(&name, credential, device_secret)).await
    }

    /// [`ProfileManager::change_credential`] off the caller's thread.
    pub async fn change_credential_async(
        &self,
        name: String,
        old: Vec<u8>,
        new: Vec<u8>,
        device_secret: Vec<u8>,
        new_device_secret: Vec<u8>,
    ) -> Result<()> {
        let m = self.clone();
        runtime::blocking(move || {
            m.change_credential(&name, old, new, device_secret, new_device_secret)
        })
        .await
    }

    /// [`ProfileManager::lock_status`] off the caller's thread.
    pub async fn lock_status_async(&self, name: String) -> Result<LockStatus> {
        let m = self.clone();
        runtime::blocking(move || m.lock_status(&name)).await
    }

    /// One counted attempt: the database key, or why not.
    fn attempt(&self, name: &str, credential: &[u8], secret: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let dir = self.dirs.profile_dir(name)?;
        if lockfile::read(&dir)?.is_none() {
            return Err(no_credential(name));
        }
        let guard = lockfile::exclusive(&dir)?;
        let clock = self.dirs.clock().clone();
        let mut file = lockfile::read(&dir)?.ok_or_else(|| no_credential(name))?;
        if file.max_failures > 0 && file.failures >= file.max_failures {
            // At the limit already (a wipe that failed, or a policy that
            // lowered it): no more tries, not even a right one.
            drop(guard);
            tracing::warn!("the unlock limit was reached: the profile is wiped");
            self.wipe(name)?;
            return Err(Error::ProfileWiped);
        }
        let wait = retry_after_ms(&file, clock.as_ref());
        if wait > 0 {
            return Err(Error::TryLater {
                retry_after_ms: wait,
            });
        }
        // Counted before it is tried (see the store's lock file).
        file.failures = file.failures.saturating_add(1);
        file.last_failure = Some(failed_now(clock.as_ref()));
        lockfile::write(&dir, &file)?;
        match credential::unwrap(&file.wrapped()?, name, credential, secret)? {
            Some(key) => {
                file.failures = 0;
                file.last_failure = None;
                lockfile::write(&dir, &file)?;
                Ok(key)
            }
            None if file.max_failures > 0 && file.failures >= file.max_failures => {
                tracing::warn!("too many failed unlock attempts: the profile is wiped");
                drop(guard);
                self.wipe(name)?;
                Err(Error::ProfileWiped)
            }
            None => Err(Error::WrongCredential {
                attempts_left: if file.max_failures == 0 {
                    u32::MAX
                } else {
                    file.max_failures - file.failures
                },
                retry_after_ms: backoff_ms(file.failures),
            }),
        }
    }
}

fn no_credential(name: &str) -> Error {
    Error::not_found(format!(
        "a credential for profile {name} (it opens with its key)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_starts_after_the_free_attempts_and_doubles_to_its_cap() {
        assert_eq!(backoff_ms(0), 0);
        assert_eq!(backoff_ms(FREE_ATTEMPTS - 1), 0);
        assert_eq!(backoff_ms(FREE_ATTEMPTS), FIRST_BACKOFF_MS);
        assert_eq!(backoff_ms(FREE_ATTEMPTS + 1), 2 * FIRST_BACKOFF_MS);
        assert_eq!(backoff_ms(FREE_ATTEMPTS + 3), 8 * FIRST_BACKOFF_MS);
        assert_eq!(backoff_ms(40), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(u32::MAX), MAX_BACKOFF_MS);
        // The documented figures: 5 s first, 15 minutes at most.
        assert_eq!(FIRST_BACKOFF_MS, 5_000);
        assert_eq!(MAX_BACKOFF_MS, 900_000);
    }

    #[test]
    fn the_wait_is_on_the_boot_clock_within_a_boot() {
        let clock = crate::ManualClock::new(1_000_000);
        let at = failed_now(&clock);
        clock.advance(2_000);
        assert_eq!(elapsed_ms(&at, &clock), 2_000);
        // Setting the wall clock forward does not shorten it.
        clock.set_wall(9_000_000_000);
        assert_eq!(elapsed_ms(&at, &clock), 2_000);
        // After a reboot: no more than the wall clock says (set back, no
        // time passed), no more than the time since the boot (set forward,
        // only what really passed since the reboot counts).
        clock.reboot();
        clock.set_wall(999_000);
        assert_eq!(elapsed_ms(&at, &clock), 0);
        clock.set_wall(9_000_000_000);
        clock.advance(3_000);
        assert_eq!(elapsed_ms(&at, &clock), 3_000);
        clock.set_wall(1_004_000);
        assert_eq!(elapsed_ms(&at, &clock), 3_000, "the smaller of the two");
        clock.set_wall(1_002_000);
        assert_eq!(elapsed_ms(&at, &clock), 2_000);
    }
}
