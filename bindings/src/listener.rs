//! The app's event listener: a foreign trait the core calls after each
//! change is stored (one `MessagesReceived` per inbox page).

use std::sync::Arc;

use occ_core::ClientEvent;

/// Receives the client's events (implemented in Kotlin or Swift).
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// Called after the change is stored; keep it short (it runs on the
    /// thread that made the change).
    fn on_event(&self, event: ClientEvent);
}

/// Hands core events to the foreign listener.
pub(crate) struct Forward(pub(crate) Arc<dyn EventListener>);

impl occ_core::EventListener for Forward {
    fn on_event(&self, event: ClientEvent) {
        self.0.on_event(event);
    }
}
