//! The end-to-end encrypted payload: what a ratchet or sender-key message
//! decrypts to. The relay never sees it.
//!
//! ```text
//! Payload    = version(1) kind(1) body
//! Text       = message_id thread_id thread_title thread_kind:u8 sender_user
//!              sent_ms:u64 ttl_expiry_ms:u64 read_timer? body        (kind 1)
//! SenderKey  = distribution (an encoded SenderKeyDistribution)       (kind 2)
//! ThreadInfo = thread_id title members:u32 user*                     (kind 3)
//! Receipt    = message_id thread_id state:u8 at_ms:u64 reply?          (kind 4)
//! ```
//!
//! After its body a text may carry extensions, each `tag(1) fields`, in tag
//! order, each at most once (so the encoding stays canonical); an ordinary
//! text has none, so older encodings still parse:
//!
//! ```text
//! 1 ack_by_ms?                                   urgent alert
//! 2 id key(32) blob_sha256(32) size:u64 mime name thumb   attachment
//! ```
//!
//! The attachment extension is everything a recipient needs to fetch and
//! open the file: the relay's blob id, the per-file key, the SHA-256 of the
//! encrypted blob (checked before the file is accepted, so a byte changed
//! on the relay is refused — and every recipient gets the very bytes the
//! sender committed to), the plaintext size, MIME type, file name and an
//! optional small thumbnail. No plaintext digest: each chunk is
//! authenticated by the AEAD under the key in this message. A receipt names the message
//! by its sender-scoped id, the same on every device.
//!
//! Strings are `u32`-length-prefixed UTF-8 with per-field limits; options are
//! a 0/1 flag. Message ids, thread ids (also inside a sender-key distribution)
//! and user names must follow [`crate::ids`]; anything else is a parse error,
//! so a receiver refuses such a payload as one bad item. The TTL expiry is absolute (ms since the epoch, the sender's
//! trusted time) and authenticated end to end, so the relay can shorten a
//! message's life but never lengthen it.

use zeroize::Zeroizing;

use crate::codec::{Reader, Writer};
use crate::ids::{
    MAX_MESSAGE_ID_LEN, MAX_THREAD_ID_LEN, MAX_USER_LEN, valid_message_id, valid_thread_id,
    valid_user_name,
};
use crate::{MAX_CIPHERTEXT_LEN, SenderKeyDistribution, VERSION, WireError};

const KIND_TEXT: u8 = 1;
const KIND_SENDER_KEY: u8 = 2;
const KIND_THREAD_INFO: u8 = 3;
const KIND_RECEIPT: u8 = 4;

/// Longest reply an acknowledgement may carry, bytes.
pub const MAX_REPLY_LEN: usize = 256;

/// Longest thread title.
pub const MAX_TITLE_LEN: usize = 256;
/// Most members in a thread.
pub const MAX_MEMBERS: usize = 1000;
/// Largest text body.
pub const MAX_BODY_LEN: usize = MAX_CIPHERTEXT_LEN - 4096;
/// Largest attachment thumbnail, bytes.
pub const MAX_THUMB_LEN: usize = 48 * 1024;
/// Longest attachment MIME type.
pub const MAX_MIME_LEN: usize = 128;
/// Longest attachment file name.
pub const MAX_FILE_NAME_LEN: usize = 255;

const EXT_URGENT: u8 = 1;
const EXT_ATTACHMENT: u8 = 2;

/// A text message.
#[derive(Clone, PartialEq, Eq)]
pub struct TextMessage {
    /// Sender-chosen unique id.
    pub message_id: String,
    /// The thread (for 1:1, the pair's direct thread id).
    pub thread_id: String,
    /// Thread title as the sender knows it.
    pub thread_title: String,
    /// Whether the thread is a group thread.
    pub group: bool,
    /// The sending user.
    pub sender_user: String,
    /// Sender's trusted time at sending, ms.
    pub sent_ms: i64,
    /// Absolute TTL expiry, ms.
    pub ttl_expiry_ms: i64,
    /// Optional read timer, ms.
    pub read_timer_ms: Option<i64>,
    /// The text (UTF-8 is not enforced; it is the app's content).
    pub body: Vec<u8>,
    /// Set for an urgent alert: it asks for receipts, and for an
    /// acknowledgement by `ack_by_ms` when that is given.
    pub urgent: Option<Urgent>,
    /// A file sent with the message (the body is its caption).
    pub attachment: Option<Box<AttachmentRef>>,
}

