//! Which devices a user has, and which user a device belongs to.
//!
//! The relay directory is the source (it lists each user's devices with
//! their identities); every identity is verified (its id is its signing key)
//! and remembered as a contact, first seen wins: a device never changes user
//! afterwards, whatever the relay says later. Device lists are cached for a
//! minute so a burst of sends costs one lookup.
//!
//! Trust on first use (see `store::contacts`): a device the relay lists
//! for a user we already know is a key change — recorded as `key_changed`,
//! raised as a `SecurityAlert`, and sending to that user is held
//! ([`Error::KeyChanged`]) until the user accepts it — unless it is vouched
//! for: certified by the organisation, or linked (`crypto::link`) by a
//! device already trusted for that user. A user's devices are learned in
//! the order they were added (unlinked first, then each linked one once its
//! linker is trusted), so a new contact's several devices are all trusted at
//! first sight. Our own user's other devices are trusted only when vouched
//! for (we linked them, they linked us, or a chain of links from either).
//!
//! Each lookup also keeps every device id the relay listed, usable or not:
//! a send declares them, so the relay can refuse a send sealed for a list
//! that has since grown (`Engine::forget_directory` then drops the cache).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use occ_protocol::IdentityKeys;
use occ_protocol::api::{DeviceInfo, InboxItem, device_id_hex, parse_device_id};

use super::Engine;
use crate::crypto::link::{link_device, verify_link};
use crate::crypto::org::{CertificateError, verify_certificate, verify_revocations};
use crate::crypto::{CryptoError, DeviceId, IdentityPublic};
use crate::error::{Error, Result};
use crate::store::{SecurityEventKind, Trust, config, contacts};

/// How long a directory lookup is reused.
const DIRECTORY_TTL_MS: i64 = 60_000;

/// A device of a user, verified: its id is its identity's signing key.
#[derive(Clone)]
pub(crate) struct Device {
    pub(crate) id: DeviceId,
    pub(crate) identity: IdentityPublic,
}

/// A sending device's user, and its identity when first learned from the
/// relay (to be checked against the session and remembered).
pub(crate) struct Sender {
    pub(crate) user: String,
    pub(crate) identity: Option<Vec<u8>>,
    /// Vouched for: its organisation certificate verified (organisation
    /// mode), or linked by a device trusted for its user.
    pub(crate) vouched: bool,
}

/// What a user sees to check a contact's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactIdentity {
    /// The contact.
    pub user: String,
    /// The 60-digit safety number between this device's user and the
    /// contact, over every device of both (twelve groups of five digits).
    pub safety_number: String,
    /// The contact's known devices, by hex id, with their trust.
    pub devices: Vec<ContactDevice>,
}

/// One known device of a contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactDevice {
    /// Hex device id (its signing key).
    pub device_id: String,
    /// How far it is trusted.
    pub trust: Trust,
}

/// A user's devices as last looked up.
#[derive(Clone)]
struct Listing {
    devices: Vec<Device>,
    listed: Vec<String>,
    at_ms: i64,
}

/// Device lists fetched recently, and when the revocation list was.
#[derive(Default)]
pub(crate) struct Directory {
    /// Per user: its usable devices, every device id the relay listed
    /// (usable or not), and when.
    cache: Mutex<HashMap<String, Listing>>,
    revocations_checked_ms: Mutex<Option<i64>>,
}

/// Whether `device` is vouched for as `user`'s by links: for our own user,
/// it is the device that linked this one; otherwise `link` verifies and its
/// linker is this device (for our own user) or a device already trusted for
/// `user`.
fn vouched_by_link(
    l: &super::Local,
    me: &str,
    user: &str,
    link: Option<&[u8]>,
    device: &[u8; 32],
) -> Result<bool> {
    if user == me
        && l.enrolment
            .as_ref()
            .and_then(|e| e.linked_by.as_deref())
            .is_some_and(|by| by == hex::encode(device))
    {
        return Ok(true);
    }
    let Some(linker) = link.and_then(|b| verify_link(b, user, device).ok()) else {
        return Ok(false);
    };
    if user == me && linker == l.account.device_id().0 {
        return Ok(true);
    }
    let conn = &l.store.conn;
    Ok(contacts::user_of(conn, &linker)?.as_deref() == Some(user)
        && matches!(
            contacts::trust_of(conn, &linker)?,
            Some(Trust::Trusted | Trust::Verified)
        ))
}

