//! The relay's abuse limits, before and after, in one run.
//!
//! `cargo bench -p occ-relay --bench limits` (`OCC_BENCH_QUICK=1` for a
//! smaller smoke run). The same scenario runs twice on an in-process relay:
//! once with [`Limits::unlimited`] ("before") and once with the production
//! defaults ("after"). Each run:
//!
//! 1. connects 1,000 simulated devices (registered, authenticated, each
//!    holding a long-polled inbox request open; a 429 is honoured by waiting
//!    its `Retry-After`, as a real client does) and reports the setup time;
//! 2. 1:1 throughput: alice queues N messages for bob, bob drains them
//!    (fetch, decrypt, durable store, acknowledge): messages per second;
//! 3. latency with background sync on both, ten messages a second: `send`
//!    on alice to the `MessagesReceived` event on bob, p50 and p99;
//! 4. under flood: mallory sends small envelopes as fast as four tasks can
//!    to one of the simulated devices while alice keeps sending to bob; both
//!    clients' p50/p99 and how many of mallory's requests got 429.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use occ_core::transport::{ApiClient, PinSet, RelayEndpoint, TransportError};
use occ_core::{Client, Recipient, SyncOptions};
use occ_protocol::api::{OutEnvelope, SendRequest};
use occ_relay::{Limits, RelayConfig, RelayHandle};

struct Relay {
    handle: RelayHandle,
    ca: String,
}

impl Relay {
    fn endpoint(&self) -> RelayEndpoint {
        RelayEndpoint {
            url: self.handle.url(),
            pins: PinSet::parse(std::slice::from_ref(&self.handle.pin)).unwrap(),
            ca_pem: Some(self.ca.clone().into_bytes()),
        }
    }
}

async fn client(root: &Path, relay: &Relay, name: &str) -> Client {
    common::client(
        root,
        &relay.handle.url(),
        &relay.handle.pin,
        &relay.ca,
        name,
    )
    .await
}

