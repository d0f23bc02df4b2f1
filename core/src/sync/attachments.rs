//! Attachments through the relay: send a file with a message, download a
//! received one (resuming), save one to a path.
//!
//! Sending: the file is checked (type, name, size, the organisation's
//! largest attachment, the profile's quota), encrypted chunk by chunk under
//! a fresh key into the profile — that file is both the local copy and the
//! blob — uploaded in [`ATTACHMENT_PIECE_BYTES`] pieces (an interrupted
//! upload resumes where the relay stands, up to [`UPLOAD_ATTEMPTS`] times),
//! and only then is the message stored and queued with the attachment's
//! key and digests, in one transaction. A failed send leaves nothing: the
//! file is deleted and the relay's copy expires with its TTL.
//!
//! Downloading: the quota is reserved, the blob streams into `<file>.part`
//! (from its length when a previous attempt was cut), its SHA-256 is
//! checked against the one in the end-to-end message, and only then does
//! it become the attachment's file. A blob that does not match (the relay
//! or anyone past the pins changed it) is deleted, recorded as an
//! `attachment_tampered` security event, and refused as
//! [`Error::Untrusted`]. The lock and the download policy (class `file`)
//! apply. Memory stays bounded by the chunk size whatever the file size.
//!
//! [`ATTACHMENT_PIECE_BYTES`]: occ_protocol::api::ATTACHMENT_PIECE_BYTES

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use occ_protocol::api::{ATTACHMENT_PIECE_BYTES, AttachmentCreate};
use sha2::Digest;

use super::outgoing::Recipient;
use super::{Engine, Local};
use crate::audit::AuditKind;
use crate::error::{Error, Result};
use crate::store::SecurityEventKind;
use crate::store::attachments::{DownloadPlan, PreparedAttachment};
use crate::store::audit::{NewEntry, append_in};
use crate::transport::TransportError;

/// How many times one call tries to upload before giving up.
pub const UPLOAD_ATTEMPTS: u32 = 4;

/// Reports progress: bytes done and bytes in all (a phase may restart the
/// count; `done <= total` always).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// A file to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its MIME type.
    pub mime: String,
    /// The name the recipients see (the path's file name when `None`).
    pub name: Option<String>,
    /// A small preview (empty: none).
    pub thumb: Vec<u8>,
}

use crate::error::io_error as io_err;

impl Local {
    fn check_attachment_send(&mut self, size: u64, ttl_secs: u64) -> Result<()> {
        self.check_unlocked()?;
        let refusal = crate::policy::check_send_ttl(self.policy.as_ref(), ttl_secs)
            .err()
            .or_else(|| {
                let max = self.policy.as_ref()?.max_attachment_bytes?;
                (size > max).then(|| {
                    format!("the file is {size} bytes; the organisation allows at most {max}")
                })
            });
        if let Some(reason) = refusal {
            self.store
                .record_security_event(SecurityEventKind::PolicyDenied, &reason)?;
            return Err(Error::denied(reason));
        }
        Ok(())
    }

    fn check_attachment_download(&mut self, id: &str) -> Result<()> {
        self.check_unlocked()?;
        let device = self.account.device_id().to_hex();
        if let Err(reason) = crate::policy::download_allowed(self.policy.as_ref(), "file", &device)
        {
            self.store.record_security_event(
                SecurityEventKind::PolicyDenied,
                &format!("attachment={id} {reason}"),
            )?;
            return Err(Error::denied(reason));
        }
        Ok(())
    }

    fn refuse_blob(&mut self, id: &str, plan: &DownloadPlan) -> Result<()> {
        self.store.abandon_download(id, plan)?;
        self.store.record_security_event(
            SecurityEventKind::AttachmentTampered,
            &format!("attachment={id} the relay's copy does not match its digest"),
        )?;
        Ok(())
    }

    fn downloaded_attachment(&mut self, id: &str, plan: &DownloadPlan) -> Result<()> {
        self.store.finish_download(id, plan)?;
        let info = self.store.attachment_info(id)?;
        let message = self.store.message(&info.message_id)?;
        let now = self.store.now_ms();
        let tx = self.store.conn.transaction()?;
        append_in(
            &tx,
            now,
            &NewEntry::of(AuditKind::Downloaded)
                .thread(&message.thread_id)
                .message(&info.message_id)
                .subject(&message.sender)
                .detail("attachment"),
        )?;
        tx.commit()?;
        Ok(())
    }
}

impl Engine {
    /// Sends `file` with `caption` to `to` (see the module documentation).
    pub(crate) async fn send_file(
        &self,
        to: &Recipient,
        file: &OutgoingFile,
        caption: &[u8],
        ttl_secs: u64,
        progress: Progress<'_>,
    ) -> Result<String> {
        let name = match &file.name {
            Some(n) => n.clone(),
            None => file
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("file")
                .to_string(),
        };
        let mut input =
            std::fs::File::open(&file.path).map_err(io_err("open the file", &file.path))?;
        let size = input
            .metadata()
            .map_err(io_err("read the file", &file.path))?
            .len();
        let slot = self.with_local(|l| {
            l.check_attachment_send(size, ttl_secs)?;
            Ok(l.store
                .attachment_slot(size, &file.mime, &name, &file.thumb)?)
        })?;
        let blob_size = crate::store::attachments::sealed_len(size);
        let total = size + blob_size;
        let prepared = slot.seal(
            &mut std::io::BufReader::with_capacity(1 << 16, &mut input),
            &mut |done| progress(done, total),
        )?;
        let mut prepared = prepared;
        let sent = async {
            prepared.reference.blob_sha256 = self
                .upload(&prepared, ttl_secs, &|done| progress(size + done, total))
                .await?;
            let id =
                self.with_local(|l| l.enqueue(to, caption, ttl_secs, None, None, Some(&prepared)))?;
            self.outbox_wake.notify_one();
            Ok(id)
        }
        .await;
        if sent.is_err() {
            prepared.discard();
        }
        sent
    }

