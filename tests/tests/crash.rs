//! A client killed between `send` and the relay's answer delivers the message
//! exactly once after restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Env, texts};
use occ_core::sync::direct_thread_id;
use occ_core::{Client, Recipient};

/// Child process: opens the profile, sends, and (in mode `flush`) waits for
/// the relay's answer — which, with the relay's stall hook set, never comes.
#[test]
#[ignore = "child process of the exactly-once test"]
fn crash_child_sender() {
    let Ok(dir) = std::env::var("OCC_CHILD_DIR") else {
        return;
    };
    let key = hex::decode(std::env::var("OCC_CHILD_KEY").unwrap()).unwrap();
    let mode = std::env::var("OCC_CHILD_MODE").unwrap();
    let text = std::env::var("OCC_CHILD_TEXT").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = Client::open(&dir, key).unwrap();
        client
            .send(
                Recipient::User { name: "bob".into() },
                text.as_bytes().to_vec(),
                600,
                None,
            )
            .await
            .unwrap();
        println!("ACCEPTED");
        if mode == "flush" {
            let _ = client.flush().await;
        }
    });
}

fn spawn_child(env: &Env, mode: &str, text: &str) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_sender",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("OCC_CHILD_DIR", env.profile_dir("alice"))
        .env("OCC_CHILD_KEY", hex::encode(env.key_of("alice").as_bytes()))
        .env("OCC_CHILD_MODE", mode)
        .env("OCC_CHILD_TEXT", text)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn queued_for(env: &Env, device: &str) -> i64 {
    env.relay_db()
        .query_row(
            "SELECT count(*) FROM envelopes WHERE recipient = ?1",
            [device],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_killed_between_send_and_answer_delivers_exactly_once() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let bob_id = bob.device_id().await.unwrap();
    // Establish the session first so each message is a single envelope.
    alice
        .send(
            Recipient::User { name: "bob".into() },
            b"warm-up".to_vec(),
            600,
            None,
        )
        .await
        .unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    drop(alice);

    // 1. Killed after the relay committed the batch, before its answer.
    env.hooks.stall_after_send.store(true, Ordering::SeqCst);
    let mut child = spawn_child(&env, "flush", "exactly once, despite a crash");
    let mut committed = false;
    for _ in 0..200 {
        if queued_for(&env, &bob_id) == 1 {
            committed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(committed, "the relay never received the send");
    child.kill().unwrap(); // SIGKILL, mid-request
    child.wait().unwrap();
    env.hooks.stall_after_send.store(false, Ordering::SeqCst);

    // 2. Killed (well, exited) after accepting, before any network at all.
    let out = spawn_child(&env, "enqueue", "accepted offline, sent after restart")
        .wait_with_output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("ACCEPTED"));

    // Restart: both are still in the outbox; the first resends under the
    // same idempotency key and the relay answers without queueing it again.
    let alice = env.reopen("alice");
    assert_eq!(alice.outbox_len().await.unwrap(), 2);
    let r = alice.flush().await.unwrap();
    assert_eq!(r.sent, 2);
    assert_eq!(alice.outbox_len().await.unwrap(), 0);
    assert_eq!(
        queued_for(&env, &bob_id),
        2,
        "two new messages queued once each, not three"
    );
    // Another flush sends nothing.
    assert_eq!(alice.flush().await.unwrap().sent, 0);

    let r = bob.sync().await.unwrap();
    assert_eq!(r.received.received().len(), 2);
    assert_eq!(bob.sync().await.unwrap().received.received().len(), 0);
    let dm = direct_thread_id("alice", "bob");
    assert_eq!(
        texts(&bob.messages(&dm, 10).await.unwrap()),
        [
            "accepted offline, sent after restart",
            "exactly once, despite a crash",
            "warm-up"
        ]
    );
}
