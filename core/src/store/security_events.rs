//! Security events: every refused input and every failure of the relay's
//! identity, recorded with metadata only (kinds, ids, host names, pins) —
//! never message content, never key material. They feed the app's
//! `SecurityAlert` events and, in the same transaction, the hash-chained
//! audit trail ([`crate::audit`]).

use rusqlite::{Connection, params};

use super::{Store, StoreError};

/// What kind of security-relevant thing happened. Stored as its
/// [`SecurityEventKind::as_str`] name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecurityEventKind {
    /// The relay's validated chain carries none of the pinned keys.
    PinFailure,
    /// The relay's signed acknowledgement did not verify, or its answers
    /// contradict what it signed.
    RelayUnverified,
    /// An inbox envelope could not be authenticated or decrypted.
    Undecryptable,
    /// An envelope decrypted but its payload breaks the protocol's rules
    /// (identifiers, sizes, kinds).
    InvalidPayload,
    /// The relay does not know the sending device.
    UnknownSender,
    /// A payload names another user than the one its device belongs to.
    SenderMismatch,
    /// A sending device's identity differs from the one the relay lists.
    IdentityMismatch,
    /// A direct message for a conversation it does not belong to.
    Misrouted,
    /// A thread message, key or membership change from a non-member.
    NonMember,
    /// A thread sender key that cannot be accepted (e.g. it claims another
    /// member's key id).
    RefusedSenderKey,
    /// A queued message could not be delivered and was dropped.
    DeliveryFailed,
    /// The relay's directory contradicts itself (a device listed under a
    /// wrong id or user).
    DirectoryMismatch,
    /// A device without a valid organisation certificate (org mode).
    Uncertified,
    /// A contact's identity changed (a device key not seen before for a
    /// known user); held until accepted.
    KeyChanged,
    /// A signed server time far ahead of trusted time was held back until
    /// corroborated (or was implausible).
    TimeJump,
    /// A push notice that does not verify: another key's signature, another
    /// device's notice, a replay, or an expired one.
    ForgedNotice,
    /// An organisation document (policy, lock, wipe) that is not the
    /// organisation's, not for this device, or older than the one held.
    OrgDocRefused,
    /// The organisation's policy refused a download, a message or a send.
    PolicyDenied,
    /// A downloaded attachment did not match the digest in its message.
    AttachmentTampered,
}

impl SecurityEventKind {
    /// Every kind, for listings and tests.
    pub const ALL: [SecurityEventKind; 19] = [
        Self::PinFailure,
        Self::RelayUnverified,
        Self::Undecryptable,
        Self::InvalidPayload,
        Self::UnknownSender,
        Self::SenderMismatch,
        Self::IdentityMismatch,
        Self::Misrouted,
        Self::NonMember,
        Self::RefusedSenderKey,
        Self::DeliveryFailed,
        Self::DirectoryMismatch,
        Self::TimeJump,
        Self::KeyChanged,
        Self::Uncertified,
        Self::ForgedNotice,
        Self::OrgDocRefused,
        Self::PolicyDenied,
        Self::AttachmentTampered,
    ];

    /// The stable snake_case name (stored, logged, shown by the CLI).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PinFailure => "pin_failure",
            Self::RelayUnverified => "relay_unverified",
            Self::Undecryptable => "undecryptable",
            Self::InvalidPayload => "invalid_payload",
            Self::UnknownSender => "unknown_sender",
            Self::SenderMismatch => "sender_mismatch",
            Self::IdentityMismatch => "identity_mismatch",
            Self::Misrouted => "misrouted",
            Self::NonMember => "non_member",
            Self::RefusedSenderKey => "refused_sender_key",
            Self::DeliveryFailed => "delivery_failed",
            Self::DirectoryMismatch => "directory_mismatch",
            Self::TimeJump => "time_jump",
            Self::KeyChanged => "key_changed",
            Self::Uncertified => "uncertified",
            Self::ForgedNotice => "forged_notice",
            Self::OrgDocRefused => "org_doc_refused",
            Self::PolicyDenied => "policy_denied",
            Self::AttachmentTampered => "attachment_tampered",
        }
    }

    /// The kind of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for SecurityEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recorded security event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityEvent {
    /// When (trusted time), ms.
    pub at_ms: i64,
    /// What happened.
    pub kind: SecurityEventKind,
    /// Metadata only.
    pub detail: String,
}

/// Appends a security event inside the caller's transaction, and the same
/// as an entry of the audit trail (which outlives the metadata retention).
pub(crate) fn record_in(
    conn: &Connection,
    now: i64,
    kind: SecurityEventKind,
    detail: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO security_events (at_ms, kind, detail) VALUES (?1, ?2, ?3)",
        params![now, kind.as_str(), detail],
    )?;
    super::audit::append_in(
        conn,
        now,
        &super::audit::NewEntry {
            kind: kind.as_str(),
            thread_id: None,
            message_id: None,
            subject: "",
            detail,
        },
    )?;
    Ok(())
}

impl Store {
    /// Security events recorded so far, oldest first.
    pub fn security_events(&self) -> Result<Vec<SecurityEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT at_ms, kind, detail FROM security_events ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (at_ms, kind, detail) = row?;
            let kind = SecurityEventKind::parse(&kind).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown security event kind {kind:?}"))
            })?;
            out.push(SecurityEvent {
                at_ms,
                kind,
                detail,
            });
        }
        Ok(out)
    }

    /// Records a security event now.
    pub fn record_security_event(
        &mut self,
        kind: SecurityEventKind,
        detail: &str,
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        let tx = self.conn.transaction()?;
        record_in(&tx, now, kind, detail)?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SecurityEventKind;

    #[test]
    fn names_round_trip_and_are_distinct() {
        let mut names: Vec<&str> = SecurityEventKind::ALL.iter().map(|k| k.as_str()).collect();
        for k in SecurityEventKind::ALL {
            assert_eq!(SecurityEventKind::parse(k.as_str()), Some(k));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SecurityEventKind::ALL.len());
        assert_eq!(SecurityEventKind::parse("nope"), None);
    }
}
