//! The push path: from a push notice to a download prompt, without an open
//! [`Client`](crate::Client) and without the network.
//!
//! [`verify_notice`] is what an iOS Notification Service Extension (or an
//! Android push service) calls with the notice bytes the push carried. It
//! opens the profile's database (one SQLCipher connection, a small page
//! cache, no runtime, no threads), checks the notice and returns a
//! [`DownloadPrompt`]:
//!
//! 1. the relay's service key learned at enrolment signed it (a notice
//!    signed by anyone else, another relay included, is forged);
//! 2. it is for this device, not expired at trusted time, and never seen
//!    before (a replay);
//! 3. the sender is looked up in the contacts this device already holds (a
//!    device not yet known is shown unverified, a changed identity is
//!    flagged), and the thread in the local threads;
//! 4. the organisation policy decides: deny (class not allowed on this
//!    device, attachment too large), confirm (presence required, unknown or
//!    changed sender) or allow.
//!
//! A notice that fails 1–2 gives an error, no prompt, and a `forged_notice`
//! security event (so an audit entry); every prompt is an audit entry
//! (`prompt_shown`) and a policy denial a `policy_denied` one. The user's
//! answer then goes to [`Client::download`](crate::Client::download) or
//! [`Client::decline`](crate::Client::decline) — in the extension's process
//! on a client opened with [`Client::open_light`](crate::Client::open_light).
//!
//! # Several processes on one profile
//!
//! The app and its extension are separate processes that may hold the same
//! profile at once. The rule: every write is one short SQLite transaction in
//! WAL mode with a 5 s busy timeout, so writers take turns and readers never
//! block; nothing about the profile's state is trusted from memory across
//! transactions — the inbox reloads the account (one-time prekeys) inside
//! the transaction that may consume one, sessions and thread keys are
//! always loaded from the store; and a message stored by both processes is
//! stored once (the second is a duplicate). The extension writes only the
//! notice, its audit entries and, on download, the message and the crypto
//! state it advanced; it opens light (no sweep of orphan attachment files,
//! which the app may be writing). Only the app sweeps.

mod locked;

use std::path::Path;
use std::sync::Arc;

pub use locked::{
    LockedNotice, MAX_LOCKED_RECORDS, profile_for_notice, verify_notice_locked,
    verify_notice_locked_async,
};
pub(crate) use locked::{import_locked_notices, write_verifier};

use ed25519_dalek::Signature;
use occ_protocol::api::{SignedPushNotice, parse_device_id, push_notice_message};

use crate::audit::AuditKind;
use crate::error::{Error, Result};
use crate::retention::{Clock, SystemClock};
use crate::store::audit::{NewEntry, append_in};
use crate::store::notices::{self, NoticeState};
use crate::store::{DbKey, SecurityEventKind, Store, config, contacts, persist_high_water};

/// Largest notice accepted (a real one is a few hundred bytes).
pub const MAX_NOTICE_LEN: usize = 8 * 1024;

/// What the policy says about a download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Download when the user says yes.
    Allow,
    /// Ask the user to confirm (and unlock), saying why.
    Confirm {
        /// Why.
        reason: String,
    },
    /// Not downloadable on this device.
    Deny {
        /// Why.
        reason: String,
    },
}

/// A verified notice, ready to show: "Do you want to download this OCC
/// message?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadPrompt {
    /// The relay's message id (give it to `download` or `decline`).
    pub relay_message_id: String,
    /// The thread, if this device knows it.
    pub thread_id: Option<String>,
    /// The thread's title, if known.
    pub thread_title: Option<String>,
    /// The sending user, if this device knows the sending device.
    pub sender_user: Option<String>,
    /// The sending device (hex).
    pub sender_device: String,
    /// Whether the sender's identity is one this device trusts.
    pub sender_verified: bool,
    /// The message class (`text`, `alert`, `file`, `receipt`, ...), as the
    /// sender declared it to the relay (the policy also checks the class
    /// carried end to end when the message is stored).
    pub message_class: String,
    /// Envelope size, bytes.
    pub size: u64,
    /// When the relay stops offering it, ms.
    pub expires_ms: i64,
    /// Whether it is an urgent alert.
    pub urgent: bool,
    /// Messages for this device in the burst the notice stands for.
    pub count: u32,
    /// What the policy says.
    pub decision: Decision,
    /// Whether the organisation lets notifications preview message text
    /// once downloaded (never on the lock screen).
    pub previews: bool,
}