/// Parses and verifies an encoded identity.
pub(crate) fn identity_from(bytes: &[u8]) -> Result<IdentityPublic> {
    let mut r = occ_protocol::codec::Reader::new(bytes);
    let keys = IdentityKeys::read(&mut r).map_err(CryptoError::from)?;
    r.finish().map_err(CryptoError::from)?;
    Ok(IdentityPublic::verify(&keys)?)
}

impl Engine {
    fn directory_refused(&self, detail: String) -> Error {
        let _ = self.raise(SecurityEventKind::DirectoryMismatch, detail.clone());
        Error::untrusted(detail)
    }

    /// Installs this device's organisation certificate on the relay, after
    /// checking it is the pinned organisation's, for this user and device,
    /// and valid now.
    pub(crate) async fn install_certificate(&self, cert: Vec<u8>) -> Result<()> {
        let org = self.org_key()?.ok_or_else(|| {
            Error::invalid("this profile was enrolled without an organisation key")
        })?;
        let (user, device, now) =
            self.with_local(|l| Ok((l.user()?, l.account.device_id().0, l.store.now_ms())))?;
        verify_certificate(&org, Some(&cert), &user, &device, now)
            .map_err(|why| Error::invalid(format!("not installed: {why}")))?;
        self.call(move |api| {
            let cert = cert.clone();
            Box::pin(async move { api.install_certificate(&cert).await })
        })
        .await
    }

    /// Keeps `bytes` if it is a revocation list signed by `org` and newer
    /// than the one held (never an older one); a newer list empties the
    /// directory cache so it applies at once. Returns whether it was newer.
    fn keep_revocations(&self, org: &[u8; 32], bytes: &[u8]) -> Result<bool> {
        let Some(list) = verify_revocations(org, bytes) else {
            return Err(Error::invalid(
                "not a revocation list signed by the organisation",
            ));
        };
        let newer = self.with_local(|l| {
            let held = config::revocations(&l.store.conn)?
                .and_then(|b| verify_revocations(org, &b))
                .map_or(0, |h| h.version);
            if list.version > held {
                config::set_revocations(&l.store.conn, bytes)?;
                return Ok(true);
            }
            Ok(false)
        })?;
        if newer {
            self.forget_directory();
        }
        Ok(newer)
    }

