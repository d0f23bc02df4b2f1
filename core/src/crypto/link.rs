//! Device links: one device of a user vouches for another (several devices
//! per user in open mode, where there is no organisation to certify them).
//!
//! A link is the linker's Ed25519 signature over (user, new device, linker,
//! time) ([`occ_protocol::link::DeviceLink`]). It proves only that the
//! linker's key holder added the device: a client trusts a linked device only
//! if it already trusts the linker for that user (or the linker is itself),
//! so a relay cannot add a device to anyone by forging or replaying links.

use ed25519_dalek::{Signature, VerifyingKey};
use occ_protocol::link::DeviceLink;

use super::IdentityKeyPair;

/// Why a link does not vouch for a device.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// It does not parse.
    #[error("a malformed device link")]
    Malformed,
    /// It names another user or device.
    #[error("a device link for another user or device")]
    WrongSubject,
    /// Its linker did not sign it.
    #[error("a device link its linker did not sign")]
    BadSignature,
}

/// Signs a link: `device` is another device of `user`, vouched for by
/// `linker` (this device's identity).
pub fn link_device(
    linker: &IdentityKeyPair,
    user: &str,
    device: &[u8; 32],
    issued_ms: i64,
) -> DeviceLink {
    let linker_id = linker.public().device_id().0;
    let signature = linker.sign(
        b"",
        &DeviceLink::signed_message(user, device, &linker_id, issued_ms),
    );
    DeviceLink {
        user: user.to_string(),
        device: *device,
        linker: linker_id,
        issued_ms,
        signature,
    }
}

/// Checks that `bytes` is a link, signed by its linker, saying that
/// `device` belongs to `user`. Returns the linker, whom the caller must
/// already trust for `user`.
pub fn verify_link(bytes: &[u8], user: &str, device: &[u8; 32]) -> Result<[u8; 32], LinkError> {
    let link = DeviceLink::parse(bytes).map_err(|_| LinkError::Malformed)?;
    if link.user != user || &link.device != device {
        return Err(LinkError::WrongSubject);
    }
    let key = VerifyingKey::from_bytes(&link.linker).map_err(|_| LinkError::BadSignature)?;
    if key.is_weak() {
        return Err(LinkError::BadSignature);
    }
    key.verify_strict(
        &DeviceLink::signed_message(&link.user, &link.device, &link.linker, link.issued_ms),
        &Signature::from_bytes(&link.signature),
    )
    .map_err(|_| LinkError::BadSignature)?;
    Ok(link.linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_linkers_link_for_this_user_and_device_verifies() {
        let linker = IdentityKeyPair::generate().unwrap();
        let other = IdentityKeyPair::generate().unwrap();
        let device = [7u8; 32];
        let link = link_device(&linker, "bob", &device, 1_000);
        let bytes = link.encode();
        assert_eq!(
            verify_link(&bytes, "bob", &device),
            Ok(linker.public().device_id().0)
        );
        assert_eq!(
            verify_link(&bytes, "carol", &device),
            Err(LinkError::WrongSubject)
        );
        assert_eq!(
            verify_link(&bytes, "bob", &[8u8; 32]),
            Err(LinkError::WrongSubject)
        );
        assert_eq!(
            verify_link(&bytes[1..], "bob", &device),
            Err(LinkError::Malformed)
        );
        // Any change to a signed field, or a signature by someone else.
        let mut later = link.clone();
        later.issued_ms += 1;
        assert_eq!(
            verify_link(&later.encode(), "bob", &device),
            Err(LinkError::BadSignature)
        );
        let mut claimed = link.clone();
        claimed.linker = other.public().device_id().0;
        assert_eq!(
            verify_link(&claimed.encode(), "bob", &device),
            Err(LinkError::BadSignature)
        );
        let mut weak = link;
        weak.linker = [0u8; 32];
        assert_eq!(
            verify_link(&weak.encode(), "bob", &device),
            Err(LinkError::BadSignature)
        );
    }
}
