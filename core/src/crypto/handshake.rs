//! X3DH key agreement, as in Signal's specification with X25519 and SHA-256.
//!
//! ```text
//! DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)   DH4 = DH(EK_A, OPK_B)
//! SK  = HKDF-SHA256(salt = 32 zero bytes, ikm = 0xFF×32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4], info = "occ/x3dh/v1")
//! AD  = len16 ‖ IK_A  ‖  len16 ‖ IK_B         (IK = Ed25519 key ‖ X25519 identity key)
//! ```
//!
//! Every DH output is checked to be contributory (a low-order peer key gives an
//! all-zero output and is refused). The signed prekey's signature is verified
//! before any DH is computed. Deviation from Signal: identities are an Ed25519
//! key plus a separately signed X25519 key rather than one XEdDSA key, as
//! DESIGN.md section 3 specifies.

use occ_protocol::PreKeyBundle;
use occ_protocol::codec::Writer;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use super::CryptoError;
use super::identity::{IdentityKeyPair, IdentityPublic, dh};
use super::kdf::{Key32, hkdf};

/// Info string of the X3DH KDF.
pub const X3DH_INFO: &[u8] = b"occ/x3dh/v1";
pub(crate) use occ_protocol::contexts::{
    SIGNED_PREKEY as SIGNED_PREKEY_CONTEXT, signed_prekey_message,
};

/// A bundle whose identity and signed-prekey signatures have been verified.
pub(crate) struct VerifiedBundle<'a> {
    pub identity: IdentityPublic,
    pub bundle: &'a PreKeyBundle,
}

/// Verifies both signatures of a bundle.
pub(crate) fn verify_bundle(bundle: &PreKeyBundle) -> Result<VerifiedBundle<'_>, CryptoError> {
    let identity = IdentityPublic::verify(&bundle.identity)?;
    identity.verify_signature(
        SIGNED_PREKEY_CONTEXT,
        &signed_prekey_message(bundle.signed_prekey_id, &bundle.signed_prekey),
        &bundle.signed_prekey_signature,
        "signed prekey",
    )?;
    Ok(VerifiedBundle { identity, bundle })
}

fn derive(dhs: &[&[u8; 32]]) -> Result<Key32, CryptoError> {
    let mut ikm = Zeroizing::new(Vec::with_capacity(32 * 5));
    ikm.extend_from_slice(&[0xFF; 32]);
    for d in dhs {
        ikm.extend_from_slice(&d[..]);
    }
    let out = hkdf::<32>(Some(&[0u8; 32]), &ikm, X3DH_INFO)?;
    Ok(Key32::from_bytes(*out))
}

/// Initiator side: `SK` from our identity, our ephemeral key and the bundle.
pub(crate) fn initiator_secret(
    ours: &IdentityKeyPair,
    ephemeral: &StaticSecret,
    their: &VerifiedBundle<'_>,
) -> Result<Key32, CryptoError> {
    let dh1 = ours.dh(&their.bundle.signed_prekey)?;
    let dh2 = dh(ephemeral, their.identity.dh_key())?;
    let dh3 = dh(ephemeral, &their.bundle.signed_prekey)?;
    match &their.bundle.one_time_prekey {
        Some((_, opk)) => {
            let dh4 = dh(ephemeral, opk)?;
            derive(&[&dh1, &dh2, &dh3, &dh4])
        }
        None => derive(&[&dh1, &dh2, &dh3]),
    }
}

/// Responder side: the same `SK` from our identity, signed prekey and optional
/// one-time prekey, and the initiator's identity and ephemeral (base) key.
pub(crate) fn responder_secret(
    ours: &IdentityKeyPair,
    signed_prekey: &StaticSecret,
    one_time_prekey: Option<&StaticSecret>,
    their_identity: &IdentityPublic,
    base_key: &[u8; 32],
) -> Result<Key32, CryptoError> {
    let dh1 = dh(signed_prekey, their_identity.dh_key())?;
    let dh2 = ours.dh(base_key)?;
    let dh3 = dh(signed_prekey, base_key)?;
    match one_time_prekey {
        Some(opk) => {
            let dh4 = dh(opk, base_key)?;
            derive(&[&dh1, &dh2, &dh3, &dh4])
        }
        None => derive(&[&dh1, &dh2, &dh3]),
    }
}

/// `AD = len ‖ IK_initiator ‖ len ‖ IK_responder`.
pub(crate) fn associated_data(initiator: &IdentityPublic, responder: &IdentityPublic) -> Vec<u8> {
    let mut w = Writer::with_capacity(2 * 66);
    initiator.write_ad(&mut w);
    responder.write_ad(&mut w);
    w.into_vec()
}