/// Verifies a push notice for the profile in `dir` (opened with `key`)
/// and builds its prompt. See the module documentation.
pub fn verify_notice(dir: &str, key: Vec<u8>, notice: Vec<u8>) -> Result<DownloadPrompt> {
    verify_notice_with_clock(dir, key, notice, Arc::new(SystemClock::new()))
}

/// [`verify_notice`] off the caller's thread (on the core's blocking pool).
pub async fn verify_notice_async(
    dir: String,
    key: Vec<u8>,
    notice: Vec<u8>,
) -> Result<DownloadPrompt> {
    crate::client::runtime::blocking(move || verify_notice(&dir, key, notice)).await
}

/// As [`verify_notice`] with an injected clock (tests).
pub fn verify_notice_with_clock(
    dir: &str,
    key: Vec<u8>,
    notice: Vec<u8>,
    clock: Arc<dyn Clock>,
) -> Result<DownloadPrompt> {
    let key = DbKey::from_slice(&zeroize::Zeroizing::new(key))?;
    let mut store = Store::open_light(Path::new(dir), &key, clock)?;
    prompt_for(&mut store, &notice)
}

/// Why a notice is refused: an error for the caller and a recorded event.
fn refuse(store: &mut Store, error: Error, detail: &str) -> Error {
    if let Err(e) = store.record_security_event(SecurityEventKind::ForgedNotice, detail) {
        tracing::warn!("recording a forged notice failed: {e}");
    }
    error
}

pub(crate) fn prompt_for(store: &mut Store, bytes: &[u8]) -> Result<DownloadPrompt> {
    let enrolment = crate::sync::stored_enrolment(&store.conn)?.ok_or(Error::NotEnrolled)?;
    if config::locked(&store.conn)? {
        return Err(Error::denied("the organisation locked this profile"));
    }
    let service_key = crate::sync::org::service_key(&enrolment)?;
    let now = store.now_ms();
    let n = match check_signed(bytes, &service_key, &enrolment.device_id, now) {
        Ok(n) => n,
        Err(r) => {
            let detail = r.detail();
            return Err(refuse(store, r.error, &detail));
        }
    };
    let subject = format!("relay_id={} sender={}", n.message_id, n.sender_device);
    let sender = parse_device_id(&n.sender_device);
    let (sender_user, trust) = match sender {
        Some(d) => (
            contacts::user_of(&store.conn, &d)?,
            contacts::trust_of(&store.conn, &d)?,
        ),
        None => (None, None),
    };
    // A thread message names its thread; a direct one is the conversation
    // with the sender. Either is shown only if this device already has it.
    let thread = n.thread.clone().or_else(|| {
        sender_user
            .as_deref()
            .map(|u| crate::sync::direct_thread_id(&enrolment.user, u))
    });
    let thread_title = match &thread {
        Some(t) => crate::store::threads::title_of(&store.conn, t)?,
        None => None,
    };
    let thread_id = thread_title.as_ref().and(thread);
    let policy = crate::sync::org::held_policy(&store.conn, &enrolment)?;
    let decision = decide(
        policy.as_ref(),
        &n,
        &enrolment.device_id,
        sender_user.is_some(),
        trust,
    );
    let state = if matches!(decision, Decision::Deny { .. }) {
        NoticeState::Denied
    } else {
        NoticeState::Prompted
    };
    let tx = store.conn.transaction()?;
    if !notices::add_in(
        &tx,
        now,
        &n.message_id,
        &n.sender_device,
        &n.class,
        n.expires_ms,
        state,
    )? {
        drop(tx);
        return Err(refuse(
            store,
            Error::untrusted("the notice was already used (a replay)"),
            &format!("replayed {subject}"),
        ));
    }
    let decided = match &decision {
        Decision::Allow => "allow".to_string(),
        Decision::Confirm { reason } => format!("confirm: {reason}"),
        Decision::Deny { reason } => format!("deny: {reason}"),
    };
    if let Decision::Deny { reason } = &decision {
        crate::store::security_events::record_in(
            &tx,
            now,
            SecurityEventKind::PolicyDenied,
            &format!("{subject} {reason}"),
        )?;
    }
    let mut entry = NewEntry::of(AuditKind::PromptShown)
        .subject(&n.message_id)
        .detail(&decided);
    if let Some(t) = &thread_id {
        entry = entry.thread(t);
    }
    append_in(&tx, now, &entry)?;
    persist_high_water(&tx, now)?;
    tx.commit()?;
    Ok(DownloadPrompt {
        relay_message_id: n.message_id,
        thread_id,
        thread_title,
        sender_user,
        sender_device: n.sender_device,
        sender_verified: matches!(
            trust,
            Some(contacts::Trust::Trusted | contacts::Trust::Verified)
        ),
        message_class: n.class,
        size: n.size,
        expires_ms: n.expires_ms,
        urgent: n.urgent,
        count: n.count,
        decision,
        previews: policy.as_ref().is_some_and(|p| p.notification_previews),
    })
}

