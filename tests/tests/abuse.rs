//! A relay that holds under abuse: anyone who can register floods it, fills a
//! victim's inbox, replays a registration, points the relay's push client at
//! internal services, drains one-time prekeys, or churns another device's
//! authentication — and everyone else keeps working.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::time::Duration;

use common::{Env, count, real_now_ms, to};
use occ_core::transport::TransportError;
use occ_relay::Rate;
use occ_relay::push_sink::PushSink;

fn rejected_status(e: &TransportError) -> Option<u16> {
    match e {
        TransportError::Rejected { status, .. } | TransportError::Server { status, .. } => {
            Some(*status)
        }
        _ => None,
    }
}

/// A plain HTTP/1.0 GET on the metrics listener; the body.
async fn metrics(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: m\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(
        out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
        "{out}"
    );
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Mallory sends as fast as she can: she gets 429 with a Retry-After, while
/// alice and bob on the same relay (same address) keep messaging without a
/// single refusal. The metrics listener counts the hits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_device_gets_429_and_a_normal_one_does_not() {
    let env = Env::start_with(|c| {
        c.limits.per_device = Rate {
            per_sec: 20.0,
            burst: 40.0,
        };
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let metrics_addr = env.relay.as_ref().unwrap().metrics_addr.unwrap();
    assert_eq!(metrics(metrics_addr, "/health").await, "ok\n");
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let mut mallory = env.raw_device("mallory").await;
    let sink = env.raw_device("sink").await;
    let sink_id = sink.device_id();
    mallory.open_session(&sink_id).await;

    let flood = tokio::spawn(async move {
        let (mut ok, mut limited, mut retry_ms) = (0, 0, 0);
        for _ in 0..300 {
            match mallory.try_send_payload(&sink_id, b"flood").await {
                Ok(_) => ok += 1,
                Err(TransportError::RateLimited { retry_after_ms }) => {
                    limited += 1;
                    retry_ms = retry_after_ms;
                }
                Err(e) => panic!("{e}"),
            }
        }
        (ok, limited, retry_ms)
    });
    let mut ids = Vec::new();
    for i in 0..15 {
        let id = alice
            .send(to("bob"), format!("m{i}").into_bytes(), 600, None)
            .await
            .unwrap();
        alice.flush().await.unwrap();
        ids.push(id);
        bob.receive(0).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (ok, limited, retry_ms) = flood.await.unwrap();
    assert!(limited > 0, "mallory was never limited ({ok} sent)");
    assert!(ok >= 40, "the burst is allowed: {ok}");
    assert!(retry_ms >= 1000, "Retry-After is whole seconds: {retry_ms}");
    for id in &ids {
        assert_eq!(bob.message(id).await.unwrap().id, *id);
    }
    let m = metrics(metrics_addr, "/metrics").await;
    assert!(metric(&m, "occ_relay_rate_limited_total") >= limited);
    assert!(metric(&m, "occ_relay_envelopes_accepted_total") >= ok + 15);
    assert!(metric(&m, "occ_relay_envelopes_delivered_total") >= 15);
    assert!(m.contains("# TYPE occ_relay_queue_depth gauge"));
}

/// Mallory tries to put 1 GiB into bob's inbox in 1 MiB envelopes: her share
/// of bob's quota refuses her after 16 MiB (507, nothing of the refused batch
/// kept); alice still reaches bob; bob drains it in pages bounded in bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_inbox_attempt_is_refused_by_quota() {
    let env = Env::start_with(|c| {
        c.limits.inbox_max_bytes = 64 << 20;
        c.limits.sender_share_bytes = 16 << 20;
    })
    .await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let bob_device = bob.device_id().await.unwrap();
    let mut mallory = env.raw_device("mallory").await;
    let big = vec![0u8; (1 << 20) - 64];
    let mut accepted = 0;
    let mut refusal = None;
    for _ in 0..1024 {
        match mallory.try_send_payload(&bob_device, &big).await {
            Ok(_) => accepted += 1,
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    let refusal = refusal.expect("1 GiB was accepted");
    assert_eq!(rejected_status(&refusal), Some(507), "{refusal}");
    assert!(refusal.to_string().contains("full"), "{refusal}");
    assert!((15..=16).contains(&accepted), "{accepted}");
    let db = env.relay_db();
    let stored = count(
        &db,
        &format!("SELECT coalesce(sum(size), 0) FROM envelopes WHERE recipient = '{bob_device}'"),
    );
    assert!(stored <= 16 << 20, "{stored}");

    let id = alice
        .send(to("bob"), b"still gets through".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    let mut pages = 0;
    while bob.message(&id).await.is_err() {
        let r = bob.receive(0).await.unwrap();
        assert!(!r.items.is_empty());
        // Pages are bounded in bytes: at most 2 MiB of envelopes plus one.
        assert!(r.items.len() <= 3, "{}", r.items.len());
        pages += 1;
        assert!(pages < 40);
    }
    assert!(pages >= 6, "{pages}");
}

/// A registration is signed over everything in it, with the relay's time:
/// the same request again, an old one, or one with swapped prekeys are
/// refused; a fresh one is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_stale_or_altered_registrations_are_refused() {
    let env = Env::start().await;
    let api = env.api();
    let mut account = occ_core::crypto::Account::generate(0).unwrap();
    account.generate_one_time_prekeys(10).unwrap();
    let req = occ_core::sync::registration(&account, "replayed", None, real_now_ms()).unwrap();
    api.register(&req).await.unwrap();
    let before = count(&env.relay_db(), "SELECT count(*) FROM one_time_prekeys");
    let replay = api.register(&req).await.unwrap_err();
    assert_eq!(rejected_status(&replay), Some(409), "{replay}");

    let stale =
        occ_core::sync::registration(&account, "replayed", None, real_now_ms() - 10 * 60 * 1000)
            .unwrap();
    let e = api.register(&stale).await.unwrap_err();
    assert_eq!(rejected_status(&e), Some(400), "{e}");

    let mut altered =
        occ_core::sync::registration(&account, "replayed", None, real_now_ms() + 5).unwrap();
    altered.one_time_prekeys[0].key = vec![9u8; 32].into();
    let e = api.register(&altered).await.unwrap_err();
    assert!(e.to_string().contains("signature"), "{e}");
    assert_eq!(
        count(&env.relay_db(), "SELECT count(*) FROM one_time_prekeys"),
        before
    );

    let fresh =
        occ_core::sync::registration(&account, "replayed", None, real_now_ms() + 10).unwrap();
    api.register(&fresh).await.unwrap();
}

/// Push endpoints are https on an operator-listed gateway host; the relay
/// never follows a redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_endpoints_must_be_https_on_a_gateway_and_redirects_are_not_followed() {
    let env = Env::start().await;
    let ca = env.ca();
    for bad in [
        "http://localhost:9/push",
        "https://evil.example.org/push",
        "https://127.0.0.1:9/push",
        "https://user:pw@localhost/push",
    ] {
        let mut opts = env.options(&format!("u{}", bad.len()));
        opts.push_endpoint = Some(bad.into());
        let client = env.new_client(&format!("u{}", bad.len()));
        let e = client.enrol(opts).await.unwrap_err();
        assert!(
            matches!(e, occ_core::Error::InvalidInput { .. }),
            "{bad}: {e:?}"
        );
    }

    let target = PushSink::start(&ca).await.unwrap();
    let redirector = PushSink::start_redirecting(&ca, &target.url).await.unwrap();
    let alice = env.client("alice").await;
    let mut opts = env.options("bob");
    opts.push_endpoint = Some(redirector.url.clone());
    let _bob = env.client_with("bob", opts).await;
    alice
        .send(to("bob"), b"hi".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    assert_eq!(
        redirector
            .wait_for_requests(1, Duration::from_secs(5))
            .await,
        1
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(target.requests(), 0, "the redirect was followed");
}

/// Mallory asks for bob's bundle fifty times: only the first few carry a
/// one-time prekey; bob's supply shrinks by exactly that many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_one_time_prekeys_is_bounded_per_requester() {
    let env = Env::start().await;
    let bob = env.client("bob").await;
    let bob_device = bob.device_id().await.unwrap();
    let db = env.relay_db();
    let sql = format!("SELECT count(*) FROM one_time_prekeys WHERE device_id = '{bob_device}'");
    let before = count(&db, &sql);
    let mut mallory = env.raw_device("mallory").await;
    let mut with_key = 0;
    for _ in 0..50 {
        if mallory
            .open_session(&bob_device)
            .await
            .one_time_prekey
            .is_some()
        {
            with_key += 1;
        }
    }
    let allowed = i64::from(occ_relay::Limits::default().prekeys_per_target);
    assert_eq!(with_key, allowed);
    assert_eq!(count(&db, &sql), before - allowed);
    // Another requester still gets one (the limit is per requester).
    let mut alice = env.raw_device("alice").await;
    assert!(
        alice
            .open_session(&bob_device)
            .await
            .one_time_prekey
            .is_some()
    );
}

/// Anyone may ask for challenges for bob's device, as many as they like:
/// none displaces the one bob is answering; a spent challenge cannot be used
/// twice; a challenge for another device does not work for bob's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_can_displace_or_reuse_another_devices_challenge() {
    let env = Env::start().await;
    let bob = env.raw_device("bob").await;
    let bob_id = bob.device_id();
    let api = env.api();
    let mine = api.challenge(&bob_id).await.unwrap();
    let mallory = env.api();
    for _ in 0..20 {
        mallory.challenge(&bob_id).await.unwrap();
    }
    let sign = |c: &[u8]| {
        bob.account
            .identity()
            .sign(b"", &occ_protocol::api::auth_message(c, &bob_id))
    };
    api.redeem(
        &bob_id,
        mine.challenge.clone(),
        sign(mine.challenge.as_slice()),
    )
    .await
    .unwrap();
    assert!(api.has_token());
    let again = env.api();
    let e = again
        .redeem(
            &bob_id,
            mine.challenge.clone(),
            sign(mine.challenge.as_slice()),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::Unauthorized(_)), "{e}");
    let other = env.raw_device("other").await;
    let theirs = api.challenge(&other.device_id()).await.unwrap();
    let e = again
        .redeem(
            &bob_id,
            theirs.challenge.clone(),
            sign(theirs.challenge.as_slice()),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::Unauthorized(_)), "{e}");
}
