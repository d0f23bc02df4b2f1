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
//! What happens meanwhile is kept in `push-locked.json` beside it: the relay
//! ids of notices shown, and refusals as reason codes with their time (no
//! content, no sender, nothing a forger chose). A notice seen before —
//! shown while locked, or seen while the profile was open (the verifier
//! carries the newest such ids from the last close) — is a replay and
//! refused. Shown ids and refusals are kept in separate lists of at most
//! [`MAX_LOCKED_RECORDS`] each, so a flood of forged notices can neither
//! fill the disk nor push a shown id out and make it replayable; dropped
//! refusals are counted. At the next unlock the core imports the record in
//! one transaction (shown notices become seen notices, so they stay
//! replays; refusals become `forged_notice` security events, so audit
//! entries) and deletes it; an import that fails is retried at the next.
//! One writer at a time across threads and processes (an OS file lock on
//! `push.guard`), so the app and an extension never lose each other's
//! records.
//!
//! Deviation: these files are not encrypted. They hold public keys, a
//! time, relay message ids and refusal codes — what the relay already
//! knows — and no message content, sender, thread or user name.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::check_signed;
use crate::error::{Error, Result, io_error};
use crate::store::Store;
use crate::sync::Enrolment;

use crate::store::{LOCKED_LOG_FILE, PUSH_GUARD_FILE as GUARD_FILE, VERIFIER_FILE};
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
    /// Relay ids of notices the open profile saw (the newest, unexpired).
    #[serde(default)]
    seen: Vec<String>,
}

/// What the locked path saw.
#[derive(Default, Serialize, Deserialize)]
struct Record {
    /// Relay ids of notices shown, with when.
    #[serde(default)]
    shown: Vec<(String, i64)>,
    /// Refusal codes, with when.
    #[serde(default)]
    refused: Vec<(String, i64)>,
    /// Refusals dropped to keep the list bounded.
    #[serde(default)]
    dropped: u64,
}

impl Record {
    fn add_shown(&mut self, id: String, at: i64) {
        self.shown.push((id, at));
        let over = self.shown.len().saturating_sub(MAX_LOCKED_RECORDS);
        self.shown.drain(..over);
    }

    fn add_refused(&mut self, code: &str, at: i64) {
        self.refused.push((code.to_string(), at));
        let over = self.refused.len().saturating_sub(MAX_LOCKED_RECORDS);
        self.refused.drain(..over);
        self.dropped = self.dropped.saturating_add(over as u64);
    }
}

/// Exclusive use of the push files of the profile in `dir`.
fn guard(dir: &Path) -> Result<std::fs::File> {
    let p = dir.join(GUARD_FILE);
    crate::store::files::lock_file(&p).map_err(io_error("lock the push guard", &p))
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
/// the trusted time `now` and the relay ids of notices it has `seen`.
pub(crate) fn write_verifier(
    dir: &Path,
    enrolment: &Enrolment,
    now: i64,
    seen: Vec<String>,
) -> Result<()> {
    let _one = guard(dir)?;
    let v = Verifier {
        format: 1,
        device_id: enrolment.device_id.clone(),
        service_key: enrolment.service_key.clone(),
        time_floor_ms: now,
        seen,
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
    if bytes.len() > 64 * 1024 {
        return Err(Error::corrupt("the push verifier is too large"));
    }
    let v: Verifier = serde_json::from_slice(&bytes)
        .map_err(|e| Error::corrupt(format!("the push verifier: {e}")))?;
    if v.format != 1 {
        return Err(Error::corrupt("the push verifier has an unknown format"));
    }
    Ok(v)
}

fn read_record(path: &Path) -> Record {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_record(path: &Path, record: &Record) -> Result<()> {
    let bytes =
        serde_json::to_vec(record).map_err(|e| Error::internal(format!("push record: {e}")))?;
    write_atomic(path, &bytes)
}

/// Verifies a push notice for the *locked* profile in `dir` (no key
/// needed; see the module documentation). A forged, misdirected, expired or
/// replayed notice is an error and is recorded for the next unlock.
pub fn verify_notice_locked(dir: &str, notice: &[u8]) -> Result<LockedNotice> {
    let dir = Path::new(dir);
    let v = read_verifier(dir)?;
    let service_key = crate::sync::org::verifying_key_hex(&v.service_key)?;
    let now = now_wall().max(v.time_floor_ms);
    let _one = guard(dir)?;
    let log = dir.join(LOCKED_LOG_FILE);
    let mut record = read_record(&log);
    let n = match check_signed(notice, &service_key, &v.device_id, now) {
        Ok(n) => n,
        Err(r) => {
            record.add_refused(r.code, now);
            write_record(&log, &record)?;
            return Err(r.error);
        }
    };
    let replay =
        v.seen.contains(&n.message_id) || record.shown.iter().any(|(id, _)| *id == n.message_id);
    if replay {
        record.add_refused("replayed", now);
        write_record(&log, &record)?;
        return Err(Error::untrusted("the notice was already used (a replay)"));
    }
    record.add_shown(n.message_id.clone(), now);
    write_record(&log, &record)?;
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
/// profile is opened with its key; a failure is logged and the record kept
/// for the next open (the open itself goes on).
pub(crate) fn import_locked_notices(store: &mut Store) {
    if let Err(e) = import(store) {
        tracing::warn!("importing the locked-push record failed (kept for the next open): {e}");
    }
}

fn import(store: &mut Store) -> Result<()> {
    let dir = store.dir().to_path_buf();
    let log = dir.join(LOCKED_LOG_FILE);
    if !log.exists() {
        return Ok(());
    }
    let _one = guard(&dir)?;
    let record = read_record(&log);
    let mut refused: Vec<(String, i64)> = record
        .refused
        .iter()
        .map(|(code, at)| (format!("while locked: {code}"), *at))
        .collect();
    if record.dropped > 0 {
        refused.push((
            format!(
                "while locked: {} more refused notices not recorded (record full)",
                record.dropped
            ),
            refused.last().map_or(0, |(_, at)| *at),
        ));
    }
    store.import_locked_push(&record.shown, &refused)?;
    std::fs::remove_file(&log).map_err(io_error("remove the locked-push record", &log))?;
    Ok(())
}
