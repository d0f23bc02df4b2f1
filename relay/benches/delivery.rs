//! Delivery throughput and relay memory, measured in one run.
//!
//! `cargo bench -p occ-relay --bench delivery` (`OCC_BENCH_QUICK=1` for a
//! smaller smoke run). The relay runs as its own process (the `occ-relay`
//! binary, `--dev`), so the client and relay do not share a runtime and the
//! relay's memory can be read from `/proc`.
//!
//! 1. 1:1: alice queues N messages for bob while bob is offline; then the time
//!    for bob to drain them — fetch, decrypt, store durably, acknowledge.
//!    Target: at least 2,000 messages per second (median of 5 rounds).
//! 2. A 50-member thread: alice posts M messages; one member drains them
//!    (each is a signed sender-key message: Ed25519 verification included).
//! 3. Relay memory (VmRSS / VmHWM) and database size with 1,000,000 queued
//!    envelopes, filled through the API in batches of 1,000.
//! 4. Latency: with background sync running on both clients, the time from
//!    `send` on one to the `MessagesReceived` event on the other, p50 and p99
//!    over 1,000 messages sent one after the other.
//!
//! The 1:1 drain runs five rounds on the same relay and clients; the figure
//! is the median with the spread of the rounds (`OCC_BENCH_ONLY_DRAIN=1`
//! runs only that part).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use occ_core::{Client, Recipient, SyncOptions};

struct RelayProcess {
    child: Child,
    url: String,
    pin: String,
    ca: String,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_relay(dir: &Path) -> RelayProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_occ-relay"))
        .args([
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--purge-interval",
            "60",
            // Raw delivery: the abuse limits are measured by the `limits` bench.
            "--unlimited",
            "--data",
        ])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start occ-relay");
    let mut errs = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = errs.next().expect("relay output").unwrap();
        if let Some(v) = line.strip_prefix("occ-relay listening on ") {
            break v.to_string();
        }
    };
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut pin, mut ca) = (String::new(), String::new());
    while ca.is_empty() {
        let line = lines.next().expect("relay output").unwrap();
        if let Some(v) = line.strip_prefix("pin: ") {
            pin = v.to_string();
        } else if let Some(v) = line.strip_prefix("ca: ") {
            ca = std::fs::read_to_string(v).unwrap();
        }
    }
    let port = addr.rsplit(':').next().unwrap();
    RelayProcess {
        child,
        url: format!("https://localhost:{port}"),
        pin,
        ca,
    }
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn client(root: &Path, relay: &RelayProcess, name: &str) -> Client {
    common::client(root, &relay.url, &relay.pin, &relay.ca, name).await
}

/// Rounds of the 1:1 drain (the figure is their median, with the spread).
const ROUNDS: usize = 5;

/// `ROUNDS` times: alice queues `n` messages for bob while bob is offline,
/// then bob drains them; returns messages per second of each drain.
async fn one_to_one(n: usize) -> Vec<f64> {
    let tmp = tempfile::tempdir().unwrap();
    let relay = start_relay(&tmp.path().join("relay"));
    let alice = client(tmp.path(), &relay, "alice").await;
    let bob = client(tmp.path(), &relay, "bob").await;
    let mut rates = Vec::new();
    for round in 0..ROUNDS {
        for i in 0..n {
            alice
                .send(
                    Recipient::User { name: "bob".into() },
                    format!("message {round}/{i} {}", "x".repeat(100)).into_bytes(),
                    3600,
                    None,
                )
                .await
                .unwrap();
            if i % 500 == 499 {
                alice.flush().await.unwrap();
            }
        }
        assert_eq!(alice.flush().await.unwrap().pending, 0);
        bob.connect().await.unwrap();
        let t = Instant::now();
        let r = bob.receive(0).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(r.received().len(), n);
        rates.push(n as f64 / secs);
        eprintln!("  round {round}: {:.0} msg/s", n as f64 / secs);
    }
    rates
}

/// With background sync running on both, the time from `send` on alice to
/// the `MessagesReceived` event on bob, for `count` messages one after the
/// other; returns the sorted latencies.
async fn latency(count: usize) -> Vec<Duration> {
    let tmp = tempfile::tempdir().unwrap();
    let relay = start_relay(&tmp.path().join("relay"));
    let alice = client(tmp.path(), &relay, "alice").await;
    let bob = client(tmp.path(), &relay, "bob").await;
    let (tx, rx) = std::sync::mpsc::channel();
    bob.set_listener(Some(std::sync::Arc::new(common::Arrivals(tx))))
        .unwrap();
    let _a = alice.start_sync(SyncOptions::default()).unwrap();
    let _b = bob.start_sync(SyncOptions::default()).unwrap();
    // Warm up: sessions established, both long-polls in place.
    let mut all = Vec::new();
    for i in 0..count + 20 {
        let t = Instant::now();
        let id = alice
            .send(
                Recipient::User { name: "bob".into() },
                format!("latency {i}").into_bytes(),
                3600,
                None,
            )
            .await
            .unwrap();
        let arrived = loop {
            let (got, at) =
                tokio::task::block_in_place(|| rx.recv_timeout(Duration::from_secs(30)))
                    .expect("the message arrived");
            if got == id {
                break at;
            }
        };
        if i >= 20 {
            all.push(arrived - t);
        }
    }
    all.sort();
    all
}

