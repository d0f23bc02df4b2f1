//! Human and `--json` output. The JSON shapes are stable and documented in
//! the README.

use occ_core::ClientEvent;
use occ_core::retention::PurgeReport;
use occ_core::store::{StoredMessage, ThreadKind, ThreadSummary};
use serde_json::json;

use crate::terminal::{safe, safe_text};

/// `messages`: one line per message, or a JSON array of
/// `{id, thread_id, sender, outgoing, text, sent_ms, received_ms, expires_ms,
///   read_timer_ms, first_read_ms}`.
pub(crate) fn messages(list: &[StoredMessage], as_json: bool) {
    if as_json {
        let v: Vec<_> = list
            .iter()
            .map(|m| {
                json!({
                    "id": m.id,
                    "thread_id": m.thread_id,
                    "sender": m.sender,
                    "outgoing": m.outgoing,
                    "text": String::from_utf8_lossy(&m.body),
                    "sent_ms": m.sent_ms,
                    "received_ms": m.received_ms,
                    "expires_ms": m.deadline_ms,
                    "read_timer_ms": m.read_timer_ms,
                    "first_read_ms": m.first_read_ms,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return;
    }
    if list.is_empty() {
        println!("(no messages)");
    }
    for m in list {
        println!(
            "[{}] {}{}: {}",
            safe(&m.thread_id),
            if m.outgoing { "me→" } else { "" },
            safe(&m.sender),
            safe_text(&String::from_utf8_lossy(&m.body), true)
        );
    }
}

/// `threads`: one line per thread, or a JSON array of
/// `{id, title, kind, last_ms}`.
pub(crate) fn threads(list: &[ThreadSummary], as_json: bool) {
    let kind = |k: ThreadKind| {
        if k == ThreadKind::Group {
            "group"
        } else {
            "direct"
        }
    };
    if as_json {
        let v: Vec<_> = list
            .iter()
            .map(|t| json!({"id": t.id, "title": t.title, "kind": kind(t.kind), "last_ms": t.last_ms}))
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return;
    }
    for t in list {
        println!("{} ({}) {}", safe(&t.id), kind(t.kind), safe(&t.title));
    }
}

/// `verify`: the safety number and each device's trust.
pub(crate) fn contact_identity(c: &occ_core::ContactIdentity) {
    println!("safety number with {}:", safe(&c.user));
    println!("  {}", c.safety_number);
    for d in &c.devices {
        let trust = match d.trust {
            occ_core::Trust::Pending => "CHANGED — not accepted; sending held",
            occ_core::Trust::Trusted => "trusted on first use",
            occ_core::Trust::Verified => "verified",
        };
        println!("  device {}: {trust}", d.device_id);
    }
}

/// `purge`: a summary, or
/// `{at_ms, expired_ids, kept_too_long_ids, undelivered_ids, attachments}`.
pub(crate) fn purge(r: &PurgeReport, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({
                "at_ms": r.at_ms,
                "expired_ids": r.expired_ids,
                "kept_too_long_ids": r.kept_too_long_ids,
                "undelivered_ids": r.undelivered_ids,
                "attachments": r.attachments,
            })
        );
    } else {
        println!(
            "purged {} message(s): {} past their TTL or read timer, {} past the keep period; {} attachment(s) shredded",
            r.messages(),
            r.expired_ids.len(),
            r.kept_too_long_ids.len(),
            r.attachments
        );
    }
}

/// `sync --watch`: one line per event (identifiers only, never content).
pub(crate) struct EventPrinter;

impl occ_core::EventListener for EventPrinter {
    fn on_event(&self, event: ClientEvent) {
        match event {
            ClientEvent::MessagesReceived { messages } => {
                for m in messages {
                    println!(
                        "received {} from {} in {}",
                        safe(&m.message_id),
                        safe(&m.sender),
                        safe(&m.thread_id)
                    );
                }
            }
            ClientEvent::MessageSent { message_id } => println!("sent {}", safe(&message_id)),
            ClientEvent::MessagesExpired { message_ids } => {
                println!("expired {}", safe(&message_ids.join(",")));
            }
            ClientEvent::DeliveryFailed { message_id, reason } => {
                println!("undeliverable {}: {}", safe(&message_id), safe(&reason));
            }
            ClientEvent::SecurityAlert { kind, detail } => {
                println!("security alert {kind}: {}", safe(&detail));
            }
            ClientEvent::ConnectionChanged { connected, reason } => {
                if connected {
                    println!("connected");
                } else {
                    println!("disconnected: {}", safe(&reason));
                }
            }
            ClientEvent::ReceiptReceived {
                message_id,
                user,
                state,
            } => println!(
                "receipt {}: {} {}",
                safe(&message_id),
                safe(&user),
                safe(&state)
            ),
            ClientEvent::AlertEscalated {
                message_id,
                unacknowledged,
                ..
            } => println!(
                "ESCALATION {}: not acknowledged by {}",
                safe(&message_id),
                safe(&unacknowledged.join(", "))
            ),
            ClientEvent::VolumeAlert { count, minutes } => {
                println!("volume alert: {count} downloads within {minutes} minutes");
            }
            ClientEvent::PolicyChanged => println!("a new organisation policy is in force"),
            ClientEvent::Locked { locked } => println!(
                "the organisation {} this profile",
                if locked { "locked" } else { "unlocked" }
            ),
            ClientEvent::ProfileWiped => println!("the organisation wiped this profile"),
            _ => {}
        }
    }
}

/// `notice verify`: the prompt, or a JSON object `{relay_message_id,
/// thread_id, thread_title, sender_user, sender_device, sender_verified,
/// class, size, expires_ms, urgent, count, decision, reason}` (`decision`
/// is `allow`, `confirm` or `deny`).
pub(crate) fn prompt(p: &occ_core::DownloadPrompt, as_json: bool) {
    let (decision, reason) = match &p.decision {
        occ_core::Decision::Allow => ("allow", None),
        occ_core::Decision::Confirm { reason } => ("confirm", Some(reason.as_str())),
        occ_core::Decision::Deny { reason } => ("deny", Some(reason.as_str())),
    };
    if as_json {
        println!(
            "{}",
            json!({
                "relay_message_id": p.relay_message_id,
                "thread_id": p.thread_id,
                "thread_title": p.thread_title,
                "sender_user": p.sender_user,
                "sender_device": p.sender_device,
                "sender_verified": p.sender_verified,
                "class": p.message_class,
                "size": p.size,
                "expires_ms": p.expires_ms,
                "urgent": p.urgent,
                "count": p.count,
                "decision": decision,
                "reason": reason,
            })
        );
        return;
    }
    let who = p.sender_user.as_deref().unwrap_or("an unknown sender");
    println!(
        "Do you want to download this OCC message? {}{} from {}{} ({} bytes)",
        if p.urgent { "URGENT " } else { "" },
        safe(&p.message_class),
        safe(who),
        p.thread_title
            .as_deref()
            .map(|t| format!(" in {}", safe(t)))
            .unwrap_or_default(),
        p.size
    );
    println!(
        "decision: {decision}{}",
        reason
            .map(|r| format!(" — {}", safe(r)))
            .unwrap_or_default()
    );
    println!("relay id: {}", safe(&p.relay_message_id));
}

/// `download`: what was stored, or a JSON array of
/// `{thread_id, message_id, sender}`.
pub(crate) fn downloaded(r: &occ_core::ReceiveReport, as_json: bool) {
    let got = r.received();
    if as_json {
        let v: Vec<_> = got
            .iter()
            .map(|m| json!({"thread_id": m.thread_id, "message_id": m.message_id, "sender": m.sender}))
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return;
    }
    println!("downloaded {} message(s)", got.len());
    for m in got {
        println!(
            "  {} from {} in {}",
            safe(&m.message_id),
            safe(&m.sender),
            safe(&m.thread_id)
        );
    }
}

/// `receipts`: one line per recipient, or a JSON array of `{user,
/// delivered_ms, read_ms, acknowledged_ms, reply}` (null where not yet).
pub(crate) fn receipts(list: &[occ_core::RecipientState], as_json: bool) {
    if as_json {
        let v: Vec<_> = list
            .iter()
            .map(|r| {
                json!({
                    "user": r.user,
                    "delivered_ms": r.delivered_ms,
                    "read_ms": r.read_ms,
                    "acknowledged_ms": r.acknowledged_ms,
                    "reply": r.reply,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return;
    }
    let at = |t: Option<i64>| t.map_or("-".to_string(), |t| t.to_string());
    for r in list {
        println!(
            "{}: delivered {} read {} acknowledged {}{}",
            safe(&r.user),
            at(r.delivered_ms),
            at(r.read_ms),
            at(r.acknowledged_ms),
            r.reply
                .as_deref()
                .map(|t| format!(" \"{}\"", safe(t)))
                .unwrap_or_default()
        );
    }
}

/// `audit verify`: a line, or `{entries, countersigned_seq,
/// checked_with_relay, broken: null | {kind, seq}}`.
pub(crate) fn audit_report(r: &occ_core::AuditReport, as_json: bool) {
    if as_json {
        let broken = r
            .broken
            .as_ref()
            .map(|b| json!({"kind": b.as_str(), "seq": b.seq()}));
        println!(
            "{}",
            json!({
                "entries": r.entries,
                "countersigned_seq": r.countersigned_seq,
                "checked_with_relay": r.checked_with_relay,
                "broken": broken,
            })
        );
        return;
    }
    match &r.broken {
        None => println!(
            "audit trail intact: {} entries, countersigned up to {}{}",
            r.entries,
            r.countersigned_seq.map_or("-".into(), |s| s.to_string()),
            if r.checked_with_relay {
                " (checked with the relay)"
            } else {
                ""
            }
        ),
        Some(b) => println!("audit trail BROKEN: {b}"),
    }
}

/// `audit export`: JSON lines `{seq, at_ms, kind, thread_id, message_id,
/// subject, detail, hash}`.
pub(crate) fn audit_entries(list: &[occ_core::AuditEntry]) {
    for e in list {
        println!(
            "{}",
            json!({
                "seq": e.seq,
                "at_ms": e.at_ms,
                "kind": e.kind,
                "thread_id": e.thread_id,
                "message_id": e.message_id,
                "subject": e.subject,
                "detail": e.detail,
                "hash": e.hash,
            })
        );
    }
}

/// `policy show`: the policy JSON, or `null` / "no organisation policy".
pub(crate) fn policy(p: Option<&str>, as_json: bool) {
    match (p, as_json) {
        (Some(p), true) => println!("{p}"),
        (None, true) => println!("null"),
        (Some(p), false) => {
            let pretty = serde_json::from_str::<serde_json::Value>(p)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| p.to_string());
            println!("{}", safe_text(&pretty, true));
        }
        (None, false) => println!("no organisation policy"),
    }
}
