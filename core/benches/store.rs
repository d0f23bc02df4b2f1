//! Store benchmarks, reported as ratios measured in one run, each the median
//! of alternating A/B rounds with its spread (see `support`):
//!
//! 1. Ingest 10,000 messages (batches of 100 per transaction): SQLCipher with
//!    a key vs the same code with no key (plain SQLite). Target ≤ 1.3×.
//! 2. Purge 10,000 expired messages among 100,000 and among 1,000,000 stored.
//!    Target ≤ 1.5× (purge is O(expired), not O(stored)).
//! 3. Newest-50 page of a thread holding 10,000 vs 1,000,000 messages.
//!    Target ≤ 1.5×.
//!
//! `cargo bench -p occ-core --features bench-internals --bench store`
//! (set `OCC_BENCH_QUICK=1` for a smaller, faster smoke run).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use occ_core::retention::{DAY_MS, ManualClock};
use occ_core::store::{DbKey, NewMessage, Store};
use support::{Comparison, ROUNDS};

const T0: i64 = 1_800_000_000_000;

fn body(i: u64) -> Vec<u8> {
    // 200 bytes that differ per message (no accidental compression wins).
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..200)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

/// Inserts `count` messages in thread `thread`, ids `{prefix}{n}`, in batches.
fn fill(store: &mut Store, prefix: &str, thread: &str, count: u64, ttl_expiry_ms: i64, batch: u64) {
    let mut n = 0;
    while n < count {
        let end = (n + batch).min(count);
        let ids: Vec<String> = (n..end).map(|i| format!("{prefix}{i}")).collect();
        let bodies: Vec<Vec<u8>> = (n..end).map(body).collect();
        let msgs: Vec<NewMessage<'_>> = ids
            .iter()
            .zip(&bodies)
            .map(|(id, b)| NewMessage {
                id,
                thread_id: thread,
                sender: "bench",
                outgoing: false,
                body: b,
                sent_ms: T0,
                ttl_expiry_ms,
                read_timer_ms: None,
            })
            .collect();
        store.insert_messages(&msgs).unwrap();
        n = end;
    }
}

fn new_store(dir: &std::path::Path, keyed: bool, clock: Arc<ManualClock>) -> Store {
    let mut s = if keyed {
        Store::create(dir, &DbKey::generate().unwrap(), clock).unwrap()
    } else {
        Store::create_unencrypted_for_benchmark(dir, clock).unwrap()
    };
    s.set_keep_period_ms(3650 * DAY_MS).unwrap();
    s
}

/// Time to ingest 10,000 messages into a fresh store.
fn ingest_once(keyed: bool) -> Duration {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = new_store(tmp.path(), keyed, Arc::new(ManualClock::new(T0)));
    let t = Instant::now();
    fill(&mut s, "m", "t", 10_000, T0 + 30 * DAY_MS, 100);
    t.elapsed()
}

/// A keyed store holding `stored` long-lived messages in thread "t".
struct Filled {
    _tmp: tempfile::TempDir,
    store: Store,
    clock: Arc<ManualClock>,
    round: usize,
}

impl Filled {
    fn new(stored: u64) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let mut store = new_store(tmp.path(), true, clock.clone());
        fill(&mut store, "live", "t", stored, T0 + 3000 * DAY_MS, 10_000);
        Self {
            _tmp: tmp,
            store,
            clock,
            round: 0,
        }
    }

    /// Adds 10,000 messages that expire, lets them expire, times the purge.
    fn purge_once(&mut self) -> Duration {
        let now = self.store.now_ms();
        let prefix = format!("exp{}-", self.round);
        self.round += 1;
        fill(&mut self.store, &prefix, "t", 10_000, now + 60_000, 1000);
        self.clock.advance(120_000);
        let t = Instant::now();
        let report = self.store.purge().unwrap();
        let d = t.elapsed();
        assert_eq!(report.messages(), 10_000);
        d
    }

    /// Time of 100 newest-50 page queries.
    fn pages(&self) -> Duration {
        let t = Instant::now();
        for _ in 0..100 {
            assert_eq!(self.store.thread_messages("t", 50, None).unwrap().len(), 50);
        }
        t.elapsed()
    }
}

/// Runs `a` and `b` [`ROUNDS`] times in alternating order (after a warm-up).
fn rounds(
    mut a: impl FnMut() -> Duration,
    mut b: impl FnMut() -> Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    a();
    b();
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for r in 0..ROUNDS {
        if r % 2 == 0 {
            ta.push(a());
            tb.push(b());
        } else {
            tb.push(b());
            ta.push(a());
        }
    }
    (ta, tb)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::var_os("OCC_BENCH_QUICK").is_some();
    let (small, large) = if quick {
        (20_000, 200_000)
    } else {
        (100_000, 1_000_000)
    };
    let mut rows = Vec::new();

    eprintln!("ingest: keyed vs unkeyed ...");
    let (keyed, plain) = rounds(|| ingest_once(true), || ingest_once(false));
    rows.push(Comparison::from_rounds(
        "ingest 10,000 messages (100 per transaction)",
        ("SQLCipher keyed", keyed),
        ("same code unkeyed", plain),
        10_000,
        Some(1.3),
    ));

    eprintln!("filling stores of {small} and {large} messages ...");
    let mut s_small = Filled::new(small);
    let mut s_large = Filled::new(large);
    eprintln!("purge ...");
    let (pl, ps) = rounds(|| s_large.purge_once(), || s_small.purge_once());
    rows.push(Comparison::from_rounds(
        "purge 10,000 expired",
        (&format!("among {large}"), pl),
        (&format!("among {small}"), ps),
        10_000,
        Some(1.5),
    ));

    eprintln!("page query ...");
    let s_tiny = Filled::new(10_000);
    let (ql, qs) = rounds(|| s_large.pages(), || s_tiny.pages());
    rows.push(Comparison::from_rounds(
        "newest-50 page of a thread",
        (&format!("{large} stored"), ql),
        ("10000 stored", qs),
        100,
        Some(1.5),
    ));
    support::print_table("occ store (one run)", &rows);
}
