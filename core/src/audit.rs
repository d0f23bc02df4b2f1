//! The audit trail: an append-only, hash-chained record of everything
//! security-relevant that happened on this profile — received, prompt
//! shown, downloaded, declined, opened, acknowledged, receipts, escalations,
//! expiry and purge, pin failures and every other refused input, forged
//! notices, policy decisions, lock and wipe. Entries hold ids, kinds, times
//! and short metadata; never message content or key material.
//!
//! Entry *n* stores `hash_n = SHA-256("occ/v1/audit" ‖ n ‖ at_ms ‖ kind ‖
//! thread ‖ message ‖ subject ‖ detail ‖ hash_{n-1})` (fields length-
//! prefixed, `hash_0` = 32 zero bytes). `verify_chain` walks the entries
//! and names the first one that is edited (its hash), missing (a gap in the
//! sequence) or moved (its hash binds its sequence number).
//!
//! A hash chain alone does not stop someone holding the database key from
//! rewriting the whole tail consistently, or cutting it off. So the chain
//! head is uploaded to the relay, which countersigns (device, sequence,
//! hash, relay time) with its service key and refuses a later upload that
//! goes backwards. A countersigned head the log no longer reaches, or
//! reaches with another hash, is a truncated or rewritten trail.
//!
//! The trail is exempt from the metadata retention period (it is the
//! record); it grows by a few hundred bytes per entry. Its entries are
//! appended inside the transaction of the change they record, so a change
//! and its entry are durable together or not at all.

use occ_protocol::codec::Writer;
use sha2::{Digest, Sha256};

/// What an entry records. Stored as [`AuditKind::as_str`]. Every security
/// event (`crate::store::SecurityEventKind`: pin failures, forged notices,
/// policy denials, refused organisation documents, refused inbox items) is also an entry,
/// under its own kind name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditKind {
    /// An incoming message was stored.
    Received,
    /// A message was accepted for sending.
    Sent,
    /// A push notice verified and a download prompt was built.
    PromptShown,
    /// A message was downloaded on the push path.
    Downloaded,
    /// The user declined a download.
    Declined,
    /// A message was opened for the first time.
    Opened,
    /// The user acknowledged an urgent alert.
    Acknowledged,
    /// A recipient's receipt for a message this user sent.
    Receipt,
    /// Nobody (or not everybody) acknowledged an alert in time.
    Escalated,
    /// Messages expired (TTL, read timer or keep period) and were purged.
    Expired,
    /// A new organisation policy was applied.
    PolicyUpdated,
    /// Downloads reached the policy's volume alert.
    VolumeAlert,
    /// The organisation locked the profile.
    Lock,
    /// The organisation lifted the lock.
    Unlock,
    /// The organisation wiped the profile (the last entry it makes).
    Wipe,
    /// The trail was exported.
    Exported,
}

impl AuditKind {
    /// Every kind.
    pub const ALL: [AuditKind; 16] = [
        Self::Received,
        Self::Sent,
        Self::PromptShown,
        Self::Downloaded,
        Self::Declined,
        Self::Opened,
        Self::Acknowledged,
        Self::Receipt,
        Self::Escalated,
        Self::Expired,
        Self::PolicyUpdated,
        Self::VolumeAlert,
        Self::Lock,
        Self::Unlock,
        Self::Wipe,
        Self::Exported,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Sent => "sent",
            Self::PromptShown => "prompt_shown",
            Self::Downloaded => "downloaded",
            Self::Declined => "declined",
            Self::Opened => "opened",
            Self::Acknowledged => "acknowledged",
            Self::Receipt => "receipt",
            Self::Escalated => "escalated",
            Self::Expired => "expired",
            Self::PolicyUpdated => "policy_updated",
            Self::VolumeAlert => "volume_alert",
            Self::Lock => "lock",
            Self::Unlock => "unlock",
            Self::Wipe => "wipe",
            Self::Exported => "exported",
        }
    }
}

/// One entry of the trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position, from 1, without gaps.
    pub seq: u64,
    /// Trusted time, ms.
    pub at_ms: i64,
    /// What happened ([`AuditKind::as_str`] or a security event's name).
    pub kind: String,
    /// The thread it concerns, if any.
    pub thread_id: Option<String>,
    /// The message it concerns, if any.
    pub message_id: Option<String>,
    /// Other subject ids (a user, a device, a relay message id).
    pub subject: String,
    /// Metadata (never content).
    pub detail: String,
    /// Its hash (hex).
    pub hash: String,
}

