//! A 50 MB attachment between two profiles through a real relay, each side
//! in its own process so its peak resident memory (`VmHWM`) is its own: the
//! sender encrypts and uploads, the receiver downloads, checks and saves.
//! Neither may grow by more than a fraction of the file (a whole-file
//! buffer anywhere would add 50 MB).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::path::Path;
use std::time::Instant;

use common::{Env, to};
use occ_core::{Client, OutgoingFile};
use sha2::{Digest, Sha256};

const SIZE: usize = 50 << 20;
/// Most a side may grow while moving the file.
const BOUND_KIB: u64 = 8 << 10;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn hash_file(path: &Path) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().into()
}

#[test]
#[ignore = "child process of the 50 MB test"]
fn attachment_side_child() {
    let Ok(dir) = std::env::var("OCC_CHILD_DIR") else {
        return;
    };
    let key = hex::decode(std::env::var("OCC_CHILD_KEY").unwrap()).unwrap();
    let role = std::env::var("OCC_CHILD_ROLE").unwrap();
    let path = std::env::var("OCC_CHILD_FILE").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = Client::open(&dir, key).unwrap();
        client.sync().await.unwrap();
        let base = status_kib("VmRSS:");
        let t = Instant::now();
        if role == "send" {
            let id = client
                .send_file(
                    to("bob"),
                    OutgoingFile {
                        path: path.into(),
                        mime: "video/mp4".into(),
                        name: Some("bodycam.mp4".into()),
                        thumb: Vec::new(),
                    },
                    b"bodycam".to_vec(),
                    3600,
                    &|_, _| {},
                )
                .await
                .unwrap();
            let secs = t.elapsed().as_secs_f64();
            client.flush().await.unwrap();
            println!("MESSAGE={id}");
            println!("SECONDS={secs:.3}");
        } else {
            let id = std::env::var("OCC_CHILD_MESSAGE").unwrap();
            client.receive(0).await.unwrap();
            let att = client.attachments(&id).await.unwrap().remove(0);
            let t = Instant::now();
            client
                .download_attachment(&att.id, &|_, _| {})
                .await
                .unwrap();
            let down = t.elapsed().as_secs_f64();
            client
                .save_attachment(&att.id, Path::new(&path), &|_, _| {})
                .await
                .unwrap();
            println!("SECONDS={down:.3}");
        }
        println!("BASE_KIB={base}");
        println!("PEAK_KIB={}", status_kib("VmHWM:"));
        client.close();
    });
}

fn run_child(
    env: &Env,
    name: &str,
    role: &str,
    file: &Path,
    message: &str,
) -> (u64, u64, f64, String) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "attachment_side_child",
            "--ignored",
            "--nocapture",
        ])
        .env("OCC_CHILD_DIR", env.profile_dir(name))
        .env("OCC_CHILD_KEY", hex::encode(env.key_of(name).as_bytes()))
        .env("OCC_CHILD_ROLE", role)
        .env("OCC_CHILD_FILE", file)
        .env("OCC_CHILD_MESSAGE", message)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{role} child failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("{k} missing in {text}"))
            .to_string()
    };
    (
        field("BASE_KIB=").parse().unwrap(),
        field("PEAK_KIB=").parse().unwrap(),
        field("SECONDS=").parse().unwrap(),
        text.lines()
            .find_map(|l| l.strip_prefix("MESSAGE="))
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabytes_round_trip_with_bounded_memory_on_both_sides() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    alice
        .send(to("bob"), b"hi".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    bob.receive(0).await.unwrap();
    alice.close();
    bob.close();
    let files = tempfile::tempdir().unwrap();
    let src = files.path().join("bodycam.mp4");
    let sha = common::write_pseudo_random(&src, SIZE, 0x2545_f491_4f6c_dd1d);
    let (base_s, peak_s, up, id) = run_child(&env, "alice", "send", &src, "");
    let dest = files.path().join("saved.mp4");
    let (base_r, peak_r, down, _) = run_child(&env, "bob", "receive", &dest, &id);
    assert_eq!(hash_file(&dest), sha, "the saved file is the sent file");
    let mb = SIZE as f64 / (1 << 20) as f64;
    println!(
        "sender: peak {peak_s} KiB (start {base_s} KiB), encrypt+upload {up:.2} s ({:.1} MiB/s)",
        mb / up
    );
    println!(
        "receiver: peak {peak_r} KiB (start {base_r} KiB), download+check {down:.2} s ({:.1} MiB/s)",
        mb / down
    );
    assert!(
        peak_s.saturating_sub(base_s) < BOUND_KIB,
        "sender grew {} KiB",
        peak_s - base_s
    );
    assert!(
        peak_r.saturating_sub(base_r) < BOUND_KIB,
        "receiver grew {} KiB",
        peak_r - base_r
    );
}