    /// The revoked devices in force: the newest verified list held, after
    /// asking the relay for a newer one at most once a minute (a relay that
    /// withholds a newer list is not detected; one that serves a forged or
    /// older one changes nothing).
    async fn revoked(&self, org: &[u8; 32], now: i64) -> Result<HashSet<[u8; 32]>> {
        let due = self
            .directory
            .revocations_checked_ms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|at| now.saturating_sub(at) >= DIRECTORY_TTL_MS);
        if due {
            let fetched = self
                .call(|api| Box::pin(async move { api.revocations().await }))
                .await;
            match fetched {
                Ok(Some(bytes)) => {
                    if self.keep_revocations(org, &bytes).is_err() {
                        tracing::warn!(
                            "the relay served a revocation list the organisation did not sign"
                        );
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::info!("revocation list not refreshed: {e}"),
            }
            *self
                .directory
                .revocations_checked_ms
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(now);
        }
        self.with_local(|l| {
            Ok(config::revocations(&l.store.conn)?
                .and_then(|b| verify_revocations(org, &b))
                .map(|list| list.devices.into_iter().collect())
                .unwrap_or_default())
        })
    }

    /// Takes a revocation list from the administrator: keeps it if newer and
    /// publishes it on the relay for everyone else.
    pub(crate) async fn publish_revocations(&self, bytes: Vec<u8>) -> Result<()> {
        let org = self.org_key()?.ok_or_else(|| {
            Error::invalid("this profile was enrolled without an organisation key")
        })?;
        self.keep_revocations(&org, &bytes)?;
        self.call(move |api| {
            let bytes = bytes.clone();
            Box::pin(async move { api.publish_revocations(&bytes).await })
        })
        .await
    }

    /// The organisation key pinned at enrolment, if any.
    pub(crate) fn org_key(&self) -> Result<Option<[u8; 32]>> {
        let hex_key =
            self.with_local(|l| Ok(l.enrolment.as_ref().and_then(|e| e.org_key.clone())))?;
        hex_key
            .as_deref()
            .map(super::connection::parse_org_key)
            .transpose()
    }

    /// Records and raises a device refused for want of a valid organisation
    /// certificate.
    pub(crate) fn uncertified(&self, user: &str, device: &str, why: &CertificateError) {
        let _ = self.raise(
            SecurityEventKind::Uncertified,
            format!(
                "the relay lists device {}… for {user} with {why}; it is neither messaged nor believed",
                device.get(..16).unwrap_or(device)
            ),
        );
    }

    /// Records and raises a key change of `user` (a new device `device`).
    pub(crate) fn key_changed(&self, user: &str, device: &str) {
        let _ = self.raise(
            SecurityEventKind::KeyChanged,
            format!(
                "{user} has a new identity key (device {}…); messages to and from it are held until you compare safety numbers and accept",
                device.get(..16).unwrap_or(device)
            ),
        );
    }

    /// The safety number with `user` and their devices as this device knows
    /// them (no network: it is what the user compares).
    pub(crate) fn contact_identity(&self, user: &str) -> Result<ContactIdentity> {
        self.with_local(|l| {
            let me = l.user()?;
            let theirs = contacts::identities_of(&l.store.conn, user)?;
            if theirs.is_empty() {
                return Err(Error::not_found(format!(
                    "no known device of {user}; message them first"
                )));
            }
            let mine = [l.account.device_id().0];
            let keys: Vec<[u8; 32]> = theirs.iter().map(|(d, _)| *d).collect();
            Ok(ContactIdentity {
                user: user.to_string(),
                safety_number: crate::crypto::safety::safety_number(&me, &mine, user, &keys),
                devices: theirs
                    .into_iter()
                    .map(|(d, trust)| ContactDevice {
                        device_id: hex::encode(d),
                        trust,
                    })
                    .collect(),
            })
        })
    }

    /// Accepts `user`'s current keys (`verified`: after comparing safety
    /// numbers); messages held for them go out at the next flush.
    pub(crate) fn accept_identity(&self, user: &str, verified: bool) -> Result<()> {
        let trust = if verified {
            Trust::Verified
        } else {
            Trust::Trusted
        };
        let changed =
            self.with_local(|l| Ok(contacts::set_trust_in(&l.store.conn, user, trust)?))?;
        if changed == 0
            && self
                .with_local(|l| Ok(contacts::devices_of(&l.store.conn, user)?))?
                .is_empty()
        {
            return Err(Error::not_found(format!("no known device of {user}")));
        }
        self.outbox_wake.notify_one();
        Ok(())
    }

    /// Fails with [`Error::KeyChanged`] if any of `devices` (of `user`) is a
    /// key change not yet accepted.
    pub(crate) fn require_trusted(&self, user: &str, devices: &[Device]) -> Result<()> {
        self.with_local(|l| {
            for d in devices {
                if contacts::trust_of(&l.store.conn, &d.id.0)? == Some(contacts::Trust::Pending) {
                    return Err(Error::KeyChanged {
                        user: user.to_string(),
                    });
                }
            }
            Ok(())
        })
    }

    /// Forgets every cached device list (the relay said one is stale).
    pub(crate) fn forget_directory(&self) {
        self.directory
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The verified devices of `user` and every device id the relay listed
    /// for it (usable or not: what a send declares it knew of), cached
    /// briefly; the devices are recorded as contacts.
    pub(crate) async fn directory_of(&self, user: &str) -> Result<(Vec<Device>, Vec<String>)> {
        let now = self.with_local(|l| Ok(l.store.now_ms()))?;
        if let Some(hit) = self
            .directory
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user)
            && now.saturating_sub(hit.at_ms) < DIRECTORY_TTL_MS
        {
            return Ok((hit.devices.clone(), hit.listed.clone()));
        }
        let name = user.to_string();
        let listed = self
            .call(move |api| {
                let name = name.clone();
                Box::pin(async move { api.devices(&name).await })
            })
            .await?;
        let org_key = self.org_key()?;
        let revoked = match &org_key {
            Some(org) => self.revoked(org, now).await?,
            None => HashSet::new(),
        };
        let (me, my_device) = self.with_local(|l| Ok((l.user()?, l.account.device_id())))?;
        let mut listed_uncertified = false;
        let mut checked = Vec::new();
        let all_listed: Vec<String> = listed.devices.iter().map(|d| d.device_id.clone()).collect();
        for d in listed.devices {
            let identity = identity_from(d.identity.as_slice())?;
            if device_id_hex(&identity.keys().signing_key) != d.device_id {
                return Err(self.directory_refused(format!(
                    "the relay listed a device of {user} under a wrong id"
                )));
            }
            if identity.device_id() == my_device {
                continue;
            }
            if let Some(org) = &org_key
                && let Err(why) = verify_certificate(
                    org,
                    d.certificate.as_ref().map(|c| c.as_slice()),
                    user,
                    &identity.device_id().0,
                    now,
                )
                .and_then(|()| {
                    if revoked.contains(&identity.device_id().0) {
                        Err(CertificateError::Revoked)
                    } else {
                        Ok(())
                    }
                })
            {
                self.uncertified(user, &d.device_id, &why);
                listed_uncertified = true;
                continue;
            }
            checked.push((d, identity));
        }
        // A user's devices are learned in the order they were added: those
        // without a link first, then each linked one once its linker is
        // trusted; links that never chain to a trusted device last (unvouched).
        let (mut pending, unlinked): (Vec<_>, Vec<_>) =
            checked.into_iter().partition(|(d, _)| d.link.is_some());
        let vouched = |d: &DeviceInfo, identity: &IdentityPublic| -> Result<bool> {
            let link = d.link.as_ref().map(|b| b.as_slice());
            Ok(org_key.is_some()
                || self
                    .with_local(|l| vouched_by_link(l, &me, user, link, &identity.device_id().0))?)
        };
        let mut devices = Vec::new();
        for (d, identity) in unlinked {
            let v = vouched(&d, &identity)?;
            devices.push(self.learn_device(user, &me, &d, identity, v, now)?);
        }
        loop {
            let before = pending.len();
            let mut next = Vec::new();
            for (d, identity) in pending {
                if vouched(&d, &identity)? {
                    devices.push(self.learn_device(user, &me, &d, identity, true, now)?);
                } else {
                    next.push((d, identity));
                }
            }
            pending = next;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        for (d, identity) in pending {
            devices.push(self.learn_device(user, &me, &d, identity, false, now)?);
        }
        if devices.is_empty() && listed_uncertified {
            return Err(Error::untrusted(format!(
                "no device of {user} carries a valid organisation certificate"
            )));
        }
        self.directory
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                user.to_string(),
                Listing {
                    devices: devices.clone(),
                    listed: all_listed.clone(),
                    at_ms: now,
                },
            );
        Ok((devices, all_listed))
    }

    /// Records a listed device of `user` as a contact (raising a key change)
    /// and checks it has not belonged to another user.
    fn learn_device(
        &self,
        user: &str,
        me: &str,
        listed: &DeviceInfo,
        identity: IdentityPublic,
        vouched: bool,
        now: i64,
    ) -> Result<Device> {
        let (hex_id, encoded) = (listed.device_id.as_str(), listed.identity.as_slice());
        let id = identity.device_id().0;
        let (added, known) = self.with_local(|l| {
            let added =
                contacts::add_in(&l.store.conn, now, &id, user, encoded, vouched, user == me)?;
            Ok((added, contacts::user_of(&l.store.conn, &id)?))
        })?;
        if added == contacts::Added::KeyChange {
            self.key_changed(user, hex_id);
        }
        if let Some(known) = known
            && known != user
        {
            return Err(self.directory_refused(format!(
                "the relay listed device {hex_id} for {user}, but it belongs to {known}"
            )));
        }
        Ok(Device {
            id: identity.device_id(),
            identity,
        })
    }

    /// Signs a link for another device of this user (see
    /// [`crate::crypto::link`]).
    pub(crate) fn link_device(&self, device_id: &str) -> Result<Vec<u8>> {
        let device = parse_device_id(device_id)
            .ok_or_else(|| Error::invalid("a device id is 64 hex characters"))?;
        self.with_local(|l| {
            let me = l.user()?;
            if device == l.account.device_id().0 {
                return Err(Error::invalid("a device cannot link itself"));
            }
            let now = l.store.now_ms();
            Ok(link_device(l.account.identity(), &me, &device, now).encode())
        })
    }

    /// Removes a device of this user from the relay (see
    /// `Client::remove_device`), then forgets the cached directory.
    pub(crate) async fn remove_device(&self, device_id: &str) -> Result<()> {
        // The relay removes only a device of the caller's own user.
        parse_device_id(device_id)
            .ok_or_else(|| Error::invalid("a device id is 64 hex characters"))?;
        let hex_id = device_id.to_string();
        self.call(move |api| {
            let hex_id = hex_id.clone();
            Box::pin(async move { api.remove_device(&hex_id).await })
        })
        .await?;
        self.forget_directory();
        Ok(())
    }

    /// The user of every sending device on a page: from the contacts, or —
    /// for a device seen for the first time — from the relay directory (the
    /// authority on which device belongs to which user). `None` for a device
    /// the relay does not know.
    pub(crate) async fn resolve_senders(
        &self,
        items: &[InboxItem],
    ) -> Result<HashMap<DeviceId, Option<Sender>>> {
        let org_key = self.org_key()?;
        let now = self.with_local(|l| Ok(l.store.now_ms()))?;
        let revoked = match &org_key {
            Some(org) => self.revoked(org, now).await?,
            None => HashSet::new(),
        };
        let mut out = HashMap::new();
        for item in items {
            let Some(id) = parse_device_id(&item.sender_device) else {
                continue;
            };
            let id = DeviceId(id);
            if out.contains_key(&id) {
                continue;
            }
            let known = self.with_local(|l| Ok(contacts::user_of(&l.store.conn, &id.0)?))?;
            if revoked.contains(&id.0) {
                let user = known.clone().unwrap_or_default();
                self.uncertified(&user, &id.to_hex(), &CertificateError::Revoked);
                out.insert(id, None);
                continue;
            }
            let sender = match known {
                Some(user) => Some(Sender {
                    user,
                    identity: None,
                    vouched: false,
                }),
                None => {
                    let hex = id.to_hex();
                    let looked_up = self
                        .call(move |api| {
                            let hex = hex.clone();
                            Box::pin(async move { api.device(&hex).await })
                        })
                        .await;
                    match looked_up {
                        Ok(d) if d.device_id == id.to_hex() => {
                            let checked = match &org_key {
                                None => self
                                    .with_local(|l| {
                                        let me = l.user()?;
                                        vouched_by_link(
                                            l,
                                            &me,
                                            &d.user,
                                            d.link.as_ref().map(|b| b.as_slice()),
                                            &id.0,
                                        )
                                    })
                                    .map(Ok)?,
                                Some(org) => verify_certificate(
                                    org,
                                    d.certificate.as_ref().map(|c| c.as_slice()),
                                    &d.user,
                                    &id.0,
                                    now,
                                )
                                .map(|()| true),
                            };
                            match checked {
                                Ok(vouched) => Some(Sender {
                                    user: d.user,
                                    identity: Some(d.identity.0),
                                    vouched,
                                }),
                                Err(why) => {
                                    self.uncertified(&d.user, &d.device_id, &why);
                                    None
                                }
                            }
                        }
                        Ok(_) | Err(Error::NotFound { .. }) => None,
                        Err(e) => return Err(e),
                    }
                }
            };
            out.insert(id, sender);
        }
        Ok(out)
    }
}
