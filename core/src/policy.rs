//! The organisation's signed documents on the device: the **policy** and
//! **device commands** ([`occ_protocol::org`]).
//!
//! Both are verified against the organisation key pinned at enrolment —
//! never the relay's key: the relay stores and serves them but can neither
//! make nor change one. A policy is applied only if its version is newer
//! than the held one (never rolled back, even by the relay serving an old
//! one); a command only if it names this device and this user and is newer
//! than the last command obeyed (so a replayed "unlock" cannot undo a later
//! "lock"). Anything else is refused and recorded
//! (`SecurityEventKind::OrgDocRefused`, which is also an audit entry).
//!
//! What the policy decides, and where it is enforced:
//! - download per class and device: the push prompt
//!   ([`crate::push::verify_notice`] says deny), `Client::download`, and the
//!   inbox (a message of a denied class is not stored);
//! - presence before download: the prompt says confirm;
//! - keep period maximum: the store's organisation cap;
//! - TTL minimum and maximum: `send` refuses outside them; a received
//!   message's expiry is cut to the maximum (a shorter TTL only deletes
//!   sooner, so the minimum is not enforced on receipt);
//! - attachment size: the prompt denies a larger `file` notice;
//! - export (class rules, encryption): for the export issue to apply;
//! - download volume: the N-th download within M minutes raises
//!   `ClientEvent::VolumeAlert` and an audit entry.
//!
//! Classes without a rule are allowed. Without an organisation key pinned,
//! there is no policy and everything is allowed.

use ed25519_dalek::{Signature, VerifyingKey};
use occ_protocol::org::{DeviceCommand, OrgDoc, OrgDocKind, OrgPolicy};

/// Why a document is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// It does not parse.
    #[error("a malformed organisation document")]
    Malformed,
    /// It is another kind of document.
    #[error("an organisation document of another kind")]
    WrongKind,
    /// The organisation did not sign it.
    #[error("an organisation document not signed by the organisation")]
    BadSignature,
    /// Older than (or as old as) the one held.
    #[error("an organisation document older than the one held")]
    Stale,
    /// For another device or user.
    #[error("an organisation command for another device")]
    WrongDevice,
}

/// Verifies `bytes` as a document of `kind` signed by `org_key`; returns its
/// body.
pub fn verify_doc(org_key: &[u8; 32], kind: OrgDocKind, bytes: &[u8]) -> Result<Vec<u8>, DocError> {
    let doc = OrgDoc::parse(bytes).map_err(|_| DocError::Malformed)?;
    if doc.kind != kind {
        return Err(DocError::WrongKind);
    }
    let key = VerifyingKey::from_bytes(org_key).map_err(|_| DocError::BadSignature)?;
    key.verify_strict(
        &OrgDoc::signed_message(kind, &doc.body),
        &Signature::from_bytes(&doc.signature),
    )
    .map_err(|_| DocError::BadSignature)?;
    Ok(doc.body)
}

/// A verified policy.
pub fn verify_policy(org_key: &[u8; 32], bytes: &[u8]) -> Result<OrgPolicy, DocError> {
    let body = verify_doc(org_key, OrgDocKind::Policy, bytes)?;
    serde_json::from_slice(&body).map_err(|_| DocError::Malformed)
}

/// A verified command for `device` (hex) of `user`.
pub fn verify_command(
    org_key: &[u8; 32],
    bytes: &[u8],
    user: &str,
    device: &str,
) -> Result<DeviceCommand, DocError> {
    let body = verify_doc(org_key, OrgDocKind::Command, bytes)?;
    let c: DeviceCommand = serde_json::from_slice(&body).map_err(|_| DocError::Malformed)?;
    if c.user != user || !c.device_id.eq_ignore_ascii_case(device) {
        return Err(DocError::WrongDevice);
    }
    Ok(c)
}

/// The message class of a text: `alert` when urgent, else `file` when it
/// carries an attachment, else `text`.
pub fn class_of(urgent: bool, attachment: bool) -> &'static str {
    match (urgent, attachment) {
        (true, _) => "alert",
        (false, true) => "file",
        (false, false) => "text",
    }
}

/// Whether `class` may be downloaded on `device`: `Err(reason)` if not.
pub fn download_allowed(
    policy: Option<&OrgPolicy>,
    class: &str,
    device: &str,
) -> Result<(), String> {
    rule_allows(policy, class, device, |r| r.download)
        .map_err(|why| format!("download of {class}: {why}"))
}

/// Whether `class` may be exported on `device`: `Err(reason)` if not.
pub fn export_allowed(policy: Option<&OrgPolicy>, class: &str, device: &str) -> Result<(), String> {
    rule_allows(policy, class, device, |r| r.export)
        .map_err(|why| format!("export of {class}: {why}"))
}

fn rule_allows(
    policy: Option<&OrgPolicy>,
    class: &str,
    device: &str,
    allowed: impl Fn(&occ_protocol::org::ClassRule) -> bool,
) -> Result<(), &'static str> {
    let Some(rule) = policy.and_then(|p| p.classes.iter().find(|r| r.class == class)) else {
        return Ok(());
    };
    if !allowed(rule) {
        return Err("not allowed by the organisation's policy");
    }
    if !rule.devices.is_empty() && !rule.devices.iter().any(|d| d.eq_ignore_ascii_case(device)) {
        return Err("not allowed on this device by the organisation's policy");
    }
    Ok(())
}

