//! Attachment transfer on loopback: a 50 MB file sent (encrypted into the
//! profile and uploaded in pieces over pinned TLS) and downloaded (streamed,
//! its SHA-256 checked), through the real relay in this process. Reports
//! the median of 5 rounds and the throughput in MiB/s, and the speed of
//! encryption alone for scale.
//!
//! `cargo bench -p occ-e2e --bench transfer` (`OCC_BENCH_QUICK=1`: 1 round).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{Env, to};
use occ_core::OutgoingFile;

const SIZE: usize = 50 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = if std::env::var_os("OCC_BENCH_QUICK").is_some() {
        1
    } else {
        5
    };
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let files = tempfile::tempdir().unwrap();
    let src = files.path().join("video.mp4");
    common::write_pseudo_random(&src, SIZE, 0x2545_f491_4f6c_dd1d);
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let t = Instant::now();
        let id = alice
            .send_file(
                to("bob"),
                OutgoingFile {
                    path: src.clone(),
                    mime: "video/mp4".into(),
                    name: None,
                    thumb: Vec::new(),
                },
                Vec::new(),
                600,
                &|_, _| {},
            )
            .await
            .unwrap();
        up.push(t.elapsed().as_secs_f64());
        alice.flush().await.unwrap();
        bob.receive(0).await.unwrap();
        let att = bob.attachments(&id).await.unwrap().remove(0);
        let t = Instant::now();
        bob.download_attachment(&att.id, &|_, _| {}).await.unwrap();
        down.push(t.elapsed().as_secs_f64());
        eprintln!(
            "round {round}: up {:.2} s, down {:.2} s",
            up[round], down[round]
        );
    }
    let mib = SIZE as f64 / (1 << 20) as f64;
    let (u, d) = (median(up), median(down));
    println!("\n## attachment transfer on loopback (50 MiB, median of {rounds})\n");
    println!("| direction | time | throughput |");
    println!("|---|---|---|");
    println!(
        "| send (encrypt + upload) | {u:.2} s | {:.1} MiB/s |",
        mib / u
    );
    println!(
        "| download (stream + SHA-256 check) | {d:.2} s | {:.1} MiB/s |",
        mib / d
    );
}