/// The fields an entry's hash covers, besides the previous hash.
pub(crate) struct EntryFields<'a> {
    pub(crate) seq: u64,
    pub(crate) at_ms: i64,
    pub(crate) kind: &'a str,
    pub(crate) thread_id: Option<&'a str>,
    pub(crate) message_id: Option<&'a str>,
    pub(crate) subject: &'a str,
    pub(crate) detail: &'a str,
}

/// The hash of an entry chained to `prev`.
pub(crate) fn entry_hash(f: &EntryFields<'_>, prev: &[u8; 32]) -> [u8; 32] {
    let mut w = Writer::with_capacity(128);
    w.raw(b"occ/v1/audit")
        .u64(f.seq)
        .u64(f.at_ms as u64)
        .var_bytes(f.kind.as_bytes())
        .option(f.thread_id.as_ref(), |w, t| {
            w.var_bytes(t.as_bytes());
        })
        .option(f.message_id.as_ref(), |w, m| {
            w.var_bytes(m.as_bytes());
        })
        .var_bytes(f.subject.as_bytes())
        .var_bytes(f.detail.as_bytes())
        .raw(prev);
    Sha256::digest(w.as_slice()).into()
}

/// Why a trail does not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditBreak {
    /// Entry `seq` was changed (or its place taken by another).
    Altered {
        /// The first broken entry.
        seq: u64,
    },
    /// Entry `seq` is missing (deleted).
    Missing {
        /// The first missing entry.
        seq: u64,
    },
    /// The trail ends before entry `seq`, which the relay countersigned: its
    /// tail was cut off.
    Truncated {
        /// The countersigned entry the trail no longer reaches.
        seq: u64,
    },
    /// Entry `seq` differs from what the relay countersigned: the trail up
    /// to it was rewritten.
    Rewritten {
        /// The countersigned entry.
        seq: u64,
    },
}

impl AuditBreak {
    /// The sequence number it names.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Altered { seq }
            | Self::Missing { seq }
            | Self::Truncated { seq }
            | Self::Rewritten { seq } => *seq,
        }
    }

    /// A stable name (`altered`, `missing`, `truncated`, `rewritten`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Altered { .. } => "altered",
            Self::Missing { .. } => "missing",
            Self::Truncated { .. } => "truncated",
            Self::Rewritten { .. } => "rewritten",
        }
    }
}

impl std::fmt::Display for AuditBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Altered { seq } => write!(f, "entry {seq} was altered or moved"),
            Self::Missing { seq } => write!(f, "entry {seq} is missing"),
            Self::Truncated { seq } => write!(
                f,
                "the trail ends before entry {seq}, which the relay countersigned: it was cut"
            ),
            Self::Rewritten { seq } => write!(
                f,
                "entry {seq} differs from the one the relay countersigned: the trail was rewritten"
            ),
        }
    }
}

/// A stored entry as the verifier sees it.
pub(crate) struct StoredEntry {
    pub(crate) seq: u64,
    pub(crate) at_ms: i64,
    pub(crate) kind: String,
    pub(crate) thread_id: Option<String>,
    pub(crate) message_id: Option<String>,
    pub(crate) subject: String,
    pub(crate) detail: String,
    pub(crate) prev: Vec<u8>,
    pub(crate) hash: Vec<u8>,
}

