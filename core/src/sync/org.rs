//! The organisation's documents and the audit trail's countersigned heads,
//! at each contact with the relay.
//!
//! - [`Engine::org_sync`]: fetch the policy and this device's commands,
//!   verify them against the pinned organisation key ([`crate::policy`]),
//!   apply what is newer, refuse and record the rest. A wipe closes the
//!   client and removes the profile's files.
//! - [`Engine::countersign_audit`]: upload the audit chain head when it
//!   moved; keep the relay's countersignature once it verifies against the
//!   service key learned at enrolment.
//! - [`Engine::audit_verify`]: the chain, the held countersignatures and,
//!   when the relay answers, the newest head it countersigned (which the
//!   device holder cannot delete).

use ed25519_dalek::{Signature, VerifyingKey};
use occ_protocol::api::{AuditHead, audit_head_message, parse_device_id};
use occ_protocol::org::{CommandAction, OrgPolicy};
use rusqlite::Connection;

use super::{Engine, Enrolment, Local};
use crate::audit::{AuditBreak, AuditKind, verify_chain};
use crate::error::{Error, Result};
use crate::events::ClientEvent;
use crate::policy::{DocError, verify_command, verify_policy};
use crate::store::audit::{NewEntry, append_in};
use crate::store::{SecurityEventKind, config, persist_high_water, security_events};

/// What verifying the audit trail found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Entries checked.
    pub entries: u64,
    /// The newest entry the relay countersigned, if any.
    pub countersigned_seq: Option<u64>,
    /// Whether the relay's own newest record was checked too.
    pub checked_with_relay: bool,
    /// The first break, if any.
    pub broken: Option<AuditBreak>,
}

fn org_key_of(enrolment: &Enrolment) -> Result<Option<[u8; 32]>> {
    match &enrolment.org_key {
        None => Ok(None),
        Some(hex) => parse_device_id(hex)
            .map(Some)
            .ok_or_else(|| Error::corrupt("the pinned organisation key")),
    }
}

/// The policy in force: the held document, verified again.
pub(crate) fn held_policy(conn: &Connection, enrolment: &Enrolment) -> Result<Option<OrgPolicy>> {
    let Some(org) = org_key_of(enrolment)? else {
        return Ok(None);
    };
    Ok(config::org_policy(conn)?.and_then(|doc| verify_policy(&org, &doc).ok()))
}

/// The relay's service key learned at enrolment.
pub(crate) fn service_key(enrolment: &Enrolment) -> Result<VerifyingKey> {
    verifying_key_hex(&enrolment.service_key)
}

/// An Ed25519 key stored as 64 hex characters.
pub(crate) fn verifying_key_hex(hex_key: &str) -> Result<VerifyingKey> {
    parse_device_id(hex_key)
        .and_then(|k| VerifyingKey::from_bytes(&k).ok())
        .ok_or_else(|| Error::corrupt("the stored service key"))
}

/// Verifies a countersignature of this device's head by the relay's key.
fn countersignature_ok(enrolment: &Enrolment, head: &AuditHead) -> Result<bool> {
    let key = service_key(enrolment)?;
    let Ok(sig) = <[u8; 64]>::try_from(head.signature.as_slice()) else {
        return Ok(false);
    };
    Ok(head.device_id.eq_ignore_ascii_case(&enrolment.device_id)
        && key
            .verify_strict(
                &audit_head_message(
                    &head.device_id,
                    head.seq,
                    head.hash.as_slice(),
                    head.server_time_ms,
                ),
                &Signature::from_bytes(&sig),
            )
            .is_ok())
}

impl Local {
    /// Whether the organisation locked this profile: if so, an error.
    pub(crate) fn check_unlocked(&self) -> Result<()> {
        if config::locked(&self.store.conn)? {
            return Err(Error::denied(
                "the organisation locked this profile; ask your administrator",
            ));
        }
        Ok(())
    }

