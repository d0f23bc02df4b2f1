//! The audit trail: the cost of appending one entry (each in its own
//! transaction, as the events it records are), and `audit_verify` over
//! 100,000 entries (the whole chain re-hashed, streamed from the store).
//!
//! `cargo bench -p occ-core --features bench-internals --bench audit`
//! (`OCC_BENCH_QUICK=1`: 10,000 entries).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::sync::Arc;
use std::time::Instant;

use occ_core::retention::ManualClock;
use occ_core::store::{DbKey, Store};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = if std::env::var_os("OCC_BENCH_QUICK").is_some() {
        10_000
    } else {
        100_000
    };
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let mut store = Store::create(tmp.path(), &DbKey::generate().unwrap(), clock).unwrap();
    let t = Instant::now();
    for i in 0..n {
        store
            .audit_append_for_benchmark(&format!("{i:032x}"))
            .unwrap();
    }
    let append = t.elapsed();
    let t = Instant::now();
    let verified = store.audit_verify_for_benchmark().unwrap().unwrap();
    let verify = t.elapsed();
    assert_eq!(verified, n);
    let size = std::fs::metadata(tmp.path().join("occ.db")).unwrap().len()
        + std::fs::metadata(tmp.path().join("occ.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!("audit trail, {n} entries (SQLCipher, one transaction per entry):");
    println!(
        "  append: {:.1} µs per entry ({:.2} s in all)",
        append.as_secs_f64() * 1e6 / n as f64,
        append.as_secs_f64()
    );
    println!(
        "  audit_verify over {n} entries: {:.0} ms ({:.2} µs per entry)",
        verify.as_secs_f64() * 1e3,
        verify.as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "  database size: {:.1} MB ({:.0} bytes per entry)",
        size as f64 / 1048576.0,
        size as f64 / n as f64
    );
}
