//! Contacts: which user each device we have seen belongs to, its identity as
//! first learned from the relay directory, and how far it is trusted.
//!
//! - First seen wins: a device never changes user.
//! - Trust on first use: the first device seen for a user is trusted; a
//!   device that appears later for a user we already know is *pending* — a
//!   key change, which the relay alone could have made — until the user
//!   accepts it (after comparing safety numbers). Nothing is encrypted to a
//!   pending device and nothing from it is believed.
//! - A *vouched* device is trusted at once: certified by the organisation,
//!   or linked by a device already trusted for the same user (the caller
//!   verifies either). Another device of our own user is trusted only when
//!   vouched: first use means nothing for the user we already are.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// How far a contact's identity is trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// A new key for a known user, not yet accepted.
    Pending,
    /// Trusted on first use, or accepted.
    Trusted,
    /// Accepted after comparing safety numbers.
    Verified,
}

impl Trust {
    fn code(self) -> i64 {
        match self {
            Trust::Pending => 0,
            Trust::Trusted => 1,
            Trust::Verified => 2,
        }
    }

    fn from_code(c: i64) -> Self {
        match c {
            2 => Trust::Verified,
            1 => Trust::Trusted,
            _ => Trust::Pending,
        }
    }
}

/// What recording a device did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// Already known.
    Known,
    /// The first device we see of this user: trusted on first use.
    FirstOfUser,
    /// A new device of a user we already know: pending (a key change).
    KeyChange,
    /// A new device vouched for (organisation certificate, or a link from a
    /// trusted device of the same user): trusted.
    Vouched,
}

/// The user a device belongs to, if known.
pub(crate) fn user_of(conn: &Connection, device: &[u8; 32]) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT user FROM contacts WHERE device_id = ?1",
            [&device[..]],
            |r| r.get(0),
        )
        .optional()?)
}

/// How far a device is trusted, if known.
pub(crate) fn trust_of(conn: &Connection, device: &[u8; 32]) -> Result<Option<Trust>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT trust FROM contacts WHERE device_id = ?1",
            [&device[..]],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map(Trust::from_code))
}

/// Records a device of a user (first seen wins; see the module docs). A
/// `vouched` device is trusted whether or not its user is known; an
/// unvouched one of our `own` user is pending.
pub(crate) fn add_in(
    conn: &Connection,
    now: i64,
    device: &[u8; 32],
    user: &str,
    identity: &[u8],
    vouched: bool,
    own: bool,
) -> Result<Added, StoreError> {
    if user_of(conn, device)?.is_some() {
        return Ok(Added::Known);
    }
    let known_user: bool = conn
        .prepare_cached("SELECT 1 FROM contacts WHERE user = ?1")?
        .exists([user])?;
    let (trust, added) = if vouched {
        (Trust::Trusted, Added::Vouched)
    } else if known_user || own {
        (Trust::Pending, Added::KeyChange)
    } else {
        (Trust::Trusted, Added::FirstOfUser)
    };
    conn.execute(
        "INSERT INTO contacts (device_id, user, identity, first_seen_ms, trust) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![&device[..], user, identity, now, trust.code()],
    )?;
    Ok(added)
}

/// Every known device of `user`.
pub(crate) fn devices_of(conn: &Connection, user: &str) -> Result<Vec<[u8; 32]>, StoreError> {
    Ok(identities_of(conn, user)?
        .into_iter()
        .map(|(d, _)| d)
        .collect())
}

/// Every known device of `user` (its id is its signing key) with its
/// trust, by device id.
pub(crate) fn identities_of(
    conn: &Connection,
    user: &str,
) -> Result<Vec<([u8; 32], Trust)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT device_id, trust FROM contacts WHERE user = ?1 ORDER BY device_id",
    )?;
    let rows = stmt.query_map([user], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (d, trust) = r?;
        if let Ok(a) = <[u8; 32]>::try_from(d.as_slice()) {
            out.push((a, Trust::from_code(trust)));
        }
    }
    Ok(out)
}

/// Raises every device of `user` to at least `trust` (accepting a key
/// change, or marking it verified). Returns how many changed.
pub(crate) fn set_trust_in(conn: &Connection, user: &str, trust: Trust) -> Result<u64, StoreError> {
    let n = conn.execute(
        "UPDATE contacts SET trust = ?2 WHERE user = ?1 AND trust < ?2",
        params![user, trust.code()],
    )?;
    Ok(n as u64)
}
