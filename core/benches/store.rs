//! Store benchmarks, reported as ratios measured in one run:
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use occ_core::retention::{DAY_MS, ManualClock};
use occ_core::store::{DbKey, NewMessage, Store};

const T0: i64 = 1_800_000_000_000;

struct Row {
    label: String,
    num: (String, Duration),
    den: (String, Duration),
    target: f64,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.1} µs")
    }
}

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

fn ingest(rows: &mut Vec<Row>, reps: usize) {
    let mut keyed = Vec::new();
    let mut plain = Vec::new();
    for rep in 0..reps {
        for k in [rep % 2 == 0, rep % 2 != 0] {
            let tmp = tempfile::tempdir().unwrap();
            let mut s = new_store(tmp.path(), k, Arc::new(ManualClock::new(T0)));
            let t = Instant::now();
            fill(&mut s, "m", "t", 10_000, T0 + 30 * DAY_MS, 100);
            let d = t.elapsed();
            if k { keyed.push(d) } else { plain.push(d) }
        }
    }
    rows.push(Row {
        label: "ingest 10,000 messages (100 per transaction)".into(),
        num: ("SQLCipher keyed".into(), median(keyed)),
        den: ("same code unkeyed".into(), median(plain)),
        target: 1.3,
    });
}

/// Builds a store with `stored` long-lived messages in thread "t"; then, `reps`
/// times, adds 10,000 messages that expire, lets them expire and times the purge.
fn purge_time(stored: u64, reps: usize, page_time: Option<&mut Duration>) -> Duration {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let mut s = new_store(tmp.path(), true, clock.clone());
    fill(&mut s, "live", "t", stored, T0 + 3000 * DAY_MS, 10_000);
    if let Some(out) = page_time {
        *out = page(&s);
    }
    let mut times = Vec::new();
    for rep in 0..reps {
        let now = s.now_ms();
        fill(
            &mut s,
            &format!("exp{rep}-"),
            "t",
            10_000,
            now + 60_000,
            1000,
        );
        clock.advance(120_000);
        let t = Instant::now();
        let report = s.purge().unwrap();
        times.push(t.elapsed());
        assert_eq!(report.messages(), 10_000);
    }
    median(times)
}

/// Median time of the newest-50 page of thread "t".
fn page(s: &Store) -> Duration {
    for _ in 0..50 {
        assert_eq!(s.thread_messages("t", 50, None).unwrap().len(), 50);
    }
    let times = (0..500)
        .map(|_| {
            let t = Instant::now();
            let p = s.thread_messages("t", 50, None).unwrap();
            let d = t.elapsed();
            assert_eq!(p.len(), 50);
            d
        })
        .collect();
    median(times)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::var_os("OCC_BENCH_QUICK").is_some();
    let (small, large, reps) = if quick {
        (20_000, 200_000, 3)
    } else {
        (100_000, 1_000_000, 5)
    };
    let mut rows = Vec::new();

    eprintln!("ingest: keyed vs unkeyed ...");
    ingest(&mut rows, reps);

    eprintln!("purge among {small} stored ...");
    let purge_small = purge_time(small, reps, None);
    eprintln!("purge among {large} stored (and the page query) ...");
    let mut page_large = Duration::ZERO;
    let purge_large = purge_time(large, reps, Some(&mut page_large));
    rows.push(Row {
        label: "purge 10,000 expired".into(),
        num: (format!("among {large}"), purge_large),
        den: (format!("among {small}"), purge_small),
        target: 1.5,
    });

    eprintln!("page query on 10,000 ...");
    let tmp = tempfile::tempdir().unwrap();
    let mut s = new_store(tmp.path(), true, Arc::new(ManualClock::new(T0)));
    fill(&mut s, "m", "t", 10_000, T0 + 3000 * DAY_MS, 10_000);
    let page_small = page(&s);
    rows.push(Row {
        label: "newest-50 page of a thread".into(),
        num: (format!("{large} stored"), page_large),
        den: ("10000 stored".into(), page_small),
        target: 1.5,
    });

    println!("\n## occ store (one run, medians)\n");
    println!("| measurement | numerator | denominator | ratio | target | verdict |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let ratio = r.num.1.as_secs_f64() / r.den.1.as_secs_f64();
        println!(
            "| {} | {} {} | {} {} | {:.3} | ≤ {} | {} |",
            r.label,
            r.num.0,
            fmt(r.num.1),
            r.den.0,
            fmt(r.den.1),
            ratio,
            r.target,
            if ratio <= r.target {
                "meets target"
            } else {
                "MISSES target"
            }
        );
    }
}
