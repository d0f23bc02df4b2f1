//! What a Notification Service Extension does with a push, as a small
//! process that links only occ-core (the notification bench runs it cold,
//! once per notice): verify the notice into a prompt, then open the profile
//! light and download the message. Prints
//! `prompt_ms download_ms baseline_kib peak_after_prompt_kib peak_kib
//! anon_after_prompt_kib anon_kib`.
//!
//! `push_extension DIR KEY_HEX NOTICE_FILE`; with `-` for the key, the
//! profile is locked: the notice is verified without the key
//! (`verify_notice_locked`), nothing is downloaded, `download_ms` is 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, file) = (&args[1], &args[3]);
    let notice = std::fs::read(file).unwrap();
    let baseline = status_kib("VmHWM:");
    if args[2] == "-" {
        let t0 = Instant::now();
        let shown = occ_core::verify_notice_locked(dir, &notice).unwrap();
        let prompt_ms = t0.elapsed().as_secs_f64() * 1e3;
        assert!(!shown.relay_message_id.is_empty());
        let (peak, anon) = (status_kib("VmHWM:"), status_kib("RssAnon:"));
        println!("{prompt_ms:.2} 0 {baseline} {peak} {peak} {anon} {anon}");
        return;
    }
    let key = hex::decode(&args[2]).unwrap();
    let t0 = Instant::now();
    let prompt = occ_core::verify_notice(dir, key.clone(), notice).unwrap();
    let prompt_ms = t0.elapsed().as_secs_f64() * 1e3;
    let (peak_prompt, anon_prompt) = (status_kib("VmHWM:"), status_kib("RssAnon:"));
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
        "{prompt_ms:.2} {download_ms:.2} {baseline} {peak_prompt} {} {anon_prompt} {}",
        status_kib("VmHWM:"),
        status_kib("RssAnon:")
    );
}
