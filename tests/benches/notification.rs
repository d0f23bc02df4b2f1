//! The notification path from a cold process, as an iOS Notification
//! Service Extension runs it: a fresh process opens the profile, verifies
//! the push notice and builds the prompt; then opens a client, downloads,
//! decrypts and stores the 1 KiB message, and exits. The parent (relay,
//! sender) measures nothing itself: each child reports its own times and
//! its peak resident memory (`VmHWM`). Targets: peak RSS ≤ 12 MB (half the
//! extension's 24 MB), prompt < 50 ms.
//!
//! `cargo bench -p occ-e2e --bench notification` (`OCC_BENCH_QUICK=1`: 3
//! runs instead of 10).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Env, to};
use occ_relay::push_sink::PushSink;

const CHILD: &str = "OCC_NOTIFICATION_CHILD";

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Peak resident memory, shared library pages included.
fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// Resident anonymous memory now (heap, stacks: what iOS counts as the
/// extension's footprint; clean library pages are not counted there).
fn anon_kib() -> u64 {
    status_kib("RssAnon:")
}

/// The extension: argv = dir, key hex, notice file.
fn child() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, key, file) = (&args[1], hex::decode(&args[2]).unwrap(), &args[3]);
    let notice = std::fs::read(file).unwrap();
    let baseline = peak_rss_kib();
    let t0 = Instant::now();
    let prompt = occ_core::verify_notice(dir, key.clone(), notice).unwrap();
    let prompt_ms = t0.elapsed().as_secs_f64() * 1e3;
    let rss_prompt = peak_rss_kib();
    let anon_prompt = anon_kib();
    let t1 = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = occ_core::Client::open_light(dir, key).unwrap();
    let report = rt
        .block_on(client.download(&prompt.relay_message_id))
        .unwrap();
    assert_eq!(report.received().len(), 1);
    client.close();
    let download_ms = t1.elapsed().as_secs_f64() * 1e3;
    println!(
        "{prompt_ms:.2} {download_ms:.2} {rss_prompt} {} {baseline} {anon_prompt} {}",
        peak_rss_kib(),
        anon_kib()
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs = if std::env::var_os("OCC_BENCH_QUICK").is_some() {
        3
    } else {
        10
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut prompt, mut download) = (Vec::new(), Vec::new());
    let (mut rss_prompt, mut rss_total, mut baseline, mut anon_prompt, mut anon_total) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    rt.block_on(async {
        let env = Env::start().await;
        let push = PushSink::start(&env.ca()).await.unwrap();
        let alice = env.client("alice").await;
        let mut opts = env.options("bob");
        opts.push_endpoint = Some(push.url.clone());
        let bob = env.client_with("bob", opts).await;
        bob.close(); // the app is not running: a cold start
        let body = vec![b'x'; 1024];
        for i in 0..runs {
            let before = push.notices().len();
            alice
                .send(to("bob"), body.clone(), 600, None)
                .await
                .unwrap();
            alice.flush().await.unwrap();
            let notice = push
                .wait_for(before + 1, Duration::from_secs(5))
                .await
                .pop()
                .unwrap();
            let file = env.tmp.path().join(format!("notice{i}.json"));
            std::fs::write(&file, serde_json::to_vec(&notice).unwrap()).unwrap();
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .arg(env.profile_dir("bob"))
                .arg(hex::encode(env.key_of("bob").as_bytes()))
                .arg(&file)
                .env(CHILD, "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8(out.stdout).unwrap();
            let f: Vec<&str> = line.split_whitespace().collect();
            prompt.push(f[0].parse::<f64>().unwrap());
            download.push(f[1].parse::<f64>().unwrap());
            rss_prompt = rss_prompt.max(f[2].parse().unwrap());
            rss_total = rss_total.max(f[3].parse().unwrap());
            baseline = baseline.max(f[4].parse().unwrap());
            anon_prompt = anon_prompt.max(f[5].parse().unwrap());
            anon_total = anon_total.max(f[6].parse().unwrap());
        }
    });
    println!("notification path from a cold process, {runs} runs (1 KiB message):");
    println!(
        "  open + verify notice + prompt: median {:.2} ms (max {:.2}; target < 50 ms)",
        median(prompt.clone()),
        prompt.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "  open client + download + decrypt + store: median {:.2} ms",
        median(download)
    );
    println!(
        "  the process before any occ code: {:.1} MB (the bench binary links the relay too)",
        baseline as f64 / 1024.0
    );
    println!(
        "  peak RSS after the prompt: {:.1} MB; after the download: {:.1} MB (target <= 12 MB)",
        rss_prompt as f64 / 1024.0,
        rss_total as f64 / 1024.0
    );
    println!(
        "  anonymous (dirty) memory after the prompt: {:.1} MB; after the download: {:.1} MB",
        anon_prompt as f64 / 1024.0,
        anon_total as f64 / 1024.0
    );
}
