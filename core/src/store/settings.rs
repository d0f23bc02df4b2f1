//! Device settings: the keep period and the organisation's maximum for it,
//! and how long metadata is kept.

use rusqlite::OptionalExtension;

use super::{Store, StoreError};
use crate::retention::effective_keep_period;

impl Store {
    pub(super) fn setting(&self, key: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub(super) fn set_setting(&mut self, key: &str, value: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )?;
        Ok(())
    }

    /// The device's keep-period setting, if set.
    pub fn keep_period_setting_ms(&self) -> Result<Option<i64>, StoreError> {
        self.setting("keep_period_ms")
    }

    /// The organisation's maximum keep period, if policy sets one.
    pub fn org_max_keep_period_ms(&self) -> Result<Option<i64>, StoreError> {
        self.setting("org_max_keep_ms")
    }

    /// The keep period in force: the device setting (default 30 days) capped
    /// by the organisation maximum.
    pub fn keep_period_ms(&self) -> Result<i64, StoreError> {
        Ok(effective_keep_period(
            self.keep_period_setting_ms()?,
            self.org_max_keep_period_ms()?,
        ))
    }

    /// How long metadata (security events, the purge log, idle contacts and
    /// conversations) is kept: the device setting, or the keep period in
    /// force.
    pub fn metadata_retention_ms(&self) -> Result<i64, StoreError> {
        match self.setting("metadata_retention_ms")? {
            Some(ms) => Ok(ms),
            None => self.keep_period_ms(),
        }
    }

    /// Sets the metadata retention period (positive); anything older goes at
    /// once.
    pub fn set_metadata_retention_ms(&mut self, ms: i64) -> Result<(), StoreError> {
        if ms <= 0 {
            return Err(StoreError::InvalidInput(
                "the metadata retention period must be positive".into(),
            ));
        }
        self.set_setting("metadata_retention_ms", ms)?;
        self.purge()?;
        Ok(())
    }

    /// Sets the device keep period. Refused above the organisation maximum.
    /// Content already past the old keep period is purged first, so a longer
    /// period cannot bring it back.
    pub fn set_keep_period_ms(&mut self, keep_ms: i64) -> Result<(), StoreError> {
        if keep_ms <= 0 {
            return Err(StoreError::InvalidInput(
                "the keep period must be positive".into(),
            ));
        }
        if let Some(max) = self.org_max_keep_period_ms()?
            && keep_ms > max
        {
            return Err(StoreError::InvalidInput(format!(
                "keep period {keep_ms} ms exceeds the organisation maximum of {max} ms"
            )));
        }
        self.purge()?;
        self.set_setting("keep_period_ms", keep_ms)
    }

    /// Sets the organisation maximum (from verified policy). A lower maximum
    /// takes effect at once.
    pub fn set_org_max_keep_period_ms(&mut self, max_ms: i64) -> Result<(), StoreError> {
        if max_ms <= 0 {
            return Err(StoreError::InvalidInput(
                "the maximum keep period must be positive".into(),
            ));
        }
        self.purge()?;
        self.set_setting("org_max_keep_ms", max_ms)
    }

    /// Removes the organisation maximum (a policy without one).
    pub(crate) fn clear_org_max_keep_period(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM settings WHERE key = 'org_max_keep_ms'", [])?;
        Ok(())
    }
}
