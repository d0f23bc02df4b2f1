//! Events for the app: what changed, delivered after the change is durable
//! to any number of subscribers, each with its own bounded queue.
//!
//! Invariants:
//! - An event is emitted only after the transaction that made the change has
//!   committed, so an app reacting to it always finds the data.
//! - Events carry identifiers and metadata, never message content or key
//!   material.
//! - **Emitting never blocks.** Emitting appends to each subscriber's queue
//!   under a short lock and returns; nothing the app does runs on the
//!   emitting thread. A subscription with a listener
//!   ([`crate::Client::subscribe_listener`]) is served by a thread of its own, so
//!   a listener that blocks stalls only itself; a pull subscription
//!   ([`Subscription::next`]) is served by whoever awaits it.
//! - **Bounded, and nothing that matters is lost.** Ordinary events
//!   (messages received, sent or expired, receipts, connection changes) are
//!   coalesced once a subscriber falls behind: a second `MessagesReceived`
//!   merges into the pending one, a newer connection state replaces the
//!   older, and past [`MAX_ORDINARY`] pending ordinary events the oldest
//!   goes; the subscriber then gets one [`ClientEvent::Coalesced`] saying
//!   how many it missed, so it re-reads what it shows. Critical events
//!   (security alerts, lock, wipe, withdrawals, urgent alerts, escalations,
//!   policy changes, delivery failures) are never dropped and never
//!   reordered against each other. Past [`MAX_CRITICAL`] pending critical
//!   events, those a remote party can cause in bulk merge instead of piling
//!   up — security alerts of one kind into one ("and N more"), urgent
//!   message batches into one, withdrawals into one — so an attacker's
//!   flood costs a slow subscriber a bounded amount of memory. The others
//!   (lock, wipe, policy, escalation, volume, delivery failure) come only
//!   from the organisation or from this user's own actions.
//! - A listener that panics loses that one event (logged); it never poisons
//!   the client, stops background sync or reaches the caller.
//! - When the client closes, each subscription delivers what is pending and
//!   then ends ([`Subscription::next`] answers `None`).

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::store::SecurityEventKind;
use crate::sync::ReceivedMessage;

/// Pending ordinary events per subscriber before the oldest is dropped.
pub const MAX_ORDINARY: usize = 64;
/// Pending ordinary events per subscriber before new ones merge into
/// pending ones of their kind (below it, every event is delivered as is).
pub const COALESCE_AFTER: usize = 16;
/// Pending critical events per subscriber before floods merge.
pub const MAX_CRITICAL: usize = 1024;
/// Most message ids one merged event carries (older ones are dropped and
/// counted in [`ClientEvent::Coalesced`]; a merged withdrawal becomes
/// "withdraw all" instead).
pub const MAX_MERGED_IDS: usize = 1000;

/// Why notifications must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithdrawReason {
    /// Their messages reached their deadline (TTL, read timer, keep
    /// period) or their push notice lapsed before it was answered.
    Expired,
    /// The profile was locked (by the user, the app, or the organisation):
    /// nothing of it may stay on screen.
    Locked,
    /// The profile was wiped.
    Wiped,
}

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
    /// its identity, an inbox item that was rejected, a forged push notice.
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
    /// The profile was closed (locked by the user or the app): the client
    /// answers [`crate::Error::Closed`] from now on and the subscription
    /// ends after this event.
    ProfileClosed,
    /// Notifications shown for these messages or push notices must be
    /// removed now.
    WithdrawNotifications {
        /// Stored messages (their ids).
        message_ids: Vec<String>,
        /// Push prompts (their relay message ids).
        relay_message_ids: Vec<String>,
        /// Every notification of this profile must go.
        all: bool,
        /// Why.
        reason: WithdrawReason,
    },
    /// Background sync reached the relay, or lost it.
    ConnectionChanged {
        /// Whether the relay is reachable and verified now.
        connected: bool,
        /// Why it was lost (empty when connected).
        reason: String,
    },
    /// This subscriber fell behind and `dropped` ordinary events were
    /// merged away or dropped: re-read what is on screen.
    Coalesced {
        /// How many.
        dropped: u32,
    },
}

