//! Attachments: each file is encrypted with its own random key, and that key
//! is kept only in the (encrypted) database. Deleting the row — with
//! `secure_delete` scrubbing the page — crypto-shreds the file: its bytes, even
//! if copied aside beforehand, can no longer be decrypted.
//!
//! File format (`attachments/<32 hex>.bin`), which is also the blob the relay
//! stores, byte for byte:
//!
//! ```text
//! version(1) chunk_size:u32 || chunk_0 || chunk_1 || ... || chunk_n
//! chunk_i = ChaCha20-Poly1305(key, nonce = i:u64 ‖ last:u32, aad = attachment id, plaintext_i) ‖ tag
//! ```
//!
//! Chunks (64 KiB) let large voice and video files stream: [`seal_stream`]
//! and [`open_stream`] hold two chunks at a time, whatever the file size.
//! The `last` flag in the nonce detects truncation and the index detects
//! reordering. The key is unique per file, so nonces never repeat. Each
//! chunk is authenticated by the AEAD, so reading needs no separate digest
//! (and sealing and opening run at the AEAD's own speed). The SHA-256 of
//! the whole encrypted blob, computed by the sender as it uploads and
//! carried in the end-to-end message, is checked on download before the
//! file is accepted: a byte changed on the relay is refused at once, and
//! every recipient holds the very bytes the sender committed to.
//!
//! Deviation from the earlier store (schema ≤ 8): the `sha256` column held
//! the plaintext digest, checked on read; since schema 9 it holds the
//! blob's digest (zero for a local-only file) and reads rely on the AEAD.
//!
//! A sent attachment's local copy is the uploaded blob itself (same key);
//! a received one is the downloaded blob. Rows move remote (0) →
//! downloading (1, bytes reserved against the quota, `<file>.part` on disk,
//! kept across restarts so a download resumes) → present (2).
//!
//! **Quota**: the blob bytes of downloading and present attachments count
//! against the profile's attachment quota ([`Store::attachment_quota`]);
//! a sent file is checked before it is written, a download before it
//! starts. Over quota is [`StoreError::QuotaExceeded`] and nothing is
//! written.
//!
//! Reading an attachment applies its message's deadline, like every content
//! read.

use std::io::{Read, Write};
use std::path::PathBuf;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use occ_protocol::payload::{AttachmentRef, valid_file_name, valid_mime};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::messages::check_id;
use super::{ATTACHMENT_DIR, Store, StoreError, persist_high_water};

/// Plaintext bytes per encrypted chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Largest attachment accepted (256 MiB of plaintext).
pub const MAX_ATTACHMENT_LEN: usize = 256 << 20;
/// The attachment quota of a profile that has not set one (2 GiB).
pub const DEFAULT_QUOTA: u64 = 2 << 30;
const FILE_VERSION: u8 = 1;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 5;
const SEALED_CHUNK: usize = CHUNK_SIZE + TAG_LEN;

const STATE_REMOTE: i64 = 0;
const STATE_DOWNLOADING: i64 = 1;
const STATE_PRESENT: i64 = 2;

/// Metadata of a stored attachment (no key, no content).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentInfo {
    /// Identifier (for a relayed attachment, the relay's blob id).
    pub id: String,
    /// The message it belongs to.
    pub message_id: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// MIME type.
    pub mime: String,
    /// SHA-256 of the encrypted blob (as the sender committed to it).
    pub blob_sha256: [u8; 32],
    /// File name given by the sender (empty for a local-only attachment).
    pub name: String,
    /// The small preview the sender attached (empty: none).
    pub thumb: Vec<u8>,
    /// Whether the encrypted file is on this device.
    pub downloaded: bool,
}

/// Size of the encrypted file of `plain_len` plaintext bytes.
pub fn sealed_len(plain_len: u64) -> u64 {
    let chunks = plain_len.div_ceil(CHUNK_SIZE as u64).max(1);
    HEADER_LEN as u64 + plain_len + chunks * TAG_LEN as u64
}

/// What sealing a stream produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// Plaintext bytes.
    pub size: u64,
    /// Encrypted bytes written.
    pub blob_size: u64,
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

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_err(e: std::io::Error) -> StoreError {
    StoreError::io("read the attachment", std::path::Path::new(""), e)
}

