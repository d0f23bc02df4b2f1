//! Attachments: each file is encrypted with its own random key, and that key
//! is kept only in the (encrypted) database. Deleting the row — with
//! `secure_delete` scrubbing the page — crypto-shreds the file: its bytes, even
//! if copied aside beforehand, can no longer be decrypted.
//!
//! File format (`attachments/<32 hex>.bin`):
//!
//! ```text
//! version(1) chunk_size:u32 || chunk_0 || chunk_1 || ... || chunk_n
//! chunk_i = ChaCha20-Poly1305(key, nonce = i:u64 ‖ last:u32, aad = attachment id, plaintext_i) ‖ tag
//! ```
//!
//! Chunks (64 KiB) let large voice and video files stream; the `last` flag in
//! the nonce detects truncation and the index detects reordering. The key is
//! unique per file, so nonces never repeat. The plaintext SHA-256 is stored
//! and checked on read.
//!
//! Reading an attachment applies its message's deadline, like every content
//! read.

use std::io::Write;
use std::path::PathBuf;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::messages::check_id;
use super::{ATTACHMENT_DIR, Store, StoreError, persist_high_water};

/// Plaintext bytes per encrypted chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Largest attachment accepted (256 MiB).
pub const MAX_ATTACHMENT_LEN: usize = 256 << 20;
const FILE_VERSION: u8 = 1;
const TAG_LEN: usize = 16;

/// Metadata of a stored attachment (no key, no content).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// Identifier.
    pub id: String,
    /// The message it belongs to.
    pub message_id: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// MIME type.
    pub mime: String,
    /// SHA-256 of the plaintext.
    pub sha256: [u8; 32],
}

fn nonce(index: u64, last: bool) -> chacha20poly1305::Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_be_bytes());
    n[8..].copy_from_slice(&u32::from(last).to_be_bytes());
    n.into()
}

fn cipher(key: &[u8; 32]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(key.into())
}

/// Encrypts `data` into the file format.
pub(crate) fn encrypt_file(key: &[u8; 32], id: &str, data: &[u8]) -> Result<Vec<u8>, StoreError> {
    let c = cipher(key);
    let chunks = data.len().div_ceil(CHUNK_SIZE).max(1);
    let mut out = Vec::with_capacity(5 + data.len() + chunks * TAG_LEN);
    out.push(FILE_VERSION);
    out.extend_from_slice(&(CHUNK_SIZE as u32).to_be_bytes());
    for i in 0..chunks {
        let start = i * CHUNK_SIZE;
        let end = (start + CHUNK_SIZE).min(data.len());
        let at = out.len();
        out.extend_from_slice(&data[start..end]);
        let tag = c
            .encrypt_inout_detached(
                &nonce(i as u64, i + 1 == chunks),
                id.as_bytes(),
                out[at..].as_mut().into(),
            )
            .map_err(|_| StoreError::InvalidInput("attachment chunk too large".into()))?;
        out.extend_from_slice(&tag);
    }
    Ok(out)
}

/// Decrypts the file format; any tampering, truncation or wrong key is an error.
pub(crate) fn decrypt_file(key: &[u8; 32], id: &str, file: &[u8]) -> Result<Vec<u8>, StoreError> {
    let bad = || StoreError::Corrupt("attachment file fails authentication".into());
    if file.len() < 5 || file[0] != FILE_VERSION {
        return Err(bad());
    }
    let chunk_size = u32::from_be_bytes([file[1], file[2], file[3], file[4]]) as usize;
    if chunk_size != CHUNK_SIZE {
        return Err(bad());
    }
    let body = &file[5..];
    let sealed = CHUNK_SIZE + TAG_LEN;
    let chunks = body.len().div_ceil(sealed).max(1);
    let c = cipher(key);
    let mut out = Vec::with_capacity(body.len());
    for i in 0..chunks {
        let start = i * sealed;
        let end = (start + sealed).min(body.len());
        let chunk = body.get(start..end).ok_or_else(bad)?;
        if chunk.len() < TAG_LEN {
            return Err(bad());
        }
        let (ct, tag) = chunk.split_at(chunk.len() - TAG_LEN);
        let at = out.len();
        out.extend_from_slice(ct);
        let tag = chacha20poly1305::Tag::try_from(tag).map_err(|_| bad())?;
        c.decrypt_inout_detached(
            &nonce(i as u64, i + 1 == chunks),
            id.as_bytes(),
            out[at..].as_mut().into(),
            &tag,
        )
        .map_err(|_| bad())?;
    }
    Ok(out)
}

fn random_hex<const N: usize>() -> Result<String, StoreError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| StoreError::Randomness)?;
    Ok(hex::encode(b))
}

impl Store {
    fn attachment_path(&self, file_name: &str) -> PathBuf {
        self.dir().join(ATTACHMENT_DIR).join(file_name)
    }

