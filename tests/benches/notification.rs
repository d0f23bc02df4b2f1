//! The notification path from a cold process, as an iOS Notification
//! Service Extension runs it: a fresh process (`core/examples/
//! push_extension.rs`, which links only occ-core, as the extension would)
//! opens the profile, verifies the push notice and builds the prompt; then
//! opens a client light, downloads, decrypts and stores the 1 KiB message,
//! and exits. The parent (relay, sender) measures nothing itself: each
//! child reports its own times, its peak resident memory (`VmHWM`, shared
//! library pages included) and its anonymous memory (`RssAnon`: heap and
//! stacks, what iOS counts against the extension). Targets: peak ≤ 12 MB
//! (half the extension's 24 MB), prompt < 50 ms.
//!
//! The same for a *locked* profile (its key not available): the notice is
//! verified against the profile's public verifier and a content-free
//! prompt is built, nothing opened.
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

use std::time::Duration;

use common::{Env, to};
use occ_relay::push_sink::PushSink;

/// Builds the extension-shaped child (`core/examples/push_extension.rs`,
/// which links only occ-core) and returns its path.
fn extension_binary() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let ok = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "occ-core",
            "--example",
            "push_extension",
        ])
        .current_dir(&root)
        .status()
        .unwrap()
        .success();
    assert!(ok, "building the push_extension example failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("release/examples/push_extension")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs = if std::env::var_os("OCC_BENCH_QUICK").is_some() {
        3
    } else {
        10
    };
    let child = extension_binary();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut prompt, mut download, mut locked) = (Vec::new(), Vec::new(), Vec::new());
    let mut locked_peak = 0u64;
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
            // First as a locked profile would see it (no key)…
            let out = std::process::Command::new(&child)
                .arg(env.profile_dir("bob"))
                .arg("-")
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8(out.stdout).unwrap();
            let f: Vec<&str> = line.split_whitespace().collect();
            locked.push(f[0].parse::<f64>().unwrap());
            locked_peak = locked_peak.max(f[3].parse().unwrap());
            // …then unlocked: the record of the locked path is cleared at
            // the next full open, so the same notice is new to the profile.
            std::fs::remove_file(
                env.profile_dir("bob")
                    .join(occ_core::store::LOCKED_LOG_FILE),
            )
            .unwrap();
            let out = std::process::Command::new(&child)
                .arg(env.profile_dir("bob"))
                .arg(hex::encode(env.key_of("bob").as_bytes()))
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8(out.stdout).unwrap();
            let f: Vec<&str> = line.split_whitespace().collect();
            // prompt_ms download_ms baseline peak_prompt peak anon_prompt anon
            prompt.push(f[0].parse::<f64>().unwrap());
            download.push(f[1].parse::<f64>().unwrap());
            baseline = baseline.max(f[2].parse().unwrap());
            rss_prompt = rss_prompt.max(f[3].parse().unwrap());
            rss_total = rss_total.max(f[4].parse().unwrap());
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
        "  locked profile (no key): verify notice + content-free prompt: median {:.2} ms, peak RSS {:.1} MB",
        median(locked),
        locked_peak as f64 / 1024.0
    );
    println!(
        "  the extension-shaped process (links occ-core only) before any occ code: {:.1} MB",
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
