//! `occ-relay admin`: the organisation's administrator publishes a signed
//! policy and issues lock / unlock / wipe commands for a device.
//!
//! The documents are signed here, in the administrator's process, with the
//! organisation key file (`occ admin keygen`: 64 hex characters of Ed25519
//! seed), and stored in the relay's database for the running relay to serve.
//! The serving relay never reads that file: it can withhold a document, but
//! it can neither make nor change one (devices verify them against the
//! organisation key pinned at enrolment). A document signed elsewhere can be
//! stored as is ([`store_doc`]).

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};
use occ_protocol::org::{DeviceCommand, OrgDoc, OrgDocKind, OrgPolicy};

use crate::RelayError;
use crate::db::Db;

/// Reads an organisation key file (hex seed).
pub fn load_org_key(path: &Path) -> Result<SigningKey, RelayError> {
    let text = std::fs::read_to_string(path).map_err(|e| RelayError::io("read", path, e))?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            RelayError::BadRequest(format!("{} is not an organisation key", path.display()))
        })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Signs a document body.
pub fn sign(org: &SigningKey, kind: OrgDocKind, body: Vec<u8>) -> OrgDoc {
    let signature = org.sign(&OrgDoc::signed_message(kind, &body)).to_bytes();
    OrgDoc {
        kind,
        body,
        signature,
    }
}

/// Signs `policy` and stores it for the relay in `data_dir` to serve;
/// returns the encoded document.
pub fn publish_policy(
    data_dir: &Path,
    org: &SigningKey,
    policy: &OrgPolicy,
) -> Result<Vec<u8>, RelayError> {
    let body = serde_json::to_vec(policy)
        .map_err(|e| RelayError::Internal(format!("encoding the policy: {e}")))?;
    let doc = sign(org, OrgDocKind::Policy, body).encode();
    store_doc(data_dir, &doc)?;
    Ok(doc)
}

/// Signs `command` and queues it for its device; returns the document.
pub fn issue_command(
    data_dir: &Path,
    org: &SigningKey,
    command: &DeviceCommand,
) -> Result<Vec<u8>, RelayError> {
    let body = serde_json::to_vec(command)
        .map_err(|e| RelayError::Internal(format!("encoding the command: {e}")))?;
    let doc = sign(org, OrgDocKind::Command, body).encode();
    store_doc(data_dir, &doc)?;
    Ok(doc)
}

/// Stores an encoded document as it is: a policy replaces an older one
/// (409 if the held one is as new), a command is queued for the device it
/// names.
pub fn store_doc(data_dir: &Path, doc: &[u8]) -> Result<(), RelayError> {
    let parsed =
        OrgDoc::parse(doc).map_err(|e| RelayError::BadRequest(format!("document: {e}")))?;
    let mut db = Db::open(data_dir)?;
    match parsed.kind {
        OrgDocKind::Policy => {
            let p: OrgPolicy = serde_json::from_slice(&parsed.body)
                .map_err(|e| RelayError::BadRequest(format!("policy: {e}")))?;
            if !db.set_policy(p.version, doc)? {
                return Err(RelayError::Conflict(format!(
                    "a policy at least as new as version {} is already published",
                    p.version
                )));
            }
        }
        OrgDocKind::Command => {
            let c: DeviceCommand = serde_json::from_slice(&parsed.body)
                .map_err(|e| RelayError::BadRequest(format!("command: {e}")))?;
            if occ_protocol::api::parse_device_id(&c.device_id).is_none() {
                return Err(RelayError::BadRequest(
                    "the command's device id is 64 hex characters".into(),
                ));
            }
            db.add_command(&c.device_id.to_ascii_lowercase(), c.issued_ms, doc)?;
        }
    }
    Ok(())
}
