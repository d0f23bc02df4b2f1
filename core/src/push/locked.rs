//! Push notices for a locked profile: verified without its key, shown
//! without its content.
//!
//! A locked profile's database cannot be opened (its key needs the user's
//! credential), yet the phone must still tell the user that something
//! arrived — without saying from whom or in which thread, which only the
//! database knows and which the next user of a shared device must not see.
//! So every enrolled profile keeps a small public *verifier* next to its
//! database, `push-verifier.json`: this device's id, the relay's service key
//! (both public keys) and the trusted-time floor when it was last open.
//! [`verify_notice_locked`] checks a notice against it exactly as the
//! unlocked path does — size, form, the relay's signature, this device, not
//! expired — and answers a [`LockedNotice`] with no sender and no thread.
//!
//! What happens meanwhile is kept in `push-locked.jsonl` beside it (relay ids
//! of notices shown, refusals with their reason; no content, no sender): a
//! notice seen before is a replay and refused; at the next unlock the core
//! imports the file into the profile (shown notices become seen notices, so
//! they stay replays; refusals become `forged_notice` security events and
//! so audit entries) and deletes it. The file keeps the newest
//! [`MAX_LOCKED_RECORDS`] lines, so a flood of forged notices cannot fill the
//! disk; what it drops is counted in the next line.
//!
//! Deviation: these two files are not encrypted. They hold public keys, a
//! time, relay message ids and refusal reasons — what the relay already
//! knows — and no message content, sender, thread or user name.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::check_signed;
use crate::error::{Error, Result, io_error};
use crate::store::{SecurityEventKind, Store};
use crate::sync::Enrolment;

use crate::store::{LOCKED_LOG_FILE, VERIFIER_FILE};
/// Lines kept in [`LOCKED_LOG_FILE`].
pub const MAX_LOCKED_RECORDS: usize = 256;

