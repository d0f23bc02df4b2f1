//! Export ("download to local storage"): a message or a thread saved to a
//! folder whose integrity can be proven later.
//!
//! The folder holds `messages.jsonl` (one JSON object per message, oldest
//! first), `index.html` (a readable page, no script), the downloaded
//! attachments (`attachments/NNN-name`), `manifest.json` (SHA-256 and size
//! of every file, signed — see [`manifest`]) and `manifest.sig`. With
//! encryption the content files are instead entries of one tar archive
//! encrypted in the standard `age` format (`export.tar.age`: a passphrase,
//! scrypt; or X25519 `age1…` recipients), streamed so no readable copy
//! touches the disk; the archive carries its own signed manifest, and the
//! outer manifest signs the archive. `age -d export.tar.age | tar x` opens
//! it.
//!
//! Rules, checked before anything is written:
//! - the profile is not locked, and the organisation's policy allows export
//!   of every message's class on this device (`alert`, `file`, `text`);
//! - when the policy says so, the export is encrypted;
//! - data-loss prevention ([`dlp`]): the organisation's rules when it set
//!   some, else the caller's; findings block the export or are redacted.
//!
//! Refusals are typed ([`Error::PolicyDenied`]) and recorded as security
//! events (counts, never the text). A finished export is an `exported`
//! audit entry. The target folder must be new or empty; on any error what
//! was written is removed. Attachments not downloaded are listed, not
//! included.
//!
//! Deviation from DESIGN.md section 1.13 ("optionally encrypted with a
//! passphrase"): recipients' public keys are accepted too, so an export can
//! be opened by a records officer without sharing a passphrase.

pub mod dlp;
mod html;
pub mod manifest;

mod archive;
mod plan;

use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::store::attachments::AttachmentSource;
use archive::{DirSink, Hashing, Sink, TarSink, io};
pub use dlp::{DlpAction, DlpRules};
pub use manifest::{ExportVerification, FileEntry, Manifest, verify_export, verify_export_async};

/// The encrypted archive's file name.
pub const ARCHIVE: &str = "export.tar.age";
/// Shortest passphrase accepted.
pub const MIN_PASSPHRASE_LEN: usize = 8;

/// What to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportScope {
    /// One message.
    Message {
        /// Its id.
        id: String,
    },
    /// Every live message of a thread.
    Thread {
        /// Its id.
        id: String,
    },
}

impl ExportScope {
    fn label(&self) -> String {
        match self {
            Self::Message { id } => format!("message:{id}"),
            Self::Thread { id } => format!("thread:{id}"),
        }
    }
}

/// How an export is encrypted.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum ExportEncryption {
    /// Not encrypted.
    #[default]
    None,
    /// An `age` passphrase (scrypt), at least [`MIN_PASSPHRASE_LEN`] characters.
    Passphrase {
        /// The passphrase (zeroized on drop).
        passphrase: Zeroizing<String>,
    },
    /// `age` X25519 recipients (`age1…`).
    Recipients {
        /// Their public keys.
        recipients: Vec<String>,
    },
}

impl std::fmt::Debug for ExportEncryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Passphrase { .. } => f.write_str("Passphrase(..)"),
            Self::Recipients { recipients } => {
                f.debug_tuple("Recipients").field(recipients).finish()
            }
        }
    }
}

