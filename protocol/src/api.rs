//! The relay's HTTPS + JSON API (DESIGN.md section 4): request and response
//! bodies shared by the client and the relay, and the exact bytes each
//! signature covers.
//!
//! Binary fields are base64url without padding ([`B64`]). Device ids are the
//! lowercase hex of the device's Ed25519 key. Every error response is
//! `{"error": "<what failed and what to do>"}` ([`ErrorBody`]) with a 4xx/5xx
//! status.
//!
//! Routes (all under [`PREFIX`]); those marked *auth* need
//! `Authorization: Bearer <token>`:
//!
//! | method | path | body → response |
//! |---|---|---|
//! | POST | `/session` | [`SessionStartRequest`] → [`SessionStartResponse`] (signed acknowledgement) |
//! | POST | `/devices` | [`RegisterRequest`] → [`RegisterResponse`] |
//! | POST | `/auth/challenge` | [`ChallengeRequest`] → [`ChallengeResponse`] |
//! | POST | `/auth/token` | [`TokenRequest`] → [`TokenResponse`] |
//! | GET | `/users/{user}/devices` | *auth* → [`DevicesResponse`] |
//! | GET | `/devices/{device}` | *auth* → [`DeviceLookup`] (which user a device belongs to) |
//! | POST | `/devices/{device}/bundle` | *auth* → [`BundleResponse`] (consumes a one-time prekey) |
//! | POST | `/prekeys` | *auth* [`PreKeyUpload`] → [`PreKeyCount`] |
//! | POST | `/messages` | *auth* [`SendRequest`] → [`SendResponse`] (idempotent per key) |
//! | GET | `/inbox?after=SEQ&wait_ms=MS&limit=N` | *auth* → [`InboxResponse`] (long poll) |
//! | POST | `/inbox/ack` | *auth* [`AckRequest`] → [`AckResponse`] |
//! | GET | `/messages/{id}` | *auth* → [`InboxItem`]; 410 Gone once expired |

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::Writer;

/// Path prefix of every route.
pub const PREFIX: &str = "/v1";
/// Most envelopes in one send request.
pub const MAX_BATCH: usize = 1000;
/// Most one-time prekeys in one upload.
pub const MAX_PREKEY_UPLOAD: usize = 1000;
/// Longest TTL the relay accepts: 30 days.
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;
/// Most items one inbox poll returns.
pub const MAX_INBOX_LIMIT: usize = 1000;
/// Longest inbox long-poll wait.
pub const MAX_WAIT_MS: u64 = 30_000;

/// Bytes as base64url (no padding) in JSON.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct B64(pub Vec<u8>);

impl B64 {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Exactly `N` bytes, or `None`.
    pub fn array<const N: usize>(&self) -> Option<[u8; N]> {
        self.0.as_slice().try_into().ok()
    }
}

impl From<Vec<u8>> for B64 {
    fn from(v: Vec<u8>) -> Self {
        B64(v)
    }
}

impl From<&[u8]> for B64 {
    fn from(v: &[u8]) -> Self {
        B64(v.to_vec())
    }
}

impl std::fmt::Debug for B64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "B64({} bytes)", self.0.len())
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(&self.0))
    }
}

/// In the OpenAPI description: a base64url string without padding.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for B64 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[A-Za-z0-9_-]*$"))
            .description(Some("bytes, base64url without padding"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for B64 {}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        URL_SAFE_NO_PAD
            .decode(s.as_bytes())
            .map(B64)
            .map_err(|_| serde::de::Error::custom("invalid base64url"))
    }
}

/// Hex form of a device id (its Ed25519 public key).
pub fn device_id_hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a hex device id.
pub fn parse_device_id(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

pub use crate::ids::valid_user_name;

/// Whether `s` is a relay message id: 32 lowercase or uppercase hex digits
/// (the relay makes them; clients check before putting one in a URL).
pub fn valid_relay_message_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Every error response.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What failed and what to do.
    pub error: String,
}

/// Start of a session: the client's fresh nonce.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionStartRequest {
    /// 32 random bytes.
    pub nonce: B64,
}