/// Walks the chain (entries in stored order) and checks it against the
/// countersigned heads `(seq, hash)`. Returns the number of entries and the
/// last hash, or the first break.
pub(crate) fn verify_chain(
    entries: impl Iterator<Item = StoredEntry>,
    heads: &[(u64, Vec<u8>)],
) -> Result<(u64, [u8; 32]), AuditBreak> {
    let mut prev = [0u8; 32];
    let mut expected = 1u64;
    let mut heads: Vec<&(u64, Vec<u8>)> = heads.iter().collect();
    heads.sort_by_key(|h| h.0);
    let mut next_head = heads.iter().peekable();
    for e in entries {
        if e.seq > expected {
            return Err(AuditBreak::Missing { seq: expected });
        }
        let computed = entry_hash(
            &EntryFields {
                seq: expected,
                at_ms: e.at_ms,
                kind: &e.kind,
                thread_id: e.thread_id.as_deref(),
                message_id: e.message_id.as_deref(),
                subject: &e.subject,
                detail: &e.detail,
            },
            &prev,
        );
        if e.seq != expected || e.prev != prev || e.hash != computed {
            return Err(AuditBreak::Altered { seq: expected });
        }
        while let Some(h) = next_head.peek() {
            if h.0 > expected {
                break;
            }
            if h.0 == expected && h.1 != computed {
                return Err(AuditBreak::Rewritten { seq: expected });
            }
            next_head.next();
        }
        prev = computed;
        expected += 1;
    }
    if let Some(h) = next_head.next() {
        return Err(AuditBreak::Truncated { seq: h.0 });
    }
    Ok((expected - 1, prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<StoredEntry> {
        let mut prev = [0u8; 32];
        let mut out = Vec::new();
        for seq in 1..=n {
            let detail = format!("d{seq}");
            let f = EntryFields {
                seq,
                at_ms: seq as i64 * 10,
                kind: "received",
                thread_id: Some("t"),
                message_id: None,
                subject: "alice",
                detail: &detail,
            };
            let hash = entry_hash(&f, &prev);
            out.push(StoredEntry {
                seq,
                at_ms: f.at_ms,
                kind: f.kind.into(),
                thread_id: Some("t".into()),
                message_id: None,
                subject: "alice".into(),
                detail,
                prev: prev.to_vec(),
                hash: hash.to_vec(),
            });
            prev = hash;
        }
        out
    }

    fn verify(v: Vec<StoredEntry>, heads: &[(u64, Vec<u8>)]) -> Result<u64, AuditBreak> {
        verify_chain(v.into_iter(), heads).map(|(n, _)| n)
    }

    #[test]
    fn kind_names_are_distinct_from_each_other_and_from_security_events() {
        let mut names: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        names.extend(
            crate::store::SecurityEventKind::ALL
                .iter()
                .map(|k| k.as_str()),
        );
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn a_break_names_its_kind_and_sequence() {
        let all = [
            (AuditBreak::Altered { seq: 3 }, "altered"),
            (AuditBreak::Missing { seq: 4 }, "missing"),
            (AuditBreak::Truncated { seq: 5 }, "truncated"),
            (AuditBreak::Rewritten { seq: 6 }, "rewritten"),
        ];
        for (i, (b, name)) in all.iter().enumerate() {
            assert_eq!(b.seq(), i as u64 + 3);
            assert_eq!(b.as_str(), *name);
            assert!(b.to_string().contains(&format!("entry {}", b.seq())), "{b}");
        }
    }

    #[test]
    fn an_intact_chain_verifies_against_its_heads() {
        let c = chain(5);
        let head = (3, c[2].hash.clone());
        assert_eq!(verify(c, &[head]), Ok(5));
        assert_eq!(verify(Vec::new(), &[]), Ok(0));
    }

    #[test]
    fn each_field_is_covered() {
        type Edit = Box<dyn Fn(&mut StoredEntry)>;
        let cases: Vec<Edit> = vec![
            Box::new(|e| e.at_ms += 1),
            Box::new(|e| e.kind = "opened".into()),
            Box::new(|e| e.thread_id = None),
            Box::new(|e| e.message_id = Some("m".into())),
            Box::new(|e| e.subject = "bob".into()),
            Box::new(|e| e.detail.push('x')),
            Box::new(|e| e.hash[0] ^= 1),
            Box::new(|e| e.prev[0] ^= 1),
        ];
        for edit in cases {
            let mut c = chain(4);
            edit(&mut c[2]);
            assert_eq!(verify(c, &[]), Err(AuditBreak::Altered { seq: 3 }));
        }
    }

    #[test]
    fn a_deleted_or_moved_entry_is_named() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(c, &[]), Err(AuditBreak::Missing { seq: 2 }));
        let mut c = chain(5);
        c.swap(1, 3);
        assert_eq!(verify(c, &[]), Err(AuditBreak::Missing { seq: 2 }));
        // Renumbered so no gap shows: the hash binds the position.
        let mut c = chain(5);
        c.swap(1, 2);
        c[1].seq = 2;
        c[2].seq = 3;
        assert_eq!(verify(c, &[]), Err(AuditBreak::Altered { seq: 2 }));
    }

    #[test]
    fn truncation_and_rewriting_show_against_a_countersigned_head() {
        let mut c = chain(5);
        let head = (5, c[4].hash.clone());
        c.truncate(3);
        assert_eq!(
            verify(c, std::slice::from_ref(&head)),
            Err(AuditBreak::Truncated { seq: 5 })
        );
        // A consistent rewrite of the whole chain (by someone with the
        // database key) verifies on its own, but not against the head.
        let mut other = chain(5);
        other[0].detail = "forged".into();
        let mut prev = [0u8; 32];
        for e in other.iter_mut() {
            let h = entry_hash(
                &EntryFields {
                    seq: e.seq,
                    at_ms: e.at_ms,
                    kind: &e.kind,
                    thread_id: e.thread_id.as_deref(),
                    message_id: e.message_id.as_deref(),
                    subject: &e.subject,
                    detail: &e.detail,
                },
                &prev,
            );
            e.prev = prev.to_vec();
            e.hash = h.to_vec();
            prev = h;
        }
        assert_eq!(
            verify(other, &[head]),
            Err(AuditBreak::Rewritten { seq: 5 })
        );
    }
}