impl ExportEncryption {
    fn label(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Passphrase { .. } => Some("passphrase".into()),
            Self::Recipients { .. } => Some("recipients".into()),
        }
    }

    fn encryptor(&self) -> Result<Option<age::Encryptor>> {
        match self {
            Self::None => Ok(None),
            Self::Passphrase { passphrase } => {
                if passphrase.chars().count() < MIN_PASSPHRASE_LEN {
                    return Err(Error::invalid(format!(
                        "an export passphrase has at least {MIN_PASSPHRASE_LEN} characters"
                    )));
                }
                Ok(Some(age::Encryptor::with_user_passphrase(
                    age::secrecy::SecretString::from(passphrase.as_str().to_owned()),
                )))
            }
            Self::Recipients { recipients } => {
                let keys = recipients
                    .iter()
                    .map(|r| {
                        r.parse::<age::x25519::Recipient>().map_err(|_| {
                            Error::invalid("an export recipient is an age X25519 key (age1…)")
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                if keys.is_empty() {
                    return Err(Error::invalid("name at least one export recipient"));
                }
                age::Encryptor::with_recipients(keys.iter().map(|k| k as &dyn age::Recipient))
                    .map(Some)
                    .map_err(|_| Error::invalid("the export recipients cannot be used"))
            }
        }
    }
}

/// How to export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Encryption.
    pub encryption: ExportEncryption,
    /// Data-loss prevention when the organisation set none.
    pub dlp: Option<DlpRules>,
    /// Include downloaded attachments (default: yes).
    pub skip_attachments: bool,
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    /// The folder.
    pub dir: PathBuf,
    /// Messages exported.
    pub messages: u64,
    /// Attachments included.
    pub attachments: u64,
    /// Attachments listed but not included (not downloaded).
    pub attachments_missing: u64,
    /// Findings redacted.
    pub redactions: u64,
    /// `passphrase` or `recipients` when encrypted.
    pub encryption: Option<String>,
    /// SHA-256 of manifest.json, hex (note it to prove the export later).
    pub manifest_sha256: String,
}

/// One exported attachment (in `messages.jsonl`).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RecordAttachment {
    pub(crate) name: String,
    pub(crate) mime: String,
    pub(crate) size: u64,
    /// Where it is in the export (the manifest holds its SHA-256); `None`
    /// when it was not downloaded.
    pub(crate) path: Option<String>,
}

/// One exported message (a line of `messages.jsonl`).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) thread_id: String,
    pub(crate) sender: String,
    pub(crate) outgoing: bool,
    pub(crate) sent_ms: i64,
    pub(crate) received_ms: i64,
    pub(crate) ttl_expiry_ms: i64,
    pub(crate) urgent: bool,
    pub(crate) text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) body_base64: Option<String>,
    pub(crate) attachment: Option<RecordAttachment>,
}

/// Everything an export needs, gathered (and checked) under the store.
pub(crate) struct Plan {
    pub(crate) scope: ExportScope,
    pub(crate) title: String,
    pub(crate) user: String,
    pub(crate) device_id: String,
    pub(crate) created_ms: i64,
    pub(crate) records: Vec<Record>,
    pub(crate) sources: Vec<(String, AttachmentSource)>,
    pub(crate) redactions: u64,
}

/// A file name safe in an archive and on any file system.
pub(crate) fn safe_name(index: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    let clean = clean.trim_start_matches('.');
    format!(
        "attachments/{:03}-{}",
        index + 1,
        if clean.is_empty() { "file" } else { clean }
    )
}

fn text_file(sink: &mut dyn Sink, path: &str, bytes: &[u8]) -> Result<()> {
    sink.add(path, bytes.len() as u64, &mut |w| {
        w.write_all(bytes)
            .map_err(io("write the export", Path::new(path)))
    })
}

/// Writes the content files (messages, page, attachments) into `sink`,
/// reporting progress over their total size.
fn write_content(
    sink: &mut dyn Sink,
    plan: &Plan,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<()> {
    let mut jsonl = Vec::new();
    for r in &plan.records {
        serde_json::to_writer(&mut jsonl, r).map_err(|e| Error::Internal {
            reason: e.to_string(),
        })?;
        jsonl.push(b'\n');
    }
    let page = html::render(
        &plan.title,
        &plan.user,
        &plan.device_id,
        plan.created_ms,
        &plan.records,
    );
    let total = jsonl.len() as u64
        + page.len() as u64
        + plan.sources.iter().map(|(_, s)| s.size()).sum::<u64>();
    let mut done = 0u64;
    text_file(sink, "messages.jsonl", &jsonl)?;
    done += jsonl.len() as u64;
    text_file(sink, "index.html", page.as_bytes())?;
    done += page.len() as u64;
    progress(done, total);
    for (path, source) in &plan.sources {
        let base = done;
        sink.add(path, source.size(), &mut |w| {
            source
                .decrypt_to(w, &mut |n| progress(base + n, total))
                .map(|_| ())
                .map_err(Error::from)
        })?;
        done += source.size();
    }
    progress(total, total);
    Ok(())
}

/// The manifest's bytes (what the device signs) for `files`.
fn manifest_bytes(
    plan: &Plan,
    encryption: Option<String>,
    files: Vec<FileEntry>,
) -> Result<Vec<u8>> {
    let m = Manifest {
        format: manifest::FORMAT.into(),
        created_ms: plan.created_ms,
        user: plan.user.clone(),
        device_id: plan.device_id.clone(),
        scope: plan.scope.label(),
        encryption,
        messages: plan.records.len() as u64,
        attachments: plan.sources.len() as u64,
        redactions: plan.redactions,
        files,
    };
    serde_json::to_vec_pretty(&m).map_err(|e| Error::Internal {
        reason: e.to_string(),
    })
}

/// Prepares the target folder: created, or an existing empty one.
fn prepare_dir(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::invalid("the export folder must be new or empty"));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::store::files::create_private_dir_all(dir)
                .map_err(io("create the export folder", dir))?;
            Ok(true)
        }
        Err(e) => Err(io("open the export folder", dir)(e)),
    }
}