/// The relay's signed acknowledgement.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionStartResponse {
    /// Random session identifier.
    pub session_id: String,
    /// Relay time, ms since the epoch.
    pub server_time_ms: i64,
    /// The relay's Ed25519 service key.
    pub service_key: B64,
    /// Signature over [`ack_message`].
    pub signature: B64,
}

/// What the session acknowledgement signature covers.
pub fn ack_message(nonce: &[u8], session_id: &str, server_time_ms: i64) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(b"occ/v1/relay-ack")
        .var_bytes(nonce)
        .var_bytes(session_id.as_bytes())
        .u64(server_time_ms as u64);
    w.into_vec()
}

/// Request header: the client's fresh nonce (16 to 64 bytes, hex) for an
/// answer that carries identities (a user's devices, a device's owner, a
/// prekey bundle).
pub const ANSWER_NONCE_HEADER: &str = "x-occ-nonce";
/// Response header: base64 Ed25519 signature by the relay's service key over
/// [`signed_answer_message`].
pub const ANSWER_SIGNATURE_HEADER: &str = "x-occ-signature";

/// What the relay signs for an identity-carrying answer: the client's nonce,
/// which answer (`devices`, `device`, `bundle`), its subject (user or device
/// id) and the exact JSON body bytes. Someone past the TLS pins who does not
/// hold the service key can proxy such an answer but not forge or replay
/// one.
pub fn signed_answer_message(nonce: &[u8], what: &str, subject: &str, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(b"occ/v1/signed-answer")
        .var_bytes(nonce)
        .var_bytes(what.as_bytes())
        .var_bytes(subject.as_bytes())
        .var_bytes(body);
    w.into_vec()
}

/// A signed prekey as published.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedPreKeyJson {
    /// Identifier.
    pub id: u32,
    /// X25519 public key.
    pub key: B64,
    /// Signature by the identity key.
    pub signature: B64,
}

/// A one-time prekey as published.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OneTimePreKeyJson {
    /// Identifier.
    pub id: u32,
    /// X25519 public key.
    pub key: B64,
}

/// Device registration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    /// The user this device belongs to.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9._-]{1,64}$"))]
    pub user: String,
    /// The device's [`IdentityKeys`](crate::IdentityKeys) (128 bytes).
    pub identity: B64,
    /// Current signed prekey.
    pub signed_prekey: SignedPreKeyJson,
    /// One-time prekeys.
    pub one_time_prekeys: Vec<OneTimePreKeyJson>,
    /// Push endpoint for push notices: `https://` on one of the relay's
    /// configured gateway hosts.
    pub push_endpoint: Option<String>,
    /// When the device signed this request, by the relay's clock (the signed
    /// server time of the session it just started). The relay refuses a
    /// timestamp more than [`REGISTRATION_SKEW_MS`] from its own clock, or not
    /// newer than the device's last accepted registration: a replayed
    /// registration is refused.
    pub timestamp_ms: i64,
    /// For a second (third, ...) device of a user: the
    /// [`DeviceLink`](crate::link::DeviceLink) signed by one of the user's
    /// registered devices. The relay registers a further device for a user
    /// only with one.
    #[serde(default)]
    pub link: Option<B64>,
    /// The device's signature over [`register_message`] (proof of key).
    pub signature: B64,
}

/// How far a registration's timestamp may be from the relay's clock.
pub const REGISTRATION_SKEW_MS: i64 = 5 * 60 * 1000;

/// What a registration signature covers: everything in the request, so no
/// part of it (the prekeys, the push endpoint, the time) can be swapped or
/// replayed.
pub fn register_message(req: &RegisterRequest) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(b"occ/v1/register/3")
        .var_bytes(req.user.as_bytes())
        .var_bytes(req.identity.as_slice())
        .var_bytes(req.push_endpoint.as_deref().unwrap_or("").as_bytes())
        .var_bytes(req.link.as_ref().map_or(&[][..], |l| l.as_slice()))
        .raw(&req.timestamp_ms.to_be_bytes())
        .u32(req.signed_prekey.id)
        .var_bytes(req.signed_prekey.key.as_slice())
        .var_bytes(req.signed_prekey.signature.as_slice())
        .u32(u32::try_from(req.one_time_prekeys.len()).unwrap_or(u32::MAX));
    for k in &req.one_time_prekeys {
        w.u32(k.id).var_bytes(k.key.as_slice());
    }
    w.into_vec()
}