/// Retries `f` while the relay answers 429, waiting as it asks.
async fn polite<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, TransportError>>,
{
    loop {
        match f().await {
            Ok(v) => return v,
            Err(TransportError::RateLimited { retry_after_ms }) => {
                tokio::time::sleep(Duration::from_millis(retry_after_ms)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Registers and authenticates one simulated device; returns its client and id.
async fn simulated(relay: &Relay, i: usize) -> (Arc<ApiClient>, String) {
    let account = occ_core::crypto::Account::generate(0).unwrap();
    let api = Arc::new(ApiClient::new(&relay.endpoint()).unwrap());
    let id = account.device_id().to_hex();
    let user = format!("sim{i}");
    polite(|| {
        let req = occ_core::sync::registration(&account, &user, None, occ_relay::now_ms()).unwrap();
        let api = api.clone();
        async move { api.register(&req).await }
    })
    .await;
    polite(|| api.authenticate(&id, |m| account.identity().sign(b"", m))).await;
    (api, id)
}

/// `count` messages one after the other, 100 ms apart (a busy but human
/// pace: 10 a second), alice to bob, each timed from `send` to bob's event.
async fn latencies(
    alice: &Client,
    rx: &std::sync::mpsc::Receiver<(String, Instant)>,
    count: usize,
) -> Vec<Duration> {
    let mut all = Vec::new();
    for i in 0..count {
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
                tokio::task::block_in_place(|| rx.recv_timeout(Duration::from_secs(60)))
                    .expect("the message arrived");
            if got == id {
                break at;
            }
        };
        all.push(arrived - t);
        tokio::time::sleep(Duration::from_millis(100).saturating_sub(t.elapsed())).await;
    }
    all.sort();
    all
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

struct Figures {
    setup_secs: f64,
    drain: f64,
    queue_secs: f64,
    lat: Vec<Duration>,
    flood_normal: Vec<Duration>,
    flood_mallory: Vec<Duration>,
    flood_ok: usize,
    flood_limited: usize,
    flood_dropped: usize,
}

async fn scenario(limits: Limits, devices: usize, n: usize, count: usize) -> Figures {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::dev(tmp.path().join("relay"));
    config.purge_interval = Duration::from_secs(60);
    config.limits = limits;
    let handle = occ_relay::start(config).await.unwrap();
    let ca = std::fs::read_to_string(handle.ca_path.as_ref().unwrap()).unwrap();
    let relay = Arc::new(Relay { handle, ca });

    // 1. A thousand devices connect and hold a long poll each.
    let t = Instant::now();
    let mut sims = Vec::new();
    for chunk in (0..devices).collect::<Vec<_>>().chunks(50) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let relay = relay.clone();
                tokio::spawn(async move { simulated(&relay, i).await })
            })
            .collect();
        for task in tasks {
            sims.push(task.await.unwrap());
        }
    }
    let setup_secs = t.elapsed().as_secs_f64();
    let polls: Vec<_> = sims
        .iter()
        .map(|(api, _)| {
            let api = api.clone();
            tokio::spawn(async move {
                loop {
                    let _ = api.inbox(0, 30_000, 10).await;
                }
            })
        })
        .collect();

    // 2. Throughput.
    let alice = client(tmp.path(), &relay, "alice").await;
    let bob = client(tmp.path(), &relay, "bob").await;
    let t = Instant::now();
    for i in 0..n {
        alice
            .send(
                Recipient::User { name: "bob".into() },
                format!("throughput {i} {}", "x".repeat(100)).into_bytes(),
                3600,
                None,
            )
            .await
            .unwrap();
    }
    loop {
        match alice.flush().await {
            Ok(r) if r.pending == 0 => break,
            // A 429 defers the row; wait and go on, as background sync does.
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
        if alice.outbox_len().await.unwrap() == 0 {
            break;
        }
    }
    let queue_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut got = 0;
    while got < n {
        got += bob.receive(0).await.unwrap().received().len();
    }
    let drain = n as f64 / t.elapsed().as_secs_f64();

    // 3. Latency with background sync.
    let (tx, rx) = std::sync::mpsc::channel();
    bob.set_listener(Some(Arc::new(common::Arrivals(tx))))
        .unwrap();
    let _a = alice.start_sync(SyncOptions::default()).unwrap();
    let _b = bob.start_sync(SyncOptions::default()).unwrap();
    latencies(&alice, &rx, 20).await; // warm up
    let lat = latencies(&alice, &rx, count).await;

    // 4. Under flood.
    let (mallory, _) = simulated(&relay, devices + 1).await;
    let target = sims[0].1.clone();
    let envelope = occ_protocol::Envelope::Message(occ_protocol::RatchetMessage {
        header: occ_protocol::RatchetHeader {
            ratchet_key: [9; 32],
            previous_counter: 0,
            counter: 0,
        },
        ciphertext: vec![7; 100],
    })
    .encode();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let floods: Vec<_> = (0..4)
        .map(|k| {
            let (mallory, target, envelope, stop) = (
                mallory.clone(),
                target.clone(),
                envelope.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let (mut times, mut ok, mut limited, mut dropped) = (Vec::new(), 0, 0, 0);
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    i += 1;
                    let t = Instant::now();
                    let r = mallory
                        .send(&SendRequest {
                            idempotency_key: format!("flood-{k}-{i}"),
                            ttl_secs: 600,
                            class: "text".into(),
                            thread: None,
                            envelopes: vec![OutEnvelope {
                                device_id: target.clone(),
                                envelope: envelope.clone().into(),
                            }],
                            listed_devices: Vec::new(),
                            urgent: false,
                        })
                        .await;
                    times.push(t.elapsed());
                    match r {
                        Ok(_) => ok += 1,
                        Err(TransportError::RateLimited { .. }) => limited += 1,
                        // The HTTP/2 layer's own flood guard may reset her
                        // connection; the client reconnects on the next try.
                        Err(_) => dropped += 1,
                    }
                }
                (times, ok, limited, dropped)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let flood_normal = latencies(&alice, &rx, count / 2).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut flood_mallory, mut flood_ok, mut flood_limited, mut flood_dropped) =
        (Vec::new(), 0, 0, 0);
    for f in floods {
        let (times, ok, limited, dropped) = f.await.unwrap();
        flood_mallory.extend(times);
        flood_ok += ok;
        flood_limited += limited;
        flood_dropped += dropped;
    }
    flood_mallory.sort();
    for p in polls {
        p.abort();
    }
    Figures {
        setup_secs,
        drain,
        queue_secs,
        lat,
        flood_normal,
        flood_mallory,
        flood_ok,
        flood_limited,
        flood_dropped,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::var_os("OCC_BENCH_QUICK").is_some();
    let (devices, n, count) = if quick {
        (200, 400, 60)
    } else {
        (1_000, 400, 200)
    };
    eprintln!("before: no limits, {devices} devices connected ...");
    let before = scenario(Limits::unlimited(), devices, n, count).await;
    eprintln!("after: default limits, {devices} devices connected ...");
    let after = scenario(Limits::default(), devices, n, count).await;

    println!(
        "\n## occ relay limits, before and after (one run each, {devices} devices connected)\n"
    );
    println!("| measurement | before (no limits) | after (default limits) |");
    println!("|---|---|---|");
    println!(
        "| connect {devices} devices (register, authenticate; 429s waited out) | {:.1} s | {:.1} s |",
        before.setup_secs, after.setup_secs
    );
    println!(
        "| alice queues {n} messages (one request each) | {:.2} s | {:.2} s |",
        before.queue_secs, after.queue_secs
    );
    println!(
        "| bob drains {n} queued messages | {:.0} msg/s | {:.0} msg/s |",
        before.drain, after.drain
    );
    println!(
        "| send → event latency, {count} messages, p50 / p99 | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
        pct(&before.lat, 0.5),
        pct(&before.lat, 0.99),
        pct(&after.lat, 0.5),
        pct(&after.lat, 0.99)
    );
    println!(
        "| under flood: alice → bob latency, {} messages, p50 / p99 | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
        count / 2,
        pct(&before.flood_normal, 0.5),
        pct(&before.flood_normal, 0.99),
        pct(&after.flood_normal, 0.5),
        pct(&after.flood_normal, 0.99)
    );
    println!(
        "| under flood: mallory's requests p50 / p99 | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
        pct(&before.flood_mallory, 0.5),
        pct(&before.flood_mallory, 0.99),
        pct(&after.flood_mallory, 0.5),
        pct(&after.flood_mallory, 0.99)
    );
    println!(
        "| under flood: mallory's requests accepted / 429 / connection reset | {} / {} / {} | {} / {} / {} |",
        before.flood_ok,
        before.flood_limited,
        before.flood_dropped,
        after.flood_ok,
        after.flood_limited,
        after.flood_dropped
    );
}