/// Removes what a failed export wrote.
fn clean_up(dir: &Path, created: bool) {
    if created {
        let _ = std::fs::remove_dir_all(dir);
    } else if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

/// Writes the export (see the module documentation); `sign` signs the
/// manifest bytes with the device identity key.
pub(crate) fn write(
    dir: &Path,
    plan: &Plan,
    encryption: &ExportEncryption,
    sign: &dyn Fn(&[u8]) -> Result<[u8; 64]>,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<ExportReport> {
    let encryptor = encryption.encryptor()?;
    let created = prepare_dir(dir)?;
    let result = (|| -> Result<String> {
        let outer: Vec<FileEntry> = match encryptor {
            None => {
                let mut sink = DirSink::new(dir);
                write_content(&mut sink, plan, progress)?;
                sink.entries().to_vec()
            }
            Some(enc) => {
                let path = dir.join(ARCHIVE);
                let file = crate::store::files::create_new_private(&path)
                    .map_err(io("write the export", &path))?;
                let hashing = Hashing::new(std::io::BufWriter::with_capacity(1 << 16, file));
                let age_out = enc
                    .wrap_output(hashing)
                    .map_err(io("write the export", &path))?;
                let mut tar = TarSink::new(age_out, plan.created_ms);
                write_content(&mut tar, plan, progress)?;
                let inner = manifest_bytes(plan, None, tar.entries().to_vec())?;
                let sig = manifest::signature_file(&sign(&inner)?);
                text_file(&mut tar, manifest::MANIFEST, &inner)?;
                text_file(&mut tar, manifest::SIGNATURE, sig.as_bytes())?;
                let age_out = tar.finish()?;
                let hashing = age_out.finish().map_err(io("write the export", &path))?;
                let (buf, size, sha256) = hashing.finish();
                let f = buf
                    .into_inner()
                    .map_err(|e| io("write the export", &path)(e.into_error()))?;
                f.sync_all().map_err(io("write the export", &path))?;
                vec![FileEntry {
                    path: ARCHIVE.into(),
                    size,
                    sha256,
                }]
            }
        };
        let bytes = manifest_bytes(plan, encryption.label(), outer)?;
        let sig = manifest::signature_file(&sign(&bytes)?);
        crate::store::files::write_private(&dir.join(manifest::MANIFEST), &bytes)
            .map_err(io("write the export", dir))?;
        crate::store::files::write_private(&dir.join(manifest::SIGNATURE), sig.as_bytes())
            .map_err(io("write the export", dir))?;
        Ok(hex::encode(<[u8; 32]>::from(
            <sha2::Sha256 as sha2::Digest>::digest(&bytes),
        )))
    })();
    match result {
        Ok(manifest_sha256) => Ok(ExportReport {
            dir: dir.to_path_buf(),
            messages: plan.records.len() as u64,
            attachments: plan.sources.len() as u64,
            attachments_missing: plan
                .records
                .iter()
                .filter(|r| r.attachment.as_ref().is_some_and(|a| a.path.is_none()))
                .count() as u64,
            redactions: plan.redactions,
            encryption: encryption.label(),
            manifest_sha256,
        }),
        Err(e) => {
            clean_up(dir, created);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_are_made_safe() {
        assert_eq!(
            safe_name(0, "site photo.jpg"),
            "attachments/001-site_photo.jpg"
        );
        assert_eq!(safe_name(9, "../../x"), "attachments/010-_.._x");
        assert_eq!(safe_name(1, "..."), "attachments/002-file");
        assert!(safe_name(2, &"a".repeat(300)).len() < 100);
    }

    #[test]
    fn passphrases_and_recipients_are_checked() {
        let short = ExportEncryption::Passphrase {
            passphrase: Zeroizing::new("short".into()),
        };
        assert!(matches!(short.encryptor(), Err(Error::InvalidInput { .. })));
        let bad = ExportEncryption::Recipients {
            recipients: vec!["not-a-key".into()],
        };
        assert!(matches!(bad.encryptor(), Err(Error::InvalidInput { .. })));
        let none = ExportEncryption::Recipients { recipients: vec![] };
        assert!(matches!(none.encryptor(), Err(Error::InvalidInput { .. })));
        let dbg = format!(
            "{:?}",
            ExportEncryption::Passphrase {
                passphrase: Zeroizing::new("correct horse".into())
            }
        );
        assert!(!dbg.contains("horse"));
    }
}
