//! Push notices: one signed, content-free notice per device per burst.
//!
//! When envelopes are queued for a device that registered a push endpoint,
//! the first one opens a *burst* window ([`crate::RelayConfig::push_coalesce`]);
//! every envelope queued for that device within it is folded into the same
//! pending notice, which names the newest message, counts them (`count`), and
//! is urgent if any of them was. At the end of the window one notice is
//! signed with the service key and POSTed. So a thread of 50 messages wakes
//! a phone once, and nobody can make the relay hammer a push gateway by
//! sending many small batches. A window of zero sends each notice at once.
//!
//! Invariants: the pending map holds at most one entry per device (bounded
//! by the registered devices); a notice carries metadata only; a push that
//! fails is logged and dropped (the envelope waits in the inbox anyway).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use occ_protocol::api::{B64, PushNotice, SignedPushNotice, push_notice_message};

use crate::AppState;
use ed25519_dalek::Signer;

use crate::limits::check_push_endpoint;

/// Notices waiting for the end of their device's burst window.
#[derive(Default)]
pub(crate) struct Pending {
    by_device: Mutex<HashMap<String, (PushNotice, String)>>,
}

/// Folds `notice` into its device's pending burst; returns whether it opened
/// a new one (the caller then schedules the send).
fn fold(pending: &Pending, notice: PushNotice, endpoint: String) -> bool {
    let Ok(mut map) = pending.by_device.lock() else {
        return false;
    };
    match map.get_mut(&notice.recipient_device) {
        Some((held, held_endpoint)) => {
            let count = held.count.saturating_add(1);
            let urgent = held.urgent || notice.urgent;
            *held = PushNotice {
                count,
                urgent,
                ..notice
            };
            *held_endpoint = endpoint;
            false
        }
        None => {
            map.insert(notice.recipient_device.clone(), (notice, endpoint));
            true
        }
    }
}

/// Queues a notice for `notice.recipient_device` at `endpoint`.
pub(crate) fn notify(s: &std::sync::Arc<AppState>, notice: PushNotice, endpoint: String) {
    let device = notice.recipient_device.clone();
    if !fold(&s.push_pending, notice, endpoint) {
        return;
    }
    let state = s.clone();
    let window = s.push_coalesce;
    tokio::spawn(async move {
        if !window.is_zero() {
            tokio::time::sleep(window).await;
        }
        let taken = state
            .push_pending
            .by_device
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&device));
        if let Some((notice, endpoint)) = taken {
            post(&state, notice, endpoint).await;
        }
    });
}

async fn post(s: &AppState, notice: PushNotice, endpoint: String) {
    // The gateway list may have changed since the device registered.
    if check_push_endpoint(&endpoint, &s.limits.push_gateways).is_err() {
        return;
    }
    let signature = B64(s
        .service_key
        .sign(&push_notice_message(&notice))
        .to_bytes()
        .to_vec());
    let body = SignedPushNotice { notice, signature };
    if let Err(e) = s.push.post(&endpoint).json(&body).send().await {
        tracing::debug!("push to {endpoint} failed: {e}");
    }
}

/// The default burst window.
pub(crate) const DEFAULT_COALESCE: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(id: &str, device: &str, urgent: bool) -> PushNotice {
        PushNotice {
            message_id: id.into(),
            recipient_device: device.into(),
            sender_device: "s".into(),
            thread: None,
            size: 10,
            expires_ms: 5,
            class: "text".into(),
            sent_ms: 1,
            urgent,
            count: 1,
        }
    }

    #[test]
    fn a_burst_folds_into_one_notice_per_device() {
        let p = Pending::default();
        assert!(fold(&p, notice("a", "d1", false), "e".into()));
        assert!(!fold(&p, notice("b", "d1", true), "e".into()));
        assert!(!fold(&p, notice("c", "d1", false), "e".into()));
        assert!(fold(&p, notice("x", "d2", false), "e".into()));
        let map = p.by_device.lock().unwrap();
        let (held, _) = &map["d1"];
        assert_eq!(held.message_id, "c");
        assert_eq!(held.count, 3);
        assert!(held.urgent, "urgent if any envelope of the burst was");
        assert_eq!(map["d2"].0.count, 1);
    }
}