/// A file carried by a message: where the encrypted blob is, and the key
/// and digests to fetch, check and open it.
#[derive(Clone, PartialEq, Eq)]
pub struct AttachmentRef {
    /// The relay's blob id (32 lowercase hex).
    pub id: String,
    /// The per-file key (ChaCha20-Poly1305, chunked; see occ-core's store).
    pub key: Zeroizing<[u8; 32]>,
    /// SHA-256 of the encrypted blob as uploaded.
    pub blob_sha256: [u8; 32],
    /// Plaintext size in bytes.
    pub size: u64,
    /// MIME type ([`valid_mime`]).
    pub mime: String,
    /// File name ([`valid_file_name`]).
    pub name: String,
    /// A small preview image (empty: none).
    pub thumb: Vec<u8>,
}

impl std::fmt::Debug for AttachmentRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentRef")
            .field("id", &self.id)
            .field("size", &self.size)
            .field("mime", &self.mime)
            .finish_non_exhaustive()
    }
}

/// Whether `s` is an acceptable MIME type: `type/subtype`, printable ASCII
/// without spaces, at most [`MAX_MIME_LEN`] bytes.
pub fn valid_mime(s: &str) -> bool {
    s.len() <= MAX_MIME_LEN
        && s.bytes().all(|b| b.is_ascii_graphic())
        && s.split_once('/')
            .is_some_and(|(t, st)| !t.is_empty() && !st.is_empty() && !st.contains('/'))
}

/// Whether `s` is an acceptable file name: 1 to [`MAX_FILE_NAME_LEN`]
/// bytes, no path separator, no control character, not `.` or `..` — so
/// a received name can never point outside the folder it is saved in.
pub fn valid_file_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_FILE_NAME_LEN
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

/// What an urgent alert asks of its recipients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Urgent {
    /// Acknowledge by then (sender's trusted time, ms), if asked.
    pub ack_by_ms: Option<i64>,
}

/// How far a recipient got with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReceiptState {
    /// Stored on a device.
    Delivered,
    /// Opened.
    Read,
    /// Acknowledged by the user.
    Acknowledged,
}

impl ReceiptState {
    fn byte(self) -> u8 {
        match self {
            Self::Delivered => 1,
            Self::Read => 2,
            Self::Acknowledged => 3,
        }
    }

    /// The stable name (`delivered`, `read`, `acknowledged`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Acknowledged => "acknowledged",
        }
    }

    /// Parses [`ReceiptState::as_str`].
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::Delivered, Self::Read, Self::Acknowledged]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A receipt for a message, sent back to its sender's devices.
#[derive(Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The message (its sender-scoped id).
    pub message_id: String,
    /// Its thread.
    pub thread_id: String,
    /// How far the recipient got.
    pub state: ReceiptState,
    /// The recipient's trusted time of the transition, ms.
    pub at_ms: i64,
    /// A short reply with an acknowledgement.
    pub reply: Option<String>,
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt")
            .field("message_id", &self.message_id)
            .field("state", &self.state)
            .field("reply_len", &self.reply.as_ref().map(String::len))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TextMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextMessage")
            .field("message_id", &self.message_id)
            .field("thread_id", &self.thread_id)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A thread's title and members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadInfo {
    /// Thread id.
    pub thread_id: String,
    /// Title.
    pub title: String,
    /// Member user names (sender included).
    pub members: Vec<String>,
}

/// Any payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A text message.
    Text(TextMessage),
    /// A sender key for a thread (only ever sent over a pairwise session).
    SenderKey(SenderKeyDistribution),
    /// Thread membership.
    ThreadInfo(ThreadInfo),
    /// A receipt for a message this user sent.
    Receipt(Receipt),
}

