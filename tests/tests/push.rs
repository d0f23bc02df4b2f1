//! The push path: a relay-signed notice verified offline into a download
//! prompt, then download or decline — and every notice an attacker can make
//! (another key's signature, another relay's, a replay, an expired one, one
//! for another device) gives no prompt and an audit entry.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Env, to};
use ed25519_dalek::Signer;
use occ_core::{Client, Decision, Error, ItemOutcome, ManualClock};
use occ_protocol::api::{B64, SignedPushNotice, push_notice_message};
use occ_relay::push_sink::PushSink;

struct Rig {
    env: Env,
    push: PushSink,
    alice: Client,
    bob: Client,
}

/// Alice, and bob with a push endpoint; they have talked once.
async fn rig() -> Rig {
    let env = Env::start().await;
    let push = PushSink::start(&env.ca()).await.unwrap();
    let alice = env.client("alice").await;
    let mut opts = env.options("bob");
    opts.push_endpoint = Some(push.url.clone());
    let bob = env.client_with("bob", opts).await;
    alice
        .send(to("bob"), b"hello".to_vec(), 600, None)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    push.wait_for(1, Duration::from_secs(5)).await;
    bob.receive(0).await.unwrap();
    Rig {
        env,
        push,
        alice,
        bob,
    }
}

impl Rig {
    /// Alice sends `text`; returns the notice bob's phone gets.
    async fn notice_for(&self, text: &str) -> SignedPushNotice {
        let before = self.push.notices().len();
        self.alice
            .send(to("bob"), text.as_bytes().to_vec(), 600, None)
            .await
            .unwrap();
        self.alice.flush().await.unwrap();
        self.push
            .wait_for(before + 1, Duration::from_secs(5))
            .await
            .pop()
            .unwrap()
    }

    fn verify(&self, notice: &SignedPushNotice) -> occ_core::Result<occ_core::DownloadPrompt> {
        self.verify_bytes(serde_json::to_vec(notice).unwrap())
    }

    fn verify_bytes(&self, bytes: Vec<u8>) -> occ_core::Result<occ_core::DownloadPrompt> {
        occ_core::verify_notice(
            self.env.profile_dir("bob").to_str().unwrap(),
            self.env.key_of("bob").as_bytes().to_vec(),
            bytes,
        )
    }