/// Why a notice was refused by [`check_signed`].
pub(crate) struct Refused {
    /// The error for the caller.
    pub(crate) error: Error,
    /// A short code for the record (no attacker-chosen text).
    pub(crate) code: &'static str,
    /// The notice's relay id and sender, bounded and cleaned, when it parsed
    /// (for the unlocked path's security event).
    pub(crate) subject: String,
}

impl Refused {
    fn new(error: Error, code: &'static str, subject: String) -> Self {
        Self {
            error,
            code,
            subject,
        }
    }

    /// The detail recorded by the unlocked path.
    pub(crate) fn detail(&self) -> String {
        if self.subject.is_empty() {
            self.code.to_string()
        } else {
            format!("{} {}", self.code, self.subject)
        }
    }
}

/// At most 64 characters of `s`, and only if they are ASCII letters and
/// digits: anything else a forger chose is not recorded.
fn clean(s: &str) -> &str {
    let head = s.get(..s.len().min(64)).unwrap_or("");
    if !head.is_empty() && head.bytes().all(|b| b.is_ascii_alphanumeric()) {
        head
    } else {
        "?"
    }
}

/// The checks every notice passes before anything else is looked at: its
/// size, its form, the relay's signature, this device, not expired at
/// `now`.
pub(crate) fn check_signed(
    bytes: &[u8],
    service_key: &ed25519_dalek::VerifyingKey,
    device_id: &str,
    now: i64,
) -> std::result::Result<occ_protocol::api::PushNotice, Refused> {
    if bytes.len() > MAX_NOTICE_LEN {
        return Err(Refused::new(
            Error::invalid("the notice is too large"),
            "oversized notice",
            String::new(),
        ));
    }
    let Ok(signed) = serde_json::from_slice::<SignedPushNotice>(bytes) else {
        return Err(Refused::new(
            Error::invalid("the notice is malformed"),
            "malformed notice",
            String::new(),
        ));
    };
    let n = signed.notice;
    let signature = <[u8; 64]>::try_from(signed.signature.as_slice())
        .map(|s| Signature::from_bytes(&s))
        .ok();
    let valid = signature.is_some_and(|s| {
        service_key
            .verify_strict(&push_notice_message(&n), &s)
            .is_ok()
    });
    let subject = format!(
        "relay_id={} sender={}",
        clean(&n.message_id),
        clean(&n.sender_device)
    );
    if !valid {
        return Err(Refused::new(
            Error::untrusted("the notice is not signed by this profile's relay"),
            "bad signature",
            subject,
        ));
    }
    if !n.recipient_device.eq_ignore_ascii_case(device_id) {
        return Err(Refused::new(
            Error::untrusted("the notice is for another device"),
            "for another device",
            subject,
        ));
    }
    if n.expires_ms <= now {
        return Err(Refused::new(Error::Expired, "expired", subject));
    }
    Ok(n)
}

