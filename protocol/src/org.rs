//! Documents the organisation signs for its devices: the **policy** (what may
//! be downloaded, kept, exported) and **device commands** (lock, unlock or
//! wipe one lost device). The relay stores and serves them; it cannot make
//! or change one, because it never holds the organisation key.
//!
//! ```text
//! OrgDoc = version(1) kind(1) body:var_bytes signature(64)
//! signed = "occ/v1/org-doc" kind(1) body:var_bytes
//! ```
//!
//! The body is UTF-8 JSON ([`OrgPolicy`] for kind 1, [`DeviceCommand`] for
//! kind 2), at most [`MAX_ORG_BODY`] bytes: the signature covers the exact
//! bytes, so no canonical JSON is needed. Verifying the signature is the
//! client core's job; [`OrgDoc::parse`] only checks the framing.

use serde::{Deserialize, Serialize};

use crate::codec::{Reader, Writer};
use crate::{VERSION, WireError};

/// Largest document body.
pub const MAX_ORG_BODY: usize = 64 * 1024;

/// What an [`OrgDoc`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgDocKind {
    /// An [`OrgPolicy`].
    Policy,
    /// A [`DeviceCommand`].
    Command,
}

impl OrgDocKind {
    fn byte(self) -> u8 {
        match self {
            Self::Policy => 1,
            Self::Command => 2,
        }
    }
}

/// A signed organisation document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgDoc {
    /// What it is.
    pub kind: OrgDocKind,
    /// The JSON body, exactly as signed.
    pub body: Vec<u8>,
    /// Ed25519 signature by the organisation key over [`OrgDoc::signed_message`].
    pub signature: [u8; 64],
}

impl OrgDoc {
    /// What the signature covers (domain-separated by kind).
    pub fn signed_message(kind: OrgDocKind, body: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(b"occ/v1/org-doc").u8(kind.byte()).var_bytes(body);
        w.into_vec()
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(VERSION)
            .u8(self.kind.byte())
            .var_bytes(&self.body)
            .raw(&self.signature);
        w.into_vec()
    }

    /// Parses the framing. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        r.version(VERSION)?;
        let kind = match r.u8("kind")? {
            1 => OrgDocKind::Policy,
            2 => OrgDocKind::Command,
            other => return Err(WireError::UnknownKind(other)),
        };
        let body = r.var_bytes("body", MAX_ORG_BODY)?.to_vec();
        let signature = r.array::<64>("signature")?;
        r.finish()?;
        Ok(Self {
            kind,
            body,
            signature,
        })
    }
}

/// What the organisation allows for one message class (`text`, `alert`,
/// `file`, ...).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClassRule {
    /// The class.
    pub class: String,
    /// Whether messages of this class may be downloaded.
    #[serde(default = "yes")]
    pub download: bool,
    /// Whether they may be exported.
    #[serde(default = "yes")]
    pub export: bool,
    /// The devices (hex ids) this rule allows them on; empty means every
    /// device. On a device not listed, neither download nor export is
    /// allowed.
    #[serde(default)]
    pub devices: Vec<String>,
}

fn yes() -> bool {
    true
}

/// An alert on unusual download volume: `count` downloads within `minutes`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeAlert {
    /// Downloads that raise the alert (the `count`-th one does).
    pub count: u32,
    /// The window, minutes.
    pub minutes: u32,
}

/// The organisation's policy. Classes without a rule are allowed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrgPolicy {
    /// Increases with every new policy; a device never goes back to an
    /// older one.
    pub version: u64,
    /// When the administrator issued it, ms since the epoch.
    #[serde(default)]
    pub issued_ms: i64,
    /// Per-class rules.
    #[serde(default)]
    pub classes: Vec<ClassRule>,
    /// Whether the user must confirm presence (unlock) before a download.
    #[serde(default)]
    pub require_presence: bool,
    /// Longest keep period a device may use, seconds.
    #[serde(default)]
    pub max_keep_secs: Option<u64>,
    /// Shortest TTL, seconds.
    #[serde(default)]
    pub min_ttl_secs: Option<u64>,
    /// Longest TTL, seconds.
    #[serde(default)]
    pub max_ttl_secs: Option<u64>,
    /// Largest attachment, bytes.
    #[serde(default)]
    pub max_attachment_bytes: Option<u64>,
    /// Whether an export must be encrypted.
    #[serde(default)]
    pub export_requires_encryption: bool,
    /// Raise an alert at this download volume.
    #[serde(default)]
    pub download_alert: Option<VolumeAlert>,
    /// Data-loss prevention on export (it replaces the device's own rules).
    #[serde(default)]
    pub dlp: Option<DlpRules>,
    /// Failed unlock attempts (PIN or passphrase) after which a device
    /// wipes the profile; the device's own setting applies when absent.
    #[serde(default)]
    pub max_unlock_failures: Option<u32>,
    /// Whether notifications may show a preview of message text (on an
    /// unlocked profile, never on the lock screen); content-free when not.
    #[serde(default)]
    pub notification_previews: bool,
}

/// What an export does with what data-loss prevention finds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DlpAction {
    /// Refuse the export.
    #[default]
    Block,
    /// Replace each finding with `[redacted:<rule>]`.
    Redact,
}

/// Data-loss prevention rules for exports.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DlpRules {
    /// Look for payment card numbers (Luhn-checked).
    #[serde(default)]
    pub card_numbers: bool,
    /// Regular expressions (Rust `regex` syntax) that must not leave.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Block or redact.
    #[serde(default)]
    pub action: DlpAction,
}

/// What a [`DeviceCommand`] makes the device do.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CommandAction {
    /// Refuse every read and send until unlocked.
    Lock,
    /// Lift a lock.
    Unlock,
    /// Destroy the profile (database, keys, attachments).
    Wipe,
}

/// A command for one device of one user.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceCommand {
    /// What to do.
    pub action: CommandAction,
    /// The user the device belongs to.
    pub user: String,
    /// The device (hex id).
    pub device_id: String,
    /// When the administrator issued it, ms since the epoch: a device obeys
    /// only commands newer than the last one it obeyed.
    pub issued_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_truncation_and_trailing_bytes() {
        let d = OrgDoc {
            kind: OrgDocKind::Command,
            body: b"{}".to_vec(),
            signature: [7; 64],
        };
        let bytes = d.encode();
        assert_eq!(OrgDoc::parse(&bytes).unwrap(), d);
        for n in 0..bytes.len() {
            assert!(OrgDoc::parse(&bytes[..n]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(OrgDoc::parse(&longer).is_err());
        let mut kind = bytes;
        kind[1] = 9;
        assert_eq!(OrgDoc::parse(&kind), Err(WireError::UnknownKind(9)));
    }

    #[test]
    fn kinds_sign_different_messages() {
        assert_ne!(
            OrgDoc::signed_message(OrgDocKind::Policy, b"{}"),
            OrgDoc::signed_message(OrgDocKind::Command, b"{}")
        );
    }

    #[test]
    fn policy_defaults_allow() {
        let p: OrgPolicy =
            serde_json::from_str(r#"{"version":3,"classes":[{"class":"file"}]}"#).unwrap();
        assert_eq!(p.version, 3);
        assert!(p.classes[0].download && p.classes[0].export);
        assert!(!p.require_presence);
    }
}