fn read_str(r: &mut Reader<'_>, field: &'static str, max: usize) -> Result<String, WireError> {
    let b = r.var_bytes(field, max)?;
    String::from_utf8(b.to_vec()).map_err(|_| WireError::Invalid { field })
}

/// Reads an identifier and checks it against its rule in [`crate::ids`].
fn read_id(
    r: &mut Reader<'_>,
    field: &'static str,
    max: usize,
    valid: fn(&str) -> bool,
) -> Result<String, WireError> {
    let s = read_str(r, field, max)?;
    if valid(&s) {
        Ok(s)
    } else {
        Err(WireError::Invalid { field })
    }
}

/// Reads a text's extensions: known tags, ascending, each at most once.
fn read_extensions(
    r: &mut Reader<'_>,
) -> Result<(Option<Urgent>, Option<Box<AttachmentRef>>), WireError> {
    let (mut urgent, mut attachment) = (None, None);
    let mut last = 0u8;
    while r.remaining() > 0 {
        let tag = r.u8("extension")?;
        if tag <= last {
            return Err(WireError::Invalid { field: "extension" });
        }
        last = tag;
        match tag {
            EXT_URGENT => {
                let ack_by_ms = r.option("ack_by", |r| r.u64("ack_by").map(|v| v as i64))?;
                if ack_by_ms.is_some_and(|t| t < 0) {
                    return Err(WireError::Invalid { field: "ack_by" });
                }
                urgent = Some(Urgent { ack_by_ms });
            }
            EXT_ATTACHMENT => attachment = Some(Box::new(read_attachment(r)?)),
            _ => return Err(WireError::Invalid { field: "extension" }),
        }
    }
    Ok((urgent, attachment))
}

fn read_attachment(r: &mut Reader<'_>) -> Result<AttachmentRef, WireError> {
    let id = read_id(r, "attachment_id", 32, crate::api::valid_attachment_id)?;
    let key = Zeroizing::new(r.array::<32>("attachment_key")?);
    let blob_sha256 = r.array::<32>("blob_sha256")?;
    let size = r.u64("size")?;
    if size > i64::MAX as u64 {
        return Err(WireError::Invalid { field: "size" });
    }
    let mime = read_id(r, "mime", MAX_MIME_LEN, valid_mime)?;
    let name = read_id(r, "file_name", MAX_FILE_NAME_LEN, valid_file_name)?;
    let thumb = r.var_bytes("thumb", MAX_THUMB_LEN)?.to_vec();
    Ok(AttachmentRef {
        id,
        key,
        blob_sha256,
        size,
        mime,
        name,
        thumb,
    })
}

