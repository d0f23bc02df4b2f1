//! Push notices seen by this profile: replays are refused, and the decision
//! of each prompt is kept until the notice expires (then purged).

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// How long a decision about a message never seen in a notice is kept: the
/// relay's longest TTL, so a declined message cannot outlive its refusal.
const UNSEEN_KEEP_MS: i64 = (occ_protocol::api::MAX_TTL_SECS as i64) * 1000;

/// Where a notice stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoticeState {
    /// A prompt was built (allow or confirm).
    Prompted,
    /// The policy denied it.
    Denied,
    /// The message was downloaded.
    Downloaded,
    /// The user declined it: the inbox will not store it.
    Declined,
    /// Prompted, never answered, and its notice expired (its notification
    /// was withdrawn).
    Lapsed,
}

impl NoticeState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Prompted => "prompted",
            Self::Denied => "denied",
            Self::Downloaded => "downloaded",
            Self::Declined => "declined",
            Self::Lapsed => "lapsed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Prompted,
            Self::Denied,
            Self::Downloaded,
            Self::Declined,
            Self::Lapsed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A seen notice.
pub(crate) struct SeenNotice {
    pub(crate) class: String,
    pub(crate) state: NoticeState,
}

/// Records a notice as seen; returns false if it was seen before (a replay).
pub(crate) fn add_in(
    conn: &Connection,
    now: i64,
    relay_id: &str,
    sender_device: &str,
    class: &str,
    expires_ms: i64,
    state: NoticeState,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "INSERT INTO notices (relay_id, sender_device, class, expires_ms, state, seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        params![
            relay_id,
            sender_device,
            class,
            expires_ms,
            state.as_str(),
            now
        ],
    )?;
    Ok(n > 0)
}

/// A seen notice by relay id.
pub(crate) fn get_in(conn: &Connection, relay_id: &str) -> Result<Option<SeenNotice>, StoreError> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT class, state FROM notices WHERE relay_id = ?1",
            [relay_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(class, state)| {
        Ok(SeenNotice {
            class,
            state: NoticeState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("notice state {state:?}")))?,
        })
    })
    .transpose()
}

/// Sets a notice's state, recording it if it was never seen (a download or
/// decline without a prompt on this device).
pub(crate) fn set_state_in(
    conn: &Connection,
    now: i64,
    relay_id: &str,
    state: NoticeState,
) -> Result<(), StoreError> {
    // Never seen: kept as long as the relay may still hold the message.
    let keep_until = now.saturating_add(UNSEEN_KEEP_MS);
    conn.execute(
        "INSERT INTO notices (relay_id, sender_device, class, expires_ms, state, seen_ms)
         VALUES (?1, '', '', ?2, ?3, ?4)
         ON CONFLICT(relay_id) DO UPDATE SET state = excluded.state",
        params![relay_id, keep_until, state.as_str(), now],
    )?;
    Ok(())
}

/// Whether the user declined the message with this relay id.
pub(crate) fn declined_in(conn: &Connection, relay_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM notices WHERE relay_id = ?1 AND state = 'declined'")?
        .exists([relay_id])?)
}

/// Forgets notices expired a day ago (replays of them are refused as
/// expired anyway).
/// Records a notice shown while the profile was locked (so it stays a
/// replay), unless it is already known.
pub(crate) fn note_locked_in(
    conn: &Connection,
    at_ms: i64,
    relay_id: &str,
) -> Result<(), StoreError> {
    add_in(
        conn,
        at_ms,
        relay_id,
        "",
        "",
        at_ms.saturating_add(UNSEEN_KEEP_MS),
        NoticeState::Prompted,
    )?;
    Ok(())
}

/// Marks prompted notices whose expiry passed as lapsed; returns their
/// relay ids (once each).
pub(crate) fn lapse_in(conn: &Connection, now: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE notices SET state = 'lapsed' WHERE state = 'prompted' AND expires_ms <= ?1
         RETURNING relay_id",
    )?;
    let ids = stmt.query_map([now], |r| r.get::<_, String>(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

pub(crate) fn purge_in(conn: &Connection, now: i64) -> Result<u64, StoreError> {
    let n = conn.execute(
        "DELETE FROM notices WHERE expires_ms < ?1",
        [now.saturating_sub(24 * 3600 * 1000)],
    )?;
    Ok(n as u64)
}

impl super::Store {
    /// Takes in what the locked push path saw (see [`crate::push`]), in one
    /// transaction: shown notices become seen ones (so they stay replays),
    /// refusals become `forged_notice` security events (so audit entries).
    pub(crate) fn import_locked_push(
        &mut self,
        shown: &[(String, i64)],
        refused: &[(String, i64)],
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        let tx = self.conn.transaction()?;
        for (id, at) in shown {
            note_locked_in(&tx, (*at).min(now), id)?;
        }
        for (detail, _) in refused {
            super::security_events::record_in(
                &tx,
                now,
                super::SecurityEventKind::ForgedNotice,
                detail,
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Relay ids of the newest `limit` notices this profile has seen whose
    /// notice has not expired (the locked path treats them as replays).
    pub(crate) fn recent_notice_ids(&self, limit: u32) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT relay_id FROM notices WHERE expires_ms > ?1 ORDER BY seen_ms DESC LIMIT ?2",
        )?;
        let ids = stmt.query_map(rusqlite::params![self.now_ms(), limit], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }
}
