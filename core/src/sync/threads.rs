//! Thread bookkeeping: direct-thread ids, member lists, sender keys.
//!
//! - A direct thread's id is derived from the two user names, the same on
//!   both sides; ids with that prefix are never group threads.
//! - A group thread's member list changes when we send with new members, when
//!   a member's `ThreadInfo` update arrives, or when we remove someone. Any
//!   change makes the next message re-seal our sender key and the list to
//!   every member device.
//! - Its admin is its creator (whoever we first hear the member list from,
//!   or ourselves): only the admin adds, removes or renames; other members'
//!   updates must repeat the current list (`threads.admin`, migration 6).
//!   Threads from before have no admin and keep the old rule.
//! - A new thread's id is `g:<user>:<128 random bits>`
//!   (`Client::new_thread_id`), bound to `<user>`: nobody else can start the
//!   thread, so it cannot be squatted. Neither side starts a thread under any
//!   other id (free-form ids of threads that already exist locally, from
//!   before, keep working with their recorded admin).
//! - Removing a member forgets their sender keys and rotates ours, so nothing
//!   sent afterwards is readable by them, and queues a control row (the new
//!   list and our new key) that reaches every remaining member device at the
//!   next flush, without waiting for a message; a received update that drops
//!   members does the same on the receiving side, so no member encrypts to
//!   the removed user again.
//!
//! The `apply_*` functions run inside the inbox page's transaction, on the
//! page's working copy of thread keys; they refuse what a non-member sends.

use std::collections::HashMap;

use occ_protocol::SenderKeyDistribution;
use occ_protocol::ids::is_direct_thread_id;
use occ_protocol::payload::{Payload, ThreadInfo};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::Local;
use super::incoming::Refusal;
use crate::crypto::{DeviceId, ThreadKeys};
use crate::error::{Error, Result};
use crate::store::outbox::{self, CONTROL_PREFIX, NewOutboxRow, Target};
use crate::store::threads::{self as store_threads, OnExisting, ThreadKind};
use crate::store::{SecurityEventKind, contacts, crypto_state, distributions};

/// The direct thread id of two users: the same on both sides.
pub fn direct_thread_id(a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    let mut h = Sha256::new();
    h.update(b"occ/v1/direct-thread");
    h.update((x.len() as u32).to_be_bytes());
    h.update(x.as_bytes());
    h.update((y.len() as u32).to_be_bytes());
    h.update(y.as_bytes());
    format!(
        "{}{}",
        occ_protocol::ids::DIRECT_THREAD_PREFIX,
        &hex::encode(h.finalize())[..24]
    )
}

/// Seconds of trusted time, for key rotation.
pub(crate) fn secs(now_ms: i64) -> u64 {
    u64::try_from(now_ms / 1000).unwrap_or(0)
}

/// A thread's admin: the creator its id is bound to, else the one recorded.
pub(crate) fn thread_admin(conn: &Connection, id: &str) -> Result<Option<String>> {
    if let Some(creator) = occ_protocol::ids::bound_thread_admin(id) {
        return Ok(Some(creator.to_string()));
    }
    Ok(store_threads::admin_of(conn, id)?)
}

/// A new thread id bound to `me` (see `occ_protocol::ids::bound_thread_admin`).
pub(crate) fn new_thread_id(me: &str) -> Result<String> {
    let id = format!("g:{me}:{}", super::random_hex::<16>()?);
    if !occ_protocol::ids::valid_thread_id(&id) {
        return Err(Error::invalid(
            "user names longer than 29 characters cannot create bound thread ids",
        ));
    }
    Ok(id)
}