/// Checks a TTL against the policy's bounds when sending.
pub fn check_send_ttl(policy: Option<&OrgPolicy>, ttl_secs: u64) -> Result<(), String> {
    let Some(p) = policy else { return Ok(()) };
    if let Some(min) = p.min_ttl_secs
        && ttl_secs < min
    {
        return Err(format!(
            "the organisation's policy needs a TTL of at least {min} seconds"
        ));
    }
    if let Some(max) = p.max_ttl_secs
        && ttl_secs > max
    {
        return Err(format!(
            "the organisation's policy allows a TTL of at most {max} seconds"
        ));
    }
    Ok(())
}

/// A received message's expiry, cut to the policy's longest TTL.
pub fn receive_expiry(policy: Option<&OrgPolicy>, sent_ms: i64, expiry_ms: i64) -> i64 {
    match policy.and_then(|p| p.max_ttl_secs) {
        Some(max) => {
            let cap = i64::try_from(max)
                .ok()
                .and_then(|s| s.checked_mul(1000))
                .and_then(|ms| sent_ms.checked_add(ms))
                .unwrap_or(i64::MAX);
            expiry_ms.min(cap)
        }
        None => expiry_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use occ_protocol::org::{ClassRule, CommandAction};

    fn doc(key: &SigningKey, kind: OrgDocKind, body: &[u8]) -> Vec<u8> {
        OrgDoc {
            kind,
            body: body.to_vec(),
            signature: key.sign(&OrgDoc::signed_message(kind, body)).to_bytes(),
        }
        .encode()
    }

    #[test]
    fn only_the_organisation_signs_documents() {
        let org = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let pk = org.verifying_key().to_bytes();
        let body = br#"{"version":2}"#;
        assert_eq!(
            verify_policy(&pk, &doc(&org, OrgDocKind::Policy, body))
                .unwrap()
                .version,
            2
        );
        assert_eq!(
            verify_policy(&pk, &doc(&other, OrgDocKind::Policy, body)),
            Err(DocError::BadSignature)
        );
        assert_eq!(
            verify_policy(&pk, &doc(&org, OrgDocKind::Command, body)),
            Err(DocError::WrongKind)
        );
        let mut flipped = doc(&org, OrgDocKind::Policy, body);
        flipped[8] ^= 1; // inside the body
        assert_eq!(verify_policy(&pk, &flipped), Err(DocError::BadSignature));
        assert_eq!(verify_policy(&pk, b"junk"), Err(DocError::Malformed));
        assert_eq!(
            verify_policy(&pk, &doc(&org, OrgDocKind::Policy, b"not json")),
            Err(DocError::Malformed)
        );
    }

    #[test]
    fn commands_bind_user_and_device() {
        let org = SigningKey::from_bytes(&[1; 32]);
        let pk = org.verifying_key().to_bytes();
        let c = DeviceCommand {
            action: CommandAction::Lock,
            user: "bob".into(),
            device_id: "ab".repeat(32),
            issued_ms: 5,
        };
        let bytes = doc(&org, OrgDocKind::Command, &serde_json::to_vec(&c).unwrap());
        assert_eq!(verify_command(&pk, &bytes, "bob", &"AB".repeat(32)), Ok(c));
        assert_eq!(
            verify_command(&pk, &bytes, "eve", &"ab".repeat(32)),
            Err(DocError::WrongDevice)
        );
        assert_eq!(
            verify_command(&pk, &bytes, "bob", &"cd".repeat(32)),
            Err(DocError::WrongDevice)
        );
    }

    #[test]
    fn class_rules_apply_per_device() {
        let p = OrgPolicy {
            version: 1,
            classes: vec![
                ClassRule {
                    class: "file".into(),
                    download: false,
                    export: true,
                    devices: vec![],
                },
                ClassRule {
                    class: "alert".into(),
                    download: true,
                    export: false,
                    devices: vec!["aa".into()],
                },
            ],
            ..OrgPolicy::default()
        };
        assert!(download_allowed(Some(&p), "file", "aa").is_err());
        assert!(export_allowed(Some(&p), "file", "aa").is_ok());
        assert!(download_allowed(Some(&p), "alert", "AA").is_ok());
        assert!(download_allowed(Some(&p), "alert", "bb").is_err());
        assert!(export_allowed(Some(&p), "alert", "aa").is_err());
        assert!(download_allowed(Some(&p), "text", "bb").is_ok());
        assert!(download_allowed(None, "file", "bb").is_ok());
    }

    #[test]
    fn urgent_texts_are_alerts() {
        assert_eq!(class_of(true, false), "alert");
        assert_eq!(class_of(true, true), "alert");
        assert_eq!(class_of(false, true), "file");
        assert_eq!(class_of(false, false), "text");
    }

    #[test]
    fn ttl_bounds() {
        let p = OrgPolicy {
            min_ttl_secs: Some(60),
            max_ttl_secs: Some(3600),
            ..OrgPolicy::default()
        };
        assert!(check_send_ttl(Some(&p), 59).is_err());
        assert!(check_send_ttl(Some(&p), 60).is_ok());
        assert!(check_send_ttl(Some(&p), 3600).is_ok());
        assert!(check_send_ttl(Some(&p), 3601).is_err());
        assert!(check_send_ttl(None, 1).is_ok());
        assert_eq!(receive_expiry(Some(&p), 1000, 10_000_000), 3_601_000);
        assert_eq!(receive_expiry(Some(&p), 1000, 5000), 5000);
        assert_eq!(receive_expiry(None, 1000, 10_000_000), 10_000_000);
    }
}
