//! Urgent alerts: receipts back to the sender, and escalation.
//!
//! A recipient device that stores an urgent alert queues a `delivered`
//! receipt; opening it queues `read`; the user's acknowledgement (with an
//! optional short reply) queues `acknowledged`. Receipts are payloads sealed
//! like any direct message to every device of the alert's sender (control
//! rows of the outbox: not messages, not counted), so the relay sees only
//! ciphertext. They live 7 days on the relay, so a member who comes back
//! online late still reports.
//!
//! The sender accepts a receipt only for an alert it sent, only from a user
//! it was sent to, and keeps the first of each state per user with the
//! recipient's time clamped to [sent, arrival]; each one is an audit entry,
//! kept after the alert itself expires. When an alert's deadline passes
//! with recipients who have not acknowledged, [`Engine::check_alerts`]
//! raises one `AlertEscalated` event naming them (and an audit entry); an
//! acknowledgement arriving later is still recorded and reported.

use occ_protocol::payload::{Payload, Receipt, ReceiptState};
use rusqlite::Connection;

use super::incoming::Refusal;
use super::{Engine, Local, random_hex};
use crate::audit::AuditKind;
use crate::error::{Error, Result};
use crate::events::ClientEvent;
use crate::store::audit::{NewEntry, append_in};
use crate::store::outbox::{self, CONTROL_PREFIX, NewOutboxRow, Target};
use crate::store::{SecurityEventKind, alerts, persist_high_water};

/// How long the relay keeps a receipt for an offline sender.
const RECEIPT_TTL_SECS: i64 = 7 * 24 * 3600;

/// Queues a receipt for `to` (inside the caller's transaction).
pub(crate) fn queue_receipt_in(
    conn: &Connection,
    now: i64,
    to: &str,
    receipt: Receipt,
) -> Result<()> {
    let payload = Payload::Receipt(receipt).encode();
    outbox::enqueue_in(
        conn,
        now,
        &NewOutboxRow {
            idempotency_key: &random_hex::<16>()?,
            message_id: &format!("{CONTROL_PREFIX}{}", random_hex::<16>()?),
            target: &Target::User(to.to_string()),
            payload: &payload,
            ttl_secs: RECEIPT_TTL_SECS,
            expires_ms: now.saturating_add(RECEIPT_TTL_SECS * 1000),
        },
    )?;
    Ok(())
}

/// Applies a receipt from `sender_user` (in the page's transaction);
/// returns the event to raise.
pub(crate) fn apply_receipt(
    conn: &Connection,
    now: i64,
    me: &str,
    sender_user: &str,
    r: &Receipt,
) -> std::result::Result<Option<ClientEvent>, Refusal> {
    if sender_user == me {
        // Our own other device acknowledged: nothing to track here.
        return Ok(None);
    }
    let Some((thread, sent_ms, recipients)) = alerts::sent_in(conn, &r.message_id)? else {
        return Err(Refusal::refused(
            SecurityEventKind::InvalidPayload,
            "a receipt for no alert this user sent",
        ));
    };
    if thread != r.thread_id || !recipients.iter().any(|u| u == sender_user) {
        return Err(Refusal::refused(
            SecurityEventKind::NonMember,
            format!("a receipt from {sender_user}, who was not sent the alert"),
        ));
    }
    let at = r.at_ms.clamp(sent_ms, now);
    let reply = r
        .reply
        .as_deref()
        .filter(|_| r.state == ReceiptState::Acknowledged);
    let new = alerts::add_receipt_in(conn, &r.message_id, sender_user, r.state, at, now, reply)?;
    if !new {
        return Ok(None);
    }
    append_in(
        conn,
        now,
        &NewEntry::of(AuditKind::Receipt)
            .thread(&thread)
            .message(&r.message_id)
            .subject(sender_user)
            .detail(&format!("{} at_ms={at}", r.state.as_str())),
    )?;
    Ok(Some(ClientEvent::ReceiptReceived {
        message_id: r.message_id.clone(),
        user: sender_user.to_string(),
        state: r.state.as_str().to_string(),
    }))
}