fn write_err(e: std::io::Error) -> StoreError {
    StoreError::io("write the attachment", std::path::Path::new(""), e)
}

/// Encrypts `input` into the file format on `out`, at most
/// [`MAX_ATTACHMENT_LEN`] bytes, two chunks in memory at a time.
/// `progress` gets the plaintext bytes done after every chunk.
pub fn seal_stream(
    key: &[u8; 32],
    id: &str,
    input: &mut dyn Read,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<Sealed, StoreError> {
    let c = cipher(key);
    let mut header = [0u8; HEADER_LEN];
    header[0] = FILE_VERSION;
    header[1..].copy_from_slice(&(CHUNK_SIZE as u32).to_be_bytes());
    out.write_all(&header).map_err(write_err)?;
    let mut cur = Zeroizing::new(vec![0u8; SEALED_CHUNK]);
    let mut next = Zeroizing::new(vec![0u8; SEALED_CHUNK]);
    let mut cur_len = read_full(input, &mut cur[..CHUNK_SIZE]).map_err(read_err)?;
    let mut index = 0u64;
    let mut size = 0u64;
    loop {
        let next_len = if cur_len == CHUNK_SIZE {
            read_full(input, &mut next[..CHUNK_SIZE]).map_err(read_err)?
        } else {
            0
        };
        let last = next_len == 0;
        size += cur_len as u64;
        if size > MAX_ATTACHMENT_LEN as u64 {
            return Err(StoreError::InvalidInput(format!(
                "the attachment is larger than the {MAX_ATTACHMENT_LEN}-byte limit"
            )));
        }
        let tag = c
            .encrypt_inout_detached(
                &nonce(index, last),
                id.as_bytes(),
                cur[..cur_len].as_mut().into(),
            )
            .map_err(|_| StoreError::InvalidInput("attachment chunk too large".into()))?;
        cur[cur_len..cur_len + TAG_LEN].copy_from_slice(&tag);
        let sealed = &cur[..cur_len + TAG_LEN];
        out.write_all(sealed).map_err(write_err)?;
        progress(size);
        if last {
            break;
        }
        std::mem::swap(&mut cur, &mut next);
        cur_len = next_len;
        index += 1;
    }
    Ok(Sealed {
        size,
        blob_size: sealed_len(size),
    })
}

/// Decrypts the file format from `input` onto `out`, chunk by chunk; any
/// tampering, truncation, trailing bytes or wrong key is an error (the bytes
/// written before it are the caller's to discard). Returns the plaintext
/// size.
pub fn open_stream(
    key: &[u8; 32],
    id: &str,
    input: &mut dyn Read,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StoreError> {
    let bad = || StoreError::Corrupt("attachment file fails authentication".into());
    let mut header = [0u8; HEADER_LEN];
    if read_full(input, &mut header).map_err(read_err)? != HEADER_LEN
        || header[0] != FILE_VERSION
        || u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize != CHUNK_SIZE
    {
        return Err(bad());
    }
    let c = cipher(key);
    let mut cur = Zeroizing::new(vec![0u8; SEALED_CHUNK]);
    let mut next = Zeroizing::new(vec![0u8; SEALED_CHUNK]);
    let mut cur_len = read_full(input, &mut cur).map_err(read_err)?;
    let mut index = 0u64;
    let mut size = 0u64;
    loop {
        let next_len = if cur_len == SEALED_CHUNK {
            read_full(input, &mut next).map_err(read_err)?
        } else {
            0
        };
        let last = next_len == 0;
        if cur_len < TAG_LEN {
            return Err(bad());
        }
        let (ct, tag) = cur[..cur_len].split_at_mut(cur_len - TAG_LEN);
        let tag = chacha20poly1305::Tag::try_from(&tag[..]).map_err(|_| bad())?;
        c.decrypt_inout_detached(&nonce(index, last), id.as_bytes(), ct.into(), &tag)
            .map_err(|_| bad())?;
        out.write_all(ct).map_err(write_err)?;
        size += ct.len() as u64;
        progress(size);
        if last {
            break;
        }
        std::mem::swap(&mut cur, &mut next);
        cur_len = next_len;
        index += 1;
    }
    Ok(size)
}

/// Encrypts `data` into the file format (whole-slice convenience).
#[cfg(test)]
pub(crate) fn encrypt_file(key: &[u8; 32], id: &str, data: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(sealed_len(data.len() as u64) as usize);
    seal_stream(key, id, &mut &data[..], &mut out, &mut |_| {})?;
    Ok(out)
}

/// Decrypts the file format (whole-slice convenience).
#[cfg(test)]
pub(crate) fn decrypt_file(key: &[u8; 32], id: &str, file: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(file.len());
    open_stream(key, id, &mut &file[..], &mut out, &mut |_| {})?;
    Ok(out)
}

fn random_hex<const N: usize>() -> Result<String, StoreError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| StoreError::Randomness)?;
    Ok(hex::encode(b))
}