/// A verified notice for a locked profile: what may be shown without
/// unlocking (no sender, no thread, no title).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedNotice {
    /// The relay's message id.
    pub relay_message_id: String,
    /// The class the sender declared (`text`, `alert`, `file`, ...).
    pub message_class: String,
    /// Whether it is an urgent alert (to break through Do Not Disturb
    /// where the policy allows; the text stays content-free).
    pub urgent: bool,
    /// Messages in the burst.
    pub count: u32,
    /// When the relay stops offering it, ms.
    pub expires_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct Verifier {
    format: u32,
    device_id: String,
    service_key: String,
    time_floor_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct Record {
    at_ms: i64,
    /// A shown notice's relay id (empty for a refusal).
    #[serde(default)]
    relay_id: String,
    /// Why it was refused (empty when shown).
    #[serde(default)]
    refused: String,
    /// Older records dropped to make room, before this one.
    #[serde(default)]
    dropped: u64,
}

fn now_wall() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Writes `bytes` to `path` atomically (a private temporary file renamed).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut f = crate::store::files::create_new_private(&tmp)
        .map_err(io_error("write the push verifier", &tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_error("write the push verifier", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error("write the push verifier", path))
}

/// Writes (or refreshes) the verifier of an enrolled profile in `dir` with
/// the trusted time `now`.
pub(crate) fn write_verifier(dir: &Path, enrolment: &Enrolment, now: i64) -> Result<()> {
    let v = Verifier {
        format: 1,
        device_id: enrolment.device_id.clone(),
        service_key: enrolment.service_key.clone(),
        time_floor_ms: now,
    };
    let bytes =
        serde_json::to_vec(&v).map_err(|e| Error::internal(format!("push verifier: {e}")))?;
    write_atomic(&dir.join(VERIFIER_FILE), &bytes)
}

fn read_verifier(dir: &Path) -> Result<Verifier> {
    let path = dir.join(VERIFIER_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotEnrolled),
        Err(e) => return Err(io_error("read the push verifier", &path)(e)),
    };
    if bytes.len() > 4096 {
        return Err(Error::corrupt("the push verifier is too large"));
    }
    let v: Verifier = serde_json::from_slice(&bytes)
        .map_err(|e| Error::corrupt(format!("the push verifier: {e}")))?;
    if v.format != 1 {
        return Err(Error::corrupt("the push verifier has an unknown format"));
    }
    Ok(v)
}

fn read_records(path: &Path) -> Vec<Record> {
    std::fs::read(path)
        .map(|bytes| {
            bytes
                .split(|b| *b == b'\n')
                .filter_map(|line| serde_json::from_slice::<Record>(line).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Appends `record`, keeping the newest [`MAX_LOCKED_RECORDS`].
fn append_record(path: &Path, mut records: Vec<Record>, record: Record) -> Result<()> {
    records.push(record);
    let over = records.len().saturating_sub(MAX_LOCKED_RECORDS);
    if over > 0 {
        let dropped: u64 = records[..over]
            .iter()
            .map(|r| r.dropped.saturating_add(1))
            .sum();
        records.drain(..over);
        if let Some(first) = records.first_mut() {
            first.dropped = first.dropped.saturating_add(dropped);
        }
    }
    let mut out = Vec::new();
    for r in &records {
        serde_json::to_writer(&mut out, r)
            .map_err(|e| Error::internal(format!("push record: {e}")))?;
        out.push(b'\n');
    }
    write_atomic(path, &out)
}

/// Verifies a push notice for the *locked* profile in `dir` (no key
/// needed; see the module documentation). A forged, misdirected, expired or
/// replayed notice is an error and is recorded for the next unlock.
pub fn verify_notice_locked(dir: &str, notice: &[u8]) -> Result<LockedNotice> {
    let dir = Path::new(dir);
    let v = read_verifier(dir)?;
    let service_key = crate::sync::org::verifying_key_hex(&v.service_key)?;
    let now = now_wall().max(v.time_floor_ms);
    let log = dir.join(LOCKED_LOG_FILE);
    let records = read_records(&log);
    let n = match check_signed(notice, &service_key, &v.device_id, now) {
        Ok(n) => n,
        Err((error, detail)) => {
            append_record(
                &log,
                records,
                Record {
                    at_ms: now,
                    relay_id: String::new(),
                    refused: format!("while locked: {detail}"),
                    dropped: 0,
                },
            )?;
            return Err(error);
        }
    };
    if records.iter().any(|r| r.relay_id == n.message_id) {
        let detail = format!(
            "while locked: replayed relay_id={} sender={}",
            n.message_id, n.sender_device
        );
        append_record(
            &log,
            records,
            Record {
                at_ms: now,
                relay_id: String::new(),
                refused: detail,
                dropped: 0,
            },
        )?;
        return Err(Error::untrusted("the notice was already used (a replay)"));
    }
    append_record(
        &log,
        records,
        Record {
            at_ms: now,
            relay_id: n.message_id.clone(),
            refused: String::new(),
            dropped: 0,
        },
    )?;
    Ok(LockedNotice {
        relay_message_id: n.message_id,
        message_class: n.class,
        urgent: n.urgent,
        count: n.count,
        expires_ms: n.expires_ms,
    })
}

/// [`verify_notice_locked`] off the caller's thread.
pub async fn verify_notice_locked_async(dir: String, notice: Vec<u8>) -> Result<LockedNotice> {
    crate::client::runtime::blocking(move || verify_notice_locked(&dir, &notice)).await
}

/// Which profile under `root` a notice is for (the one whose device it
/// names), without opening any: the push path of a device with several
/// profiles and one push token. `None` when no profile has that device.
pub fn profile_for_notice(root: &str, notice: &[u8]) -> Result<Option<String>> {
    if notice.len() > super::MAX_NOTICE_LEN {
        return Err(Error::invalid("the notice is too large"));
    }
    let signed: occ_protocol::api::SignedPushNotice =
        serde_json::from_slice(notice).map_err(|_| Error::invalid("the notice is malformed"))?;
    let device = signed.notice.recipient_device;
    let entries =
        std::fs::read_dir(root).map_err(io_error("list the profiles", Path::new(root)))?;
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.sort();
    for d in dirs {
        if let Ok(v) = read_verifier(&d)
            && v.device_id.eq_ignore_ascii_case(&device)
        {
            return Ok(d.file_name().and_then(|n| n.to_str()).map(str::to_string));
        }
    }
    Ok(None)
}

/// Takes what happened while the profile was locked into its store (see
/// the module documentation), then deletes the record. Called when the
/// profile is opened with its key.
pub(crate) fn import_locked_notices(store: &mut Store) -> Result<()> {
    let log = store.dir().join(LOCKED_LOG_FILE);
    let records = read_records(&log);
    if records.is_empty() {
        let _ = std::fs::remove_file(&log);
        return Ok(());
    }
    for r in &records {
        if r.dropped > 0 {
            store.record_security_event(
                SecurityEventKind::ForgedNotice,
                &format!(
                    "while locked: {} more notices not recorded (record full)",
                    r.dropped
                ),
            )?;
        }
        if r.relay_id.is_empty() {
            store.record_security_event(SecurityEventKind::ForgedNotice, &r.refused)?;
        } else {
            store.note_locked_notice(&r.relay_id, r.at_ms)?;
        }
    }
    std::fs::remove_file(&log).map_err(io_error("remove the locked-push record", &log))?;
    Ok(())
}
