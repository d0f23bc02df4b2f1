//! The event hub under load: how many events per second reach two
//! subscribers that keep up, and what a third, stuck subscriber costs the
//! emitter (it must cost nothing: emitting never waits) and holds in memory
//! (bounded: its queue coalesces).
//!
//! `cargo bench -p occ-core --features bench-internals --bench events`
//! (`OCC_BENCH_QUICK=1`: 100,000 events instead of 1,000,000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use occ_core::events::BenchHub;
use occ_core::{ClientEvent, EventListener};

struct Stuck(std::sync::Mutex<()>);

impl EventListener for Stuck {
    fn on_event(&self, _: ClientEvent) {
        let _held = self.0.lock().unwrap();
    }
}

/// Emits `n` events to two draining subscribers (and optionally a stuck
/// one); returns (emit seconds, until both drained seconds, events each
/// subscriber took, the stuck one's queue at the end).
fn run(n: u64, stuck: bool) -> (f64, f64, [u64; 2], usize) {
    let hub = Arc::new(BenchHub::default());
    let subs = [Arc::new(hub.subscribe()), Arc::new(hub.subscribe())];
    let blocker = Arc::new(Stuck(std::sync::Mutex::new(())));
    let gate = blocker.0.lock().unwrap();
    let stuck_sub = stuck.then(|| hub.subscribe_listener(blocker.clone()).unwrap());
    let taken: Vec<Arc<AtomicU64>> = (0..2).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let consumers: Vec<_> = subs
        .iter()
        .zip(&taken)
        .map(|(s, t)| {
            let (s, t) = (s.clone(), t.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    while let Some(_e) = s.next().await {
                        t.fetch_add(1, Ordering::Relaxed);
                    }
                });
            })
        })
        .collect();
    let t0 = Instant::now();
    for i in 0..n {
        hub.emit(ClientEvent::MessageSent {
            message_id: format!("{i:032x}"),
        });
    }
    let emit = t0.elapsed().as_secs_f64();
    let held = stuck_sub.as_ref().map_or(0, |s| s.pending());
    hub.end();
    for c in consumers {
        c.join().unwrap();
    }
    let drained = t0.elapsed().as_secs_f64();
    drop(gate);
    (
        emit,
        drained,
        [
            taken[0].load(Ordering::Relaxed),
            taken[1].load(Ordering::Relaxed),
        ],
        held,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = if std::env::var_os("OCC_BENCH_QUICK").is_some() {
        100_000
    } else {
        1_000_000
    };
    let rounds = 5;
    let (mut free, mut with_stuck, mut drain) = (Vec::new(), Vec::new(), Vec::new());
    let (mut took, mut held) = ([0u64; 2], 0usize);
    for _ in 0..rounds {
        let (e, d, t, _) = run(n, false);
        free.push(n as f64 / e);
        drain.push(n as f64 / d);
        took = t;
        let (e, _, _, h) = run(n, true);
        with_stuck.push(n as f64 / e);
        held = held.max(h);
    }
    let (free, with_stuck) = (median(free), median(with_stuck));
    println!("events hub, {n} events, median of {rounds} alternating rounds:");
    println!(
        "  emitted to two draining subscribers: {:.2} M events/s; delivered to both: {:.2} M events/s each (each took {} / {}: coalesced when behind)",
        free / 1e6,
        median(drain) / 1e6,
        took[0],
        took[1]
    );
    println!(
        "  with a third subscriber stuck in its listener: {:.2} M events/s emitted ({:.2} of the rate without); its queue held {held} events",
        with_stuck / 1e6,
        with_stuck / free
    );
    println!(
        "  verdict: {}",
        if with_stuck / free > 0.8 && held <= 2 * occ_core::events::MAX_ORDINARY {
            "meets target (a stuck subscriber costs the emitter little and holds a bounded queue)"
        } else {
            "MISSES target"
        }
    );
}