/// The member list a message to thread `id` goes to: the current members
/// plus `add` plus ourselves, sorted. Refuses invalid names and reserved ids.
pub(crate) fn members_for_send(
    conn: &Connection,
    me: &str,
    id: &str,
    add: &[String],
) -> Result<Vec<String>> {
    if !occ_protocol::ids::valid_thread_id(id) {
        return Err(Error::invalid(format!(
            "a thread id must be 1 to {} characters of A-Z a-z 0-9 - _ . : @",
            occ_protocol::ids::MAX_THREAD_ID_LEN
        )));
    }
    if is_direct_thread_id(id) {
        return Err(Error::invalid(format!(
            "thread ids starting with {} are reserved",
            occ_protocol::ids::DIRECT_THREAD_PREFIX
        )));
    }
    let current = store_threads::members(conn, id)?;
    let mut all = current.clone();
    for m in add.iter().map(String::as_str).chain(std::iter::once(me)) {
        if !occ_protocol::ids::valid_user_name(m) {
            return Err(Error::invalid(format!("invalid user name {m:?}")));
        }
        if !all.iter().any(|x| x == m) {
            all.push(m.to_string());
        }
    }
    all.sort();
    if all.len() < 2 {
        return Err(Error::invalid("a thread needs at least one other member"));
    }
    if current.is_empty() {
        match occ_protocol::ids::bound_thread_admin(id) {
            Some(creator) if creator == me => {}
            Some(creator) => {
                return Err(Error::invalid(format!(
                    "{id} belongs to {creator}: only they can start it"
                )));
            }
            None => {
                return Err(Error::invalid(format!(
                    "no thread {id}: start a thread with a fresh id bound to you \
                     (Client::new_thread_id, occ send --thread new)"
                )));
            }
        }
    }
    if !current.is_empty()
        && all != current
        && let Some(admin) = thread_admin(conn, id)?
        && admin != me
    {
        return Err(Error::invalid(format!(
            "only {admin}, who created {id}, changes its members"
        )));
    }
    if all.len() > occ_protocol::payload::MAX_MEMBERS {
        return Err(Error::invalid(format!(
            "a thread has at most {} members",
            occ_protocol::payload::MAX_MEMBERS
        )));
    }
    Ok(all)
}

/// Stores a (possibly) new member list inside the send's transaction; when
/// it changed, everyone must learn it: the next seal sends it (with our
/// current sender key, which receivers already know and ignore) to every
/// member device again.
pub(crate) fn record_members_in(
    conn: &Connection,
    me: &str,
    id: &str,
    members: &[String],
) -> Result<()> {
    let current = store_threads::members(conn, id)?;
    if current.is_empty() {
        // A thread we create: we are its admin.
        store_threads::set_admin_if_unset_in(conn, id, me)?;
    }
    if current != members {
        store_threads::set_members_in(conn, id, members)?;
        distributions::forget_shared_in(conn, id)?;
    }
    Ok(())
}

/// Forgets `user`'s sender keys in `keys` (every device of theirs we know).
fn forget_user_keys(conn: &Connection, keys: &mut ThreadKeys, user: &str, now: i64) -> Result<()> {
    for device in contacts::devices_of(conn, user)? {
        keys.remove_member(DeviceId(device), secs(now))?;
    }
    Ok(())
}

/// How long the relay keeps a membership change for a member who is offline.
const CONTROL_TTL_SECS: i64 = 7 * 24 * 3600;