    fn refuse_doc(&mut self, what: &str, e: &DocError) -> Result<()> {
        let now = self.store.now_ms();
        let tx = self.store.conn.transaction()?;
        security_events::record_in(
            &tx,
            now,
            SecurityEventKind::OrgDocRefused,
            &format!("{what}: {e}"),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Applies a policy document if it is the organisation's and newer than
    /// the held one; refuses (and records) anything else. Returns whether it
    /// was applied; an identical copy of the held one is no change.
    pub(crate) fn apply_policy(&mut self, doc: &[u8]) -> Result<bool> {
        let enrolment = self.enrolment()?.clone();
        let Some(org) = org_key_of(&enrolment)? else {
            return Err(Error::invalid("this profile pinned no organisation key"));
        };
        if config::org_policy(&self.store.conn)?.as_deref() == Some(doc) {
            return Ok(false);
        }
        let policy = match verify_policy(&org, doc) {
            Ok(p) => p,
            Err(e) => {
                self.refuse_doc("policy", &e)?;
                return Err(Error::untrusted(e.to_string()));
            }
        };
        let held = held_policy(&self.store.conn, &enrolment)?.map_or(0, |p| p.version);
        if policy.version <= held {
            let e = DocError::Stale;
            self.refuse_doc(
                &format!("policy version {} (held {held})", policy.version),
                &e,
            )?;
            return Err(Error::untrusted(e.to_string()));
        }
        let keep_ms = policy.max_keep_secs.map(|s| {
            i64::try_from(s)
                .ok()
                .and_then(|s| s.checked_mul(1000))
                .unwrap_or(i64::MAX)
        });
        let now = self.store.now_ms();
        {
            let tx = self.store.conn.transaction()?;
            config::set_org_policy(&tx, doc)?;
            append_in(
                &tx,
                now,
                &NewEntry::of(AuditKind::PolicyUpdated)
                    .detail(&format!("version {}", policy.version)),
            )?;
            persist_high_water(&tx, now)?;
            tx.commit()?;
        }
        match keep_ms {
            Some(ms) => self.store.set_org_max_keep_period_ms(ms)?,
            None => self.store.clear_org_max_keep_period()?,
        }
        if let Some(max) = policy.max_unlock_failures {
            crate::store::lockfile::set_max_failures(self.store.dir(), max)?;
        }
        self.policy = Some(policy);
        Ok(true)
    }

    /// Applies a command if it is the organisation's, for this device, and
    /// newer than the last obeyed; returns what to do (the caller wipes).
    pub(crate) fn apply_command(&mut self, doc: &[u8]) -> Result<Option<CommandAction>> {
        let enrolment = self.enrolment()?.clone();
        let Some(org) = org_key_of(&enrolment)? else {
            return Ok(None);
        };
        let command = match verify_command(&org, doc, &enrolment.user, &enrolment.device_id) {
            Ok(c) => c,
            Err(e) => {
                self.refuse_doc("device command", &e)?;
                return Ok(None);
            }
        };
        if command.issued_ms <= config::last_command_ms(&self.store.conn)? {
            return Ok(None); // obeyed before (the relay serves recent ones)
        }
        let now = self.store.now_ms();
        let kind = match command.action {
            CommandAction::Lock => AuditKind::Lock,
            CommandAction::Unlock => AuditKind::Unlock,
            CommandAction::Wipe => AuditKind::Wipe,
        };
        let tx = self.store.conn.transaction()?;
        config::set_last_command_ms(&tx, command.issued_ms)?;
        match command.action {
            CommandAction::Lock | CommandAction::Wipe => config::set_locked(&tx, true)?,
            CommandAction::Unlock => config::set_locked(&tx, false)?,
        }
        append_in(
            &tx,
            now,
            &NewEntry::of(kind).detail(&format!("issued_ms={}", command.issued_ms)),
        )?;
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(Some(command.action))
    }
}

impl Engine {
    /// Fetches and applies the organisation's policy and commands (nothing
    /// without a pinned organisation key). Returns whether the profile was
    /// wiped (the engine is then closed).
    pub(crate) async fn org_sync(&self) -> Result<bool> {
        let has_org = self.with_local(|l| Ok(l.enrolment()?.org_key.is_some()))?;
        if !has_org {
            return Ok(false);
        }
        if let Some(doc) = self
            .call(|api| Box::pin(async move { api.policy().await }))
            .await?
            && !self.seen(&doc)?
        {
            match self.with_local(|l| l.apply_policy(&doc)) {
                Ok(true) => self.events.emit(ClientEvent::PolicyChanged),
                Ok(false) => {}
                Err(Error::Untrusted { reason }) => {
                    self.events.alert(SecurityEventKind::OrgDocRefused, reason);
                }
                // A local failure: judged again at the next contact.
                Err(e) => return Err(e),
            }
            self.mark_seen(&doc)?;
        }
        let commands = self
            .call(|api| Box::pin(async move { api.commands().await }))
            .await?;
        for doc in commands {
            if self.seen(&doc)? {
                continue;
            }
            let action = self.with_local(|l| l.apply_command(&doc))?;
            self.mark_seen(&doc)?;
            match action {
                Some(CommandAction::Wipe) => {
                    // The relay countersigns the trail with its `wipe` entry
                    // first: the record outlives the profile.
                    if let Err(e) = self.countersign_audit().await {
                        tracing::info!("audit head before the wipe not countersigned: {e}");
                    }
                    self.wipe()?;
                    return Ok(true);
                }
                Some(CommandAction::Lock) => {
                    self.events.emit(ClientEvent::WithdrawNotifications {
                        message_ids: Vec::new(),
                        relay_message_ids: Vec::new(),
                        all: true,
                        reason: crate::events::WithdrawReason::Locked,
                    });
                    self.events.emit(ClientEvent::Locked { locked: true });
                }
                Some(CommandAction::Unlock) => {
                    self.events.emit(ClientEvent::Locked { locked: false })
                }
                None => {}
            }
        }
        Ok(false)
    }

    /// Whether `doc` was judged before (the relay serves the same ones at
    /// every contact).
    fn seen(&self, doc: &[u8]) -> Result<bool> {
        self.with_local(|l| Ok(config::doc_seen(&l.store.conn, doc)?))
    }

    /// Records `doc` as judged, once applied or refused (not after a local
    /// failure, so it is judged again).
    fn mark_seen(&self, doc: &[u8]) -> Result<()> {
        self.with_local(|l| {
            let now = l.store.now_ms();
            Ok(config::mark_doc_seen(&l.store.conn, now, doc)?)
        })
    }

    /// Closes the engine and removes the profile's files (the app then
    /// deletes the key from its keystore).
    pub(crate) fn wipe(&self) -> Result<()> {
        let dir = self.with_local(|l| Ok(l.store.dir().to_path_buf()))?;
        self.close();
        crate::store::profiles::wipe_dir(&dir)?;
        self.events.emit(ClientEvent::WithdrawNotifications {
            message_ids: Vec::new(),
            relay_message_ids: Vec::new(),
            all: true,
            reason: crate::events::WithdrawReason::Wiped,
        });
        self.events.emit(ClientEvent::ProfileWiped);
        self.events.end();
        Ok(())
    }

    /// Uploads the audit chain head if it moved since the last
    /// countersignature, and keeps the verified countersignature.
    pub(crate) async fn countersign_audit(&self) -> Result<Option<u64>> {
        let (head, held, enrolment) = self.with_local(|l| {
            Ok((
                l.store.audit_head()?,
                l.store.audit_countersigned_seq()?,
                l.enrolment()?.clone(),
            ))
        })?;
        let Some((seq, hash)) = head else {
            return Ok(None);
        };
        if held.is_some_and(|h| h >= seq) {
            return Ok(held);
        }
        let signed = self
            .call(move |api| Box::pin(async move { api.countersign_audit_head(seq, &hash).await }))
            .await?;
        if signed.seq != seq
            || signed.hash.as_slice() != hash
            || !countersignature_ok(&enrolment, &signed)?
        {
            return Err(Error::untrusted(
                "the relay's countersignature of the audit head does not verify",
            ));
        }
        self.with_local(|l| {
            Ok(l.store.save_audit_countersignature(
                seq,
                &hash,
                signed.server_time_ms,
                signed.signature.as_slice(),
            )?)
        })?;
        Ok(Some(seq))
    }

    /// Verifies the audit trail: the chain, the countersignatures held and,
    /// with `online`, the newest head the relay countersigned.
    pub(crate) async fn audit_verify(&self, online: bool) -> Result<AuditReport> {
        let mut heads = self.with_local(|l| Ok(l.store.audit_countersigned()?))?;
        let mut checked_with_relay = false;
        if online {
            let enrolment = self.with_local(|l| Ok(l.enrolment()?.clone()))?;
            if let Some(h) = self
                .call(|api| Box::pin(async move { api.audit_head().await }))
                .await?
            {
                if !countersignature_ok(&enrolment, &h)? {
                    return Err(Error::untrusted(
                        "the relay's audit head is not signed by its service key",
                    ));
                }
                heads.push((h.seq, h.hash.0));
            }
            checked_with_relay = true;
        }
        let countersigned_seq = heads.iter().map(|h| h.0).max();
        let result =
            self.with_local(|l| Ok(l.store.audit_walk(|it| verify_chain(it, &heads))?))?;
        Ok(match result {
            Ok((entries, _)) => AuditReport {
                entries,
                countersigned_seq,
                checked_with_relay,
                broken: None,
            },
            Err(b) => AuditReport {
                entries: 0,
                countersigned_seq,
                checked_with_relay,
                broken: Some(b),
            },
        })
    }
}
