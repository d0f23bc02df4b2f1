//! Events for the app: what changed, delivered to one [`EventListener`] (a
//! foreign trait in the bindings) after the change is durable.
//!
//! Invariants:
//! - An event is emitted only after the transaction that made the change has
//!   committed, so an app reacting to it always finds the data.
//! - Events carry identifiers and metadata, never message content or key
//!   material.
//! - Hot paths are batched: a page of new messages is one
//!   `MessagesReceived`, so the app (and the FFI) is crossed once per page.
//! - A listener that panics loses that one event (logged); it never poisons
//!   the client, stops background sync or reaches the caller.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use crate::store::SecurityEventKind;
use crate::sync::ReceivedMessage;

/// Something the app should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// New messages were stored: one event per inbox page (not per
    /// message), so a burst crosses into the app once.
    MessagesReceived {
        /// The messages, in arrival order.
        messages: Vec<ReceivedMessage>,
    },
    /// The relay accepted an outgoing message.
    MessageSent {
        /// The message.
        message_id: String,
    },
    /// Messages were removed (TTL, read timer or keep period).
    MessagesExpired {
        /// Their ids.
        message_ids: Vec<String>,
    },
    /// A queued message could not be delivered and was dropped.
    DeliveryFailed {
        /// The message.
        message_id: String,
        /// Why.
        reason: String,
    },
    /// A security-relevant refusal: a pin mismatch, a relay that cannot prove
    /// its identity, an inbox item that was rejected.
    SecurityAlert {
        /// What happened.
        kind: SecurityEventKind,
        /// Metadata, never content.
        detail: String,
    },
    /// A recipient's receipt for an alert this user sent.
    ReceiptReceived {
        /// The alert.
        message_id: String,
        /// The recipient.
        user: String,
        /// `delivered`, `read` or `acknowledged`.
        state: String,
    },
    /// An alert's acknowledgement deadline passed with recipients who did
    /// not acknowledge: re-notify them or reach the next contact.
    AlertEscalated {
        /// The alert.
        message_id: String,
        /// Its thread.
        thread_id: String,
        /// Who did not acknowledge in time.
        unacknowledged: Vec<String>,
    },
    /// Downloads reached the organisation's volume alert.
    VolumeAlert {
        /// Downloads within the window.
        count: u32,
        /// The window, minutes.
        minutes: u32,
    },
    /// A newer organisation policy is in force.
    PolicyChanged,
    /// The organisation locked (or unlocked) this profile.
    Locked {
        /// Whether it is locked now.
        locked: bool,
    },
    /// The organisation wiped this profile: the client is closed and its
    /// files are gone; delete its key from the keystore.
    ProfileWiped,
    /// Background sync reached the relay, or lost it.
    ConnectionChanged {
        /// Whether the relay is reachable and verified now.
        connected: bool,
        /// Why it was lost (empty when connected).
        reason: String,
    },
}

/// Receives [`ClientEvent`]s.
pub trait EventListener: Send + Sync {
    /// Called after the change is stored. Keep it short: it runs on the
    /// thread that made the change.
    fn on_event(&self, event: ClientEvent);
}

/// The listener slot of one client.
#[derive(Default)]
pub(crate) struct Events {
    listener: Mutex<Option<Arc<dyn EventListener>>>,
}

impl Events {
    pub(crate) fn set(&self, listener: Option<Arc<dyn EventListener>>) {
        *self.listener.lock().unwrap_or_else(PoisonError::into_inner) = listener;
    }

    pub(crate) fn emit(&self, event: ClientEvent) {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(l) = listener
            && std::panic::catch_unwind(AssertUnwindSafe(|| l.on_event(event))).is_err()
        {
            tracing::warn!("the event listener panicked; the event was dropped");
        }
    }

    pub(crate) fn alert(&self, kind: SecurityEventKind, detail: impl Into<String>) {
        self.emit(ClientEvent::SecurityAlert {
            kind,
            detail: detail.into(),
        });
    }
}