/// Registration result.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterResponse {
    /// The device id (hex Ed25519 key).
    pub device_id: String,
    /// The relay's service key.
    pub service_key: B64,
}

/// Ask for an authentication challenge.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeRequest {
    /// The device id.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub device_id: String,
}

/// A single-use challenge.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeResponse {
    /// 32 random bytes.
    pub challenge: B64,
    /// When it stops being accepted.
    pub expires_ms: i64,
}

/// What a challenge signature covers.
pub fn auth_message(challenge: &[u8], device_id: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(b"occ/v1/auth")
        .var_bytes(challenge)
        .var_bytes(device_id.as_bytes());
    w.into_vec()
}

/// Answer a challenge.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequest {
    /// The device id.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub device_id: String,
    /// The challenge received.
    pub challenge: B64,
    /// The device's signature over [`auth_message`].
    pub signature: B64,
}

/// A bearer token.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// Opaque token for `Authorization: Bearer`.
    pub token: String,
    /// Expiry, ms since the epoch.
    pub expires_ms: i64,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &"<redacted>")
            .field("expires_ms", &self.expires_ms)
            .finish()
    }
}

/// A device of a user.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    /// The device id.
    pub device_id: String,
    /// Its identity keys.
    pub identity: B64,
    /// Its organisation certificate, if one was installed.
    #[serde(default)]
    pub certificate: Option<B64>,
    /// The [`DeviceLink`](crate::link::DeviceLink) by which another device
    /// of the same user added it (none for a user's first device).
    #[serde(default)]
    pub link: Option<B64>,
}

/// A user's devices.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DevicesResponse {
    /// Devices, in registration order.
    pub devices: Vec<DeviceInfo>,
}

/// One device and its user.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceLookup {
    /// The device id.
    pub device_id: String,
    /// Its user.
    pub user: String,
    /// Its identity keys.
    pub identity: B64,
    /// Its organisation certificate, if one was installed.
    #[serde(default)]
    pub certificate: Option<B64>,
    /// The [`DeviceLink`](crate::link::DeviceLink) by which another device
    /// of the same user added it (none for a user's first device).
    #[serde(default)]
    pub link: Option<B64>,
}

/// The organisation's revocation list (`GET`/`POST /revocations`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevocationsResponse {
    /// The encoded [`RevocationList`](crate::certificate::RevocationList).
    pub list: B64,
}

/// A device installs its organisation certificate (`POST /certificate`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CertificateUpload {
    /// The encoded [`DeviceCertificate`](crate::certificate::DeviceCertificate).
    pub certificate: B64,
}

/// A prekey bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BundleResponse {
    /// The encoded [`PreKeyBundle`](crate::PreKeyBundle).
    pub bundle: B64,
}

/// More prekeys (and optionally a rotated signed prekey).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreKeyUpload {
    /// A new signed prekey.
    pub signed_prekey: Option<SignedPreKeyJson>,
    /// New one-time prekeys.
    pub one_time_prekeys: Vec<OneTimePreKeyJson>,
}

/// One-time prekeys the relay still holds for this device.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreKeyCount {
    /// Count.
    pub one_time_prekeys: u64,
}

/// One envelope of a batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutEnvelope {
    /// Recipient device.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub device_id: String,
    /// The encoded [`Envelope`](crate::Envelope).
    pub envelope: B64,
}

