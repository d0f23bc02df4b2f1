//! The `Client`'s attachments and exports (see [`crate::sync`]'s
//! `attachments` module and [`crate::export`]).

use std::path::Path;

use zeroize::Zeroizing;

use super::{Client, runtime};
use crate::audit::AuditKind;
use crate::error::{Error, Result, io_error};
use crate::export::{ExportOptions, ExportReport, ExportScope};
use crate::store::AttachmentInfo;
use crate::store::audit::{NewEntry, append_in};
use crate::sync::{OutgoingFile, Progress, Recipient};

impl Client {
    /// Sends the file at `file.path` with `caption` to `to`: encrypted
    /// chunk by chunk under its own key, uploaded (resuming after an
    /// interruption), then the message carrying its key and digests is
    /// queued. Nothing is stored when any step fails.
    /// [`Error::QuotaExceeded`] when the profile's attachment quota is full,
    /// [`Error::PolicyDenied`] when the organisation forbids the size or
    /// TTL, or the profile is locked. `progress` sees encryption then upload.
    pub async fn send_file(
        &self,
        to: Recipient,
        file: OutgoingFile,
        caption: Vec<u8>,
        ttl_secs: u64,
        progress: Progress<'_>,
    ) -> Result<String> {
        let caption = Zeroizing::new(caption);
        let engine = self.engine.clone();
        runtime::spawn_with_progress(progress, move |cell| async move {
            let report = move |done, total| cell.post(done, total);
            engine
                .send_file(&to, &file, &caption, ttl_secs, &report)
                .await
        })
        .await
    }

    /// The attachments of a live message (metadata; thumbnails included).
    pub async fn attachments(&self, message_id: &str) -> Result<Vec<AttachmentInfo>> {
        let id = message_id.to_string();
        self.local(move |l| {
            l.check_unlocked()?;
            Ok(l.store.attachments_of(&id)?)
        })
        .await
    }

    /// Downloads a received attachment into the profile (encrypted),
    /// resuming where an earlier attempt stopped. [`Error::Untrusted`] when
    /// the relay's copy does not match the digest in the message (the copy
    /// is deleted and the event recorded); [`Error::Expired`] once the
    /// message or the relay copy expired; [`Error::QuotaExceeded`] when it
    /// does not fit.
    pub async fn download_attachment(&self, id: &str, progress: Progress<'_>) -> Result<()> {
        let id = id.to_string();
        let engine = self.engine.clone();
        runtime::spawn_with_progress(progress, move |cell| async move {
            let report = move |done, total| cell.post(done, total);
            engine.download_attachment(&id, &report).await
        })
        .await
    }

    /// Decrypts a downloaded attachment to `dest` (a new file), checking its
    /// digest: a readable copy outside the profile, so the export policy of
    /// its message applies and it is audited as an export.
    pub async fn save_attachment(
        &self,
        id: &str,
        dest: &Path,
        progress: Progress<'_>,
    ) -> Result<u64> {
        let id = id.to_string();
        let dest = dest.to_path_buf();
        let engine = self.engine.clone();
        runtime::blocking_with_progress(progress, move |cell| {
            let progress = move |done, total| cell.post(done, total);
            let (id, dest) = (id.as_str(), dest.as_path());
            let (source, message) = engine.with_local(|l| {
                l.check_unlocked()?;
                let info = l.store.attachment_info(id)?;
                let message = l.store.message(&info.message_id)?;
                let device = l.account.device_id().to_hex();
                let class = crate::policy::class_of(message.urgent, true);
                if let Err(reason) =
                    crate::policy::export_allowed(l.policy.as_ref(), class, &device)
                {
                    l.store.record_security_event(
                        crate::store::SecurityEventKind::PolicyDenied,
                        &format!("save attachment={id}: {reason}"),
                    )?;
                    return Err(Error::denied(reason));
                }
                Ok((l.store.open_attachment(id)?, message))
            })?;
            let tmp = dest.with_extension("occ-partial");
            let written = (|| {
                let f = crate::store::files::create_new_private(&tmp)
                    .map_err(io_error("write the file", &tmp))?;
                let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
                let total = source.size();
                let n = source.decrypt_to(&mut w, &mut |n| progress(n, total))?;
                let f = w
                    .into_inner()
                    .map_err(|e| io_error("write the file", &tmp)(e.into_error()))?;
                f.sync_all().map_err(io_error("write the file", &tmp))?;
                if dest.exists() {
                    return Err(Error::invalid("the destination file exists"));
                }
                std::fs::rename(&tmp, dest).map_err(io_error("write the file", dest))?;
                Ok(n)
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            let n = written?;
            // The file is written: its audit entry is recorded even if the
            // profile started closing meanwhile.
            engine.finish_with_local(|l| {
                let now = l.store.now_ms();
                let tx = l.store.conn.transaction()?;
                append_in(
                    &tx,
                    now,
                    &NewEntry::of(AuditKind::Exported)
                        .thread(&message.thread_id)
                        .message(&message.id)
                        .detail("attachment saved"),
                )?;
                tx.commit()?;
                Ok(())
            })?;
            Ok(n)
        })
        .await
    }

    /// The profile's attachment quota (bytes of encrypted files) and how
    /// much of it is used.
    pub async fn attachment_quota(&self) -> Result<(u64, u64)> {
        self.local(|l| Ok((l.store.attachment_quota()?, l.store.attachment_usage()?)))
            .await
    }

    /// Sets the profile's attachment quota (files already here stay).
    pub async fn set_attachment_quota(&self, bytes: u64) -> Result<()> {
        self.local(move |l| Ok(l.store.set_attachment_quota(bytes)?))
            .await
    }

    /// Exports a message or thread to `dir` (see [`crate::export`]):
    /// checked against the lock, the policy and data-loss prevention first,
    /// signed by this device, audited.
    pub async fn export(
        &self,
        scope: ExportScope,
        dir: &Path,
        options: ExportOptions,
        progress: Progress<'_>,
    ) -> Result<ExportReport> {
        let dir = dir.to_path_buf();
        let engine = self.engine.clone();
        runtime::blocking_with_progress(progress, move |cell| {
            let progress = move |done, total| cell.post(done, total);
            let plan = engine.with_local(|l| l.export_plan(&scope, &options))?;
            let sign = |bytes: &[u8]| {
                engine.with_local(|l| {
                    Ok(l.account
                        .identity()
                        .sign(occ_protocol::contexts::EXPORT_MANIFEST, bytes))
                })
            };
            let report = crate::export::write(&dir, &plan, &options.encryption, &sign, &progress)?;
            engine.finish_with_local(|l| l.exported(&plan, report.encryption.as_deref()))?;
            Ok(report)
        })
        .await
    }
}
