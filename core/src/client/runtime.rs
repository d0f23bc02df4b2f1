//! Where the core does its work: never on the caller's thread.
//!
//! UniFFI polls an exported async call's future on the thread that called
//! it — on a phone, often the UI thread — and so does any executor that
//! awaits a [`crate::Client`] future. So every operation is handed to the
//! core's own runtime (a small multi-threaded tokio runtime, `occ-core`
//! threads, shared by every client of the process) before any of its work
//! starts: blocking work (SQLCipher transactions, file I/O, waiting for the
//! profile's lock) runs on that runtime's blocking pool, network work on its
//! workers. The caller's future only waits for the result, which costs it a
//! few microseconds per poll, whatever the core is doing.
//!
//! Invariants:
//! - Dropping the caller's future (a cancelled coroutine or task) aborts
//!   the offloaded async work at its next await point, which the engine
//!   makes safe (see [`crate::sync`]); blocking work, which is one
//!   transaction, runs to its end.
//! - A panic in offloaded work becomes [`Error::Internal`] for that call.
//! - Progress callbacks, which borrow from the caller, are called on the
//!   caller's side: the offloaded work posts the newest `(done, total)` and
//!   the caller's future reports it when polled (so a slow listener only
//!   sees fewer, newer reports).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::task::JoinHandle;

use super::guard::{guarded, guarded_sync};
use crate::error::{Error, Result};

/// The runtime every client of the process runs its work on.
pub(crate) fn core_runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(16)
                .thread_name("occ-core")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::internal(format!("starting the core runtime: {e}")))
}

/// Aborts the task when the waiting future is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn join<T>(handle: JoinHandle<Result<T>>) -> Result<T> {
    let mut handle = AbortOnDrop(handle);
    match (&mut handle.0).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(Error::internal(
            "the operation panicked; it was abandoned and nothing half-done was kept",
        )),
        Err(_) => Err(Error::Closed),
    }
}

/// Runs async work on the core runtime; the returned future only waits.
pub(crate) async fn spawn<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let rt = core_runtime()?;
    join(rt.spawn(guarded(work))).await
}

/// Runs blocking work on the core runtime's blocking pool.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let rt = core_runtime()?;
    join(rt.spawn_blocking(move || guarded_sync(work))).await
}

/// The newest progress of offloaded work, for the caller to report.
#[derive(Default)]
pub(crate) struct ProgressCell {
    done: AtomicU64,
    total: AtomicU64,
    /// Bumped on every report; the caller reports when it moved.
    version: AtomicU64,
    wake: tokio::sync::Notify,
}

impl ProgressCell {
    /// Posts `(done, total)` (from the offloaded work; never blocks).
    pub(crate) fn post(&self, done: u64, total: u64) {
        self.done.store(done, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        self.version.fetch_add(1, Ordering::Release);
        self.wake.notify_one();
    }

    fn read(&self) -> (u64, u64, u64) {
        let v = self.version.load(Ordering::Acquire);
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
            v,
        )
    }
}

/// Runs async `work` (given a progress cell to post to) on the core runtime
/// and reports its progress to `progress` on the caller's side.
pub(crate) async fn spawn_with_progress<T, F, W>(
    progress: &(dyn Fn(u64, u64) + Send + Sync),
    work: W,
) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
    W: FnOnce(Arc<ProgressCell>) -> F,
{
    let cell = Arc::new(ProgressCell::default());
    let rt = core_runtime()?;
    let task = rt.spawn(guarded(work(cell.clone())));
    report_until_done(progress, &cell, join(task)).await
}

/// As [`spawn_with_progress`] for blocking work (file I/O, key derivation).
pub(crate) async fn blocking_with_progress<T, W>(
    progress: &(dyn Fn(u64, u64) + Send + Sync),
    work: W,
) -> Result<T>
where
    T: Send + 'static,
    W: FnOnce(Arc<ProgressCell>) -> Result<T> + Send + 'static,
{
    let cell = Arc::new(ProgressCell::default());
    let rt = core_runtime()?;
    let posted = cell.clone();
    let task = rt.spawn_blocking(move || guarded_sync(move || work(posted)));
    report_until_done(progress, &cell, join(task)).await
}

async fn report_until_done<T>(
    progress: &(dyn Fn(u64, u64) + Send + Sync),
    cell: &ProgressCell,
    task: impl Future<Output = Result<T>>,
) -> Result<T> {
    let mut task = std::pin::pin!(task);
    let mut reported = 0u64;
    let report = |reported: &mut u64| {
        let (done, total, v) = cell.read();
        if v != *reported {
            *reported = v;
            progress(done, total);
        }
    };
    loop {
        tokio::select! {
            biased;
            r = &mut task => {
                report(&mut reported);
                return r;
            }
            () = cell.wake.notified() => report(&mut reported),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    #[test]
    fn work_runs_on_core_threads_and_the_caller_only_waits() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let caller = std::thread::current().id();
        let (on, blocked) = rt.block_on(async {
            blocking(move || {
                std::thread::sleep(Duration::from_millis(50));
                Ok(std::thread::current().id())
            })
            .await
            .map(|t| (t, caller))
            .unwrap()
        });
        assert_ne!(on, blocked);
        let name = rt
            .block_on(spawn(async {
                Ok(std::thread::current().name().map(str::to_string))
            }))
            .unwrap();
        assert_eq!(name.as_deref(), Some("occ-core"));
    }

    #[test]
    fn a_panic_is_an_internal_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt
            .block_on(blocking(|| -> Result<()> { panic!("bug") }))
            .unwrap_err();
        assert!(matches!(e, Error::Internal { .. }), "{e:?}");
    }

    #[test]
    fn dropping_the_caller_aborts_async_work() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let finished = Arc::new(AtomicU64::new(0));
        let f = finished.clone();
        rt.block_on(async {
            let call = spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                f.store(1, Ordering::SeqCst);
                Ok(())
            });
            let _ = tokio::time::timeout(Duration::from_millis(20), call).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        });
        assert_eq!(finished.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn progress_reaches_the_caller_ending_with_the_last_report() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let seen = Mutex::new(Vec::new());
        let caller = std::thread::current().id();
        let record = |d: u64, t: u64| {
            assert_eq!(std::thread::current().id(), caller);
            seen.lock().unwrap().push((d, t));
        };
        let started = Instant::now();
        let r = rt.block_on(spawn_with_progress(&record, |cell| async move {
            for i in 1..=5 {
                cell.post(i, 5);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(7)
        }));
        assert_eq!(r.unwrap(), 7);
        assert!(started.elapsed() < Duration::from_secs(5));
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.last(), Some(&(5, 5)));
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
    }
}
