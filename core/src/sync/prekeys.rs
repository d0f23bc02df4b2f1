//! Prekey upkeep, run from every sync pass and from background sync.
//!
//! - The signed prekey rotates once it is [`SIGNED_PREKEY_MAX_AGE`] old
//!   (trusted time, so a clock turned back cannot delay it); the previous one
//!   is kept for prekey messages already in flight and deleted at the next
//!   rotation.
//! - The relay reports how many one-time prekeys it still holds with every
//!   inbox page; when that falls below [`PREKEY_LOW_WATER`], a new batch tops
//!   it up to [`PREKEY_BATCH`] (the oldest unused keys are dropped locally if
//!   the account would exceed its limit).
//!
//! New keys are saved locally (one transaction, on a copy of the account)
//! *before* they are published, so the relay never hands out a key whose
//! secret we do not hold; if publishing fails, the next pass publishes the
//! signed prekey again (its id is remembered only once the relay has it).

use occ_protocol::api::PreKeyUpload;

use super::Engine;
use super::connection::{PREKEY_BATCH, one_time_prekeys_json, signed_prekey_json};
use super::threads::secs;
use crate::crypto::prekeys::SIGNED_PREKEY_MAX_AGE;
use crate::error::Result;
use crate::store::config;

/// Below this many one-time prekeys on the relay, a new batch is published.
pub const PREKEY_LOW_WATER: u64 = (PREKEY_BATCH / 2) as u64;

/// What one upkeep pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrekeyReport {
    /// A new signed prekey was made (and published).
    pub rotated_signed_prekey: bool,
    /// One-time prekeys published.
    pub published_one_time_prekeys: u32,
    /// What the relay holds after the pass, if it said.
    pub relay_one_time_prekeys: Option<u64>,
}

impl Engine {
    /// Rotates the signed prekey when due and tops up one-time prekeys when
    /// the relay runs low (as of its last report).
    pub(crate) async fn maintain_prekeys(&self) -> Result<PrekeyReport> {
        let relay_count = self.relay_prekeys();
        let (upload, rotated, spk_id) =
            self.with_local(|l| {
                l.enrolment()?;
                let now = secs(l.store.now_ms());
                // Another process (a push extension) may have consumed a
                // one-time prekey: start from the stored account, in one
                // write transaction.
                let tx = l
                    .store
                    .conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut account = crate::store::crypto_state::load_account_in(&tx)?
                    .unwrap_or_else(|| l.account.clone());
                let rotated = account.rotate_signed_prekey_if_due(now, SIGNED_PREKEY_MAX_AGE)?;
                let spk = account.signed_prekey()?;
                let published = config::published_signed_prekey(&tx)?;
                let new_one_time = match relay_count {
                    Some(n) if n < PREKEY_LOW_WATER => {
                        let missing = PREKEY_BATCH.saturating_sub(usize::try_from(n).unwrap_or(0));
                        account.replenish_one_time_prekeys(missing)?
                    }
                    _ => Vec::new(),
                };
                if rotated || !new_one_time.is_empty() {
                    crate::store::crypto_state::save_account_in(&tx, &account)?;
                }
                tx.commit()?;
                l.account = account;
                let upload = (published != Some(i64::from(spk.id)) || !new_one_time.is_empty())
                    .then(|| PreKeyUpload {
                        signed_prekey: (published != Some(i64::from(spk.id)))
                            .then(|| signed_prekey_json(&spk)),
                        one_time_prekeys: one_time_prekeys_json(&new_one_time),
                    });
                Ok((upload, rotated, spk.id))
            })?;
        let mut report = PrekeyReport {
            rotated_signed_prekey: rotated,
            relay_one_time_prekeys: relay_count,
            ..PrekeyReport::default()
        };
        let Some(upload) = upload else {
            return Ok(report);
        };
        let published_one_time = upload.one_time_prekeys.len();
        let sent_signed = upload.signed_prekey.is_some();
        let count = self
            .call(move |api| {
                let upload = upload.clone();
                Box::pin(async move { api.upload_prekeys(&upload).await })
            })
            .await?;
        if sent_signed {
            self.with_local(|l| Ok(l.store.set_published_signed_prekey(i64::from(spk_id))?))?;
        }
        self.note_relay_prekeys(count.one_time_prekeys);
        report.published_one_time_prekeys = u32::try_from(published_one_time).unwrap_or(u32::MAX);
        report.relay_one_time_prekeys = Some(count.one_time_prekeys);
        Ok(report)
    }
}