/// An attachment encrypted into the profile's directory, not yet in the
/// database (a crash now leaves an orphan file the next open deletes).
pub struct PreparedAttachment {
    /// The end-to-end description (id, key, name, type, thumbnail; the
    /// blob digest is filled in by whoever reads the whole file, the upload).
    pub reference: AttachmentRef,
    /// The encrypted file's name in the attachment directory.
    pub(crate) file_name: String,
    /// Its size.
    pub blob_size: u64,
    /// Its full path (to upload it).
    pub path: PathBuf,
}

impl std::fmt::Debug for PreparedAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedAttachment")
            .field("reference", &self.reference)
            .field("blob_size", &self.blob_size)
            .finish_non_exhaustive()
    }
}

impl PreparedAttachment {
    /// Deletes the file (the send was abandoned).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An attachment checked and named, not yet written.
#[derive(Debug)]
pub struct AttachmentSlot {
    id: String,
    file_name: String,
    path: PathBuf,
    size: u64,
    mime: String,
    name: String,
    thumb: Vec<u8>,
}

impl AttachmentSlot {
    /// Encrypts `input` (exactly the announced size) under a fresh key into
    /// the slot's file and syncs it; on any error the file is removed.
    pub fn seal(
        self,
        input: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<PreparedAttachment, StoreError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|_| StoreError::Randomness)?;
        let path = &self.path;
        let size = self.size;
        let mut write = || -> Result<Sealed, StoreError> {
            let f = super::files::create_new_private(path)
                .map_err(|e| StoreError::io("write the attachment", path, e))?;
            let mut w = std::io::BufWriter::with_capacity(SEALED_CHUNK, f);
            let sealed = seal_stream(&key, &self.id, input, &mut w, progress)?;
            let f = w
                .into_inner()
                .map_err(|e| StoreError::io("write the attachment", path, e.into_error()))?;
            f.sync_all()
                .map_err(|e| StoreError::io("write the attachment", path, e))?;
            if sealed.size != size {
                return Err(StoreError::InvalidInput(format!(
                    "the file changed while it was read ({} bytes, expected {size})",
                    sealed.size
                )));
            }
            Ok(sealed)
        };
        let sealed = write().inspect_err(|_| {
            let _ = std::fs::remove_file(path);
        })?;
        Ok(PreparedAttachment {
            reference: AttachmentRef {
                id: self.id,
                key,
                blob_sha256: [0; 32],
                size,
                mime: self.mime,
                name: self.name,
                thumb: self.thumb,
            },
            file_name: self.file_name,
            blob_size: sealed.blob_size,
            path: self.path,
        })
    }
}

/// Where a download goes and what it must match.
#[derive(Clone, Debug)]
pub struct DownloadPlan {
    /// The relay's blob id.
    pub blob_id: String,
    /// Expected blob size.
    pub blob_size: u64,
    /// Expected blob SHA-256.
    pub blob_sha256: [u8; 32],
    /// The partial file (resume from its length).
    pub part: PathBuf,
    /// The final file.
    pub path: PathBuf,
}

impl DownloadPlan {
    /// Opens the partial file to append to: its length (where the download
    /// resumes) and the SHA-256 state over the bytes already there. A
    /// partial file longer than the blob is started over.
    pub fn open_part(&self) -> Result<(std::fs::File, u64, Sha256), StoreError> {
        let io = |e| StoreError::io("write the download", &self.part, e);
        let mut f = super::files::private_options()
            .read(true)
            .create(true)
            .truncate(false)
            .open(&self.part)
            .map_err(io)?;
        let mut have = f.metadata().map_err(io)?.len();
        if have > self.blob_size {
            have = 0;
        }
        f.set_len(have).map_err(io)?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut left = have;
        while left > 0 {
            let n = (left as usize).min(buf.len());
            f.read_exact(&mut buf[..n]).map_err(io)?;
            hash.update(&buf[..n]);
            left -= n as u64;
        }
        Ok((f, have, hash))
    }
}

