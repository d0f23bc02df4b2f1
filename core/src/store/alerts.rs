//! Urgent alerts and their receipts.
//!
//! - Sent alerts (`alerts`): the deadline, the recipients at sending and
//!   when escalation fired. No content: the row outlives the message.
//! - Receipts (`receipts`): per message, user and state the first one
//!   received, with the recipient's time of the transition (clamped between
//!   the sending and its arrival, so nobody can claim an acknowledgement
//!   before the alert existed or in the future) and an optional short reply.
//! - Received alerts: the `urgent` and `ack_by_ms` columns of `messages`.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};
use occ_protocol::payload::ReceiptState;

/// A recipient's progress with an alert this user sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientState {
    /// The recipient.
    pub user: String,
    /// When a device of theirs stored it (their trusted time), ms.
    pub delivered_ms: Option<i64>,
    /// When they opened it, ms.
    pub read_ms: Option<i64>,
    /// When they acknowledged it, ms.
    pub acknowledged_ms: Option<i64>,
    /// Their short reply with the acknowledgement.
    pub reply: Option<String>,
}

/// A sent alert past its deadline with recipients who did not acknowledge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DueAlert {
    pub(crate) message_id: String,
    pub(crate) thread_id: String,
    pub(crate) unacknowledged: Vec<String>,
}

/// Records a sent alert (inside the sending transaction).
pub(crate) fn add_sent_in(
    conn: &Connection,
    message_id: &str,
    thread_id: &str,
    sent_ms: i64,
    ack_by_ms: Option<i64>,
    recipients: &[String],
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO alerts (message_id, thread_id, sent_ms, ack_by_ms, recipients)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        params![
            message_id,
            thread_id,
            sent_ms,
            ack_by_ms,
            recipients.join(",")
        ],
    )?;
    Ok(())
}

/// The thread, sending time and recipients of a sent alert.
pub(crate) fn sent_in(
    conn: &Connection,
    message_id: &str,
) -> Result<Option<(String, i64, Vec<String>)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT thread_id, sent_ms, recipients FROM alerts WHERE message_id = ?1",
            [message_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)),
        )
        .optional()?
        .map(|(t, s, r)| (t, s, split(&r))))
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect()
}

/// Stores a receipt unless one of that state from that user is held;
/// returns whether it was new.
pub(crate) fn add_receipt_in(
    conn: &Connection,
    message_id: &str,
    user: &str,
    state: ReceiptState,
    at_ms: i64,
    received_ms: i64,
    reply: Option<&str>,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "INSERT INTO receipts (message_id, user, state, at_ms, received_ms, reply)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        params![message_id, user, state.as_str(), at_ms, received_ms, reply],
    )?;
    Ok(n > 0)
}

/// Marks a stored incoming message as an urgent alert.
pub(crate) fn mark_received_urgent_in(
    conn: &Connection,
    message_id: &str,
    ack_by_ms: Option<i64>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE messages SET urgent = 1, ack_by_ms = ?2 WHERE id = ?1",
        params![message_id, ack_by_ms],
    )?;
    Ok(())
}

/// For an incoming urgent alert: its thread and sender (`None` for any
/// other message).
pub(crate) fn received_urgent_in(
    conn: &Connection,
    message_id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT thread_id, sender FROM messages WHERE id = ?1 AND urgent = 1 AND outgoing = 0",
            [message_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Alerts past their deadline not yet escalated, with who has not
/// acknowledged; each is marked escalated at `now` (one event per alert).
pub(crate) fn take_due_in(conn: &Connection, now: i64) -> Result<Vec<DueAlert>, StoreError> {
    let due: Vec<(String, String, String)> = {
        let mut stmt = conn.prepare(
            "SELECT message_id, thread_id, recipients FROM alerts
             WHERE escalated_ms IS NULL AND ack_by_ms IS NOT NULL AND ack_by_ms <= ?1",
        )?;
        let rows = stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    for (message_id, thread_id, recipients) in due {
        let mut unacknowledged = Vec::new();
        for user in split(&recipients) {
            let acked: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM receipts WHERE message_id = ?1 AND user = ?2 AND state = ?3)",
                params![message_id, user, ReceiptState::Acknowledged.as_str()],
                |r| r.get(0),
            )?;
            if !acked {
                unacknowledged.push(user);
            }
        }
        conn.execute(
            "UPDATE alerts SET escalated_ms = ?2 WHERE message_id = ?1",
            params![message_id, now],
        )?;
        if !unacknowledged.is_empty() {
            out.push(DueAlert {
                message_id,
                thread_id,
                unacknowledged,
            });
        }
    }
    Ok(out)
}

impl Store {
    /// Each recipient's progress with a sent alert, sorted by user
    /// ([`StoreError::NotFound`] if this user sent no such alert).
    pub fn receipts(&self, message_id: &str) -> Result<Vec<RecipientState>, StoreError> {
        let (_, _, recipients) = sent_in(&self.conn, message_id)?
            .ok_or_else(|| StoreError::NotFound(format!("alert {message_id}")))?;
        let mut out: Vec<RecipientState> = recipients
            .into_iter()
            .map(|user| RecipientState {
                user,
                delivered_ms: None,
                read_ms: None,
                acknowledged_ms: None,
                reply: None,
            })
            .collect();
        let mut stmt = self
            .conn
            .prepare("SELECT user, state, at_ms, reply FROM receipts WHERE message_id = ?1")?;
        let rows = stmt.query_map([message_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        for row in rows {
            let (user, state, at, reply) = row?;
            let Some(entry) = out.iter_mut().find(|e| e.user == user) else {
                continue;
            };
            match ReceiptState::from_name(&state) {
                Some(ReceiptState::Delivered) => entry.delivered_ms = Some(at),
                Some(ReceiptState::Read) => entry.read_ms = Some(at),
                Some(ReceiptState::Acknowledged) => {
                    entry.acknowledged_ms = Some(at);
                    entry.reply = reply;
                }
                None => return Err(StoreError::Corrupt(format!("receipt state {state:?}"))),
            }
        }
        out.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(out)
    }
}