impl ClientEvent {
    /// Whether the event is never dropped (see the module documentation).
    pub fn is_critical(&self) -> bool {
        match self {
            Self::MessagesReceived { messages } => messages.iter().any(|m| m.urgent),
            Self::MessageSent { .. }
            | Self::MessagesExpired { .. }
            | Self::ReceiptReceived { .. }
            | Self::ConnectionChanged { .. }
            | Self::Coalesced { .. } => false,
            Self::DeliveryFailed { .. }
            | Self::SecurityAlert { .. }
            | Self::AlertEscalated { .. }
            | Self::VolumeAlert { .. }
            | Self::PolicyChanged
            | Self::Locked { .. }
            | Self::ProfileWiped
            | Self::ProfileClosed
            | Self::WithdrawNotifications { .. } => true,
        }
    }
}

/// Receives [`ClientEvent`]s on a thread of its subscription's own.
pub trait EventListener: Send + Sync {
    /// Called after the change is stored, in order, on the subscription's
    /// own thread: it may block (that only holds up this subscriber, whose
    /// queue coalesces meanwhile).
    fn on_event(&self, event: ClientEvent);
}

/// One pending event, with how many like it were merged into it.
struct Pending {
    event: ClientEvent,
    merged: u32,
}

#[derive(Default)]
struct QueueState {
    entries: VecDeque<Pending>,
    ordinary: usize,
    critical: usize,
    /// Events (or message ids) merged away or dropped since the last
    /// `Coalesced`.
    dropped: u32,
    /// Some of them were urgent messages: `Coalesced` goes out next.
    urgent_dropped: bool,
    /// The subscriber closed: nothing more is queued or delivered.
    closed: bool,
    /// The client closed: what is pending is delivered, then the end.
    ended: bool,
    /// A listener is handling an event right now.
    in_flight: bool,
}

/// Appends `ids` to `into`, keeping the newest `MAX_MERGED_IDS`; returns how
/// many were dropped.
fn merge_ids<T>(into: &mut Vec<T>, ids: Vec<T>) -> u32 {
    into.extend(ids);
    let over = into.len().saturating_sub(MAX_MERGED_IDS);
    into.drain(..over);
    u32::try_from(over).unwrap_or(u32::MAX)
}

impl QueueState {
    fn push(&mut self, event: ClientEvent) {
        if self.closed || self.ended {
            return;
        }
        let critical = event.is_critical();
        let event = if critical {
            if self.critical < MAX_CRITICAL {
                Some(event)
            } else {
                self.merge(event)
            }
        } else if self.ordinary < COALESCE_AFTER {
            Some(event)
        } else {
            self.merge(event)
        };
        let Some(event) = event else { return };
        if critical {
            self.critical += 1;
        } else {
            if self.ordinary >= MAX_ORDINARY
                && let Some(pos) = self.entries.iter().position(|p| !p.event.is_critical())
                && let Some(old) = self.entries.remove(pos)
            {
                self.ordinary -= 1;
                self.dropped = self.dropped.saturating_add(old.merged.saturating_add(1));
            }
            self.ordinary += 1;
        }
        self.entries.push_back(Pending { event, merged: 0 });
    }

