//! The attachment and export verbs: `occ send --attach`, `occ attachment
//! list|save|quota`, `occ export`, `occ export verify`.
//!
//! An export passphrase never travels on the command line (other users can
//! read it there): it comes from a file (`--passphrase-file`) or the
//! environment (`OCC_EXPORT_PASSPHRASE`).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use occ_core::export::{DlpAction, DlpRules};
use occ_core::{Client, ExportEncryption, ExportOptions, ExportScope, OutgoingFile, Recipient};
use zeroize::Zeroizing;

use crate::{Fail, terminal};

#[derive(Subcommand)]
pub(crate) enum AttachmentCommand {
    /// The attachments of a message.
    List {
        /// The message id.
        message: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Download an attachment (resuming) if needed and save it decrypted
    /// to PATH (a new file).
    Save {
        /// The attachment id.
        id: String,
        /// Where to write it.
        path: PathBuf,
    },
    /// Show (or set) the profile's attachment quota.
    Quota {
        /// New quota in bytes.
        #[arg(long)]
        set: Option<u64>,
    },
}

#[derive(Subcommand)]
pub(crate) enum ExportSub {
    /// Verify an export folder: the signature and every file.
    Verify {
        /// The export folder.
        dir: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ExportArgs {
    #[command(subcommand)]
    pub(crate) verify: Option<ExportSub>,
    /// Export this thread.
    #[arg(long, conflicts_with = "message")]
    pub(crate) thread: Option<String>,
    /// Export this message.
    #[arg(long)]
    pub(crate) message: Option<String>,
    /// The folder to create (new or empty).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Encrypt with the passphrase in this file (first line).
    #[arg(long, conflicts_with = "recipient")]
    pub(crate) passphrase_file: Option<PathBuf>,
    /// Encrypt with the passphrase in $OCC_EXPORT_PASSPHRASE.
    #[arg(long, conflicts_with_all = ["recipient", "passphrase_file"])]
    pub(crate) passphrase_env: bool,
    /// Encrypt to this age recipient (`age1…`); repeatable.
    #[arg(long)]
    pub(crate) recipient: Vec<String>,
    /// Data-loss prevention: look for card numbers.
    #[arg(long)]
    pub(crate) dlp_cards: bool,
    /// Data-loss prevention: a regular expression; repeatable.
    #[arg(long)]
    pub(crate) dlp_pattern: Vec<String>,
    /// Redact findings instead of refusing the export.
    #[arg(long)]
    pub(crate) redact: bool,
    /// Leave attachments out.
    #[arg(long)]
    pub(crate) no_attachments: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub(crate) json: bool,
}

fn none(_: u64, _: u64) {}

/// `occ send --attach FILE`: returns the message id.
pub(crate) async fn send_file(
    client: &Client,
    to: Recipient,
    path: &Path,
    mime: Option<&str>,
    caption: &str,
    ttl: u64,
) -> Result<String, Fail> {
    let mime = mime.map_or_else(|| guess_mime(path).to_string(), str::to_string);
    Ok(client
        .send_file(
            to,
            OutgoingFile {
                path: path.to_path_buf(),
                mime,
                name: None,
                thumb: Vec::new(),
            },
            caption.as_bytes().to_vec(),
            ttl,
            &none,
        )
        .await?)
}

/// A MIME type from a file's extension (the app knows better).
fn guess_mime(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp4" => "video/mp4",
        "ogg" | "opus" => "audio/ogg",
        "m4a" => "audio/mp4",
        _ => "application/octet-stream",
    }
}

/// `occ attachment ...`.
pub(crate) async fn attachment(client: &Client, command: &AttachmentCommand) -> Result<(), Fail> {
    match command {
        AttachmentCommand::List { message, json } => {
            let list = client.attachments(message).await?;
            for a in &list {
                if *json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": a.id,
                            "message_id": a.message_id,
                            "name": a.name,
                            "mime": a.mime,
                            "size": a.size,
                            "blob_sha256": hex::encode(a.blob_sha256),
                            "downloaded": a.downloaded,
                        })
                    );
                } else {
                    println!(
                        "{}  {}  {} bytes  {}{}",
                        a.id,
                        terminal::safe(&a.name),
                        a.size,
                        terminal::safe(&a.mime),
                        if a.downloaded {
                            ""
                        } else {
                            "  (not downloaded)"
                        }
                    );
                }
            }
            Ok(())
        }
        AttachmentCommand::Save { id, path } => {
            client.download_attachment(id, &none).await?;
            let n = client.save_attachment(id, path, &none).await?;
            println!("saved {n} bytes to {}", path.display());
            Ok(())
        }
        AttachmentCommand::Quota { set } => {
            if let Some(bytes) = set {
                client.set_attachment_quota(*bytes).await?;
            }
            let (quota, used) = client.attachment_quota().await?;
            println!("attachments use {used} of {quota} bytes");
            Ok(())
        }
    }
}

