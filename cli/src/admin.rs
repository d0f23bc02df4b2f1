//! `occ admin`: the organisation key, kept off the relay by an administrator.
//!
//! `keygen` writes a new Ed25519 seed to a file created with mode 0600 (never
//! overwriting one) and prints the public key that members pin at enrolment
//! (`occ init --org-key`). `certify` signs a device certificate (user, device
//! id, validity) that the device installs with `occ certificate install`.
//! Protecting the key file (an encrypted volume, a hardware token, an
//! offline machine) is the administrator's part; occ never sends it anywhere.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::SigningKey;
use occ_core::crypto::org::certify;

use crate::Fail;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The hex content of a file handed over by the administrator.
pub(crate) fn read_hex_file(file: &Path, what: &str) -> Result<Vec<u8>, Fail> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Fail(format!("cannot read {}: {e}", file.display())))?;
    hex::decode(text.trim()).map_err(|_| Fail(format!("the {what} file holds hex")))
}

/// Creates a new organisation key at `out`; returns its public key (hex).
pub(crate) fn keygen(out: &Path) -> Result<String, Fail> {
    let seed = occ_core::store::DbKey::generate()?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(out)
        .map_err(|e| Fail(format!("cannot create {}: {e}", out.display())))?;
    f.write_all(hex::encode(seed.as_bytes()).as_bytes())
        .map_err(|e| Fail(format!("cannot write {}: {e}", out.display())))?;
    let key = SigningKey::from_bytes(seed.as_bytes());
    Ok(hex::encode(key.verifying_key().to_bytes()))
}

fn load(key_file: &Path) -> Result<SigningKey, Fail> {
    let text = std::fs::read_to_string(key_file)
        .map_err(|e| Fail(format!("cannot read {}: {e}", key_file.display())))?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Fail(format!("{} is not an organisation key", key_file.display())))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A device id given as 64 hex characters.
fn device_id(hex_id: &str) -> Result<[u8; 32], Fail> {
    hex::decode(hex_id)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| Fail(format!("{hex_id} is not a device id (64 hex characters)")))
}

/// The wall clock, ms since the epoch (the administrator's machine).
fn now_ms() -> Result<i64, Fail> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| Fail(format!("the clock: {e}")))?
        .as_millis();
    i64::try_from(now).map_err(|_| Fail("the clock is out of range".into()))
}

/// Signs revocation list `version` naming `devices` (hex ids); returns it
/// (hex) for a member to publish.
pub(crate) fn revoke_devices(
    key_file: &Path,
    version: u64,
    devices: &[String],
) -> Result<String, Fail> {
    let org = load(key_file)?;
    let ids = devices
        .iter()
        .map(|d| {
            hex::decode(d)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| Fail(format!("{d} is not a device id (64 hex characters)")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| Fail(format!("the clock: {e}")))?
        .as_millis();
    let now = i64::try_from(now).map_err(|_| Fail("the clock is out of range".into()))?;
    Ok(hex::encode(
        occ_core::crypto::org::revoke(&org, version, now, ids).encode(),
    ))
}

/// Certifies `device` (hex id) as `user`'s for `days` from now; returns the
/// certificate (hex) to hand to the device.
pub(crate) fn certify_device(
    key_file: &Path,
    user: &str,
    device: &str,
    days: u32,
) -> Result<String, Fail> {
    let org = load(key_file)?;
    if !occ_protocol::ids::valid_user_name(user) {
        return Err(Fail(
            "a user name is 1 to 64 characters of a-z 0-9 . _ -".into(),
        ));
    }
    let device = device_id(device)?;
    let now = now_ms()?;
    let until = now.saturating_add(i64::from(days).saturating_mul(DAY_MS));
    Ok(hex::encode(
        certify(&org, user, &device, now, until).encode(),
    ))
}