impl Payload {
    /// The canonical encoding (zeroized on drop: it is plaintext).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(256);
        w.u8(VERSION);
        match self {
            Payload::Text(t) => {
                w.u8(KIND_TEXT)
                    .var_bytes(t.message_id.as_bytes())
                    .var_bytes(t.thread_id.as_bytes())
                    .var_bytes(t.thread_title.as_bytes())
                    .u8(u8::from(t.group))
                    .var_bytes(t.sender_user.as_bytes())
                    .u64(t.sent_ms as u64)
                    .u64(t.ttl_expiry_ms as u64)
                    .option(t.read_timer_ms.as_ref(), |w, v| {
                        w.u64(*v as u64);
                    })
                    .var_bytes(&t.body);
                if let Some(u) = &t.urgent {
                    w.u8(EXT_URGENT).option(u.ack_by_ms.as_ref(), |w, v| {
                        w.u64(*v as u64);
                    });
                }
                if let Some(a) = &t.attachment {
                    w.u8(EXT_ATTACHMENT)
                        .var_bytes(a.id.as_bytes())
                        .raw(&a.key[..])
                        .raw(&a.blob_sha256)
                        .u64(a.size)
                        .var_bytes(a.mime.as_bytes())
                        .var_bytes(a.name.as_bytes())
                        .var_bytes(&a.thumb);
                }
            }
            Payload::Receipt(rc) => {
                w.u8(KIND_RECEIPT)
                    .var_bytes(rc.message_id.as_bytes())
                    .var_bytes(rc.thread_id.as_bytes())
                    .u8(rc.state.byte())
                    .u64(rc.at_ms as u64)
                    .option(rc.reply.as_ref(), |w, v| {
                        w.var_bytes(v.as_bytes());
                    });
            }
            Payload::SenderKey(d) => {
                w.u8(KIND_SENDER_KEY).var_bytes(&d.encode());
            }
            Payload::ThreadInfo(i) => {
                w.u8(KIND_THREAD_INFO)
                    .var_bytes(i.thread_id.as_bytes())
                    .var_bytes(i.title.as_bytes())
                    .u32(i.members.len() as u32);
                for m in &i.members {
                    w.var_bytes(m.as_bytes());
                }
            }
        }
        Zeroizing::new(w.into_vec())
    }

    /// Parses a payload. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        r.version(VERSION)?;
        let p = match r.u8("kind")? {
            KIND_TEXT => {
                let message_id =
                    read_id(&mut r, "message_id", MAX_MESSAGE_ID_LEN, valid_message_id)?;
                let thread_id = read_id(&mut r, "thread_id", MAX_THREAD_ID_LEN, valid_thread_id)?;
                let thread_title = read_str(&mut r, "thread_title", MAX_TITLE_LEN)?;
                let group = r.flag("thread_kind")?;
                let sender_user = read_id(&mut r, "sender_user", MAX_USER_LEN, valid_user_name)?;
                let sent_ms = r.u64("sent_ms")? as i64;
                let ttl_expiry_ms = r.u64("ttl_expiry_ms")? as i64;
                let read_timer_ms =
                    r.option("read_timer", |r| r.u64("read_timer").map(|v| v as i64))?;
                let body = r.var_bytes("body", MAX_BODY_LEN)?.to_vec();
                let (urgent, attachment) = read_extensions(&mut r)?;
                if sent_ms < 0 || ttl_expiry_ms < 0 || read_timer_ms.is_some_and(|t| t <= 0) {
                    return Err(WireError::Invalid { field: "times" });
                }
                Payload::Text(TextMessage {
                    message_id,
                    thread_id,
                    thread_title,
                    group,
                    sender_user,
                    sent_ms,
                    ttl_expiry_ms,
                    read_timer_ms,
                    body,
                    urgent,
                    attachment,
                })
            }
            KIND_RECEIPT => {
                let message_id =
                    read_id(&mut r, "message_id", MAX_MESSAGE_ID_LEN, valid_message_id)?;
                let thread_id = read_id(&mut r, "thread_id", MAX_THREAD_ID_LEN, valid_thread_id)?;
                let state = match r.u8("state")? {
                    1 => ReceiptState::Delivered,
                    2 => ReceiptState::Read,
                    3 => ReceiptState::Acknowledged,
                    _ => return Err(WireError::Invalid { field: "state" }),
                };
                let at_ms = r.u64("at_ms")? as i64;
                let reply = r.option("reply", |r| read_str(r, "reply", MAX_REPLY_LEN))?;
                if at_ms < 0 {
                    return Err(WireError::Invalid { field: "at_ms" });
                }
                Payload::Receipt(Receipt {
                    message_id,
                    thread_id,
                    state,
                    at_ms,
                    reply,
                })
            }
            KIND_SENDER_KEY => {
                let d = r.var_bytes("distribution", 512)?;
                Payload::SenderKey(SenderKeyDistribution::parse(d)?)
            }
            KIND_THREAD_INFO => {
                let thread_id = read_id(&mut r, "thread_id", MAX_THREAD_ID_LEN, valid_thread_id)?;
                let title = read_str(&mut r, "title", MAX_TITLE_LEN)?;
                let n = r.count("members", MAX_MEMBERS)?;
                let mut members = Vec::with_capacity(n);
                for _ in 0..n {
                    members.push(read_id(&mut r, "member", MAX_USER_LEN, valid_user_name)?);
                }
                Payload::ThreadInfo(ThreadInfo {
                    thread_id,
                    title,
                    members,
                })
            }
            other => return Err(WireError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment() -> AttachmentRef {
        AttachmentRef {
            id: "0123456789abcdef0123456789abcdef".into(),
            key: Zeroizing::new([4; 32]),
            blob_sha256: [5; 32],
            size: 1234,
            mime: "image/jpeg".into(),
            name: "site.jpg".into(),
            thumb: vec![7; 10],
        }
    }

    #[test]
    fn attachment_fields_outside_their_rules_do_not_parse() {
        let Payload::Text(good) = samples()[2].clone() else {
            unreachable!()
        };
        let with = |f: &dyn Fn(&mut AttachmentRef)| {
            let mut t = good.clone();
            f(t.attachment.as_mut().unwrap());
            Payload::parse(&Payload::Text(t).encode())
        };
        assert!(with(&|_| {}).is_ok());
        for (field, r) in [
            (
                "attachment_id",
                with(&|a| a.id = "0123456789ABCDEF0123456789ABCDEF".into()),
            ),
            ("attachment_id", with(&|a| a.id = "../x".into())),
            ("mime", with(&|a| a.mime = "image".into())),
            ("mime", with(&|a| a.mime = "image/ jpeg".into())),
            ("file_name", with(&|a| a.name = "../../etc/passwd".into())),
            ("file_name", with(&|a| a.name = "..".into())),
            ("file_name", with(&|a| a.name = "a\\b".into())),
            ("file_name", with(&|a| a.name = "a\nb".into())),
            ("file_name", with(&|a| a.name = String::new())),
            ("size", with(&|a| a.size = u64::MAX)),
        ] {
            assert_eq!(r, Err(WireError::Invalid { field }), "{field}");
        }
        assert!(with(&|a| a.thumb = vec![0; MAX_THUMB_LEN]).is_ok());
        assert!(with(&|a| a.thumb = vec![0; MAX_THUMB_LEN + 1]).is_err());
        assert!(with(&|a| a.name = "x".repeat(MAX_FILE_NAME_LEN)).is_ok());
        assert!(with(&|a| a.mime = format!("a/{}", "b".repeat(MAX_MIME_LEN - 2))).is_ok());
        assert!(with(&|a| a.mime = format!("a/{}", "b".repeat(MAX_MIME_LEN - 1))).is_err());
        // Extensions out of order, repeated or unknown are refused.
        let mut t = good.clone();
        t.urgent = None;
        t.attachment = None;
        let base = Payload::Text(t).encode().to_vec();
        let mut repeated = base.clone();
        repeated.extend_from_slice(&[1, 0, 1, 0]);
        assert_eq!(
            Payload::parse(&repeated),
            Err(WireError::Invalid { field: "extension" })
        );
        let mut unknown = base.clone();
        unknown.push(3);
        assert_eq!(
            Payload::parse(&unknown),
            Err(WireError::Invalid { field: "extension" })
        );
        let mut zero = base;
        zero.push(0);
        assert_eq!(
            Payload::parse(&zero),
            Err(WireError::Invalid { field: "extension" })
        );
        assert!(
            !format!("{:?}", attachment()).contains("[4, 4"),
            "no key in Debug"
        );
    }

    fn samples() -> Vec<Payload> {
        vec![
            Payload::Text(TextMessage {
                message_id: "m1".into(),
                thread_id: "t1".into(),
                thread_title: "Ops".into(),
                group: true,
                sender_user: "alice".into(),
                sent_ms: 5,
                ttl_expiry_ms: 10,
                read_timer_ms: Some(3),
                body: b"hello".to_vec(),
                urgent: None,
                attachment: None,
            }),
            Payload::Text(TextMessage {
                message_id: "m2".into(),
                thread_id: "t1".into(),
                thread_title: "Ops".into(),
                group: true,
                sender_user: "alice".into(),
                sent_ms: 5,
                ttl_expiry_ms: 10,
                read_timer_ms: None,
                body: b"fire".to_vec(),
                urgent: Some(Urgent { ack_by_ms: Some(9) }),
                attachment: None,
            }),
            Payload::Text(TextMessage {
                message_id: "m3".into(),
                thread_id: "t1".into(),
                thread_title: "Ops".into(),
                group: true,
                sender_user: "alice".into(),
                sent_ms: 5,
                ttl_expiry_ms: 10,
                read_timer_ms: None,
                body: b"site photo".to_vec(),
                urgent: Some(Urgent { ack_by_ms: None }),
                attachment: Some(Box::new(attachment())),
            }),
            Payload::Receipt(Receipt {
                message_id: "m2".into(),
                thread_id: "t1".into(),
                state: ReceiptState::Acknowledged,
                at_ms: 7,
                reply: Some("on my way".into()),
            }),
            Payload::SenderKey(SenderKeyDistribution {
                thread_id: b"t1".to_vec(),
                distribution_id: [1; 16],
                iteration: 0,
                chain_key: Zeroizing::new([2; 32]),
                signing_key: [3; 32],
            }),
            Payload::ThreadInfo(ThreadInfo {
                thread_id: "t1".into(),
                title: "Ops".into(),
                members: vec!["alice".into(), "bob".into()],
            }),
        ]
    }

    #[test]
    fn round_trips_and_rejects_truncation() {
        for p in samples() {
            let bytes = p.encode();
            assert_eq!(Payload::parse(&bytes).unwrap(), p);
            // A prefix never parses as the same payload (an urgent text cut
            // after its body is an ordinary one: inside the AEAD, nobody
            // can cut it).
            for n in 0..bytes.len() {
                assert!(Payload::parse(&bytes[..n]).map_or(true, |q| q != p));
            }
        }
        let mut bad_flag = samples()[1].encode().to_vec();
        let at = bad_flag.len() - 10; // the urgent tag, before `1 ack_by`
        bad_flag[at] = 2;
        assert!(matches!(
            Payload::parse(&bad_flag),
            Err(WireError::TooLarge {
                field: "attachment_id",
                ..
            })
        ));
        assert_eq!(Payload::parse(&[1, 9]), Err(WireError::UnknownKind(9)));
    }

    #[test]
    fn identifiers_outside_their_rules_do_not_parse() {
        let Payload::Text(good) = samples()[0].clone() else {
            unreachable!()
        };
        let text = |f: &dyn Fn(&mut TextMessage)| {
            let mut t = good.clone();
            f(&mut t);
            Payload::parse(&Payload::Text(t).encode())
        };
        assert!(text(&|_| {}).is_ok());
        for (field, r) in [
            ("message_id", text(&|t| t.message_id = "a b".into())),
            ("message_id", text(&|t| t.message_id = String::new())),
            ("thread_id", text(&|t| t.thread_id = "../etc".into())),
            ("sender_user", text(&|t| t.sender_user = "Mallory".into())),
        ] {
            assert_eq!(r, Err(WireError::Invalid { field }));
        }
        let info = |thread: &str, member: &str| {
            Payload::parse(
                &Payload::ThreadInfo(ThreadInfo {
                    thread_id: thread.into(),
                    title: "t".into(),
                    members: vec!["alice".into(), member.into()],
                })
                .encode(),
            )
        };
        assert!(info("ops", "bob").is_ok());
        assert_eq!(
            info("o ps", "bob"),
            Err(WireError::Invalid { field: "thread_id" })
        );
        assert_eq!(
            info("ops", "Bob"),
            Err(WireError::Invalid { field: "member" })
        );
        let Payload::SenderKey(mut d) = samples()[4].clone() else {
            unreachable!()
        };
        d.thread_id = b"t/1".to_vec();
        assert_eq!(
            Payload::parse(&Payload::SenderKey(d).encode()),
            Err(WireError::Invalid { field: "thread_id" })
        );
    }

    #[test]
    fn debug_shows_no_body() {
        let s = format!("{:?}", samples()[0]);
        assert!(!s.contains("hello"));
    }
}
