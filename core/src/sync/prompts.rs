//! The user's answer to a push prompt ([`crate::push`]): download or
//! decline, each audited; and the policy's download-volume alert.
//!
//! A download re-checks what the prompt checked that can change (the lock,
//! the class rule of the notice, a denial recorded for it) and then fetches
//! the one message by relay id through the normal inbox pipeline, so it is
//! verified, decrypted and stored exactly as the inbox would, and the later
//! inbox delivery is a duplicate. A decline is remembered: when the message
//! arrives through the inbox it is decrypted (the session must advance) but
//! not stored.

use super::{Engine, Local, ReceiveReport};
use crate::audit::AuditKind;
use crate::error::{Error, Result};
use crate::events::ClientEvent;
use crate::store::audit::{NewEntry, append_in, count_since_in};
use crate::store::notices::{self, NoticeState};
use crate::store::{SecurityEventKind, persist_high_water};

impl Local {
    /// Refuses a download the policy or a lock forbids (recorded).
    fn check_download(&mut self, relay_id: &str) -> Result<()> {
        self.check_unlocked()?;
        let device = self.account.device_id().to_hex();
        let seen = notices::get_in(&self.store.conn, relay_id)?;
        let refusal = match &seen {
            Some(n) if n.state == NoticeState::Denied => {
                Some("the organisation's policy denied this download".to_string())
            }
            Some(n) if !n.class.is_empty() => {
                crate::policy::download_allowed(self.policy.as_ref(), &n.class, &device).err()
            }
            _ => None,
        };
        if let Some(reason) = refusal {
            self.store.record_security_event(
                SecurityEventKind::PolicyDenied,
                &format!("relay_id={relay_id} {reason}"),
            )?;
            return Err(Error::denied(reason));
        }
        Ok(())
    }

    /// Records a download; returns the volume alert to raise, if this one
    /// reached it.
    fn downloaded(
        &mut self,
        relay_id: &str,
        report: &ReceiveReport,
    ) -> Result<Option<ClientEvent>> {
        let now = self.store.now_ms();
        let alert = self.policy.as_ref().and_then(|p| p.download_alert);
        let tx = self.store.conn.transaction()?;
        notices::set_state_in(&tx, now, relay_id, NoticeState::Downloaded)?;
        let stored = report.received();
        let first = stored.first();
        let mut entry = NewEntry::of(AuditKind::Downloaded).subject(relay_id);
        if let Some(m) = first {
            entry = entry.thread(&m.thread_id).message(&m.message_id);
        }
        append_in(&tx, now, &entry)?;
        let mut event = None;
        if let Some(a) = alert.filter(|a| a.count > 0) {
            let since = now.saturating_sub(i64::from(a.minutes) * 60_000);
            let n = count_since_in(&tx, AuditKind::Downloaded, since)?;
            if n == u64::from(a.count) {
                append_in(
                    &tx,
                    now,
                    &NewEntry::of(AuditKind::VolumeAlert)
                        .detail(&format!("{n} downloads within {} minutes", a.minutes)),
                )?;
                event = Some(ClientEvent::VolumeAlert {
                    count: a.count,
                    minutes: a.minutes,
                });
            }
        }
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(event)
    }

    /// Declines the message behind a notice (see the module documentation).
    pub(crate) fn decline(&mut self, relay_id: &str) -> Result<()> {
        if !occ_protocol::api::valid_relay_message_id(relay_id) {
            return Err(Error::invalid("a relay message id is 32 hex digits"));
        }
        let now = self.store.now_ms();
        let tx = self.store.conn.transaction()?;
        notices::set_state_in(&tx, now, relay_id, NoticeState::Declined)?;
        append_in(
            &tx,
            now,
            &NewEntry::of(AuditKind::Declined).subject(relay_id),
        )?;
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(())
    }
}

impl Engine {
    /// Downloads the message behind a notice (see the module documentation).
    pub(crate) async fn download(&self, relay_id: &str) -> Result<ReceiveReport> {
        if !occ_protocol::api::valid_relay_message_id(relay_id) {
            return Err(Error::invalid("a relay message id is 32 hex digits"));
        }
        self.with_local(|l| l.check_download(relay_id))?;
        let report = self.fetch(relay_id).await?;
        if let Some(e) = self.with_local(|l| l.downloaded(relay_id, &report))? {
            self.events.emit(e);
        }
        Ok(report)
    }

    /// The contact work of every sync: the organisation's documents,
    /// escalations, the audit head. Failures are logged and retried next
    /// time; returns whether the profile was wiped.
    pub(crate) async fn upkeep(&self) -> Result<bool> {
        match self.org_sync().await {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(Error::Closed) => return Err(Error::Closed),
            Err(e) => tracing::info!("organisation documents not refreshed: {e}"),
        }
        if let Err(e) = self.check_alerts() {
            tracing::warn!("alert escalation failed: {e}");
        }
        if let Err(e) = self.countersign_audit().await {
            tracing::info!("audit head not countersigned (will be retried): {e}");
        }
        Ok(false)
    }
}