fn encryption(a: &ExportArgs) -> Result<ExportEncryption, Fail> {
    let passphrase = if let Some(f) = &a.passphrase_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(f)
                .map_err(|e| Fail(format!("cannot read {}: {e}", f.display())))?,
        );
        Some(Zeroizing::new(
            text.lines().next().unwrap_or_default().to_string(),
        ))
    } else if a.passphrase_env {
        Some(Zeroizing::new(
            std::env::var("OCC_EXPORT_PASSPHRASE")
                .map_err(|_| Fail("set OCC_EXPORT_PASSPHRASE to the export passphrase".into()))?,
        ))
    } else {
        None
    };
    Ok(match passphrase {
        Some(passphrase) => ExportEncryption::Passphrase { passphrase },
        None if !a.recipient.is_empty() => ExportEncryption::Recipients {
            recipients: a.recipient.clone(),
        },
        None => ExportEncryption::None,
    })
}

/// `occ export ...` with a profile.
pub(crate) async fn export(client: &Client, a: &ExportArgs) -> Result<(), Fail> {
    let scope = match (&a.thread, &a.message) {
        (Some(id), None) => ExportScope::Thread { id: id.clone() },
        (None, Some(id)) => ExportScope::Message { id: id.clone() },
        _ => return Err(Fail("name --thread ID or --message ID".into())),
    };
    let out = a
        .out
        .as_deref()
        .ok_or_else(|| Fail("name the folder to create with --out DIR".into()))?;
    let dlp = (a.dlp_cards || !a.dlp_pattern.is_empty()).then(|| DlpRules {
        card_numbers: a.dlp_cards,
        patterns: a.dlp_pattern.clone(),
        action: if a.redact {
            DlpAction::Redact
        } else {
            DlpAction::Block
        },
    });
    let options = ExportOptions {
        encryption: encryption(a)?,
        dlp,
        skip_attachments: a.no_attachments,
    };
    let r = client.export(scope, out, options, &none).await?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "dir": r.dir.display().to_string(),
                "messages": r.messages,
                "attachments": r.attachments,
                "attachments_missing": r.attachments_missing,
                "redactions": r.redactions,
                "encryption": r.encryption,
                "manifest_sha256": r.manifest_sha256,
            })
        );
    } else {
        println!(
            "exported {} message(s), {} attachment(s){} to {}{}",
            r.messages,
            r.attachments,
            if r.attachments_missing > 0 {
                format!(" ({} not downloaded, listed only)", r.attachments_missing)
            } else {
                String::new()
            },
            r.dir.display(),
            r.encryption
                .as_deref()
                .map(|e| format!(", encrypted ({e})"))
                .unwrap_or_default()
        );
        if r.redactions > 0 {
            println!("redacted {} finding(s)", r.redactions);
        }
        println!("manifest sha256 {}", r.manifest_sha256);
    }
    Ok(())
}

/// `occ export verify DIR` (no profile needed).
pub(crate) fn verify(dir: &Path, json: bool) -> Result<(), Fail> {
    let v = occ_core::verify_export(dir)?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": true,
                "user": v.user,
                "device_id": v.device_id,
                "created_ms": v.created_ms,
                "scope": v.scope,
                "encryption": v.encryption,
                "messages": v.messages,
                "files": v.files,
            })
        );
    } else {
        println!(
            "export verified: {} file(s), {} message(s), signed by {} on device {}",
            v.files,
            v.messages,
            terminal::safe(&v.user),
            v.device_id
        );
        println!("compare the device id with the sender's safety number before relying on it");
    }
    Ok(())
}