    /// Uploads a prepared blob, resuming where the relay stands after an
    /// interruption (at most [`UPLOAD_ATTEMPTS`] times); returns the
    /// SHA-256 of the blob, hashed as it is read for the wire. A relay that
    /// claims bytes this call never sent is not believed.
    async fn upload(
        &self,
        p: &PreparedAttachment,
        ttl_secs: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<[u8; 32]> {
        let create = AttachmentCreate {
            id: p.reference.id.clone(),
            size: p.blob_size,
            ttl_secs,
        };
        let mut file =
            std::fs::File::open(&p.path).map_err(io_err("read the attachment", &p.path))?;
        let mut hash = sha2::Sha256::new();
        let mut hashed = 0u64;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let c = create.clone();
            let result = async {
                let mut at = self
                    .call(move |api| {
                        let c = c.clone();
                        Box::pin(async move { api.create_attachment(&c).await })
                    })
                    .await?
                    .received;
                loop {
                    // The id is fresh, so the relay can hold only what this
                    // call sent (and hashed): a relay claiming more lies.
                    if at > hashed {
                        return Err(Error::Untrusted {
                            reason: "the relay claims attachment bytes this device never sent"
                                .into(),
                        });
                    }
                    if at == p.blob_size {
                        return Ok(());
                    }
                    let n = (p.blob_size - at).min(ATTACHMENT_PIECE_BYTES as u64) as usize;
                    let mut piece = vec![0u8; n];
                    file.seek(SeekFrom::Start(at))
                        .and_then(|_| file.read_exact(&mut piece))
                        .map_err(io_err("read the attachment", &p.path))?;
                    if hashed == at {
                        // New bytes (a piece sent again after a lost answer
                        // was hashed the first time).
                        hash.update(&piece);
                        hashed += n as u64;
                    }
                    let id = p.reference.id.clone();
                    let piece = bytes::Bytes::from(piece);
                    let status = self
                        .call(move |api| {
                            let (id, piece) = (id.clone(), piece.clone());
                            Box::pin(async move { api.put_attachment_piece(&id, at, piece).await })
                        })
                        .await?;
                    at = status.received;
                    progress(at.min(p.blob_size));
                }
            }
            .await;
            match result {
                Ok(()) => return Ok(hash.finalize().into()),
                Err(Error::Network { .. }) if attempt < UPLOAD_ATTEMPTS => {
                    tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                        .await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Downloads a received attachment (resuming a cut download); nothing
    /// happens when it is already here.
    pub(crate) async fn download_attachment(&self, id: &str, progress: Progress<'_>) -> Result<()> {
        if !occ_protocol::api::valid_attachment_id(id) {
            return Err(Error::invalid(
                "an attachment id is 32 lowercase hex digits",
            ));
        }
        let plan = self.with_local(|l| {
            l.check_attachment_download(id)?;
            Ok(l.store.begin_download(id)?)
        })?;
        let Some(plan) = plan else {
            return Ok(());
        };
        let (mut part, mut have, mut hash) = plan.open_part()?;
        progress(have, plan.blob_size);
        if have < plan.blob_size {
            let mut out = std::io::BufWriter::with_capacity(1 << 16, &mut part);
            let mut write_error = None;
            let api = self.session_api().await?;
            let got = api
                .download_attachment(&plan.blob_id, have, plan.blob_size, &mut |chunk| {
                    out.write_all(chunk).map_err(|e| {
                        write_error = Some(e);
                        TransportError::Network("writing the download failed".into())
                    })?;
                    hash.update(chunk);
                    have += chunk.len() as u64;
                    progress(have, plan.blob_size);
                    Ok(())
                })
                .await;
            let flushed = out.flush();
            drop(out);
            if let Some(e) = write_error {
                return Err(io_err("write the download", &plan.part)(e));
            }
            flushed.map_err(io_err("write the download", &plan.part))?;
            part.sync_data()
                .map_err(io_err("write the download", &plan.part))?;
            got.map_err(|e| self.transport(e))?;
            if have < plan.blob_size {
                return Err(Error::Network {
                    reason: format!(
                        "the download stopped at byte {have} of {}; retry to resume",
                        plan.blob_size
                    ),
                });
            }
        }
        drop(part);
        if <[u8; 32]>::from(hash.finalize()) != plan.blob_sha256 {
            self.with_local(|l| l.refuse_blob(id, &plan))?;
            return Err(Error::Untrusted {
                reason: "the attachment on the relay does not match the digest its sender signed; it was deleted".into(),
            });
        }
        self.with_local(|l| l.downloaded_attachment(id, &plan))
    }
}