impl Local {
    /// Removes `user` from a thread: their sender keys are forgotten and ours
    /// is rotated, so nothing sent afterwards is readable by them. A control
    /// row queued in the same transaction carries the new member list and our
    /// new key to every remaining member device at the next flush, without
    /// waiting for a message: each member then forgets the user's keys,
    /// rotates its own and stops encrypting to the user.
    pub(crate) fn remove_member(&mut self, thread_id: &str, user: &str) -> Result<()> {
        let me = self.user()?;
        let members = store_threads::members(&self.store.conn, thread_id)?;
        if !members.iter().any(|m| m == user) {
            return Err(Error::not_found(format!(
                "{user} as a member of {thread_id}"
            )));
        }
        if user == me {
            return Err(Error::invalid("cannot remove yourself from a thread"));
        }
        if let Some(admin) = thread_admin(&self.store.conn, thread_id)?
            && admin != me
        {
            return Err(Error::invalid(format!(
                "only {admin}, who created {thread_id}, removes members"
            )));
        }
        let remaining: Vec<String> = members.into_iter().filter(|m| m != user).collect();
        let now = self.store.now_ms();
        let tx = self.store.conn.transaction()?;
        let mut keys = match crypto_state::load_thread_keys_in(&tx, thread_id)? {
            Some(k) => k,
            None => ThreadKeys::new(thread_id.as_bytes(), secs(now))?,
        };
        forget_user_keys(&tx, &mut keys, user, now)?;
        keys.rotate(secs(now))?;
        store_threads::set_members_in(&tx, thread_id, &remaining)?;
        crypto_state::save_thread_keys_in(&tx, now, &keys)?;
        distributions::forget_shared_in(&tx, thread_id)?;
        let title = store_threads::title_of(&tx, thread_id)?.unwrap_or_default();
        let info = Payload::ThreadInfo(ThreadInfo {
            thread_id: thread_id.to_string(),
            title,
            members: remaining,
        })
        .encode();
        outbox::enqueue_in(
            &tx,
            now,
            &NewOutboxRow {
                idempotency_key: &super::random_hex::<16>()?,
                message_id: &format!("{CONTROL_PREFIX}{}", super::random_hex::<16>()?),
                target: &Target::Thread(thread_id.to_string()),
                payload: &info,
                ttl_secs: CONTROL_TTL_SECS,
                expires_ms: now.saturating_add(CONTROL_TTL_SECS * 1000),
            },
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// The page's working copy of thread keys: loaded on first use, saved when
/// the page commits.
#[derive(Default)]
pub(crate) struct ThreadCache {
    keys: HashMap<String, ThreadKeys>,
}

impl ThreadCache {
    /// The keys of `thread`, loaded from the store (or fresh) on first use.
    pub(crate) fn get_or_load(
        &mut self,
        conn: &Connection,
        thread: &str,
        now: i64,
    ) -> Result<&mut ThreadKeys> {
        if !self.keys.contains_key(thread) {
            let keys = match crypto_state::load_thread_keys_in(conn, thread)? {
                Some(k) => k,
                None => ThreadKeys::new(thread.as_bytes(), secs(now))?,
            };
            self.keys.insert(thread.to_string(), keys);
        }
        self.keys
            .get_mut(thread)
            .ok_or_else(|| Error::internal("thread key cache"))
    }

    /// The keys of `thread` if any are stored (never creates them).
    pub(crate) fn existing(
        &mut self,
        conn: &Connection,
        thread: &str,
    ) -> Result<Option<&mut ThreadKeys>> {
        if !self.keys.contains_key(thread) {
            match crypto_state::load_thread_keys_in(conn, thread)? {
                Some(k) => {
                    self.keys.insert(thread.to_string(), k);
                }
                None => return Ok(None),
            }
        }
        Ok(self.keys.get_mut(thread))
    }

    /// A copy of one thread's keys, to put back if an item is refused.
    pub(crate) fn snapshot(&self, thread: &str) -> Option<ThreadKeys> {
        self.keys.get(thread).cloned()
    }

    /// Puts back a snapshot (or forgets keys loaded since).
    pub(crate) fn restore(&mut self, thread: &str, snapshot: Option<ThreadKeys>) {
        match snapshot {
            Some(k) => {
                self.keys.insert(thread.to_string(), k);
            }
            None => {
                self.keys.remove(thread);
            }
        }
    }

    /// Saves every loaded thread's keys (inside the page's transaction).
    pub(crate) fn save_in(&self, conn: &Connection, now: i64) -> Result<()> {
        for keys in self.keys.values() {
            crypto_state::save_thread_keys_in(conn, now, keys)?;
        }
        Ok(())
    }
}

/// Applies a member's `ThreadInfo` (title and member list).
pub(crate) fn apply_thread_info(
    conn: &Connection,
    now: i64,
    me: &str,
    sender_user: &str,
    info: &ThreadInfo,
    cache: &mut ThreadCache,
) -> std::result::Result<(), Refusal> {
    if is_direct_thread_id(&info.thread_id) {
        return Err(Refusal::refused(
            SecurityEventKind::Misrouted,
            "a membership update for a direct conversation",
        ));
    }
    let current = store_threads::members(conn, &info.thread_id)?;
    if !current.is_empty() && !current.iter().any(|m| m == sender_user) {
        return Err(Refusal::refused(
            SecurityEventKind::NonMember,
            format!(
                "{sender_user} updated {} without being a member",
                info.thread_id
            ),
        ));
    }
    if !info.members.iter().any(|m| m == sender_user) {
        return Err(Refusal::refused(
            SecurityEventKind::NonMember,
            format!(
                "{sender_user} sent a member list of {} without themselves",
                info.thread_id
            ),
        ));
    }
    // Only the thread's admin (its creator) changes its members or title;
    // other members' updates must repeat the current list.
    let admin = thread_admin(conn, &info.thread_id)?;
    // A thread is started only under an id bound to its starter: nobody can
    // squat another's thread, whatever id they learn or guess.
    if current.is_empty()
        && occ_protocol::ids::bound_thread_admin(&info.thread_id) != Some(sender_user)
    {
        return Err(Refusal::refused(
            SecurityEventKind::NonMember,
            format!(
                "{sender_user} tried to start {}, an id not bound to them",
                info.thread_id
            ),
        ));
    }
    if !current.is_empty()
        && let Some(admin) = &admin
        && admin != sender_user
    {
        let mut proposed = info.members.clone();
        proposed.sort();
        let mut unchanged = current.clone();
        unchanged.sort();
        if proposed != unchanged {
            return Err(Refusal::refused(
                SecurityEventKind::NonMember,
                format!(
                    "{sender_user} changed the members of {} but only its admin {admin} may",
                    info.thread_id
                ),
            ));
        }
    }
    if !info.members.iter().any(|m| m == me) {
        // Not for us (we are not in it); nothing to keep.
        return Ok(());
    }
    let rename = if current.is_empty() || admin.as_deref().is_none_or(|a| a == sender_user) {
        OnExisting::Rename
    } else {
        OnExisting::Keep
    };
    store_threads::upsert_in(
        conn,
        &info.thread_id,
        &info.title,
        ThreadKind::Group,
        now,
        rename,
    )?;
    if current.is_empty() {
        // The first member list we hear of names its sender as the admin.
        store_threads::set_admin_if_unset_in(conn, &info.thread_id, sender_user)?;
    }
    store_threads::set_members_in(conn, &info.thread_id, &info.members)?;
    let removed: Vec<&String> = current
        .iter()
        .filter(|m| !info.members.contains(m))
        .collect();
    if !removed.is_empty()
        && let Some(keys) = cache.existing(conn, &info.thread_id)?
    {
        // Forget removed members' keys and rotate ours: the next send
        // redistributes only to the remaining members.
        for user in removed {
            forget_user_keys(conn, keys, user, now)?;
        }
        distributions::forget_shared_in(conn, &info.thread_id)?;
    }
    Ok(())
}

/// Accepts a member device's sender key for a thread.
pub(crate) fn apply_sender_key(
    conn: &Connection,
    now: i64,
    sender_user: &str,
    sender: DeviceId,
    d: &SenderKeyDistribution,
    cache: &mut ThreadCache,
) -> std::result::Result<(), Refusal> {
    let thread = std::str::from_utf8(&d.thread_id)
        .map_err(|_| Refusal::refused(SecurityEventKind::InvalidPayload, "thread id"))?;
    if is_direct_thread_id(thread) {
        return Err(Refusal::refused(
            SecurityEventKind::Misrouted,
            "a sender key for a direct conversation",
        ));
    }
    if !store_threads::is_member(conn, thread, sender_user)? {
        return Err(Refusal::refused(
            SecurityEventKind::NonMember,
            format!("{sender_user} sent a key for {thread} without being a member"),
        ));
    }
    let keys = cache.get_or_load(conn, thread, now)?;
    keys.add_member_key(sender, d)
        .map_err(|e| Refusal::refused(SecurityEventKind::RefusedSenderKey, e.to_string()))?;
    distributions::index_in(conn, &sender.0, &d.distribution_id, thread)?;
    Ok(())
}