/// A batch of per-device envelopes with one TTL.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendRequest {
    /// Sender-chosen key; resending the same key is a no-op that returns
    /// the first answer.
    pub idempotency_key: String,
    /// Time to live in seconds (1 to [`MAX_TTL_SECS`]).
    pub ttl_secs: u64,
    /// Message class for the push notice and policy ("text", "file", ...).
    pub class: String,
    /// Opaque thread hint for the push notice.
    pub thread: Option<String>,
    /// The envelopes, in delivery order per device.
    pub envelopes: Vec<OutEnvelope>,
    /// Every device the sender's directory lists for the users it addresses
    /// and for its own user, encrypted to or deliberately not (untrusted,
    /// uncertified). When given, the relay refuses the batch with
    /// [`StaleDevices`] (409) if any of those users has a registered device
    /// outside this list: the sender's view is stale (a device was added)
    /// and it must look again and re-seal, so no device of a recipient is
    /// missed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listed_devices: Vec<String>,
    /// An urgent alert: its push notice says so (the content stays
    /// end-to-end encrypted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub urgent: bool,
}

/// The answer (409) to a batch sealed with a stale directory.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StaleDevices {
    /// What happened and what to do.
    pub error: String,
    /// The registered devices the sender did not list.
    pub missing_devices: Vec<String>,
}

/// The queued batch.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendResponse {
    /// Relay message ids, one per envelope, in request order.
    pub message_ids: Vec<String>,
    /// Relay time at queueing.
    pub server_time_ms: i64,
    /// When the relay will refuse and purge them.
    pub expires_ms: i64,
}

/// A queued envelope for this device.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxItem {
    /// Position in this device's queue (the cursor).
    pub seq: i64,
    /// Relay message id.
    pub id: String,
    /// Sending device (as the relay authenticated it).
    pub sender_device: String,
    /// The encoded envelope.
    pub envelope: B64,
    /// Relay time it was queued.
    pub sent_ms: i64,
    /// Relay expiry.
    pub expires_ms: i64,
}

/// An inbox page.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxResponse {
    /// Items with `seq > after`, oldest first, none expired.
    pub messages: Vec<InboxItem>,
    /// Relay time now.
    pub server_time_ms: i64,
    /// One-time prekeys the relay still holds for this device (so the
    /// client knows when to publish more without asking).
    #[serde(default)]
    pub one_time_prekeys: Option<u64>,
}

/// Acknowledge (and so delete) everything up to a cursor.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckRequest {
    /// Highest `seq` durably stored by the client.
    pub up_to_seq: i64,
}

/// How many were removed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckResponse {
    /// Count.
    pub removed: u64,
}

/// A push notice: metadata only, never content.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushNotice {
    /// Relay message id (to fetch with `GET /messages/{id}`).
    pub message_id: String,
    /// The recipient device.
    pub recipient_device: String,
    /// The sending device.
    pub sender_device: String,
    /// Sender's thread hint.
    pub thread: Option<String>,
    /// Envelope size in bytes.
    pub size: u64,
    /// When it expires.
    pub expires_ms: i64,
    /// Message class.
    pub class: String,
    /// When it was queued.
    pub sent_ms: i64,
    /// Whether the sender marked it urgent.
    #[serde(default)]
    pub urgent: bool,
    /// Envelopes queued for the device in this burst (the relay sends one
    /// notice per burst, naming the newest).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// What a push notice signature covers.
pub fn push_notice_message(n: &PushNotice) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(b"occ/v1/push-notice")
        .var_bytes(n.message_id.as_bytes())
        .var_bytes(n.recipient_device.as_bytes())
        .var_bytes(n.sender_device.as_bytes())
        .var_bytes(n.thread.as_deref().unwrap_or("").as_bytes())
        .u8(u8::from(n.thread.is_some()))
        .u64(n.size)
        .u64(n.expires_ms as u64)
        .var_bytes(n.class.as_bytes())
        .u64(n.sent_ms as u64)
        .u8(u8::from(n.urgent))
        .u32(n.count);
    w.into_vec()
}

/// A device's new push endpoint (the push distributor gave it another), or
/// none to stop push notices.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushEndpointRequest {
    /// `https://` on one of the relay's configured gateway hosts, or null.
    pub push_endpoint: Option<String>,
}

/// A chain head of a device's audit trail, for the relay to countersign.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditHeadRequest {
    /// Sequence number of the newest entry.
    pub seq: u64,
    /// Its hash (32 bytes).
    pub hash: B64,
}

