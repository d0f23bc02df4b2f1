//! Attachment encryption and decryption throughput against raw
//! ChaCha20-Poly1305 over the same bytes, in the same run (median of
//! alternating A/B rounds, see `support`). Target: throughput at least 0.8
//! of raw, i.e. a time ratio of at most 1.25.
//!
//! A = the attachment file format as sent and stored ([`seal_stream`] /
//! [`open_stream`]: read from a buffer in 64 KiB chunks, per-chunk nonces,
//! written to a sink — the file a real send writes is the sink's business,
//! measured separately by the loopback figures); B = one ChaCha20-Poly1305
//! call over the whole buffer in memory, after restoring it with a copy (as
//! A copies each chunk in from its reader). The blob's SHA-256 is computed
//! while uploading and downloading, not here (see `sync/attachments.rs`).
//!
//! `cargo bench -p occ-core --bench attachments` (`OCC_BENCH_QUICK=1`: 8 MiB).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod support;

use std::time::{Duration, Instant};

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use occ_core::store::attachments::{open_stream, seal_stream};

fn main() {
    let mib: usize = if std::env::var_os("OCC_BENCH_QUICK").is_some() {
        8
    } else {
        64
    };
    let len = mib << 20;
    let mut x = 0x1234_5678_9abc_def1u64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let key = [7u8; 32];
    let id = "0123456789abcdef0123456789abcdef";
    let mut sealed = Vec::with_capacity(len + len / 1000 + 64);
    seal_stream(&key, id, &mut &data[..], &mut sealed, &mut |_| {}).unwrap();
    let aead = ChaCha20Poly1305::new((&key).into());
    let nonce = [0u8; 12].into();
    let mut buf = data.clone();

    let seal = |n: u64| -> Duration {
        let t = Instant::now();
        for _ in 0..n {
            seal_stream(&key, id, &mut &data[..], &mut std::io::sink(), &mut |_| {}).unwrap();
        }
        t.elapsed()
    };
    let raw_seal = |n: u64| -> Duration {
        let t = Instant::now();
        for _ in 0..n {
            buf.copy_from_slice(&data);
            let tag = aead
                .encrypt_inout_detached(&nonce, b"", buf.as_mut_slice().into())
                .unwrap();
            std::hint::black_box(tag);
        }
        t.elapsed()
    };
    let enc = support::compare(
        format!("encrypt {mib} MiB"),
        ("attachment format", seal),
        ("raw ChaCha20-Poly1305", raw_seal),
        1,
        Some(1.25),
    );

    let mut ct = data.clone();
    let tag = aead
        .encrypt_inout_detached(&nonce, b"", ct.as_mut_slice().into())
        .unwrap();
    let mut buf2 = ct.clone();
    let open = |n: u64| -> Duration {
        let t = Instant::now();
        for _ in 0..n {
            open_stream(
                &key,
                id,
                &mut &sealed[..],
                &mut std::io::sink(),
                &mut |_| {},
            )
            .unwrap();
        }
        t.elapsed()
    };
    let raw_open = |n: u64| -> Duration {
        let t = Instant::now();
        for _ in 0..n {
            buf2.copy_from_slice(&ct);
            aead.decrypt_inout_detached(&nonce, b"", buf2.as_mut_slice().into(), &tag)
                .unwrap();
        }
        t.elapsed()
    };
    let dec = support::compare(
        format!("decrypt {mib} MiB"),
        ("attachment format", open),
        ("raw ChaCha20-Poly1305", raw_open),
        1,
        Some(1.25),
    );
    let rows = [enc, dec];
    support::print_table(
        "attachment crypto vs raw ChaCha20-Poly1305 (time ratio; target ≤ 1.25 = throughput ≥ 0.8)",
        &rows,
    );
    println!();
    for r in &rows {
        let mbps = |ns: f64| (mib as f64) / (ns / 1e9);
        let med = |v: &[f64]| {
            let mut s = v.to_vec();
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        };
        println!(
            "{}: attachment {:.0} MiB/s, raw {:.0} MiB/s, throughput ratio {:.2}",
            r.label,
            mbps(med(&r.a.1)),
            mbps(med(&r.b.1)),
            1.0 / r.ratio()
        );
    }
}