/// Checks a file name and MIME type for an attachment.
fn check_meta(mime: &str, name: &str, thumb: &[u8]) -> Result<(), StoreError> {
    if !valid_mime(mime) {
        return Err(StoreError::InvalidInput(
            "a MIME type is `type/subtype`, printable ASCII, at most 128 bytes".into(),
        ));
    }
    if !valid_file_name(name) {
        return Err(StoreError::InvalidInput(
            "a file name is 1 to 255 bytes with no path separator or control character".into(),
        ));
    }
    if thumb.len() > occ_protocol::payload::MAX_THUMB_LEN {
        return Err(StoreError::InvalidInput(format!(
            "a thumbnail is at most {} bytes",
            occ_protocol::payload::MAX_THUMB_LEN
        )));
    }
    Ok(())
}

/// Bytes the attachments of a profile hold or have reserved on disk.
fn usage(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT coalesce(sum(blob_size), 0) FROM attachments WHERE state <> ?1",
        [STATE_REMOTE],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// Inserts the row of an attachment this device sent (file present).
pub(crate) fn insert_sent_in(
    conn: &Connection,
    message_id: &str,
    p: &PreparedAttachment,
) -> Result<(), StoreError> {
    insert_row(
        conn,
        message_id,
        &p.reference,
        &p.file_name,
        STATE_PRESENT,
        p.blob_size,
    )
}

/// Inserts the row of a received attachment (to be downloaded). A blob id
/// already known here (a sender naming one blob twice, or one of ours) is
/// ignored: the message stays, without that attachment, and nothing else is
/// disturbed.
pub(crate) fn insert_received_in(
    conn: &Connection,
    message_id: &str,
    r: &AttachmentRef,
) -> Result<(), StoreError> {
    let file_name = format!("{}.bin", random_hex::<16>()?);
    if conn
        .prepare_cached("SELECT 1 FROM attachments WHERE id = ?1")?
        .exists([&r.id])?
    {
        return Ok(());
    }
    insert_row(
        conn,
        message_id,
        r,
        &file_name,
        STATE_REMOTE,
        sealed_len(r.size),
    )
}

fn insert_row(
    conn: &Connection,
    message_id: &str,
    r: &AttachmentRef,
    file_name: &str,
    state: i64,
    blob_size: u64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO attachments (id, message_id, file_name, file_key, size, sha256, mime,
                                  state, blob_size, blob_sha256, name, thumb)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            r.id,
            message_id,
            file_name,
            &r.key[..],
            r.size as i64,
            &r.blob_sha256[..],
            r.mime,
            state,
            blob_size as i64,
            &r.blob_sha256[..],
            r.name,
            (!r.thumb.is_empty()).then_some(&r.thumb[..]),
        ],
    )?;
    Ok(())
}

impl Store {
    fn attachment_path(&self, file_name: &str) -> PathBuf {
        self.dir().join(ATTACHMENT_DIR).join(file_name)
    }

    /// The profile's attachment quota in bytes of encrypted files.
    pub fn attachment_quota(&self) -> Result<u64, StoreError> {
        Ok(self
            .setting("attachment_quota")?
            .map_or(DEFAULT_QUOTA, |v| v.max(0) as u64))
    }

    /// Sets the attachment quota (existing files stay; new ones must fit).
    pub fn set_attachment_quota(&mut self, bytes: u64) -> Result<(), StoreError> {
        let v = i64::try_from(bytes)
            .map_err(|_| StoreError::InvalidInput("the quota is too large".into()))?;
        self.set_setting("attachment_quota", v)
    }

    /// Bytes of encrypted attachment files held or reserved.
    pub fn attachment_usage(&self) -> Result<u64, StoreError> {
        usage(&self.conn)
    }

