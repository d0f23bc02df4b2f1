//! Which devices a user has, and which user a device belongs to.
//!
//! The relay directory is the source (it lists each user's devices with
//! their identities); every identity is verified (its id is its signing key)
//! and remembered as a contact, first seen wins: a device never changes user
//! afterwards, whatever the relay says later. Device lists are cached for a
//! minute so a burst of sends costs one lookup.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use occ_protocol::IdentityKeys;
use occ_protocol::api::{InboxItem, device_id_hex, parse_device_id};

use super::Engine;
use crate::crypto::{CryptoError, DeviceId, IdentityPublic};
use crate::error::{Error, Result};
use crate::store::{SecurityEventKind, contacts};

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
}

/// Device lists fetched recently.
#[derive(Default)]
pub(crate) struct Directory {
    cache: Mutex<HashMap<String, (Vec<Device>, i64)>>,
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
        let _ = self.with_local(|l| {
            Ok(l.store
                .record_security_event(SecurityEventKind::DirectoryMismatch, &detail)?)
        });
        self.events
            .alert(SecurityEventKind::DirectoryMismatch, detail.clone());
        Error::untrusted(detail)
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
        let mut devices = Vec::new();
        for d in listed.devices {
            let identity = identity_from(d.identity.as_slice())?;
            if device_id_hex(&identity.keys().signing_key) != d.device_id {
                return Err(self.directory_refused(format!(
                    "the relay listed a device of {user} under a wrong id"
                )));
            }
            let known = self.with_local(|l| {
                let id = identity.device_id().0;
                contacts::add_in(&l.store.conn, now, &id, user, d.identity.as_slice())?;
                Ok(contacts::user_of(&l.store.conn, &id)?)
            })?;
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
            let sender = match known {
                Some(user) => Some(Sender {
                    user,
                    identity: None,
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
                        Ok(d) if d.device_id == id.to_hex() => Some(Sender {
                            user: d.user,
                            identity: Some(d.identity.0),
                        }),
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
