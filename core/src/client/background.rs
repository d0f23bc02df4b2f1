//! Background sync: two tasks per handle, on the core's runtime (never the
//! caller's: see [`super::runtime`]).
//!
//! - The **receiver** long-polls the inbox; every page is stored, reported
//!   through events and acknowledged; after each drain it tops up prekeys.
//! - The **sender** flushes the outbox whenever a message is queued (it is
//!   woken at once), when a backing-off message falls due, and runs the purge
//!   on schedule.
//!
//! Both reconnect on their own after network loss or a relay restart: each
//! request re-establishes a verified session when needed (pin and signed
//! acknowledgement checked again). Failures back off exponentially up to
//! [`SyncOptions::max_retry_ms`]; `ConnectionChanged` events report each
//! transition. [`SyncHandle::stop`] (or dropping the handle, or closing the
//! client) aborts both tasks at their next await point; every write is a
//! synchronous transaction that never spans an await, so nothing is left
//! half-written.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::{AbortHandle, JoinHandle};

use crate::error::{Error, Result};
use crate::events::ClientEvent;
use crate::store::outbox;
use crate::sync::Engine;
use crate::sync::outgoing::FlushMode;

/// How background sync behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOptions {
    /// How long one inbox long-poll waits, ms (at most 30 000).
    pub long_poll_ms: u64,
    /// How often the purge runs, ms.
    pub purge_interval_ms: u64,
    /// The longest wait between retries after a failure, ms.
    pub max_retry_ms: u64,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            long_poll_ms: 25_000,
            purge_interval_ms: 60_000,
            max_retry_ms: 30_000,
        }
    }
}

/// Running background sync. Stops on [`SyncHandle::stop`] or when dropped.
pub struct SyncHandle {
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SyncHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHandle")
            .field("running", &self.is_running())
            .finish()
    }
}

impl SyncHandle {
    /// Stops background sync; returns at once.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    /// Whether any of its tasks is still running.
    pub fn is_running(&self) -> bool {
        self.tasks.iter().any(|t| !t.is_finished())
    }

    /// Waits until both tasks have ended (after [`SyncHandle::stop`], or
    /// when the client was closed).
    pub async fn stopped(&self) {
        while self.is_running() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a client has started in the background (on the core runtime,
/// [`super::runtime`]).
#[derive(Default)]
pub(crate) struct Runtime {
    started: Mutex<Vec<AbortHandle>>,
}

impl Runtime {
    fn handle(&self) -> Result<tokio::runtime::Handle> {
        Ok(super::runtime::core_runtime()?.handle().clone())
    }

    pub(crate) fn start(&self, engine: Arc<Engine>, options: SyncOptions) -> Result<SyncHandle> {
        let handle = self.handle()?;
        let status = Arc::new(Status::default());
        let tasks = vec![
            handle.spawn(receiver(engine.clone(), options.clone(), status.clone())),
            handle.spawn(sender(engine, options, status)),
        ];
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        started.retain(|a| !a.is_finished());
        started.extend(tasks.iter().map(JoinHandle::abort_handle));
        Ok(SyncHandle { tasks })
    }

    /// Aborts everything started (on close).
    pub(crate) fn stop_all(&self) {
        for a in self
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            a.abort();
        }
    }
}

/// Connection state as last reported, so each transition is told once.
#[derive(Default)]
struct Status(Mutex<Option<bool>>);

impl Status {
    fn report(&self, engine: &Engine, connected: bool, reason: &str) {
        let mut last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if *last != Some(connected) {
            *last = Some(connected);
            engine.events.emit(ClientEvent::ConnectionChanged {
                connected,
                reason: reason.to_string(),
            });
        }
    }
}

/// Exponential backoff between `MIN` and the configured maximum.
struct Backoff {
    next_ms: u64,
    max_ms: u64,
}

impl Backoff {
    const MIN_MS: u64 = 250;

    fn new(max_ms: u64) -> Self {
        Self {
            next_ms: Self::MIN_MS,
            max_ms: max_ms.max(Self::MIN_MS),
        }
    }

    fn reset(&mut self) {
        self.next_ms = Self::MIN_MS;
    }

    async fn wait(&mut self) {
        tokio::time::sleep(Duration::from_millis(self.next_ms)).await;
        self.next_ms = (self.next_ms * 2).min(self.max_ms);
    }
}

async fn receiver(engine: Arc<Engine>, options: SyncOptions, status: Arc<Status>) {
    let mut backoff = Backoff::new(options.max_retry_ms);
    // The first pass (and the first after a failure) does not wait, so the
    // connection state is known at once; then the long-poll.
    let mut wait_ms = 0;
    loop {
        let result = match engine.receive(wait_ms).await {
            Ok(_) => match engine.maintain_prekeys().await {
                Ok(_) => match engine.upkeep().await {
                    Ok(true) => return, // wiped
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                status.report(&engine, true, "");
                backoff.reset();
                wait_ms = options.long_poll_ms;
            }
            Err(Error::Closed) => return,
            Err(e) => {
                tracing::info!("background receive failed (will retry): {e}");
                status.report(&engine, false, &e.to_string());
                backoff.wait().await;
                wait_ms = 0;
            }
        }
    }
}

async fn sender(engine: Arc<Engine>, options: SyncOptions, status: Arc<Status>) {
    let mut backoff = Backoff::new(options.max_retry_ms);
    let purge_every = Duration::from_millis(options.purge_interval_ms.max(1));
    let mut next_purge = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_purge {
            match super::purge(&engine).and_then(|_| engine.check_alerts()) {
                Ok(_) => {}
                Err(Error::Closed) => return,
                Err(e) => tracing::warn!("background purge failed: {e}"),
            }
            next_purge = tokio::time::Instant::now() + purge_every;
        }
        match engine.flush(FlushMode::Due).await {
            Ok(_) => backoff.reset(),
            Err(Error::Closed) => return,
            Err(e) => {
                tracing::info!("background send stopped (will retry): {e}");
                status.report(&engine, false, &e.to_string());
                backoff.wait().await;
                continue;
            }
        }
        // Sleep until the next queued message falls due, the next purge, or
        // a new message is queued — whichever comes first.
        let due_in = engine
            .with_local(|l| Ok((outbox::next_due_ms(&l.store.conn)?, l.store.now_ms())))
            .map(|(due, now)| {
                due.map(|d| Duration::from_millis(u64::try_from(d - now).unwrap_or(0)))
            });
        let due_in = match due_in {
            Ok(d) => d,
            Err(Error::Closed) => return,
            Err(_) => None,
        };
        let until_purge = next_purge.saturating_duration_since(tokio::time::Instant::now());
        let wait = due_in.map_or(until_purge, |d| d.min(until_purge));
        tokio::select! {
            () = engine.outbox_wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}
