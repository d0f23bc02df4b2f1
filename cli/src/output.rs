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
            _ => {}
        }
    }
}