    fn check_quota(conn: &Connection, quota: u64, needed: u64) -> Result<(), StoreError> {
        let used = usage(conn)?;
        let available = quota.saturating_sub(used);
        if needed > available {
            return Err(StoreError::QuotaExceeded {
                needed,
                available,
                quota,
            });
        }
        Ok(())
    }

    /// Checks an attachment about to be sent (type, name, thumbnail, size,
    /// quota) and picks its id and file; [`AttachmentSlot::seal`] then
    /// encrypts it without the store (so no lock is held meanwhile).
    pub fn attachment_slot(
        &self,
        size: u64,
        mime: &str,
        name: &str,
        thumb: &[u8],
    ) -> Result<AttachmentSlot, StoreError> {
        check_meta(mime, name, thumb)?;
        if size > MAX_ATTACHMENT_LEN as u64 {
            return Err(StoreError::InvalidInput(format!(
                "the file is {size} bytes, more than the {MAX_ATTACHMENT_LEN}-byte limit"
            )));
        }
        Self::check_quota(&self.conn, self.attachment_quota()?, sealed_len(size))?;
        let file_name = format!("{}.bin", random_hex::<16>()?);
        Ok(AttachmentSlot {
            id: random_hex::<16>()?,
            path: self.attachment_path(&file_name),
            file_name,
            size,
            mime: mime.to_string(),
            name: name.to_string(),
            thumb: thumb.to_vec(),
        })
    }

    /// [`Store::attachment_slot`] and [`AttachmentSlot::seal`] in one.
    pub fn prepare_attachment(
        &self,
        input: &mut dyn Read,
        size: u64,
        mime: &str,
        name: &str,
        thumb: &[u8],
        progress: &mut dyn FnMut(u64),
    ) -> Result<PreparedAttachment, StoreError> {
        self.attachment_slot(size, mime, name, thumb)?
            .seal(input, progress)
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
        self.message(message_id)?;
        let prepared = self.prepare_attachment(
            &mut &data[..],
            data.len() as u64,
            mime,
            "attachment",
            &[],
            &mut |_| {},
        )?;
        let now = self.now_ms();
        let result = (|| -> Result<(), StoreError> {
            let tx = self.conn.transaction()?;
            insert_sent_in(&tx, message_id, &prepared)?;
            persist_high_water(&tx, now)?;
            tx.commit()?;
            Ok(())
        })();
        let id = prepared.reference.id.clone();
        if let Err(e) = result {
            prepared.discard();
            return Err(e);
        }
        Ok(id)
    }

