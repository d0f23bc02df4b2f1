//! Identifier rules, stated once for the whole system.
//!
//! Every identifier that crosses the wire inside an end-to-end payload —
//! message ids, thread ids, user names — is checked here, at parse time, by
//! [`Payload::parse`](crate::payload::Payload::parse) and
//! [`SenderKeyDistribution::parse`](crate::SenderKeyDistribution::parse). The
//! client's store uses the same functions, so an identifier the parser accepts
//! is never one the store would refuse: a sender cannot wedge a receiver's
//! inbox with an id that decrypts but cannot be stored.
//!
//! The alphabets are printable ASCII without separators or spaces, because
//! identifiers appear in logs, the purge log, security events and file names.

/// Longest message id, in bytes.
pub const MAX_MESSAGE_ID_LEN: usize = 128;
/// Longest thread id, in bytes.
pub const MAX_THREAD_ID_LEN: usize = 64;
/// Longest user name, in bytes.
pub const MAX_USER_LEN: usize = 64;
/// Prefix reserved for direct (1:1) thread ids, which both sides derive from
/// the two user names; a group thread may not use it.
pub const DIRECT_THREAD_PREFIX: &str = "dm-";

/// The message-id and thread-id alphabet: `A-Z a-z 0-9 - _ . : @`.
fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@')
}

fn within(s: &str, max: usize, allowed: impl Fn(u8) -> bool) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(allowed)
}

/// A message id: 1 to [`MAX_MESSAGE_ID_LEN`] bytes of `A-Z a-z 0-9 - _ . : @`.
pub fn valid_message_id(s: &str) -> bool {
    within(s, MAX_MESSAGE_ID_LEN, id_byte)
}

/// A thread id: 1 to [`MAX_THREAD_ID_LEN`] bytes of `A-Z a-z 0-9 - _ . : @`.
pub fn valid_thread_id(s: &str) -> bool {
    within(s, MAX_THREAD_ID_LEN, id_byte)
}

/// A thread id given as bytes (sender-key distributions carry it so).
pub fn valid_thread_id_bytes(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok_and(valid_thread_id)
}

/// A user name: 1 to [`MAX_USER_LEN`] bytes of `a-z 0-9 . _ -`.
pub fn valid_user_name(s: &str) -> bool {
    within(s, MAX_USER_LEN, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
    })
}

/// The creator a thread id is bound to: ids of the form
/// `g:<user>:<32 hex digits>` (a random 128-bit value under the creator's
/// name) belong to `<user>`, who alone may create the thread or change its
/// members; nobody else can squat them.
pub fn bound_thread_admin(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("g:")?;
    let (user, random) = rest.split_once(':')?;
    let hex = random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit());
    (valid_user_name(user) && hex).then_some(user)
}

/// Whether `id` names a direct (1:1) thread.
pub fn is_direct_thread_id(id: &str) -> bool {
    id.starts_with(DIRECT_THREAD_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_and_thread_ids() {
        for ok in ["a", "ops-42", "x:y@z.w_v", &"m".repeat(MAX_MESSAGE_ID_LEN)] {
            assert!(valid_message_id(ok), "{ok}");
        }
        for bad in [
            "",
            " ",
            "a b",
            "../x",
            "a/b",
            "é",
            "a\nb",
            "a\u{1b}[2J",
            "a,b",
        ] {
            assert!(!valid_message_id(bad), "{bad:?}");
            assert!(!valid_thread_id(bad), "{bad:?}");
        }
        assert!(!valid_message_id(&"m".repeat(MAX_MESSAGE_ID_LEN + 1)));
        assert!(valid_thread_id(&"t".repeat(MAX_THREAD_ID_LEN)));
        assert!(!valid_thread_id(&"t".repeat(MAX_THREAD_ID_LEN + 1)));
        assert!(valid_thread_id_bytes(b"ops"));
        assert!(!valid_thread_id_bytes(&[0xff, 0x61]));
        assert!(!valid_thread_id_bytes(b""));
    }

    #[test]
    fn user_names() {
        assert!(valid_user_name("alice.smith-2"));
        assert!(valid_user_name(&"u".repeat(MAX_USER_LEN)));
        for bad in [
            "",
            "Alice",
            "a b",
            "a/b",
            "a@b",
            &"u".repeat(MAX_USER_LEN + 1),
        ] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn direct_prefix() {
        assert!(is_direct_thread_id("dm-abc"));
        assert!(!is_direct_thread_id("ops"));
    }

    #[test]
    fn bound_thread_ids_name_their_creator() {
        let hex = "0123456789abcdef0123456789abcdef";
        assert_eq!(bound_thread_admin(&format!("g:alice:{hex}")), Some("alice"));
        assert!(valid_thread_id(&format!("g:alice:{hex}")));
        for not_bound in [
            "incident-42".to_string(),
            format!("g:alice:{}", &hex[..31]),
            format!("g:alice:{hex}0"),
            format!("g:Alice:{hex}"),
            format!("g::{hex}"),
            format!("x:alice:{hex}"),
            format!("g:alice:{}", "z".repeat(32)),
        ] {
            assert_eq!(bound_thread_admin(&not_bound), None, "{not_bound}");
        }
    }
}