    /// Merges `event` into the newest pending event it can join; gives it
    /// back when there is none. A critical event merged into moves to the
    /// back of the queue, so critical events stay in the order of their
    /// newest part.
    fn merge(&mut self, event: ClientEvent) -> Option<ClientEvent> {
        use ClientEvent as E;
        let critical = event.is_critical();
        let Some(index) = self.entries.iter().rposition(|p| {
            p.event.is_critical() == critical
                && match (&p.event, &event) {
                    (E::MessagesReceived { .. }, E::MessagesReceived { .. })
                    | (E::MessagesExpired { .. }, E::MessagesExpired { .. })
                    | (E::MessageSent { .. }, E::MessageSent { .. })
                    | (E::ConnectionChanged { .. }, E::ConnectionChanged { .. })
                    | (E::WithdrawNotifications { .. }, E::WithdrawNotifications { .. }) => true,
                    (
                        E::ReceiptReceived {
                            message_id: a,
                            user: u,
                            ..
                        },
                        E::ReceiptReceived {
                            message_id: b,
                            user: v,
                            ..
                        },
                    ) => a == b && u == v,
                    (E::SecurityAlert { kind: a, .. }, E::SecurityAlert { kind: b, .. }) => a == b,
                    _ => false,
                }
        }) else {
            return Some(event);
        };
        let pending = &mut self.entries[index];
        let mut dropped = 0u32;
        match (&mut pending.event, event) {
            (E::MessagesReceived { messages }, E::MessagesReceived { messages: more }) => {
                dropped = merge_ids(messages, more);
            }
            (E::MessagesExpired { message_ids }, E::MessagesExpired { message_ids: more }) => {
                dropped = merge_ids(message_ids, more);
            }
            (
                E::WithdrawNotifications {
                    message_ids,
                    relay_message_ids,
                    all,
                    reason,
                },
                E::WithdrawNotifications {
                    message_ids: more,
                    relay_message_ids: more_relay,
                    all: more_all,
                    reason: new_reason,
                },
            ) => {
                message_ids.extend(more);
                relay_message_ids.extend(more_relay);
                *all |= more_all;
                if message_ids.len() + relay_message_ids.len() > MAX_MERGED_IDS {
                    *all = true;
                }
                if *all {
                    message_ids.clear();
                    relay_message_ids.clear();
                }
                if new_reason != WithdrawReason::Expired {
                    *reason = new_reason;
                }
            }
            (slot, newer) => {
                // Same kind, nothing to add up: the newer one stands for
                // both (a security alert keeps its first detail and counts).
                if !matches!(slot, E::SecurityAlert { .. }) {
                    *slot = newer;
                    dropped = 1;
                }
            }
        }
        pending.merged = pending.merged.saturating_add(1);
        self.dropped = self.dropped.saturating_add(dropped);
        if critical {
            // Urgent messages named no more: say so at once.
            self.urgent_dropped |= dropped > 0;
            if let Some(moved) = self.entries.remove(index) {
                self.entries.push_back(moved);
            }
        }
        None
    }

    fn take(&mut self) -> Option<ClientEvent> {
        let front_ordinary = self.entries.front().is_some_and(|p| !p.event.is_critical());
        if self.dropped > 0 && (front_ordinary || self.entries.is_empty() || self.urgent_dropped) {
            let dropped = std::mem::take(&mut self.dropped);
            self.urgent_dropped = false;
            return Some(ClientEvent::Coalesced { dropped });
        }
        let Pending { event, merged } = self.entries.pop_front()?;
        if event.is_critical() {
            self.critical -= 1;
        } else {
            self.ordinary -= 1;
        }
        Some(match event {
            ClientEvent::SecurityAlert { kind, detail } if merged > 0 => {
                ClientEvent::SecurityAlert {
                    kind,
                    detail: format!("{detail} (and {merged} more like it)"),
                }
            }
            e => e,
        })
    }

    fn is_idle(&self) -> bool {
        (self.entries.is_empty() && self.dropped == 0) || self.closed
    }

    fn pending(&self) -> usize {
        self.entries.len()
    }
}

/// One subscriber's queue.
struct Queue {
    state: Mutex<QueueState>,
    changed: Condvar,
    wake: tokio::sync::Notify,
}

impl Queue {
    fn new() -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            changed: Condvar::new(),
            wake: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn signal(&self) {
        self.changed.notify_all();
        self.wake.notify_one();
    }

    fn push(&self, event: ClientEvent) {
        self.lock().push(event);
        self.signal();
    }

    fn end(&self) {
        self.lock().ended = true;
        self.signal();
    }

    fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.entries.clear();
        drop(s);
        self.signal();
    }

    /// Blocks until an event is there (or the end): for listener threads.
    fn next_blocking(&self) -> Option<ClientEvent> {
        let mut s = self.lock();
        s.in_flight = false;
        self.changed.notify_all();
        loop {
            if s.closed {
                return None;
            }
            if let Some(e) = s.take() {
                s.in_flight = true;
                return Some(e);
            }
            if s.ended {
                return None;
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Listener queues of this process, for [`wait_for_listeners`].
fn listener_queues() -> &'static Mutex<Vec<Weak<Queue>>> {
    static QUEUES: OnceLock<Mutex<Vec<Weak<Queue>>>> = OnceLock::new();
    QUEUES.get_or_init(Mutex::default)
}

/// Waits (up to `timeout`) until every event emitted so far in this
/// process has been handed to its listener and the listener returned — for
/// a terminal client about to exit, and for tests that check what a
/// listener saw. Returns whether that happened in time.
pub fn wait_for_listeners(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let queues: Vec<Arc<Queue>> = {
        let mut all = listener_queues()
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        all.retain(|q| q.strong_count() > 0);
        all.iter().filter_map(Weak::upgrade).collect()
    };
    for q in queues {
        let mut s = q.lock();
        while !s.is_idle() || s.in_flight {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = q
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
    true
}

/// A subscription to one client's events; it ends when closed or dropped,
/// or (after delivering what is pending) when the client closes.
pub struct Subscription {
    queue: Arc<Queue>,
    hub: Weak<Hub>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next event, waiting for one; `None` once the subscription ended.
    pub async fn next(&self) -> Option<ClientEvent> {
        loop {
            let notified = self.queue.wake.notified();
            {
                let mut s = self.queue.lock();
                if s.closed {
                    return None;
                }
                if let Some(e) = s.take() {
                    drop(s);
                    self.queue.changed.notify_all();
                    return Some(e);
                }
                if s.ended {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// The next event if one is pending, without waiting.
    pub fn try_next(&self) -> Option<ClientEvent> {
        let e = self.queue.lock().take();
        self.queue.changed.notify_all();
        e
    }

    /// Events waiting to be taken.
    pub fn pending(&self) -> usize {
        self.queue.lock().pending()
    }

    /// Ends the subscription: pending events are dropped, a waiting
    /// [`Subscription::next`] answers `None`, a listener is called no more.
    /// Idempotent; never blocks on the listener.
    pub fn close(&self) {
        self.queue.close();
        if let Some(hub) = self.hub.upgrade() {
            hub.remove(&self.queue);
        }
        // The listener thread ends by itself at its next turn; it is not
        // joined here (the caller may be that listener).
        drop(
            self.thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }

    /// Whether it ended (closed by the subscriber, or the client closed and
    /// everything pending was taken).
    pub fn is_closed(&self) -> bool {
        let s = self.queue.lock();
        s.closed || (s.ended && s.entries.is_empty() && s.dropped == 0)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.close();
    }
}

#[derive(Default)]
struct Hub {
    queues: Mutex<Vec<Arc<Queue>>>,
    /// Set once the client closed: later subscriptions end at once.
    ended: Mutex<bool>,
}

impl Hub {
    fn remove(&self, queue: &Arc<Queue>) {
        self.queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|q| !Arc::ptr_eq(q, queue));
    }
}

/// The event hub of one client.
#[derive(Default)]
pub(crate) struct Events {
    hub: Arc<Hub>,
    /// The subscription made by [`Events::set`] (the one-listener API).
    slot: Mutex<Option<Subscription>>,
}

impl Events {
    /// A new pull subscription.
    pub(crate) fn subscribe(&self) -> Subscription {
        let queue = Arc::new(Queue::new());
        if *self
            .hub
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            queue.end();
        } else {
            self.hub
                .queues
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(queue.clone());
        }
        Subscription {
            queue,
            hub: Arc::downgrade(&self.hub),
            thread: Mutex::new(None),
        }
    }

    /// A new subscription whose events go to `listener` on a thread of its
    /// own.
    pub(crate) fn subscribe_listener(
        &self,
        listener: Arc<dyn EventListener>,
    ) -> crate::Result<Subscription> {
        let sub = self.subscribe();
        let queue = sub.queue.clone();
        {
            let mut all = listener_queues()
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            all.retain(|q| q.strong_count() > 0);
            all.push(Arc::downgrade(&queue));
        }
        let thread = std::thread::Builder::new()
            .name("occ-events".into())
            .spawn(move || {
                while let Some(event) = queue.next_blocking() {
                    if std::panic::catch_unwind(AssertUnwindSafe(|| listener.on_event(event)))
                        .is_err()
                    {
                        tracing::warn!("an event listener panicked; the event was dropped");
                    }
                }
                let mut s = queue.lock();
                s.in_flight = false;
                drop(s);
                queue.changed.notify_all();
            })
            .map_err(|e| crate::Error::internal(format!("starting an event thread: {e}")))?;
        *sub.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(thread);
        Ok(sub)
    }

    /// Sets (or with `None` removes) the one listener of the simple API,
    /// replacing the previous one (other subscriptions are untouched).
    pub(crate) fn set(&self, listener: Option<Arc<dyn EventListener>>) -> crate::Result<()> {
        let new = listener.map(|l| self.subscribe_listener(l)).transpose()?;
        let old = std::mem::replace(
            &mut *self.slot.lock().unwrap_or_else(PoisonError::into_inner),
            new,
        );
        drop(old);
        Ok(())
    }

    /// Hands `event` to every subscriber; never blocks on any of them.
    pub(crate) fn emit(&self, event: ClientEvent) {
        let queues = self
            .hub
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for q in queues {
            q.push(event.clone());
        }
    }

    pub(crate) fn alert(&self, kind: SecurityEventKind, detail: impl Into<String>) {
        self.emit(ClientEvent::SecurityAlert {
            kind,
            detail: detail.into(),
        });
    }

    /// The client closed: every subscription delivers what is pending, then
    /// ends; later subscriptions end at once.
    pub(crate) fn end(&self) {
        *self
            .hub
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        let queues = std::mem::take(
            &mut *self
                .hub
                .queues
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for q in queues {
            q.end();
        }
    }
}

/// The event hub alone, for the events benchmark (`bench-internals`).
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
#[derive(Default)]
pub struct BenchHub(Events);

#[cfg(feature = "bench-internals")]
impl BenchHub {
    /// A pull subscription.
    pub fn subscribe(&self) -> Subscription {
        self.0.subscribe()
    }

    /// A listener subscription.
    pub fn subscribe_listener(&self, l: Arc<dyn EventListener>) -> crate::Result<Subscription> {
        self.0.subscribe_listener(l)
    }

    /// Emits one event to every subscriber.
    pub fn emit(&self, e: ClientEvent) {
        self.0.emit(e);
    }

    /// Ends every subscription.
    pub fn end(&self) {
        self.0.end();
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(n: usize, urgent: bool) -> ClientEvent {
        ClientEvent::MessagesReceived {
            messages: (0..n)
                .map(|i| ReceivedMessage {
                    thread_id: "t".into(),
                    message_id: format!("m{i}"),
                    sender: "alice".into(),
                    urgent,
                })
                .collect(),
        }
    }

    fn alert(detail: &str) -> ClientEvent {
        ClientEvent::SecurityAlert {
            kind: SecurityEventKind::ForgedNotice,
            detail: detail.into(),
        }
    }

    fn drain(s: &Subscription) -> Vec<ClientEvent> {
        std::iter::from_fn(|| s.try_next()).collect()
    }

    #[test]
    fn below_the_threshold_every_event_arrives_as_it_was() {
        let events = Events::default();
        let s = events.subscribe();
        for i in 0..COALESCE_AFTER {
            events.emit(ClientEvent::MessageSent {
                message_id: format!("m{i}"),
            });
        }
        let got = drain(&s);
        assert_eq!(got.len(), COALESCE_AFTER);
        assert_eq!(
            got.last(),
            Some(&ClientEvent::MessageSent {
                message_id: format!("m{}", COALESCE_AFTER - 1)
            })
        );
    }

    #[test]
    fn a_slow_subscriber_gets_critical_events_in_order_and_ordinary_ones_coalesced() {
        let events = Events::default();
        let slow = events.subscribe();
        let fast = events.subscribe();
        for i in 0..10_000 {
            events.emit(received(1, false));
            events.emit(ClientEvent::MessageSent {
                message_id: format!("s{i}"),
            });
            if i % 1000 == 0 {
                events.emit(alert(&format!("a{i}")));
            }
            // The fast subscriber keeps up.
            while fast.try_next().is_some() {}
        }
        events.emit(ClientEvent::Locked { locked: true });
        events.emit(ClientEvent::ProfileWiped);
        assert!(slow.pending() <= MAX_ORDINARY + 12, "{}", slow.pending());
        let got = drain(&slow);
        let critical: Vec<_> = got.iter().filter(|e| e.is_critical()).cloned().collect();
        let mut expected: Vec<_> = (0..10).map(|i| alert(&format!("a{}", i * 1000))).collect();
        expected.push(ClientEvent::Locked { locked: true });
        expected.push(ClientEvent::ProfileWiped);
        assert_eq!(critical, expected);
        let coalesced: u32 = got
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Coalesced { dropped } => Some(*dropped),
                _ => None,
            })
            .sum();
        assert!(coalesced > 9_000, "{coalesced}");
        let merged = got
            .iter()
            .filter_map(|e| match e {
                ClientEvent::MessagesReceived { messages } => Some(messages.len()),
                _ => None,
            })
            .max()
            .unwrap();
        assert!(merged > 1, "messages were merged: {merged}");
        assert!(merged <= MAX_MERGED_IDS);
    }

    #[test]
    fn a_flood_of_critical_events_merges_past_the_cap_and_keeps_its_count() {
        let events = Events::default();
        let s = events.subscribe();
        for i in 0..MAX_CRITICAL + 500 {
            events.emit(alert(&format!("a{i}")));
        }
        for _ in 0..3000 {
            events.emit(received(1, true));
        }
        events.emit(ClientEvent::ProfileWiped);
        assert!(s.pending() <= MAX_CRITICAL + 2, "{}", s.pending());
        let got = drain(&s);
        let last_alert = got
            .iter()
            .rev()
            .find_map(|e| match e {
                ClientEvent::SecurityAlert { detail, .. } => Some(detail.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            last_alert,
            format!("a{} (and 500 more like it)", MAX_CRITICAL - 1)
        );
        let urgent: usize = got
            .iter()
            .filter_map(|e| match e {
                ClientEvent::MessagesReceived { messages } => Some(messages.len()),
                _ => None,
            })
            .sum();
        assert_eq!(
            urgent, MAX_MERGED_IDS,
            "the newest urgent messages are named"
        );
        assert_eq!(got.last(), Some(&ClientEvent::ProfileWiped));
    }

    #[test]
    fn withdrawals_merge_into_withdraw_all_when_too_many() {
        let mut q = QueueState {
            critical: MAX_CRITICAL,
            ..QueueState::default()
        };
        q.entries.push_back(Pending {
            event: ClientEvent::WithdrawNotifications {
                message_ids: vec!["a".into()],
                relay_message_ids: vec![],
                all: false,
                reason: WithdrawReason::Expired,
            },
            merged: 0,
        });
        q.push(ClientEvent::WithdrawNotifications {
            message_ids: vec!["b".into()],
            relay_message_ids: vec!["r".into()],
            all: false,
            reason: WithdrawReason::Expired,
        });
        assert_eq!(q.entries.len(), 1);
        assert_eq!(
            q.entries[0].event,
            ClientEvent::WithdrawNotifications {
                message_ids: vec!["a".into(), "b".into()],
                relay_message_ids: vec!["r".into()],
                all: false,
                reason: WithdrawReason::Expired,
            }
        );
        q.push(ClientEvent::WithdrawNotifications {
            message_ids: (0..MAX_MERGED_IDS).map(|i| i.to_string()).collect(),
            relay_message_ids: vec![],
            all: false,
            reason: WithdrawReason::Locked,
        });
        assert_eq!(
            q.entries[0].event,
            ClientEvent::WithdrawNotifications {
                message_ids: vec![],
                relay_message_ids: vec![],
                all: true,
                reason: WithdrawReason::Locked,
            }
        );
    }

    #[test]
    fn a_blocked_listener_never_blocks_the_emitter_and_resumes_in_order() {
        struct Gate {
            open: Mutex<bool>,
            cv: Condvar,
            seen: Mutex<Vec<ClientEvent>>,
        }
        impl EventListener for Gate {
            fn on_event(&self, event: ClientEvent) {
                let mut open = self.open.lock().unwrap();
                while !*open {
                    open = self.cv.wait(open).unwrap();
                }
                self.seen.lock().unwrap().push(event);
            }
        }
        let gate = Arc::new(Gate {
            open: Mutex::new(false),
            cv: Condvar::new(),
            seen: Mutex::new(Vec::new()),
        });
        let events = Events::default();
        let other = events.subscribe();
        let _sub = events.subscribe_listener(gate.clone()).unwrap();
        let started = Instant::now();
        for i in 0..5_000 {
            events.emit(ClientEvent::MessageSent {
                message_id: format!("m{i}"),
            });
        }
        events.emit(alert("forged"));
        events.emit(ClientEvent::ProfileClosed);
        // Nothing waited for the blocked listener.
        assert!(started.elapsed() < Duration::from_secs(5));
        *gate.open.lock().unwrap() = true;
        gate.cv.notify_all();
        assert!(wait_for_listeners(Duration::from_secs(10)));
        let seen = gate.seen.lock().unwrap().clone();
        let critical: Vec<_> = seen.iter().filter(|e| e.is_critical()).cloned().collect();
        assert_eq!(critical, vec![alert("forged"), ClientEvent::ProfileClosed]);
        assert!(seen.len() < 200, "coalesced: {}", seen.len());
        // The other subscriber got both critical events too.
        let both: Vec<_> = drain(&other)
            .into_iter()
            .filter(|e| e.is_critical())
            .collect();
        assert_eq!(both, critical);
    }

    #[test]
    fn the_end_delivers_what_is_pending_then_ends() {
        let events = Events::default();
        let s = events.subscribe();
        events.emit(ClientEvent::ProfileClosed);
        events.end();
        events.emit(ClientEvent::PolicyChanged);
        assert!(!s.is_closed());
        assert_eq!(s.try_next(), Some(ClientEvent::ProfileClosed));
        assert_eq!(s.try_next(), None);
        assert!(s.is_closed());
        let late = events.subscribe();
        assert!(late.is_closed());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(late.next()), None);
    }

    #[test]
    fn a_closed_subscription_gets_nothing_and_next_ends() {
        let events = Events::default();
        let s = Arc::new(events.subscribe());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let waiting = rt.spawn({
            let s = s.clone();
            async move { s.next().await }
        });
        std::thread::sleep(Duration::from_millis(50));
        s.close();
        events.emit(ClientEvent::PolicyChanged);
        assert_eq!(rt.block_on(waiting).unwrap(), None);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn a_panicking_listener_loses_one_event_only() {
        struct Flaky(Mutex<Vec<ClientEvent>>);
        impl EventListener for Flaky {
            fn on_event(&self, event: ClientEvent) {
                if event == ClientEvent::PolicyChanged {
                    panic!("listener bug");
                }
                self.0.lock().unwrap().push(event);
            }
        }
        let flaky = Arc::new(Flaky(Mutex::new(Vec::new())));
        let events = Events::default();
        events.set(Some(flaky.clone())).unwrap();
        events.emit(ClientEvent::PolicyChanged);
        events.emit(ClientEvent::ProfileWiped);
        assert!(wait_for_listeners(Duration::from_secs(5)));
        assert_eq!(*flaky.0.lock().unwrap(), vec![ClientEvent::ProfileWiped]);
        events.set(None).unwrap();
        events.emit(ClientEvent::ProfileClosed);
        assert!(wait_for_listeners(Duration::from_secs(5)));
        assert_eq!(
            flaky.0.lock().unwrap().len(),
            1,
            "removed listeners hear nothing"
        );
    }
}