    /// Attachments of a live message.
    pub fn attachments_of(&self, message_id: &str) -> Result<Vec<AttachmentInfo>, StoreError> {
        self.message(message_id)?;
        let mut stmt = self.conn.prepare(
            "SELECT id, message_id, size, mime, coalesce(blob_sha256, sha256), name, thumb, state
             FROM attachments WHERE message_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([message_id], |r| {
            let sha: Vec<u8> = r.get(4)?;
            Ok(AttachmentInfo {
                id: r.get(0)?,
                message_id: r.get(1)?,
                size: r.get::<_, i64>(2)?.max(0) as u64,
                mime: r.get(3)?,
                blob_sha256: sha.try_into().unwrap_or([0; 32]),
                name: r.get(5)?,
                thumb: r.get::<_, Option<Vec<u8>>>(6)?.unwrap_or_default(),
                downloaded: r.get::<_, i64>(7)? == STATE_PRESENT,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The attachment's metadata (its message must be live).
    pub fn attachment_info(&self, id: &str) -> Result<AttachmentInfo, StoreError> {
        let row = self.attachment_row(id)?;
        self.attachments_of(&row.message_id)?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| StoreError::NotFound("attachment".into()))
    }

    /// Starts (or resumes) the download of a received attachment: checks
    /// its message is live and reserves its bytes against the quota.
    /// Returns `None` when the file is already here.
    pub fn begin_download(&mut self, id: &str) -> Result<Option<DownloadPlan>, StoreError> {
        let row = self.attachment_row(id)?;
        self.message(&row.message_id)?;
        if row.state == STATE_PRESENT {
            return Ok(None);
        }
        if row.state == STATE_REMOTE {
            let quota = self.attachment_quota()?;
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            Self::check_quota(&tx, quota, row.blob_size)?;
            tx.execute(
                "UPDATE attachments SET state = ?2 WHERE id = ?1 AND state = ?3",
                params![id, STATE_DOWNLOADING, STATE_REMOTE],
            )?;
            tx.commit()?;
        }
        let path = self.attachment_path(&row.file_name);
        Ok(Some(DownloadPlan {
            blob_id: id.to_string(),
            blob_size: row.blob_size,
            blob_sha256: row.blob_sha256,
            part: path.with_extension("part"),
            path,
        }))
    }

    /// Accepts a downloaded blob whose digest the caller checked: the
    /// partial file becomes the attachment's file.
    pub fn finish_download(&mut self, id: &str, plan: &DownloadPlan) -> Result<(), StoreError> {
        std::fs::rename(&plan.part, &plan.path)
            .map_err(|e| StoreError::io("store the attachment", &plan.path, e))?;
        let n = self.conn.execute(
            "UPDATE attachments SET state = ?2 WHERE id = ?1",
            params![id, STATE_PRESENT],
        )?;
        if n == 0 {
            // Purged meanwhile: the key is gone, the file must go too.
            let _ = std::fs::remove_file(&plan.path);
            return Err(StoreError::Expired);
        }
        Ok(())
    }

    /// Gives a download up (the blob was refused): the partial file goes
    /// and the reservation is released.
    pub fn abandon_download(&mut self, id: &str, plan: &DownloadPlan) -> Result<(), StoreError> {
        let _ = std::fs::remove_file(&plan.part);
        self.conn.execute(
            "UPDATE attachments SET state = ?2 WHERE id = ?1 AND state = ?3",
            params![id, STATE_REMOTE, STATE_DOWNLOADING],
        )?;
        Ok(())
    }

    /// Opens a downloaded attachment of a live message for reading: what
    /// [`AttachmentSource::decrypt_to`] needs, so the decryption runs
    /// without the store.
    pub fn open_attachment(&self, id: &str) -> Result<AttachmentSource, StoreError> {
        let row = self.attachment_row(id)?;
        self.message(&row.message_id)?;
        if row.state != STATE_PRESENT {
            return Err(StoreError::NotFound(
                "the attachment is not downloaded yet".into(),
            ));
        }
        Ok(AttachmentSource {
            id: id.to_string(),
            path: self.attachment_path(&row.file_name),
            key: row.key,
            size: row.size,
        })
    }

    /// Decrypts an attachment of a live message onto `out` (see
    /// [`AttachmentSource::decrypt_to`]).
    pub fn read_attachment(
        &self,
        id: &str,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, StoreError> {
        self.open_attachment(id)?.decrypt_to(out, progress)
    }

    /// Decrypts an attachment of a live message, checking its SHA-256.
    pub fn attachment(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        self.read_attachment(id, &mut out, &mut |_| {})?;
        Ok(out)
    }

    /// The file path of an attachment (for tests and export; the file is
    /// ciphertext).
    pub fn attachment_file(&self, id: &str) -> Result<PathBuf, StoreError> {
        let row = self.attachment_row(id)?;
        Ok(self.attachment_path(&row.file_name))
    }

    fn attachment_row(&self, id: &str) -> Result<Row, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT message_id, file_name, file_key, state, blob_size, blob_sha256, size
                 FROM attachments WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        Zeroizing::new(r.get::<_, Vec<u8>>(2)?),
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, Option<Vec<u8>>>(5)?,
                        r.get::<_, i64>(6)?,
                    ))
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound("attachment".into()))?;
        let (message_id, file_name, key_vec, state, blob_size, blob_sha, size) = row;
        let malformed = || StoreError::Corrupt("attachment key record is malformed".into());
        let mut key = Zeroizing::new([0u8; 32]);
        if key_vec.len() != 32 {
            return Err(malformed());
        }
        key.copy_from_slice(&key_vec);
        Ok(Row {
            message_id,
            file_name,
            key,
            state,
            blob_size: blob_size.max(0) as u64,
            blob_sha256: blob_sha
                .map(<[u8; 32]>::try_from)
                .transpose()
                .map_err(|_| malformed())?
                .unwrap_or([0; 32]),
            size: size.max(0) as u64,
        })
    }
}

/// A downloaded attachment ready to decrypt (its key zeroized on drop).
pub struct AttachmentSource {
    id: String,
    path: PathBuf,
    key: Zeroizing<[u8; 32]>,
    size: u64,
}

impl std::fmt::Debug for AttachmentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentSource")
            .field("id", &self.id)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl AttachmentSource {
    /// Plaintext size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Decrypts onto `out` chunk by chunk (each authenticated), checking
    /// the size at the end. On an error, what was written is the caller's
    /// to discard.
    pub fn decrypt_to(
        &self,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, StoreError> {
        let f = std::fs::File::open(&self.path)
            .map_err(|e| StoreError::io("read the attachment", &self.path, e))?;
        let mut input = std::io::BufReader::with_capacity(SEALED_CHUNK, f);
        let size = open_stream(&self.key, &self.id, &mut input, out, progress)?;
        if size != self.size {
            return Err(StoreError::Corrupt(
                "attachment content does not match its size".into(),
            ));
        }
        Ok(size)
    }
}

/// One attachment row (the key zeroized on drop).
struct Row {
    message_id: String,
    file_name: String,
    key: Zeroizing<[u8; 32]>,
    state: i64,
    blob_size: u64,
    blob_sha256: [u8; 32],
    size: u64,
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
            2 * CHUNK_SIZE,
            3 * CHUNK_SIZE + 5,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let f = encrypt_file(&key, "a1", &data).unwrap();
            assert_eq!(f.len() as u64, sealed_len(len as u64));
            assert_eq!(decrypt_file(&key, "a1", &f).unwrap(), data);
            assert!(decrypt_file(&[8; 32], "a1", &f).is_err(), "wrong key");
            assert!(decrypt_file(&key, "a2", &f).is_err(), "wrong id");
            let mut t = f.clone();
            let last = t.len() - 1;
            t[last] ^= 1;
            assert!(decrypt_file(&key, "a1", &t).is_err(), "tampered");
            let mut longer = f.clone();
            longer.push(0);
            assert!(decrypt_file(&key, "a1", &longer).is_err(), "trailing byte");
            if len > CHUNK_SIZE {
                // Dropping the final chunk leaves a valid-looking prefix whose
                // last chunk lacks the `last` flag: refused.
                let cut = HEADER_LEN + SEALED_CHUNK;
                assert!(decrypt_file(&key, "a1", &f[..cut]).is_err(), "truncated");
                // Swapping two chunks breaks their indices.
                if len > 2 * CHUNK_SIZE {
                    let mut s = f.clone();
                    let (a, b) = (HEADER_LEN, HEADER_LEN + SEALED_CHUNK);
                    let first = s[a..b].to_vec();
                    let second = s[b..b + SEALED_CHUNK].to_vec();
                    s[a..b].copy_from_slice(&second);
                    s[b..b + SEALED_CHUNK].copy_from_slice(&first);
                    assert!(decrypt_file(&key, "a1", &s).is_err(), "reordered");
                }
            }
        }
        assert!(decrypt_file(&key, "a1", &[]).is_err());
        assert!(decrypt_file(&key, "a1", &[1, 0, 1, 0, 0]).is_err());
        let mut other_chunk = encrypt_file(&key, "a1", b"x").unwrap();
        other_chunk[2] ^= 1;
        assert!(
            decrypt_file(&key, "a1", &other_chunk).is_err(),
            "chunk size"
        );
    }

    #[test]
    fn streams_report_progress_and_count_what_they_wrote() {
        let key = [9u8; 32];
        let data: Vec<u8> = (0..(2 * CHUNK_SIZE + 7)).map(|i| (i % 13) as u8).collect();
        let mut seen = Vec::new();
        let mut blob = Vec::new();
        let s = seal_stream(&key, "b", &mut &data[..], &mut blob, &mut |n| seen.push(n)).unwrap();
        assert_eq!(
            seen,
            vec![CHUNK_SIZE as u64, 2 * CHUNK_SIZE as u64, data.len() as u64]
        );
        assert_eq!(s.size, data.len() as u64);
        assert_eq!(s.blob_size, blob.len() as u64);
        let mut back = Vec::new();
        let mut seen = Vec::new();
        let n = open_stream(&key, "b", &mut &blob[..], &mut back, &mut |n| seen.push(n)).unwrap();
        assert_eq!((n, back), (s.size, data));
        assert_eq!(seen.last(), Some(&s.size));
    }
}