    /// Encrypts and stores an attachment of a live message; returns its id.
    /// The file is written and synced before the row (with its key) commits;
    /// a crash in between leaves an orphan file that the next open deletes.
    pub fn add_attachment(
        &mut self,
        message_id: &str,
        mime: &str,
        data: &[u8],
    ) -> Result<String, StoreError> {
        check_id(message_id)?;
        if mime.is_empty() || mime.len() > 128 {
            return Err(StoreError::InvalidInput(
                "a MIME type is 1 to 128 bytes".into(),
            ));
        }
        if data.len() > MAX_ATTACHMENT_LEN {
            return Err(StoreError::InvalidInput(format!(
                "attachment of {} bytes exceeds the {MAX_ATTACHMENT_LEN}-byte limit",
                data.len()
            )));
        }
        self.message(message_id)?;
        let id = random_hex::<16>()?;
        let file_name = format!("{}.bin", random_hex::<16>()?);
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|_| StoreError::Randomness)?;
        let sealed = encrypt_file(&key, &id, data)?;
        let path = self.attachment_path(&file_name);
        let write = || -> std::io::Result<()> {
            let mut f = super::files::create_new_private(&path)?;
            f.write_all(&sealed)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&path);
            return Err(StoreError::io("write the attachment", &path, e));
        }
        let digest: [u8; 32] = Sha256::digest(data).into();
        let now = self.now_ms();
        let result =
            (|| -> Result<(), StoreError> {
                let tx = self.conn.transaction()?;
                tx.execute(
                "INSERT INTO attachments (id, message_id, file_name, file_key, size, sha256, mime)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, message_id, file_name, &key[..], data.len() as i64, &digest[..], mime],
            )?;
                persist_high_water(&tx, now)?;
                tx.commit()?;
                Ok(())
            })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(id)
    }

    /// Attachments of a live message.
    pub fn attachments_of(&self, message_id: &str) -> Result<Vec<AttachmentInfo>, StoreError> {
        self.message(message_id)?;
        let mut stmt = self
            .conn
            .prepare("SELECT id, message_id, size, mime, sha256 FROM attachments WHERE message_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([message_id], |r| {
            let sha: Vec<u8> = r.get(4)?;
            Ok(AttachmentInfo {
                id: r.get(0)?,
                message_id: r.get(1)?,
                size: r.get::<_, i64>(2)?.max(0) as u64,
                mime: r.get(3)?,
                sha256: sha.try_into().unwrap_or([0; 32]),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Decrypts an attachment of a live message, checking its SHA-256.
    pub fn attachment(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        let (message_id, file_name, key, sha) = self.attachment_row(id)?;
        self.message(&message_id)?;
        let path = self.attachment_path(&file_name);
        let file =
            std::fs::read(&path).map_err(|e| StoreError::io("read the attachment", &path, e))?;
        let plain = decrypt_file(&key, id, &file)?;
        if Sha256::digest(&plain).as_slice() != sha {
            return Err(StoreError::Corrupt(
                "attachment content does not match its digest".into(),
            ));
        }
        Ok(plain)
    }

    /// The file path of an attachment (for tests and export; the file is
    /// ciphertext).
    pub fn attachment_file(&self, id: &str) -> Result<PathBuf, StoreError> {
        let (_, file_name, _, _) = self.attachment_row(id)?;
        Ok(self.attachment_path(&file_name))
    }

    #[allow(clippy::type_complexity)]
    fn attachment_row(
        &self,
        id: &str,
    ) -> Result<(String, String, Zeroizing<[u8; 32]>, [u8; 32]), StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT message_id, file_name, file_key, sha256 FROM attachments WHERE id = ?1",
                [id],
                |r| {
                    let key: Zeroizing<Vec<u8>> = Zeroizing::new(r.get(2)?);
                    let sha: Vec<u8> = r.get(3)?;
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, key, sha))
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound("attachment".into()))?;
        let (message_id, file_name, key_vec, sha) = row;
        let mut key = Zeroizing::new([0u8; 32]);
        if key_vec.len() != 32 || sha.len() != 32 {
            return Err(StoreError::Corrupt(
                "attachment key record is malformed".into(),
            ));
        }
        key.copy_from_slice(&key_vec);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&sha);
        Ok((message_id, file_name, key, digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_format_round_trips_and_detects_tampering_and_truncation() {
        let key = [7u8; 32];
        for len in [
            0usize,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE + 5,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let f = encrypt_file(&key, "a1", &data).unwrap();
            assert_eq!(decrypt_file(&key, "a1", &f).unwrap(), data);
            assert!(decrypt_file(&[8; 32], "a1", &f).is_err(), "wrong key");
            assert!(decrypt_file(&key, "a2", &f).is_err(), "wrong id");
            let mut t = f.clone();
            let last = t.len() - 1;
            t[last] ^= 1;
            assert!(decrypt_file(&key, "a1", &t).is_err(), "tampered");
            if len > CHUNK_SIZE {
                // Dropping the final chunk leaves a valid-looking prefix whose
                // last chunk lacks the `last` flag: refused.
                let cut = 5 + CHUNK_SIZE + TAG_LEN;
                assert!(decrypt_file(&key, "a1", &f[..cut]).is_err(), "truncated");
            }
        }
        assert!(decrypt_file(&key, "a1", &[]).is_err());
        assert!(decrypt_file(&key, "a1", &[1, 0, 1, 0, 0]).is_err());
    }
}