async fn thread(members: usize, m: usize) -> f64 {
    let tmp = tempfile::tempdir().unwrap();
    let relay = start_relay(&tmp.path().join("relay"));
    let alice = client(tmp.path(), &relay, "alice").await;
    let mut others = Vec::new();
    for i in 1..members {
        others.push(client(tmp.path(), &relay, &format!("member{i}")).await);
    }
    let names: Vec<String> = (1..members).map(|i| format!("member{i}")).collect();
    for i in 0..m {
        alice
            .send(
                Recipient::Thread {
                    id: "big".into(),
                    members: names.clone(),
                },
                format!("thread message {i} {}", "y".repeat(100)).into_bytes(),
                3600,
                None,
            )
            .await
            .unwrap();
        if i % 200 == 199 {
            alice.flush().await.unwrap();
        }
    }
    assert_eq!(alice.flush().await.unwrap().pending, 0);
    let reader = &others[0];
    reader.connect().await.unwrap();
    let t = Instant::now();
    let r = reader.receive(0).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.received().len(), m);
    m as f64 / secs
}

/// Fills a fresh relay with `total` envelopes through the API; returns
/// (RSS idle kB, RSS after kB, peak kB, database bytes, seconds).
async fn relay_memory(total: usize) -> (u64, u64, u64, u64, f64) {
    use occ_core::transport::{ApiClient, PinSet, RelayEndpoint};
    use occ_protocol::api::{OutEnvelope, SendRequest};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("relay");
    let relay = start_relay(&dir);
    let pid = relay.child.id();
    let bob = client(tmp.path(), &relay, "bob").await;
    let bob_id = bob.device_id().await.unwrap();
    drop(bob);
    let api = ApiClient::new(&RelayEndpoint {
        url: relay.url.clone(),
        pins: PinSet::parse(std::slice::from_ref(&relay.pin)).unwrap(),
        ca_pem: Some(relay.ca.clone().into_bytes()),
    })
    .unwrap();
    // A dedicated sender device, registered like any other.
    let account = occ_core::crypto::Account::generate(0).unwrap();
    api.register(
        &occ_core::sync::registration(&account, "loadgen", None, occ_relay::now_ms()).unwrap(),
    )
    .await
    .unwrap();
    api.authenticate(&account.device_id().to_hex(), |m| {
        account.identity().sign(b"", m)
    })
    .await
    .unwrap();
    let idle = status_kb(pid, "VmRSS:");
    // A well-formed ratchet envelope with a 100-byte ciphertext.
    let envelope = occ_protocol::Envelope::Message(occ_protocol::RatchetMessage {
        header: occ_protocol::RatchetHeader {
            ratchet_key: [9; 32],
            previous_counter: 0,
            counter: 0,
        },
        ciphertext: vec![7; 100],
    })
    .encode();
    let t = Instant::now();
    let batch = occ_protocol::api::MAX_BATCH;
    let mut sent = 0;
    while sent < total {
        let k = batch.min(total - sent);
        let req = SendRequest {
            idempotency_key: format!("bulk-{sent}"),
            ttl_secs: 3600,
            class: "text".into(),
            thread: None,
            envelopes: (0..k)
                .map(|_| OutEnvelope {
                    device_id: bob_id.clone(),
                    envelope: envelope.clone().into(),
                })
                .collect(),
            listed_devices: Vec::new(),
            urgent: false,
        };
        api.send(&req).await.unwrap();
        sent += k;
    }
    let secs = t.elapsed().as_secs_f64();
    let after = status_kb(pid, "VmRSS:");
    let peak = status_kb(pid, "VmHWM:");
    let db: u64 = ["relay.db", "relay.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    (idle, after, peak, db, secs)
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::var_os("OCC_BENCH_QUICK").is_some();
    let (n, m, total, count) = if quick {
        (2_000, 200, 100_000, 200)
    } else {
        (10_000, 1_000, 1_000_000, 1_000)
    };
    eprintln!("1:1: {ROUNDS} rounds of {n} queued messages ...");
    let mut rates = one_to_one(n).await;
    if std::env::var_os("OCC_BENCH_ONLY_DRAIN").is_some() {
        rates.sort_by(f64::total_cmp);
        println!("1:1 drain rounds (msg/s, sorted): {rates:.0?}");
        return;
    }
    rates.sort_by(f64::total_cmp);
    let direct = rates[rates.len() / 2];
    eprintln!("latency with background sync: {count} messages ...");
    let lat = latency(count).await;
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    eprintln!("thread of 50: queueing {m} messages ...");
    let group = thread(50, m).await;
    eprintln!("relay memory: queueing {total} envelopes ...");
    let (idle, after, peak, db, fill_secs) = relay_memory(total).await;

    println!("\n## occ delivery and relay memory (one run)\n");
    println!("| measurement | figure | target | verdict |");
    println!("|---|---|---|---|");
    println!(
        "| relay → client, {n} queued 1:1 messages (fetch, decrypt, durable store, ack); median of {ROUNDS} rounds | {direct:.0} msg/s (spread {:.0}–{:.0}) | ≥ 2000 msg/s | {} |",
        rates[0],
        rates[rates.len() - 1],
        if direct >= 2000.0 {
            "meets target"
        } else {
            "MISSES target"
        }
    );
    println!(
        "| send on alice → MessagesReceived on bob, background sync on both, {count} messages one at a time | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms | — | reported |",
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(lat[lat.len() - 1])
    );
    println!(
        "| relay → one member, {m} messages in a 50-member thread (sender keys, signatures) | {group:.0} msg/s | — | reported |"
    );
    println!(
        "| relay RSS, idle | {:.1} MiB | — | reported |",
        idle as f64 / 1024.0
    );
    println!(
        "| relay RSS with {total} queued envelopes | {:.1} MiB (peak {:.1} MiB) | — | reported |",
        after as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    println!(
        "| relay database with {total} queued envelopes | {:.0} MiB | — | reported |",
        db as f64 / 1048576.0
    );
    println!(
        "| queueing {total} envelopes through the API (batches of 1000) | {:.0} envelopes/s | — | reported |",
        total as f64 / fill_secs
    );
}
