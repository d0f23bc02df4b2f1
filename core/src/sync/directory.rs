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
//! ([`Error::KeyChanged`]) until the user accepts it.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use occ_protocol::IdentityKeys;
use occ_protocol::api::{InboxItem, device_id_hex, parse_device_id};

use super::Engine;
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
    /// Its organisation certificate verified (organisation mode).
    pub(crate) certified: bool,
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

/// Device lists fetched recently, and when the revocation list was.
#[derive(Default)]
pub(crate) struct Directory {
    cache: Mutex<HashMap<String, (Vec<Device>, i64)>>,
    revocations_checked_ms: Mutex<Option<i64>>,
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
            self.directory
                .cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
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

    /// The verified devices of `user` (cached briefly), recorded as contacts.
    pub(crate) async fn devices_of(&self, user: &str) -> Result<Vec<Device>> {
        let now = self.with_local(|l| Ok(l.store.now_ms()))?;
        if let Some((devices, at)) = self
            .directory
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user)
            && now.saturating_sub(*at) < DIRECTORY_TTL_MS
        {
            return Ok(devices.clone());
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
        let mut listed_uncertified = false;
        let mut devices = Vec::new();
        for d in listed.devices {
            let identity = identity_from(d.identity.as_slice())?;
            if device_id_hex(&identity.keys().signing_key) != d.device_id {
                return Err(self.directory_refused(format!(
                    "the relay listed a device of {user} under a wrong id"
                )));
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
            let certified = org_key.is_some();
            let (added, known) = self.with_local(|l| {
                let id = identity.device_id().0;
                let added = contacts::add_in(
                    &l.store.conn,
                    now,
                    &id,
                    user,
                    d.identity.as_slice(),
                    certified,
                )?;
                Ok((added, contacts::user_of(&l.store.conn, &id)?))
            })?;
            if added == contacts::Added::KeyChange {
                self.key_changed(user, &d.device_id);
            }
            if let Some(known) = known
                && known != user
            {
                return Err(self.directory_refused(format!(
                    "the relay listed device {} for {user}, but it belongs to {known}",
                    d.device_id
                )));
            }
            devices.push(Device {
                id: identity.device_id(),
                identity,
            });
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
            .insert(user.to_string(), (devices.clone(), now));
        Ok(devices)
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
                    certified: false,
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
                                None => Ok(false),
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
                                Ok(certified) => Some(Sender {
                                    user: d.user,
                                    identity: Some(d.identity.0),
                                    certified,
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