impl Local {
    /// Queues a receipt for an incoming alert if `id` is one; returns
    /// whether it was.
    fn receipt_for(
        &mut self,
        id: &str,
        state: ReceiptState,
        reply: Option<String>,
    ) -> Result<bool> {
        let Some((thread_id, sender)) = alerts::received_urgent_in(&self.store.conn, id)? else {
            return Ok(false);
        };
        let now = self.store.now_ms();
        let tx = self.store.conn.transaction()?;
        if state == ReceiptState::Acknowledged {
            append_in(
                &tx,
                now,
                &NewEntry::of(AuditKind::Acknowledged)
                    .thread(&thread_id)
                    .message(id)
                    .subject(&sender)
                    .detail(if reply.is_some() { "with a reply" } else { "" }),
            )?;
        }
        queue_receipt_in(
            &tx,
            now,
            &sender,
            Receipt {
                message_id: id.to_string(),
                thread_id,
                state,
                at_ms: now,
                reply,
            },
        )?;
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(true)
    }

    /// Marks a message opened; the first time, an alert's sender gets a
    /// `read` receipt.
    pub(crate) fn mark_read(&mut self, id: &str) -> Result<crate::store::StoredMessage> {
        let first = self.store.message(id)?.first_read_ms.is_none();
        let m = self.store.mark_read(id)?;
        if first && !m.outgoing {
            self.receipt_for(id, ReceiptState::Read, None)?;
        }
        Ok(m)
    }

    /// Acknowledges an incoming alert (with an optional short reply).
    pub(crate) fn acknowledge(&mut self, id: &str, reply: Option<String>) -> Result<()> {
        if reply
            .as_ref()
            .is_some_and(|r| r.len() > occ_protocol::payload::MAX_REPLY_LEN)
        {
            return Err(Error::invalid(format!(
                "a reply is at most {} bytes",
                occ_protocol::payload::MAX_REPLY_LEN
            )));
        }
        // Only a live message can be acknowledged (an expired one is gone).
        self.store.message(id)?;
        if !self.receipt_for(id, ReceiptState::Acknowledged, reply)? {
            return Err(Error::invalid(format!(
                "{id} is not an urgent alert sent to you"
            )));
        }
        Ok(())
    }
}

impl Engine {
    /// Escalates alerts past their deadline (see the module documentation);
    /// returns how many.
    pub(crate) fn check_alerts(&self) -> Result<u32> {
        let due = self.with_local(|l| {
            let now = l.store.now_ms();
            let tx = l.store.conn.transaction()?;
            let due = alerts::take_due_in(&tx, now)?;
            for d in &due {
                append_in(
                    &tx,
                    now,
                    &NewEntry::of(AuditKind::Escalated)
                        .thread(&d.thread_id)
                        .message(&d.message_id)
                        .subject(&d.unacknowledged.join(","))
                        .detail("not acknowledged by the deadline"),
                )?;
            }
            persist_high_water(&tx, now)?;
            tx.commit()?;
            Ok(due)
        })?;
        let n = u32::try_from(due.len()).unwrap_or(u32::MAX);
        for d in due {
            self.events.emit(ClientEvent::AlertEscalated {
                message_id: d.message_id,
                thread_id: d.thread_id,
                unacknowledged: d.unacknowledged,
            });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::retention::ManualClock;

    const T0: i64 = 1_800_000_000_000;

    #[test]
    fn a_receipt_waits_a_week_for_an_offline_sender_and_is_not_a_message() {
        let tmp = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let (store, _) = crate::store::tests::store_at(tmp.path(), clock);
        let receipt = Receipt {
            message_id: "m1".into(),
            thread_id: "t1".into(),
            state: ReceiptState::Delivered,
            at_ms: T0,
            reply: None,
        };
        queue_receipt_in(&store.conn, T0, "alice", receipt.clone()).unwrap();
        let rows = outbox::rows(&store.conn).unwrap();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.ttl_secs, 7 * 24 * 3600);
        assert_eq!(row.expires_ms, T0 + 7 * 24 * 3600 * 1000);
        assert_eq!(row.target, Target::User("alice".into()));
        assert!(row.message_id.starts_with(CONTROL_PREFIX));
        assert_eq!(
            Payload::parse(&row.payload).unwrap(),
            Payload::Receipt(receipt)
        );
        assert_eq!(store.outbox_len().unwrap(), 0, "not counted as a message");
    }
}