    async fn audit_kinds(&self, c: &Client) -> Vec<String> {
        c.audit_entries(0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }
}

fn resign(notice: &SignedPushNotice, key: &ed25519_dalek::SigningKey) -> SignedPushNotice {
    SignedPushNotice {
        notice: notice.notice.clone(),
        signature: B64(key
            .sign(&push_notice_message(&notice.notice))
            .to_bytes()
            .to_vec()),
    }
}

fn forged_count(kinds: &[String]) -> usize {
    kinds.iter().filter(|k| *k == "forged_notice").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genuine_notice_prompts_and_downloads_while_the_app_holds_the_profile() {
    let r = rig().await;
    let n = r.notice_for("meet at gate 4").await;
    // The app keeps bob's profile open meanwhile (another connection).
    let prompt = r.verify(&n).unwrap();
    assert_eq!(prompt.relay_message_id, n.notice.message_id);
    assert_eq!(prompt.sender_user.as_deref(), Some("alice"));
    assert!(prompt.sender_verified);
    assert_eq!(prompt.message_class, "text");
    assert_eq!(prompt.thread_title.as_deref(), Some("alice"));
    assert!(!prompt.urgent);
    assert_eq!(prompt.decision, Decision::Allow);

    let report = r.bob.download(&prompt.relay_message_id).await.unwrap();
    let got = report.received();
    assert_eq!(got.len(), 1);
    let m = r.bob.message(&got[0].message_id).await.unwrap();
    assert_eq!(m.body, b"meet at gate 4");
    // The later inbox delivery is a duplicate.
    let again = r.bob.receive(0).await.unwrap();
    assert!(again.received().is_empty());
    let kinds = r.audit_kinds(&r.bob).await;
    assert!(kinds.contains(&"prompt_shown".to_string()));
    assert!(kinds.contains(&"downloaded".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_foreign_replayed_misdirected_and_expired_notices_give_no_prompt() {
    let r = rig().await;
    let n = r.notice_for("first").await;

    // Signed by someone else's key (an attacker who can reach the push
    // gateway), and by another relay's service key.
    let stranger = common::org_key();
    assert!(matches!(
        r.verify(&resign(&n, &stranger)),
        Err(Error::Untrusted { .. })
    ));
    let other_env = Env::start().await;
    let seed: [u8; 32] = std::fs::read(other_env.relay_dir.join("service.key"))
        .unwrap()
        .try_into()
        .unwrap();
    let other_relay_key = ed25519_dalek::SigningKey::from_bytes(&seed);
    assert!(matches!(
        r.verify(&resign(&n, &other_relay_key)),
        Err(Error::Untrusted { .. })
    ));
    // A notice whose fields were changed after signing.
    let mut edited = n.clone();
    edited.notice.size += 1;
    assert!(matches!(r.verify(&edited), Err(Error::Untrusted { .. })));
    // Garbage.
    assert!(matches!(
        r.verify_bytes(b"{not json".to_vec()),
        Err(Error::InvalidInput { .. })
    ));
    // None of those used up the genuine notice: it prompts once...
    assert!(r.verify(&n).is_ok());
    // ...and its replay is refused.
    assert!(matches!(r.verify(&n), Err(Error::Untrusted { .. })));

    // A genuine notice for another device (alice's, replayed to bob).
    let mut opts = r.env.options("carol");
    opts.push_endpoint = Some(r.push.url.clone());
    let carol = r.env.client_with("carol", opts).await;
    let before = r.push.notices().len();
    r.alice
        .send(to("carol"), b"for carol".to_vec(), 600, None)
        .await
        .unwrap();
    r.alice.flush().await.unwrap();
    let for_carol = r
        .push
        .wait_for(before + 1, Duration::from_secs(5))
        .await
        .pop()
        .unwrap();
    assert_eq!(
        for_carol.notice.recipient_device,
        carol.device_id().await.unwrap()
    );
    assert!(matches!(r.verify(&for_carol), Err(Error::Untrusted { .. })));

    // Expired: bob's device clock (and so trusted time) is past its expiry.
    let late = r.notice_for("late").await;
    let clock = Arc::new(ManualClock::new(late.notice.expires_ms + 1));
    let expired = occ_core::push::verify_notice_with_clock(
        r.env.profile_dir("bob").to_str().unwrap(),
        r.env.key_of("bob").as_bytes().to_vec(),
        serde_json::to_vec(&late).unwrap(),
        clock,
    );
    assert!(matches!(expired, Err(Error::Expired)));

    // Each refusal is an audit entry (and a security event).
    let kinds = r.audit_kinds(&r.bob).await;
    assert_eq!(forged_count(&kinds), 7, "{kinds:?}");
    let report = r.bob.audit_verify(false).await.unwrap();
    assert_eq!(report.broken, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_message_is_never_stored() {
    let r = rig().await;
    let n = r.notice_for("declined content").await;
    r.verify(&n).unwrap();
    r.bob.decline(&n.notice.message_id).await.unwrap();
    let report = r.bob.receive(0).await.unwrap();
    let outcome = report
        .items
        .iter()
        .find(|i| i.relay_id == n.notice.message_id)
        .map(|i| i.outcome.clone());
    assert_eq!(outcome, Some(ItemOutcome::Declined));
    let thread = occ_core::sync::direct_thread_id("alice", "bob");
    let texts = common::texts(&r.bob.messages(&thread, 10).await.unwrap());
    assert!(!texts.contains(&"declined content".to_string()));
    // The next message after it still arrives (the session moved on).
    r.alice
        .send(to("bob"), b"after".to_vec(), 600, None)
        .await
        .unwrap();
    r.alice.flush().await.unwrap();
    r.bob.receive(0).await.unwrap();
    let texts = common::texts(&r.bob.messages(&thread, 10).await.unwrap());
    assert!(texts.contains(&"after".to_string()));
    assert!(r.audit_kinds(&r.bob).await.contains(&"declined".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_wakes_the_phone_once() {
    let r = rig().await;
    let before = r.push.notices().len();
    for i in 0..5 {
        r.alice
            .send(to("bob"), format!("burst {i}").into_bytes(), 600, None)
            .await
            .unwrap();
    }
    r.alice.flush().await.unwrap();
    let notices = r.push.wait_for(before + 1, Duration::from_secs(5)).await;
    // Wait past the window: nothing more comes for this burst.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let notices_after = r.push.notices();
    assert_eq!(notices_after.len(), before + 1, "one notice per burst");
    let last = notices.last().unwrap();
    assert_eq!(last.notice.count, 5);
    let prompt = r.verify(last).unwrap();
    assert_eq!(prompt.count, 5);
}

/// Child process: the notification extension. Verifies the notice in
/// `OCC_CHILD_NOTICE` for the profile, opens a client and downloads.
#[test]
#[ignore = "child process of the cross-process test"]
fn extension_child() {
    let Ok(dir) = std::env::var("OCC_CHILD_DIR") else {
        return;
    };
    let key = hex::decode(std::env::var("OCC_CHILD_KEY").unwrap()).unwrap();
    let notice = std::fs::read(std::env::var("OCC_CHILD_NOTICE").unwrap()).unwrap();
    let prompt = occ_core::verify_notice(&dir, key.clone(), notice).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::open_light(&dir, key).unwrap();
    let got = rt
        .block_on(client.download(&prompt.relay_message_id))
        .unwrap()
        .received();
    println!("DOWNLOADED {}", got[0].message_id);
}

fn one_time_prekeys(env: &Env, name: &str) -> usize {
    let store = occ_core::store::Store::open(
        &env.profile_dir(name),
        &env.key_of(name),
        Arc::new(occ_core::SystemClock::new()),
    )
    .unwrap();
    store.account().unwrap().unwrap().one_time_prekey_count()
}

/// The app holds bob's profile open while the extension, another process,
/// verifies a notice and downloads a new contact's first message (which
/// consumes a one-time prekey). The app then sees the message, treats the
/// inbox copy as a duplicate, and never revives the consumed prekey when it
/// next changes the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extension_and_the_app_share_a_profile_across_processes() {
    let r = rig().await;
    let carol = r.env.client("carol").await;
    let before = r.push.notices().len();
    carol
        .send(to("bob"), b"first from carol".to_vec(), 600, None)
        .await
        .unwrap();
    carol.flush().await.unwrap();
    let n = r
        .push
        .wait_for(before + 1, Duration::from_secs(5))
        .await
        .pop()
        .unwrap();
    let file = r.env.tmp.path().join("notice.json");
    std::fs::write(&file, serde_json::to_vec(&n).unwrap()).unwrap();
    let otks_before = one_time_prekeys(&r.env, "bob");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "extension_child", "--ignored", "--nocapture"])
        .env("OCC_CHILD_DIR", r.env.profile_dir("bob"))
        .env("OCC_CHILD_KEY", hex::encode(r.env.key_of("bob").as_bytes()))
        .env("OCC_CHILD_NOTICE", &file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DOWNLOADED "))
        .unwrap()
        .to_string();
    assert_eq!(one_time_prekeys(&r.env, "bob"), otks_before - 1);

    // The app (open all along) reads it and gets the inbox copy as a
    // duplicate.
    assert_eq!(r.bob.message(&id).await.unwrap().body, b"first from carol");
    assert!(r.bob.receive(0).await.unwrap().received().is_empty());
    // Dave's first message makes the app change the account: carol's
    // consumed prekey must stay consumed.
    let dave = r.env.client("dave").await;
    dave.send(to("bob"), b"first from dave".to_vec(), 600, None)
        .await
        .unwrap();
    dave.flush().await.unwrap();
    assert_eq!(r.bob.receive(0).await.unwrap().received().len(), 1);
    assert_eq!(one_time_prekeys(&r.env, "bob"), otks_before - 2);
    // Carol's session (advanced by the extension) goes on in the app.
    carol
        .send(to("bob"), b"second from carol".to_vec(), 600, None)
        .await
        .unwrap();
    carol.flush().await.unwrap();
    assert_eq!(r.bob.receive(0).await.unwrap().received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_at_the_size_limit_is_read_and_one_byte_more_is_not() {
    let r = rig().await;
    let n = r.notice_for("padded").await;
    let mut bytes = serde_json::to_vec(&n).unwrap();
    bytes.resize(occ_core::push::MAX_NOTICE_LEN + 1, b' ');
    match r.verify_bytes(bytes.clone()) {
        Err(Error::InvalidInput { reason }) => assert!(reason.contains("too large"), "{reason}"),
        other => panic!("{other:?}"),
    }
    bytes.pop();
    assert!(r.verify_bytes(bytes).is_ok());
}
