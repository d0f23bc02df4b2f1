//! The relay's SQLite store: users, devices, prekeys, queued envelopes,
//! idempotency records and tombstones of expired envelopes.
//!
//! Invariants:
//! - Envelopes are opaque ciphertext; the relay stores nothing else of a
//!   message.
//! - An envelope is never handed out once `expires_ms` has passed, whether or
//!   not the purge has run; the purge deletes by the `expires_ms` index and
//!   leaves a tombstone so `GET /messages/{id}` can answer 410 Gone.
//! - A send batch is one transaction together with its idempotency record, so
//!   a retried request either finds the record (and gets the first answer) or
//!   finds nothing queued.
//! - `synchronous = FULL` in WAL mode: what was acknowledged survives a crash.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::RelayError;

/// How long tombstones and idempotency records are kept.
pub const RECORD_RETENTION_MS: i64 = 31 * 24 * 3600 * 1000;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    name       TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS devices (
    device_id     TEXT PRIMARY KEY,
    user          TEXT NOT NULL REFERENCES users(name),
    identity      BLOB NOT NULL,
    spk_id        INTEGER NOT NULL,
    spk           BLOB NOT NULL,
    spk_signature BLOB NOT NULL,
    push_endpoint TEXT,
    created_ms    INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS devices_user ON devices (user);
CREATE TABLE IF NOT EXISTS one_time_prekeys (
    device_id TEXT NOT NULL REFERENCES devices(device_id),
    id        INTEGER NOT NULL,
    key       BLOB NOT NULL,
    PRIMARY KEY (device_id, id)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS envelopes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    recipient  TEXT NOT NULL,
    sender     TEXT NOT NULL,
    envelope   BLOB NOT NULL,
    sent_ms    INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS envelopes_recipient ON envelopes (recipient, seq);
CREATE INDEX IF NOT EXISTS envelopes_expiry ON envelopes (expires_ms);
CREATE TABLE IF NOT EXISTS idempotency (
    sender     TEXT NOT NULL,
    key        TEXT NOT NULL,
    response   TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (sender, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created_ms);
CREATE TABLE IF NOT EXISTS tombstones (
    id         TEXT PRIMARY KEY,
    recipient  TEXT NOT NULL,
    expired_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tombstones_expired ON tombstones (expired_ms);
"#;

/// A registered device.
#[derive(Clone, Debug)]
pub struct DeviceRow {
    /// Hex device id.
    pub device_id: String,
    /// Owning user.
    pub user: String,
    /// Encoded identity keys.
    pub identity: Vec<u8>,
    /// Signed prekey id.
    pub spk_id: u32,
    /// Signed prekey.
    pub spk: Vec<u8>,
    /// Its signature.
    pub spk_signature: Vec<u8>,
    /// Push endpoint.
    pub push_endpoint: Option<String>,
}

/// A device as the directory lists it.
#[derive(Clone, Debug)]
pub struct UserDevice {
    /// Hex device id.
    pub device_id: String,
    /// Encoded identity keys.
    pub identity: Vec<u8>,
    /// Its organisation certificate, if installed.
    pub certificate: Option<Vec<u8>>,
    /// The link by which another device of the user added it.
    pub link: Option<Vec<u8>>,
}

/// A device's organisation certificate and device link, if any.
pub type Vouchers = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A verified device link presented with a registration.
#[derive(Clone, Copy, Debug)]
pub struct Linked<'a> {
    /// The vouching device (hex id).
    pub linker: &'a str,
    /// The encoded link, stored and served with the new device.
    pub bytes: &'a [u8],
}

/// A queued envelope.
#[derive(Clone, Debug)]
pub struct QueuedRow {
    /// Queue position.
    pub seq: i64,
    /// Relay message id.
    pub id: String,
    /// Sender device.
    pub sender: String,
    /// Ciphertext envelope.
    pub envelope: Vec<u8>,
    /// Queued at.
    pub sent_ms: i64,
    /// Expires at.
    pub expires_ms: i64,
}

/// What a lookup of one message by id found.
pub enum Lookup {
    /// Still queued and live.
    Live(QueuedRow),
    /// Expired (queued past its time, or purged).
    Gone,
    /// Unknown (or acknowledged).
    NotFound,
}

/// A countersigned audit chain head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditHeadRow {
    /// Sequence number of the newest entry.
    pub seq: u64,
    /// Its hash.
    pub hash: Vec<u8>,
    /// Relay time of the countersignature.
    pub server_ms: i64,
    /// The service key's signature.
    pub signature: Vec<u8>,
}

/// The relay database.
pub struct Db {
    conn: Connection,
}

impl Db {
    /// Opens (creating if needed) `dir/relay.db`.
    pub fn open(dir: &Path) -> Result<Self, RelayError> {
        let conn = Connection::open(dir.join("relay.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        Ok(Self { conn })
    }

    /// A device by id.
    pub fn device(&self, device_id: &str) -> Result<Option<DeviceRow>, RelayError> {
        Ok(self
            .conn
            .query_row(
                "SELECT device_id, user, identity, spk_id, spk, spk_signature, push_endpoint
                 FROM devices WHERE device_id = ?1",
                [device_id],
                |r| {
                    Ok(DeviceRow {
                        device_id: r.get(0)?,
                        user: r.get(1)?,
                        identity: r.get(2)?,
                        spk_id: r.get(3)?,
                        spk: r.get(4)?,
                        spk_signature: r.get(5)?,
                        push_endpoint: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// Devices of a user, in registration order.
    pub fn user_devices(&self, user: &str) -> Result<Vec<UserDevice>, RelayError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT device_id, identity, certificate, link FROM devices WHERE user = ?1 ORDER BY created_ms, device_id",
        )?;
        let rows = stmt.query_map([user], |r| {
            Ok(UserDevice {
                device_id: r.get(0)?,
                identity: r.get(1)?,
                certificate: r.get(2)?,
                link: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores a device's organisation certificate (the route checked that
    /// it names the device and its user).
    pub fn set_certificate(&mut self, device_id: &str, cert: &[u8]) -> Result<(), RelayError> {
        self.conn.execute(
            "UPDATE devices SET certificate = ?2 WHERE device_id = ?1",
            params![device_id, cert],
        )?;
        Ok(())
    }

    /// The stored revocation list and its version, if any.
    pub fn revocations(&self) -> Result<Option<(u64, Vec<u8>)>, RelayError> {
        Ok(self
            .conn
            .query_row(
                "SELECT version, list FROM revocations WHERE id = 1",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?
            .map(|(v, l)| (u64::try_from(v).unwrap_or(0), l)))
    }

    /// The organisation's policy document, if one was published.
    pub fn policy(&self) -> Result<Option<Vec<u8>>, RelayError> {
        Ok(self
            .conn
            .query_row("SELECT doc FROM org_policy WHERE id = 1", [], |r| r.get(0))
            .optional()?)
    }

    /// Stores a policy document if its version is newer than the held one.
    pub fn set_policy(&mut self, version: u64, doc: &[u8]) -> Result<bool, RelayError> {
        let v = i64::try_from(version)
            .map_err(|_| RelayError::BadRequest("policy version too large".into()))?;
        let n = self.conn.execute(
            "INSERT INTO org_policy (id, version, doc) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET version = excluded.version, doc = excluded.doc
             WHERE excluded.version > org_policy.version",
            params![v, doc],
        )?;
        Ok(n > 0)
    }

    /// Queues an organisation command for a device.
    pub fn add_command(
        &mut self,
        device_id: &str,
        issued_ms: i64,
        doc: &[u8],
    ) -> Result<(), RelayError> {
        self.conn.execute(
            "INSERT INTO org_commands (device_id, issued_ms, doc) VALUES (?1, ?2, ?3)",
            params![device_id, issued_ms, doc],
        )?;
        Ok(())
    }

    /// The newest commands for a device (at most 16), oldest first.
    pub fn commands(&self, device_id: &str) -> Result<Vec<Vec<u8>>, RelayError> {
        let mut stmt = self.conn.prepare(
            "SELECT doc FROM (SELECT seq, doc FROM org_commands WHERE device_id = ?1
                              ORDER BY seq DESC LIMIT 16) ORDER BY seq",
        )?;
        let rows = stmt.query_map([device_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest countersigned audit head of a device.
    pub fn audit_head(&self, device_id: &str) -> Result<Option<AuditHeadRow>, RelayError> {
        Ok(self
            .conn
            .query_row(
                "SELECT seq, hash, server_ms, signature FROM audit_heads WHERE device_id = ?1",
                [device_id],
                |r| {
                    Ok(AuditHeadRow {
                        seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        hash: r.get(1)?,
                        server_ms: r.get(2)?,
                        signature: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Stores a countersigned head (the caller checked that it moves
    /// forward).
    pub fn set_audit_head(
        &mut self,
        device_id: &str,
        head: &AuditHeadRow,
    ) -> Result<(), RelayError> {
        let seq = i64::try_from(head.seq)
            .map_err(|_| RelayError::BadRequest("audit sequence too large".into()))?;
        self.conn.execute(
            "INSERT INTO audit_heads (device_id, seq, hash, server_ms, signature)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(device_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                 server_ms = excluded.server_ms, signature = excluded.signature",
            params![device_id, seq, head.hash, head.server_ms, head.signature],
        )?;
        Ok(())
    }

    /// Stores a (verified) revocation list if it is newer than the stored
    /// one; returns whether it was.
    pub fn set_revocations(&mut self, version: u64, list: &[u8]) -> Result<bool, RelayError> {
        let v = i64::try_from(version)
            .map_err(|_| RelayError::BadRequest("revocation version too large".into()))?;
        let n = self.conn.execute(
            "INSERT INTO revocations (id, version, list) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET version = excluded.version, list = excluded.list
             WHERE excluded.version > revocations.version",
            params![v, list],
        )?;
        Ok(n > 0)
    }

    /// A device's organisation certificate (if installed) and the link by
    /// which another device of its user added it (if any).
    pub fn vouchers(&self, device_id: &str) -> Result<Vouchers, RelayError> {
        Ok(self
            .conn
            .query_row(
                "SELECT certificate, link FROM devices WHERE device_id = ?1",
                [device_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or_default())
    }

    /// Sets (or clears) a registered device's push endpoint; whether the
    /// device exists.
    pub fn set_push_endpoint(
        &mut self,
        device: &str,
        endpoint: Option<&str>,
    ) -> Result<bool, RelayError> {
        let n = self.conn.execute(
            "UPDATE devices SET push_endpoint = ?2 WHERE device_id = ?1",
            params![device, endpoint],
        )?;
        Ok(n > 0)
    }

    /// Registers (or re-registers) a device with its prekeys, in one
    /// transaction. A further device of an existing user needs a `link`
    /// (already verified by the route) whose linker is a registered device
    /// of that user.
    pub fn register(
        &mut self,
        d: &DeviceRow,
        one_time: &[(u32, Vec<u8>)],
        signed_at_ms: i64,
        now: i64,
        link: Option<Linked<'_>>,
    ) -> Result<(), RelayError> {
        let tx = self.conn.transaction()?;
        let owner: Option<(String, i64)> = tx
            .query_row(
                "SELECT user, registered_ms FROM devices WHERE device_id = ?1",
                [&d.device_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let removed: bool = tx
            .prepare_cached("SELECT 1 FROM removed_devices WHERE device_id = ?1")?
            .exists([&d.device_id])?;
        if removed {
            return Err(RelayError::Conflict(
                "this device was removed by its user and cannot register again".into(),
            ));
        }
        match owner {
            Some((u, _)) if u != d.user => {
                return Err(RelayError::Conflict(
                    "this device is registered to another user".into(),
                ));
            }
            Some((_, last)) if signed_at_ms <= last => {
                return Err(RelayError::Conflict(
                    "a registration signed no later than the last accepted one (a replay?)".into(),
                ));
            }
            Some(_) => {}
            None => {
                let others: i64 = tx.query_row(
                    "SELECT count(*) FROM devices WHERE user = ?1",
                    [&d.user],
                    |r| r.get(0),
                )?;
                let linker_known = match &link {
                    Some(l) => tx
                        .prepare_cached("SELECT 1 FROM devices WHERE device_id = ?1 AND user = ?2")?
                        .exists(params![l.linker, d.user])?,
                    None => false,
                };
                if others > 0 && !linker_known {
                    return Err(RelayError::Conflict(format!(
                        "user {} already has a device; a further device needs a link \
                         signed by one of them",
                        d.user
                    )));
                }
            }
        }
        tx.execute(
            "INSERT INTO users (name, created_ms) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            params![d.user, now],
        )?;
        tx.execute(
            "INSERT INTO devices (device_id, user, identity, spk_id, spk, spk_signature, push_endpoint, created_ms, registered_ms, link)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(device_id) DO UPDATE SET spk_id = excluded.spk_id, spk = excluded.spk,
                 spk_signature = excluded.spk_signature, push_endpoint = excluded.push_endpoint,
                 registered_ms = excluded.registered_ms",
            params![d.device_id, d.user, d.identity, d.spk_id, d.spk, d.spk_signature, d.push_endpoint, now, signed_at_ms, link.as_ref().map(|l| l.bytes)],
        )?;
        insert_prekeys(&tx, &d.device_id, one_time)?;
        tx.commit()?;
        Ok(())
    }

    /// Removes `device` on behalf of `user` (one of its devices): its row,
    /// prekeys and queued envelopes go, and it is remembered as removed.
    /// Returns false (and changes nothing) unless it is a device of `user`.
    pub fn remove_device(
        &mut self,
        device: &str,
        user: &str,
        now: i64,
    ) -> Result<bool, RelayError> {
        let tx = self.conn.transaction()?;
        let owned: bool = tx
            .prepare_cached("SELECT 1 FROM devices WHERE device_id = ?1 AND user = ?2")?
            .exists(params![device, user])?;
        if !owned {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM one_time_prekeys WHERE device_id = ?1",
            [device],
        )?;
        tx.execute("DELETE FROM envelopes WHERE recipient = ?1", [device])?;
        tx.execute("DELETE FROM devices WHERE device_id = ?1", [device])?;
        tx.execute(
            "INSERT INTO removed_devices (device_id, user, removed_ms) VALUES (?1, ?2, ?3)",
            params![device, user, now],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Whether `device` was removed by its user.
    pub fn was_removed(&self, device: &str) -> Result<bool, RelayError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM removed_devices WHERE device_id = ?1")?
            .exists([device])?)
    }

    /// Adds one-time prekeys and optionally replaces the signed prekey.
    pub fn add_prekeys(
        &mut self,
        device_id: &str,
        signed: Option<(u32, Vec<u8>, Vec<u8>)>,
        one_time: &[(u32, Vec<u8>)],
    ) -> Result<u64, RelayError> {
        let tx = self.conn.transaction()?;
        if let Some((id, key, sig)) = signed {
            tx.execute(
                "UPDATE devices SET spk_id = ?2, spk = ?3, spk_signature = ?4 WHERE device_id = ?1",
                params![device_id, id, key, sig],
            )?;
        }
        insert_prekeys(&tx, device_id, one_time)?;
        tx.commit()?;
        self.one_time_prekey_count(device_id)
    }

    /// One-time prekeys held for a device.
    pub fn one_time_prekey_count(&self, device_id: &str) -> Result<u64, RelayError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM one_time_prekeys WHERE device_id = ?1",
            [device_id],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    /// Takes (and deletes) one one-time prekey of a device, if any is left.
    pub fn take_one_time_prekey(
        &mut self,
        device_id: &str,
    ) -> Result<Option<(u32, Vec<u8>)>, RelayError> {
        Ok(self
            .conn
            .query_row(
                "DELETE FROM one_time_prekeys WHERE device_id = ?1 AND id =
                   (SELECT min(id) FROM one_time_prekeys WHERE device_id = ?1)
                 RETURNING id, key",
                [device_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// The stored answer to an earlier request with this idempotency key.
    pub fn idempotent_response(
        &self,
        sender: &str,
        key: &str,
    ) -> Result<Option<String>, RelayError> {
        Ok(self
            .conn
            .query_row(
                "SELECT response FROM idempotency WHERE sender = ?1 AND key = ?2",
                [sender, key],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Queues a batch and records its answer, atomically.
    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::too_many_arguments)]
    pub fn enqueue(
        &mut self,
        sender: &str,
        key: &str,
        items: &[(String, String, Vec<u8>)],
        now: i64,
        expires_ms: i64,
        response: &str,
        quota: &Quota,
    ) -> Result<Result<(), QuotaExceeded>, RelayError> {
        let tx = self.conn.transaction()?;
        {
            let mut usage = tx.prepare_cached(
                "SELECT count(*), coalesce(sum(size), 0),
                        coalesce(sum(sender = ?2), 0), coalesce(sum(CASE WHEN sender = ?2 THEN size ELSE 0 END), 0)
                 FROM envelopes WHERE recipient = ?1 AND expires_ms > ?3",
            )?;
            let mut stmt = tx.prepare_cached(
                "INSERT INTO envelopes (id, recipient, sender, envelope, sent_ms, expires_ms, size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (id, recipient, envelope) in items {
                let (n, bytes, mine, my_bytes): (i64, i64, i64, i64) = usage
                    .query_row(params![recipient, sender, now], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?;
                let size = envelope.len() as i64;
                let over = |used: i64, add: i64, max: u64| {
                    u64::try_from(used.saturating_add(add)).unwrap_or(u64::MAX) > max
                };
                if over(n, 1, quota.messages)
                    || over(bytes, size, quota.bytes)
                    || over(mine, 1, quota.sender_messages)
                    || over(my_bytes, size, quota.sender_bytes)
                {
                    // The transaction is dropped: nothing of the batch stays.
                    return Ok(Err(QuotaExceeded {
                        recipient: recipient.clone(),
                    }));
                }
                stmt.execute(params![
                    id, recipient, sender, envelope, now, expires_ms, size
                ])?;
            }
        }
        tx.execute(
            "INSERT INTO idempotency (sender, key, response, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![sender, key, response, now],
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Live envelopes for `recipient` after `after`, oldest first: at most
    /// `limit` of them and, beyond the first, at most `max_bytes` of
    /// envelopes in all.
    pub fn inbox(
        &self,
        recipient: &str,
        after: i64,
        limit: usize,
        max_bytes: u64,
        now: i64,
    ) -> Result<Vec<QueuedRow>, RelayError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, id, sender, envelope, sent_ms, expires_ms FROM envelopes
             WHERE recipient = ?1 AND seq > ?2 AND expires_ms > ?3 ORDER BY seq LIMIT ?4",
        )?;
        let mut rows = stmt.query(params![recipient, after, now, limit as i64])?;
        let mut out = Vec::new();
        let mut bytes = 0u64;
        while let Some(r) = rows.next()? {
            let row = row_to_queued(r)?;
            bytes = bytes.saturating_add(row.envelope.len() as u64);
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(row);
        }
        Ok(out)
    }

    /// Deletes everything up to `up_to` for `recipient`.
    pub fn ack(&mut self, recipient: &str, up_to: i64) -> Result<u64, RelayError> {
        let n = self.conn.execute(
            "DELETE FROM envelopes WHERE recipient = ?1 AND seq <= ?2",
            params![recipient, up_to],
        )?;
        Ok(n as u64)
    }

    /// One message by id, as its recipient sees it.
    pub fn lookup(&self, recipient: &str, id: &str, now: i64) -> Result<Lookup, RelayError> {
        let row = self
            .conn
            .query_row(
                "SELECT seq, id, sender, envelope, sent_ms, expires_ms FROM envelopes WHERE id = ?1 AND recipient = ?2",
                [id, recipient],
                row_to_queued,
            )
            .optional()?;
        if let Some(row) = row {
            return Ok(if row.expires_ms <= now {
                Lookup::Gone
            } else {
                Lookup::Live(row)
            });
        }
        let gone: bool = self
            .conn
            .prepare_cached("SELECT 1 FROM tombstones WHERE id = ?1 AND recipient = ?2")?
            .exists([id, recipient])?;
        Ok(if gone { Lookup::Gone } else { Lookup::NotFound })
    }

    /// Deletes expired envelopes (leaving tombstones) and old records.
    /// Returns how many envelopes were purged.
    pub fn purge(&mut self, now: i64) -> Result<u64, RelayError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO tombstones (id, recipient, expired_ms)
             SELECT id, recipient, expires_ms FROM envelopes WHERE expires_ms <= ?1
             ON CONFLICT(id) DO NOTHING",
            [now],
        )?;
        let deleted = tx.execute("DELETE FROM envelopes WHERE expires_ms <= ?1", [now])?;
        let horizon = now - RECORD_RETENTION_MS;
        tx.execute("DELETE FROM tombstones WHERE expired_ms <= ?1", [horizon])?;
        tx.execute("DELETE FROM idempotency WHERE created_ms <= ?1", [horizon])?;
        tx.commit()?;
        Ok(deleted as u64)
    }

    /// Live envelopes queued and their bytes (all recipients).
    pub fn queue_depth(&self, now: i64) -> Result<(u64, u64), RelayError> {
        let (n, bytes): (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(size), 0) FROM envelopes WHERE expires_ms > ?1",
            [now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((n.max(0) as u64, bytes.max(0) as u64))
    }

    /// Number of queued envelopes (all recipients).
    pub fn queued(&self) -> Result<u64, RelayError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM envelopes", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }
}

/// An attachment blob's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRow {
    /// Attachment id.
    pub id: String,
    /// The uploading device.
    pub owner: String,
    /// Declared size.
    pub size: u64,
    /// Bytes received so far.
    pub received: u64,
    /// Expiry, ms.
    pub expires_ms: i64,
    /// Whether its file was deleted (expired).
    pub purged: bool,
}

impl Db {
    /// One attachment's record.
    pub fn blob(&self, id: &str) -> Result<Option<BlobRow>, RelayError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, owner, size, received, expires_ms, purged FROM attachments WHERE id = ?1",
                [id],
                |r| {
                    Ok(BlobRow {
                        id: r.get(0)?,
                        owner: r.get(1)?,
                        size: r.get::<_, i64>(2)?.max(0) as u64,
                        received: r.get::<_, i64>(3)?.max(0) as u64,
                        expires_ms: r.get(4)?,
                        purged: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records a new upload, within the owner's quota of live bytes.
    /// Announcing the same upload again (same owner and size) returns it.
    pub fn create_blob(
        &mut self,
        id: &str,
        owner: &str,
        size: u64,
        expires_ms: i64,
        quota: u64,
        now: i64,
    ) -> Result<BlobRow, RelayError> {
        let tx = self.conn.transaction()?;
        let existing = tx
            .query_row(
                "SELECT owner, size, purged, expires_ms FROM attachments WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()?;
        if let Some((o, sz, purged, exp)) = existing {
            if o != owner || sz as u64 != size {
                return Err(RelayError::Conflict(
                    "this attachment id is taken; choose another".into(),
                ));
            }
            if purged || exp <= now {
                return Err(RelayError::Gone);
            }
        } else {
            let used: i64 = tx.query_row(
                "SELECT coalesce(sum(size), 0) FROM attachments
                 WHERE owner = ?1 AND purged = 0 AND expires_ms > ?2",
                params![owner, now],
                |r| r.get(0),
            )?;
            if (used.max(0) as u64).saturating_add(size) > quota {
                return Err(RelayError::QuotaExceeded(format!(
                    "this device's attachments would pass the relay's {quota}-byte quota; \
                     wait for older ones to expire"
                )));
            }
            tx.execute(
                "INSERT INTO attachments (id, owner, size, received, expires_ms) VALUES (?1, ?2, ?3, 0, ?4)",
                params![id, owner, size as i64, expires_ms],
            )?;
        }
        tx.commit()?;
        self.blob(id)?
            .ok_or_else(|| RelayError::Internal("attachment row vanished".into()))
    }

    /// Records how many bytes of an upload are on disk.
    pub fn set_blob_received(&mut self, id: &str, received: u64) -> Result<(), RelayError> {
        self.conn.execute(
            "UPDATE attachments SET received = ?2 WHERE id = ?1",
            params![id, received as i64],
        )?;
        Ok(())
    }

    /// Marks expired blobs purged and returns their ids (their files are
    /// the caller's to delete); forgets tombstones past the record horizon.
    pub fn purge_blobs(&mut self, now: i64) -> Result<Vec<String>, RelayError> {
        let tx = self.conn.transaction()?;
        let ids = {
            let mut stmt = tx.prepare(
                "UPDATE attachments SET purged = 1 WHERE purged = 0 AND expires_ms <= ?1 RETURNING id",
            )?;
            stmt.query_map([now], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?
        };
        tx.execute(
            "DELETE FROM attachments WHERE purged = 1 AND expires_ms <= ?1",
            [now - RECORD_RETENTION_MS],
        )?;
        tx.commit()?;
        Ok(ids)
    }
}

/// Schema changes after the first, tracked in `PRAGMA user_version`; each
/// runs in one transaction with its version bump.
const MIGRATIONS: &[&str] = &[
    // 1: envelope sizes (inbox quotas by bytes, pages bounded in bytes) and
    // the timestamp of each device's last accepted registration (replays).
    r#"
    ALTER TABLE envelopes ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
    UPDATE envelopes SET size = length(envelope);
    CREATE INDEX envelopes_sender ON envelopes (recipient, sender);
    ALTER TABLE devices ADD COLUMN registered_ms INTEGER NOT NULL DEFAULT 0;
    "#,
    // 2: each device's organisation certificate (verified by clients).
    r#"
    ALTER TABLE devices ADD COLUMN certificate BLOB;
    "#,
    // 3: the organisation's newest revocation list.
    r#"
    CREATE TABLE revocations (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        list    BLOB NOT NULL
    ) STRICT;
    "#,
    // 4: the link by which another device of the user added a device.
    r#"
    ALTER TABLE devices ADD COLUMN link BLOB;
    "#,
    // 5: devices their user removed: never registered again, and envelopes
    // still addressed to them are dropped instead of failing the batch.
    r#"
    CREATE TABLE removed_devices (
        device_id  TEXT PRIMARY KEY,
        user       TEXT NOT NULL,
        removed_ms INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    "#,
    // 6: the organisation's signed policy and device commands (stored as
    // the administrator made them; the relay cannot sign either), and the
    // newest countersigned audit chain head of each device.
    r#"
    CREATE TABLE org_policy (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        doc     BLOB NOT NULL
    ) STRICT;
    CREATE TABLE org_commands (
        seq       INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        issued_ms INTEGER NOT NULL,
        doc       BLOB NOT NULL
    ) STRICT;
    CREATE INDEX org_commands_device ON org_commands (device_id, seq);
    CREATE TABLE audit_heads (
        device_id TEXT PRIMARY KEY,
        seq       INTEGER NOT NULL,
        hash      BLOB NOT NULL,
        server_ms INTEGER NOT NULL,
        signature BLOB NOT NULL
    ) STRICT, WITHOUT ROWID;
    "#,
    // 7: attachment blobs (the bytes are files; a purged row stays as a
    // tombstone so the id answers 410 until the record horizon).
    r#"
    CREATE TABLE attachments (
        id         TEXT PRIMARY KEY,
        owner      TEXT NOT NULL,
        size       INTEGER NOT NULL,
        received   INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        purged     INTEGER NOT NULL DEFAULT 0
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX attachments_expiry ON attachments (purged, expires_ms);
    CREATE INDEX attachments_owner ON attachments (owner, purged);
    "#,
];

fn migrate(conn: &Connection) -> Result<(), RelayError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let v = i as i64 + 1;
        if v <= version {
            continue;
        }
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql} PRAGMA user_version = {v}; COMMIT;"
        ))
        .inspect_err(|_| {
            let _ = conn.execute_batch("ROLLBACK");
        })?;
    }
    Ok(())
}

/// Why a send was refused by an inbox quota.
#[derive(Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// The recipient device whose inbox is full.
    pub recipient: String,
}

/// Inbox quotas applied by [`Db::enqueue`].
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    /// Most live envelopes per inbox.
    pub messages: u64,
    /// Most live bytes per inbox.
    pub bytes: u64,
    /// Most live envelopes of one sender per inbox.
    pub sender_messages: u64,
    /// Most live bytes of one sender per inbox.
    pub sender_bytes: u64,
}

fn insert_prekeys(
    conn: &Connection,
    device_id: &str,
    keys: &[(u32, Vec<u8>)],
) -> Result<(), RelayError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO one_time_prekeys (device_id, id, key) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
    )?;
    for (id, key) in keys {
        stmt.execute(params![device_id, id, key])?;
    }
    Ok(())
}

fn row_to_queued(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueuedRow> {
    Ok(QueuedRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        sender: r.get(2)?,
        envelope: r.get(3)?,
        sent_ms: r.get(4)?,
        expires_ms: r.get(5)?,
    })
}
