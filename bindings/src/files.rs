//! Attachments and export across the FFI: records for what UniFFI cannot
//! carry as the core has it (paths, fixed-size digests, zeroized
//! passphrases), mapped field by field, and the app's `ProgressListener`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use occ_core::Recipient;
use occ_core::export::{DlpAction, DlpRules};
use occ_core::{ExportScope, ExportVerification};
use zeroize::Zeroizing;

use crate::objects::Client;
use crate::types::OccError;

type Result<T> = std::result::Result<T, OccError>;

/// Told how far a transfer or an export got (implemented in Kotlin or
/// Swift; keep it short, it runs on the working thread).
#[uniffi::export(with_foreign)]
pub trait ProgressListener: Send + Sync {
    /// `done` of `total` bytes.
    fn on_progress(&self, done: u64, total: u64);
}

/// A file to send.
#[derive(uniffi::Record)]
pub struct OutgoingFile {
    /// Its path.
    pub path: String,
    /// Its MIME type.
    pub mime: String,
    /// The name recipients see (the path's file name when absent).
    pub name: Option<String>,
    /// A small preview (at most 48 KiB; empty for none).
    pub thumb: Vec<u8>,
}

/// An attachment of a message.
#[derive(uniffi::Record)]
pub struct Attachment {
    /// Its id.
    pub id: String,
    /// Its message.
    pub message_id: String,
    /// Plaintext size.
    pub size: u64,
    /// MIME type.
    pub mime: String,
    /// SHA-256 of the encrypted blob, hex (what the sender committed to).
    pub blob_sha256: String,
    /// File name given by the sender.
    pub name: String,
    /// Preview.
    pub thumb: Vec<u8>,
    /// Whether it is on this device.
    pub downloaded: bool,
}

/// The profile's attachment storage.
#[derive(uniffi::Record)]
pub struct AttachmentQuota {
    /// The quota, bytes.
    pub quota: u64,
    /// Bytes used (or reserved by a download).
    pub used: u64,
}

/// How an export is encrypted.
#[derive(uniffi::Enum)]
pub enum ExportEncryption {
    /// Not encrypted.
    None,
    /// An `age` passphrase.
    Passphrase {
        /// At least 8 characters.
        passphrase: String,
    },
    /// `age` X25519 recipients (`age1…`).
    Recipients {
        /// Their public keys.
        recipients: Vec<String>,
    },
}

/// How to export.
#[derive(uniffi::Record)]
pub struct ExportOptions {
    /// Encryption.
    pub encryption: ExportEncryption,
    /// Data-loss prevention when the organisation set none.
    pub dlp: Option<DlpRules>,
    /// Leave attachments out.
    pub skip_attachments: bool,
}

/// What an export wrote.
#[derive(uniffi::Record)]
pub struct ExportReport {
    /// The folder.
    pub dir: String,
    /// Messages.
    pub messages: u64,
    /// Attachments included.
    pub attachments: u64,
    /// Attachments listed only (not downloaded).
    pub attachments_missing: u64,
    /// Findings redacted.
    pub redactions: u64,
    /// `passphrase` or `recipients`.
    pub encryption: Option<String>,
    /// SHA-256 of manifest.json, hex.
    pub manifest_sha256: String,
}

#[uniffi::remote(Enum)]
pub enum ExportScope {
    Message { id: String },
    Thread { id: String },
}

#[uniffi::remote(Enum)]
pub enum DlpAction {
    Block,
    Redact,
}

#[uniffi::remote(Record)]
pub struct DlpRules {
    pub card_numbers: bool,
    pub patterns: Vec<String>,
    pub action: DlpAction,
}

#[uniffi::remote(Record)]
pub struct ExportVerification {
    pub user: String,
    pub device_id: String,
    pub created_ms: i64,
    pub scope: String,
    pub encryption: Option<String>,
    pub messages: u64,
    pub files: u64,
}

/// Verifies an export folder: the device's signature over its manifest and
/// every file's size and digest; any change is an error naming the file.
#[uniffi::export(async_runtime = "tokio")]
pub async fn verify_export(dir: String) -> Result<ExportVerification> {
    occ_core::verify_export_async(dir.into()).await
}

fn report(listener: &Option<Arc<dyn ProgressListener>>) -> impl Fn(u64, u64) + Send + Sync + '_ {
    move |done, total| {
        if let Some(l) = listener {
            l.on_progress(done, total);
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Client {
    /// Sends a file with a caption (see the core's `send_file`).
    pub async fn send_file(
        &self,
        to: Recipient,
        file: OutgoingFile,
        caption: Vec<u8>,
        ttl_secs: u64,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<String> {
        let file = occ_core::OutgoingFile {
            path: PathBuf::from(file.path),
            mime: file.mime,
            name: file.name,
            thumb: file.thumb,
        };
        self.0
            .send_file(to, file, caption, ttl_secs, &report(&progress))
            .await
    }

    /// The attachments of a live message.
    pub async fn attachments(&self, message_id: String) -> Result<Vec<Attachment>> {
        Ok(self
            .0
            .attachments(&message_id)
            .await?
            .into_iter()
            .map(|a| Attachment {
                id: a.id,
                message_id: a.message_id,
                size: a.size,
                mime: a.mime,
                blob_sha256: hex::encode(a.blob_sha256),
                name: a.name,
                thumb: a.thumb,
                downloaded: a.downloaded,
            })
            .collect())
    }

    /// Downloads a received attachment (resuming an interrupted one).
    pub async fn download_attachment(
        &self,
        id: String,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<()> {
        self.0.download_attachment(&id, &report(&progress)).await
    }

    /// Decrypts a downloaded attachment to a new file at `dest`.
    pub async fn save_attachment(
        &self,
        id: String,
        dest: String,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<u64> {
        self.0
            .save_attachment(&id, Path::new(&dest), &report(&progress))
            .await
    }

    /// The attachment quota and its use.
    pub async fn attachment_quota(&self) -> Result<AttachmentQuota> {
        let (quota, used) = self.0.attachment_quota().await?;
        Ok(AttachmentQuota { quota, used })
    }

    /// Sets the attachment quota, bytes.
    pub async fn set_attachment_quota(&self, bytes: u64) -> Result<()> {
        self.0.set_attachment_quota(bytes).await
    }

    /// Exports a message or thread to the folder `dir` (new or empty).
    pub async fn export(
        &self,
        scope: ExportScope,
        dir: String,
        options: ExportOptions,
        progress: Option<Arc<dyn ProgressListener>>,
    ) -> Result<ExportReport> {
        let options = occ_core::ExportOptions {
            encryption: match options.encryption {
                ExportEncryption::None => occ_core::ExportEncryption::None,
                ExportEncryption::Passphrase { passphrase } => {
                    occ_core::ExportEncryption::Passphrase {
                        passphrase: Zeroizing::new(passphrase),
                    }
                }
                ExportEncryption::Recipients { recipients } => {
                    occ_core::ExportEncryption::Recipients { recipients }
                }
            },
            dlp: options.dlp,
            skip_attachments: options.skip_attachments,
        };
        let r = self
            .0
            .export(scope, Path::new(&dir), options, &report(&progress))
            .await?;
        Ok(ExportReport {
            dir: r.dir.display().to_string(),
            messages: r.messages,
            attachments: r.attachments,
            attachments_missing: r.attachments_missing,
            redactions: r.redactions,
            encryption: r.encryption,
            manifest_sha256: r.manifest_sha256,
        })
    }
}
