//! Panic containment: every public `Client` operation runs inside
//! [`guarded`], so a panic anywhere below (a bug, or a panicking injected
//! clock) becomes [`Error::Internal`] for that one call instead of unwinding
//! into the app or across the FFI. State stays consistent: nothing is
//! committed to memory before its transaction commits, and a lock poisoned
//! by the panic is recovered.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{Error, Result};

/// A future that turns a panic while polling `F` into [`Error::Internal`].
pub(crate) struct Guarded<F>(Pin<Box<F>>);

impl<T, F: Future<Output = Result<T>>> Future for Guarded<F> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(move || inner.poll(cx))) {
            Ok(poll) => poll,
            // The panic's own message is not passed on: it could quote data.
            Err(_) => Poll::Ready(Err(panicked())),
        }
    }
}

fn panicked() -> Error {
    tracing::error!("an occ operation panicked");
    Error::internal("the operation panicked; it was abandoned and nothing half-done was kept")
}

/// Runs `f` with panics contained.
pub(crate) fn guarded<T, F: Future<Output = Result<T>>>(f: F) -> Guarded<F> {
    Guarded(Box::pin(f))
}

/// Runs a synchronous `f` with panics contained.
pub(crate) fn guarded_sync<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(panicked()))
}
