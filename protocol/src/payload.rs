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
//! An urgent text appends `1 ack_by_ms?` after its body (absent for an
//! ordinary one, so older encodings still parse). A receipt names the
//! message by its sender-scoped id, the same on every device.
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
                    w.u8(1).option(u.ack_by_ms.as_ref(), |w, v| {
                        w.u64(*v as u64);
                    });
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
                let urgent = if r.remaining() > 0 {
                    if r.u8("urgent")? != 1 {
                        return Err(WireError::Invalid { field: "urgent" });
                    }
                    let ack_by_ms = r.option("ack_by", |r| r.u64("ack_by").map(|v| v as i64))?;
                    if ack_by_ms.is_some_and(|t| t < 0) {
                        return Err(WireError::Invalid { field: "ack_by" });
                    }
                    Some(Urgent { ack_by_ms })
                } else {
                    None
                };
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
        let at = bad_flag.len() - 10; // the urgent flag, before `1 ack_by`
        bad_flag[at] = 2;
        assert_eq!(
            Payload::parse(&bad_flag),
            Err(WireError::Invalid { field: "urgent" })
        );
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
        let Payload::SenderKey(mut d) = samples()[3].clone() else {
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