fn decide(
    policy: Option<&occ_protocol::org::OrgPolicy>,
    n: &occ_protocol::api::PushNotice,
    device: &str,
    sender_known: bool,
    trust: Option<contacts::Trust>,
) -> Decision {
    if let Err(reason) = crate::policy::download_allowed(policy, &n.class, device) {
        return Decision::Deny { reason };
    }
    if n.class == "file"
        && let Some(max) = policy.and_then(|p| p.max_attachment_bytes)
        && n.size > max
    {
        return Decision::Deny {
            reason: format!("attachments above {max} bytes are not allowed"),
        };
    }
    if policy.is_some_and(|p| p.require_presence) {
        return Decision::Confirm {
            reason: "the organisation asks you to unlock before downloading".into(),
        };
    }
    if trust == Some(contacts::Trust::Pending) {
        return Decision::Confirm {
            reason: "the sender's identity changed; compare safety numbers".into(),
        };
    }
    if !sender_known {
        return Decision::Confirm {
            reason: "the sender is not yet known on this device".into(),
        };
    }
    Decision::Allow
}

#[cfg(test)]
mod tests {
    use super::*;
    use occ_protocol::api::PushNotice;
    use occ_protocol::org::OrgPolicy;

    fn notice(class: &str, size: u64) -> PushNotice {
        PushNotice {
            message_id: "ab".repeat(16),
            recipient_device: "cd".repeat(32),
            sender_device: "ef".repeat(32),
            thread: None,
            size,
            expires_ms: 10,
            class: class.into(),
            sent_ms: 1,
            urgent: false,
            count: 1,
        }
    }

    const TRUSTED: Option<contacts::Trust> = Some(contacts::Trust::Trusted);

    #[test]
    fn the_decision_follows_the_policy_then_the_sender() {
        let dev = "cd".repeat(32);
        assert_eq!(
            decide(None, &notice("text", 100), &dev, true, TRUSTED),
            Decision::Allow
        );
        let cap = OrgPolicy {
            max_attachment_bytes: Some(1000),
            ..OrgPolicy::default()
        };
        let deny = |d: Decision| matches!(d, Decision::Deny { .. });
        assert!(deny(decide(
            Some(&cap),
            &notice("file", 1001),
            &dev,
            true,
            TRUSTED
        )));
        assert_eq!(
            decide(Some(&cap), &notice("file", 1000), &dev, true, TRUSTED),
            Decision::Allow
        );
        // The size cap is for attachments, not for texts.
        assert_eq!(
            decide(Some(&cap), &notice("text", 5000), &dev, true, TRUSTED),
            Decision::Allow
        );
        let presence = OrgPolicy {
            require_presence: true,
            ..OrgPolicy::default()
        };
        let confirm = |d: Decision| matches!(d, Decision::Confirm { .. });
        assert!(confirm(decide(
            Some(&presence),
            &notice("text", 1),
            &dev,
            true,
            TRUSTED
        )));
        assert!(confirm(decide(
            None,
            &notice("text", 1),
            &dev,
            true,
            Some(contacts::Trust::Pending)
        )));
        assert!(confirm(decide(None, &notice("text", 1), &dev, false, None)));
    }
}