/// The relay's countersignature of an audit chain head.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditHead {
    /// The device whose trail it is.
    pub device_id: String,
    /// Sequence number of the newest entry.
    pub seq: u64,
    /// Its hash.
    pub hash: B64,
    /// Relay time of the countersignature.
    pub server_time_ms: i64,
    /// Ed25519 signature by the service key over [`audit_head_message`].
    pub signature: B64,
}

/// What an audit head countersignature covers.
pub fn audit_head_message(device_id: &str, seq: u64, hash: &[u8], server_time_ms: i64) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(b"occ/v1/audit-head")
        .var_bytes(device_id.as_bytes())
        .u64(seq)
        .var_bytes(hash)
        .u64(server_time_ms as u64);
    w.into_vec()
}

/// An organisation document ([`crate::org::OrgDoc`], encoded).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrgDocResponse {
    /// The encoded document.
    pub doc: B64,
}

/// The organisation's commands for this device, oldest first.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandsResponse {
    /// Encoded [`crate::org::OrgDoc`]s.
    pub commands: Vec<B64>,
}

/// A push notice with the relay's signature, as POSTed to a push endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedPushNotice {
    /// The notice.
    pub notice: PushNotice,
    /// Ed25519 signature by the service key over [`push_notice_message`].
    pub signature: B64,
}

/// Largest attachment blob the relay stores by default (bytes of
/// ciphertext; a deployment may lower it).
pub const MAX_ATTACHMENT_BYTES: u64 = 512 << 20;
/// Largest piece of an attachment one upload request carries.
pub const ATTACHMENT_PIECE_BYTES: usize = 2 << 20;

/// Whether `s` is an attachment id: 32 lowercase hex characters, chosen at
/// random by the uploading device (it is also the authenticated data of
/// every chunk, so the sender picks it before encrypting).
pub fn valid_attachment_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Announces an attachment upload (`POST /v1/attachments`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttachmentCreate {
    /// Attachment id ([`valid_attachment_id`]).
    pub id: String,
    /// Size of the encrypted blob in bytes (1 to the relay's limit).
    pub size: u64,
    /// Time to live in seconds (1 to [`MAX_TTL_SECS`]): the message's.
    pub ttl_secs: u64,
}

/// Where an attachment upload stands.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttachmentStatus {
    /// Attachment id.
    pub id: String,
    /// Size of the whole blob.
    pub size: u64,
    /// Bytes the relay holds (an upload resumes here).
    pub received: u64,
    /// When the relay stops serving it and deletes it, ms.
    pub expires_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64_is_base64url_without_padding_and_rejects_garbage() {
        let v = B64(vec![0xfb, 0xff, 0x01]);
        let s = serde_json::to_string(&v).unwrap();
        assert_eq!(s, "\"-_8B\"");
        assert_eq!(serde_json::from_str::<B64>(&s).unwrap(), v);
        assert!(serde_json::from_str::<B64>("\"+/8B\"").is_err());
        assert!(serde_json::from_str::<B64>("\"!!\"").is_err());
    }

    #[test]
    fn device_ids() {
        let k = [0xab; 32];
        assert_eq!(parse_device_id(&device_id_hex(&k)), Some(k));
        assert_eq!(parse_device_id("ab"), None);
        assert_eq!(parse_device_id(&"zz".repeat(32)), None);
    }

    #[test]
    fn signed_messages_are_domain_separated_and_unambiguous() {
        assert_ne!(ack_message(b"ab", "c", 1), ack_message(b"a", "bc", 1));
        assert_ne!(auth_message(b"x", "d"), ack_message(b"x", "d", 0));
        let n = PushNotice {
            message_id: "m".into(),
            recipient_device: "r".into(),
            sender_device: "s".into(),
            thread: None,
            size: 1,
            expires_ms: 2,
            class: "text".into(),
            sent_ms: 3,
            urgent: false,
            count: 1,
        };
        let mut t = n.clone();
        t.thread = Some(String::new());
        assert_ne!(push_notice_message(&n), push_notice_message(&t));
        let mut u = n.clone();
        u.urgent = true;
        assert_ne!(push_notice_message(&n), push_notice_message(&u));
        u.urgent = false;
        u.count = 2;
        assert_ne!(push_notice_message(&n), push_notice_message(&u));
    }
}
