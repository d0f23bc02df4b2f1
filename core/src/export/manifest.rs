//! The export manifest and its verification.
//!
//! `manifest.json` lists every other file of the export with its size and
//! SHA-256, who made it (user and device, whose id is its Ed25519 identity
//! key), when (trusted time) and what it holds. `manifest.sig` is the
//! device's Ed25519 signature over `"occ/v1/export-manifest" ‖
//! manifest.json`'s exact bytes (base64), so no canonical form is needed.
//!
//! [`verify_export`] checks the signature, every listed file's size and
//! digest, and that the folder holds nothing else: any changed, missing,
//! renamed or added byte fails it. It names the file, never its content.
//! Whether the signing device is the one you expect is the caller's
//! question: compare [`ExportVerification::device_id`] with the device's
//! safety number or the contact list.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use occ_protocol::contexts::EXPORT_MANIFEST;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The signature's file name.
pub const SIGNATURE: &str = "manifest.sig";
/// The format tag.
pub const FORMAT: &str = "occ-export/1";
const MAX_MANIFEST_LEN: u64 = 16 << 20;

/// One file of an export.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the export folder, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// What the manifest says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// When it was made (the device's trusted time), ms.
    pub created_ms: i64,
    /// The exporting user.
    pub user: String,
    /// The exporting device: its Ed25519 identity key, hex.
    pub device_id: String,
    /// `thread:<id>` or `message:<id>`.
    pub scope: String,
    /// `passphrase` or `recipients` when the content is in an age file.
    pub encryption: Option<String>,
    /// Messages exported.
    pub messages: u64,
    /// Attachments exported.
    pub attachments: u64,
    /// Findings redacted by data-loss prevention.
    pub redactions: u64,
    /// Every other file of the export.
    pub files: Vec<FileEntry>,
}

/// A verified export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportVerification {
    /// The exporting user (as the signing device stated it).
    pub user: String,
    /// The signing device (its identity key, hex).
    pub device_id: String,
    /// When it was made, ms.
    pub created_ms: i64,
    /// `thread:<id>` or `message:<id>`.
    pub scope: String,
    /// `passphrase` or `recipients`, when encrypted.
    pub encryption: Option<String>,
    /// Messages in it.
    pub messages: u64,
    /// Files checked (besides the manifest and its signature).
    pub files: u64,
}

fn untrusted(reason: impl Into<String>) -> Error {
    Error::Untrusted {
        reason: reason.into(),
    }
}

/// Signs a manifest's bytes with `sign` (the device key) and returns the
/// signature file's content.
pub(crate) fn signature_file(sig: &[u8; 64]) -> String {
    let mut s = base64::engine::general_purpose::STANDARD.encode(sig);
    s.push('\n');
    s
}

/// A relative path inside the export, or `None` if it could escape it.
fn inside(dir: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty() || rel.contains('\\') {
        return None;
    }
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| dir.join(p))
}

/// SHA-256 and size of a file, streamed.
pub(crate) fn digest_file(path: &Path) -> std::io::Result<(u64, [u8; 32])> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, h.finalize().into()))
}

/// Every file under `dir`, as `/`-separated relative paths.
fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            list_files(&entry.path(), &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

/// [`verify_export`] off the caller's thread (on the core's blocking pool):
/// it reads and hashes every file of the export.
pub async fn verify_export_async(dir: std::path::PathBuf) -> Result<ExportVerification> {
    crate::client::runtime::blocking(move || verify_export(&dir)).await
}

/// Verifies an export folder (see the module documentation).
pub fn verify_export(dir: &Path) -> Result<ExportVerification> {
    let read = |name: &str| -> Result<Vec<u8>> {
        let path = dir.join(name);
        let f = std::fs::File::open(&path)
            .map_err(|_| untrusted(format!("the export has no readable {name}")))?;
        let mut bytes = Vec::new();
        f.take(MAX_MANIFEST_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|_| untrusted(format!("{name} cannot be read")))?;
        if bytes.len() as u64 > MAX_MANIFEST_LEN {
            return Err(untrusted(format!("{name} is too large")));
        }
        Ok(bytes)
    };
    let bytes = read(MANIFEST)?;
    let sig_text = read(SIGNATURE)?;
    let sig: [u8; 64] = base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8_lossy(&sig_text).trim())
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| untrusted("manifest.sig is not a signature"))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|_| untrusted("manifest.json was changed: it is not an export manifest"))?;
    if manifest.format != FORMAT {
        return Err(untrusted(format!(
            "unknown export format {:?}",
            manifest.format
        )));
    }
    let key: [u8; 32] = hex::decode(&manifest.device_id)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| untrusted("the manifest's device id is not a key"))?;
    let vk = VerifyingKey::from_bytes(&key)
        .map_err(|_| untrusted("the manifest's device id is not a key"))?;
    let mut signed = EXPORT_MANIFEST.to_vec();
    signed.extend_from_slice(&bytes);
    vk.verify_strict(&signed, &Signature::from_bytes(&sig))
        .map_err(|_| untrusted("the manifest's signature does not verify: it was changed"))?;
    let mut listed = std::collections::HashSet::new();
    for f in &manifest.files {
        let path = inside(dir, &f.path).ok_or_else(|| {
            untrusted(format!(
                "the manifest names a path outside the export: {:?}",
                f.path
            ))
        })?;
        if !listed.insert(f.path.clone()) {
            return Err(untrusted(format!("the manifest lists {} twice", f.path)));
        }
        let (size, sha) =
            digest_file(&path).map_err(|_| untrusted(format!("{} is missing", f.path)))?;
        if size != f.size || hex::encode(sha) != f.sha256 {
            return Err(untrusted(format!("{} was changed", f.path)));
        }
    }
    let mut present = Vec::new();
    list_files(dir, "", &mut present)
        .map_err(|_| untrusted("the export folder cannot be listed"))?;
    if let Some(extra) = present
        .iter()
        .find(|p| *p != MANIFEST && *p != SIGNATURE && !listed.contains(*p))
    {
        return Err(untrusted(format!("{extra} is not in the manifest")));
    }
    Ok(ExportVerification {
        user: manifest.user,
        device_id: manifest.device_id,
        created_ms: manifest.created_ms,
        scope: manifest.scope,
        encryption: manifest.encryption,
        messages: manifest.messages,
        files: manifest.files.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_past_the_size_limit_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SIGNATURE), "AAAA\n").unwrap();
        let reason = |len: u64| {
            let f = std::fs::File::create(dir.path().join(MANIFEST)).unwrap();
            f.set_len(len).unwrap();
            match verify_export(dir.path()) {
                Err(Error::Untrusted { reason }) => reason,
                other => panic!("{other:?}"),
            }
        };
        assert!(reason(MAX_MANIFEST_LEN + 1).contains("too large"));
        let at_limit = reason(MAX_MANIFEST_LEN);
        assert!(!at_limit.contains("too large"), "{at_limit}");
    }

    #[test]
    fn paths_cannot_leave_the_export() {
        let d = Path::new("/x");
        assert!(inside(d, "messages.jsonl").is_some());
        assert!(inside(d, "attachments/1-a.jpg").is_some());
        for bad in [
            "",
            "../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "a\\b",
            "./a",
        ] {
            assert!(inside(d, bad).is_none(), "{bad}");
        }
    }
}
