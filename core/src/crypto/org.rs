//! The organisation key: an Ed25519 key kept off the relay (by an
//! administrator, with `occ admin`) that certifies which device keys belong
//! to which user. A client enrolled with the organisation's public key
//! encrypts only to, and believes only, devices whose certificate verifies.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use occ_protocol::certificate::{DeviceCertificate, RevocationList};

/// Why a certificate does not vouch for a device.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// There is none.
    #[error("no organisation certificate")]
    Missing,
    /// It does not parse.
    #[error("a malformed organisation certificate")]
    Malformed,
    /// It names another user or device.
    #[error("a certificate for another user or device")]
    WrongSubject,
    /// Its validity does not cover now.
    #[error("an organisation certificate outside its validity")]
    Expired,
    /// The organisation did not sign it.
    #[error("a certificate not signed by the organisation")]
    BadSignature,
    /// The organisation revoked the device.
    #[error("a device the organisation revoked")]
    Revoked,
}

/// Parses `bytes` as a revocation list signed by `org_key`.
pub fn verify_revocations(org_key: &[u8; 32], bytes: &[u8]) -> Option<RevocationList> {
    let list = RevocationList::parse(bytes).ok()?;
    let key = VerifyingKey::from_bytes(org_key).ok()?;
    key.verify_strict(
        &RevocationList::signed_message(list.version, list.issued_ms, &list.devices),
        &Signature::from_bytes(&list.signature),
    )
    .ok()?;
    Some(list)
}

/// Signs a revocation list (the administrator's side).
pub fn revoke(
    org: &SigningKey,
    version: u64,
    issued_ms: i64,
    devices: Vec<[u8; 32]>,
) -> RevocationList {
    let signature = org
        .sign(&RevocationList::signed_message(
            version, issued_ms, &devices,
        ))
        .to_bytes();
    RevocationList {
        version,
        issued_ms,
        devices,
        signature,
    }
}

/// Checks that `cert` is the organisation's (`org_key`) statement that
/// `device` belongs to `user`, valid at `now_ms`.
pub fn verify_certificate(
    org_key: &[u8; 32],
    cert: Option<&[u8]>,
    user: &str,
    device: &[u8; 32],
    now_ms: i64,
) -> Result<(), CertificateError> {
    let bytes = cert.ok_or(CertificateError::Missing)?;
    let c = DeviceCertificate::parse(bytes).map_err(|_| CertificateError::Malformed)?;
    if c.user != user || &c.device_id != device {
        return Err(CertificateError::WrongSubject);
    }
    let key = VerifyingKey::from_bytes(org_key).map_err(|_| CertificateError::BadSignature)?;
    key.verify_strict(
        &DeviceCertificate::signed_message(&c.user, &c.device_id, c.not_before_ms, c.not_after_ms),
        &Signature::from_bytes(&c.signature),
    )
    .map_err(|_| CertificateError::BadSignature)?;
    if now_ms < c.not_before_ms || now_ms >= c.not_after_ms {
        return Err(CertificateError::Expired);
    }
    Ok(())
}

/// Certifies that `device` belongs to `user` from `not_before_ms` to
/// `not_after_ms` (the administrator's side).
pub fn certify(
    org: &SigningKey,
    user: &str,
    device: &[u8; 32],
    not_before_ms: i64,
    not_after_ms: i64,
) -> DeviceCertificate {
    let signature = org
        .sign(&DeviceCertificate::signed_message(
            user,
            device,
            not_before_ms,
            not_after_ms,
        ))
        .to_bytes();
    DeviceCertificate {
        user: user.to_string(),
        device_id: *device,
        not_before_ms,
        not_after_ms,
        signature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_organisations_current_certificate_for_this_device_verifies() {
        let org = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let pk = org.verifying_key().to_bytes();
        let dev = [5u8; 32];
        let good = certify(&org, "bob", &dev, 100, 200).encode();
        assert_eq!(
            verify_certificate(&pk, Some(&good), "bob", &dev, 100),
            Ok(())
        );
        assert_eq!(
            verify_certificate(&pk, Some(&good), "bob", &dev, 199),
            Ok(())
        );
        assert_eq!(
            verify_certificate(&pk, Some(&good), "bob", &dev, 200),
            Err(CertificateError::Expired)
        );
        assert_eq!(
            verify_certificate(&pk, Some(&good), "bob", &dev, 99),
            Err(CertificateError::Expired)
        );
        assert_eq!(
            verify_certificate(&pk, None, "bob", &dev, 150),
            Err(CertificateError::Missing)
        );
        assert_eq!(
            verify_certificate(&pk, Some(&good), "alice", &dev, 150),
            Err(CertificateError::WrongSubject)
        );
        assert_eq!(
            verify_certificate(&pk, Some(&good), "bob", &[6; 32], 150),
            Err(CertificateError::WrongSubject)
        );
        let forged = certify(&other, "bob", &dev, 100, 200).encode();
        assert_eq!(
            verify_certificate(&pk, Some(&forged), "bob", &dev, 150),
            Err(CertificateError::BadSignature)
        );
        let mut stretched = certify(&org, "bob", &dev, 100, 200);
        stretched.not_after_ms = 10_000;
        assert_eq!(
            verify_certificate(&pk, Some(&stretched.encode()), "bob", &dev, 150),
            Err(CertificateError::BadSignature)
        );
        assert_eq!(
            verify_certificate(&pk, Some(b"junk"), "bob", &dev, 150),
            Err(CertificateError::Malformed)
        );
    }

    #[test]
    fn only_the_organisations_revocation_list_verifies() {
        let org = SigningKey::from_bytes(&[1; 32]);
        let pk = org.verifying_key().to_bytes();
        let list = revoke(&org, 2, 10, vec![[5; 32]]);
        assert_eq!(verify_revocations(&pk, &list.encode()), Some(list.clone()));
        let other = revoke(&SigningKey::from_bytes(&[2; 32]), 2, 10, vec![[5; 32]]);
        assert_eq!(verify_revocations(&pk, &other.encode()), None);
        let mut shortened = list.clone();
        shortened.devices.clear();
        assert_eq!(verify_revocations(&pk, &shortened.encode()), None);
        assert_eq!(verify_revocations(&pk, b"junk"), None);
    }
}
