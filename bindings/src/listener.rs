//! Events for the app: the `EventListener` foreign trait and the
//! `EventSubscription` handle. Any number of subscriptions per client; each
//! has its own bounded queue in the core (ordinary events coalesce for a
//! slow subscriber, critical ones are never dropped — see
//! `occ_core::events`), so emitting never waits for the app.

use std::sync::Arc;

use occ_core::ClientEvent;

/// Receives the client's events (implemented in Kotlin or Swift).
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// Called after the change is stored, in order, on a core thread that
    /// belongs to this subscription: it may block (only this subscriber
    /// waits, and its queue coalesces meanwhile).
    fn on_event(&self, event: ClientEvent);
}

/// Hands core events to the foreign listener.
pub(crate) struct Forward(pub(crate) Arc<dyn EventListener>);

impl occ_core::EventListener for Forward {
    fn on_event(&self, event: ClientEvent) {
        self.0.on_event(event);
    }
}

/// One subscription to a client's events; it ends on `cancel()`, when
/// released (Kotlin `close()`, Swift `deinit`), or (after what is pending)
/// when the profile closes.
#[derive(uniffi::Object)]
pub struct EventSubscription(pub(crate) occ_core::Subscription);

#[uniffi::export(async_runtime = "tokio")]
impl EventSubscription {
    /// The next event, waiting for one; `null`/`nil` once ended.
    pub async fn next(&self) -> Option<ClientEvent> {
        self.0.next().await
    }

    /// The next event if one is pending.
    pub fn try_next(&self) -> Option<ClientEvent> {
        self.0.try_next()
    }

    /// Events waiting to be taken.
    pub fn pending(&self) -> u32 {
        u32::try_from(self.0.pending()).unwrap_or(u32::MAX)
    }

    /// Ends the subscription (idempotent; never blocks).
    pub fn cancel(&self) {
        self.0.close();
    }

    /// Whether it ended.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}
