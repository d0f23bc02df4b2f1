//! Attachments through a real relay: resume after a cut download, a byte
//! changed on the relay refused, the relay's copy gone (410, no file) after
//! the TTL and the device copy crypto-shredded after the purge, quotas on
//! both sides, the relay's refusals of what another party may try.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Env, count, to};
use occ_core::transport::TransportError;
use occ_core::{Client, Error, OutgoingFile, SecurityEventKind};
use occ_protocol::api::AttachmentCreate;
use sha2::{Digest, Sha256};

/// A file of `len` pseudo-random bytes; returns its path and SHA-256.
fn make_file(dir: &Path, name: &str, len: usize) -> (PathBuf, [u8; 32]) {
    let path = dir.join(name);
    let sha = common::write_pseudo_random(&path, len, 0x9e37_79b9_7f4a_7c15 ^ len as u64);
    (path, sha)
}

fn file(path: &Path) -> OutgoingFile {
    OutgoingFile {
        path: path.to_path_buf(),
        mime: "application/octet-stream".into(),
        name: None,
        thumb: b"tiny preview".to_vec(),
    }
}

fn none(_: u64, _: u64) {}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every page of a profile's database as SQLCipher decrypts it (free pages
/// included): the device holder with the key looking for a shredded key.
fn decrypted_pages(env: &Env, name: &str) -> Vec<u8> {
    let db = env.client_db(name);
    let mut stmt = db
        .prepare("SELECT data FROM sqlite_dbpage ORDER BY pgno")
        .unwrap();
    let pages = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap();
    pages.flat_map(|p| p.unwrap()).collect()
}

fn file_key(env: &Env, name: &str, id: &str) -> Vec<u8> {
    env.client_db(name)
        .query_row(
            "SELECT file_key FROM attachments WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
}

struct Rig {
    env: Env,
    alice: Client,
    bob: Client,
    files: tempfile::TempDir,
}

async fn rig() -> Rig {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    Rig {
        env,
        alice,
        bob,
        files: tempfile::tempdir().unwrap(),
    }
}

impl Rig {
    /// Alice sends a file of `len` bytes to bob, who receives the message;
    /// returns (message id, attachment id, file SHA-256).
    async fn send(&self, len: usize, ttl: u64) -> (String, String, [u8; 32]) {
        let (path, sha) = make_file(self.files.path(), &format!("f{len}.bin"), len);
        let id = self
            .alice
            .send_file(to("bob"), file(&path), b"see attached".to_vec(), ttl, &none)
            .await
            .unwrap();
        self.alice.flush().await.unwrap();
        self.bob.receive(0).await.unwrap();
        let atts = self.bob.attachments(&id).await.unwrap();
        assert_eq!(atts.len(), 1);
        assert!(!atts[0].downloaded);
        assert_eq!(atts[0].size, len as u64);
        assert_eq!(atts[0].thumb, b"tiny preview");
        assert_eq!(atts[0].name, format!("f{len}.bin"));
        (id, atts[0].id.clone(), sha)
    }

    fn saved_sha(&self, client: &Client, id: &str) -> impl std::future::Future<Output = [u8; 32]> {
        let dest = self
            .files
            .path()
            .join(format!("saved-{id}-{}", unique_suffix()));
        async move {
            client.save_attachment(id, &dest, &none).await.unwrap();
            let bytes = std::fs::read(&dest).unwrap();
            Sha256::digest(&bytes).into()
        }
    }
}

/// A name no other save in this process used.
fn unique_suffix() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test]
async fn an_interrupted_download_resumes_where_it_stopped() {
    let r = rig().await;
    let len = 3 << 20;
    let (_, att, sha) = r.send(len, 600).await;
    r.env
        .hooks
        .attachment_cut_after
        .store(1 << 20, Ordering::SeqCst);
    let e = r.bob.download_attachment(&att, &none).await.unwrap_err();
    assert!(matches!(e, Error::Network { .. }), "{e:?}");
    let dir = r.env.profile_dir("bob").join("attachments");
    let part = files_in(&dir)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "part"))
        .expect("the partial download is kept");
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(
        kept > 512 << 10 && kept <= 1 << 20,
        "kept {kept} bytes of what arrived before the cut"
    );
    // The partial file survives a restart of the app.
    r.bob.close();
    let bob = r.env.reopen("bob");
    assert!(part.exists());
    let first = Mutex::new(None);
    let seen = |done: u64, _total: u64| {
        first.lock().unwrap().get_or_insert(done);
    };
    bob.download_attachment(&att, &seen).await.unwrap();
    assert_eq!(
        first.lock().unwrap().unwrap(),
        kept,
        "the second attempt starts where the first stopped"
    );
    assert!(!part.exists());
    assert_eq!(r.saved_sha(&bob, &att).await, sha);
}

#[tokio::test]
async fn a_byte_changed_on_the_relay_is_refused_and_recorded() {
    let r = rig().await;
    let (msg, att, _) = r.send(200_000, 600).await;
    // The relay operator flips one byte of the stored blob.
    let blob = r.env.relay_dir.join("attachments").join(&att);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100_000] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    let e = r.bob.download_attachment(&att, &none).await.unwrap_err();
    assert!(matches!(e, Error::Untrusted { .. }), "{e:?}");
    let events = r.bob.security_events().await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == SecurityEventKind::AttachmentTampered)
    );
    let dir = r.env.profile_dir("bob").join("attachments");
    assert!(files_in(&dir).is_empty(), "nothing of the bad blob is kept");
    assert!(!r.bob.attachments(&msg).await.unwrap()[0].downloaded);
    let (_, used) = r.bob.attachment_quota().await.unwrap();
    assert_eq!(used, 0, "the reservation is released");
    // The message itself is untouched, and a repaired blob downloads.
    bytes[100_000] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    r.bob.download_attachment(&att, &none).await.unwrap();
    assert!(r.bob.attachments(&msg).await.unwrap()[0].downloaded);
}

#[tokio::test]
async fn after_the_ttl_the_relay_answers_410_and_purges_and_devices_shred() {
    let r = rig().await;
    let (msg, att, sha) = r.send(300_000, 3).await;
    r.bob.download_attachment(&att, &none).await.unwrap();
    assert_eq!(r.saved_sha(&r.bob, &att).await, sha);
    let keys = [
        file_key(&r.env, "alice", &att),
        file_key(&r.env, "bob", &att),
    ];
    let blob_file = r.env.relay_dir.join("attachments").join(&att);
    assert!(blob_file.exists());
    let mallory = r.env.raw_device("mallory").await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    // The relay refuses it and its purge (every 200 ms here) deletes it.
    let got = mallory
        .api
        .download_attachment(&att, 0, 1 << 20, &mut |_| Ok(()))
        .await;
    assert!(matches!(got, Err(TransportError::Gone)), "{got:?}");
    let status = mallory.api.attachment_status(&att).await;
    assert!(matches!(status, Err(TransportError::Gone)), "{status:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while blob_file.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!blob_file.exists(), "the relay holds no file");
    assert!(files_in(&r.env.relay_dir.join("attachments")).is_empty());
    // On both devices the purge removes the file and the key.
    for (name, client, key) in [("alice", &r.alice, &keys[0]), ("bob", &r.bob, &keys[1])] {
        let dir = r.env.profile_dir(name).join("attachments");
        assert_eq!(
            files_in(&dir).len(),
            1,
            "{name} holds its copy until the purge"
        );
        assert!(contains(&decrypted_pages(&r.env, name), key));
        let report = client.purge().await.unwrap();
        assert_eq!(report.attachments, 1, "{name}");
        assert!(
            files_in(&dir).is_empty(),
            "{name}: raw scan of the attachments folder"
        );
        assert!(
            !contains(&decrypted_pages(&r.env, name), key),
            "{name}: the key is in no page of the database"
        );
        assert!(matches!(
            client.attachments(&msg).await,
            Err(Error::NotFound { .. } | Error::Expired)
        ));
    }
}

#[tokio::test]
async fn over_quota_is_a_clear_error_and_nothing_is_half_written() {
    let r = rig().await;
    // Sender side: nothing stored, nothing queued, nothing uploaded.
    r.alice.set_attachment_quota(100_000).await.unwrap();
    let (path, _) = make_file(r.files.path(), "big.bin", 200_000);
    let e = r
        .alice
        .send_file(to("bob"), file(&path), Vec::new(), 600, &none)
        .await
        .unwrap_err();
    match &e {
        Error::QuotaExceeded {
            needed,
            available,
            quota,
        } => {
            assert!(*needed > 200_000);
            assert_eq!((*available, *quota), (100_000, 100_000));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("quota"), "{e}");
    assert!(files_in(&r.env.profile_dir("alice").join("attachments")).is_empty());
    assert_eq!(r.alice.outbox_len().await.unwrap(), 0);
    assert!(r.alice.threads().await.unwrap().is_empty());
    assert_eq!(
        count(&r.env.relay_db(), "SELECT count(*) FROM attachments"),
        0
    );
    // Receiver side: the message stays, the file is not fetched.
    r.alice.set_attachment_quota(10 << 20).await.unwrap();
    let (msg, att, sha) = r.send(150_000, 600).await;
    r.bob.set_attachment_quota(100_000).await.unwrap();
    let e = r.bob.download_attachment(&att, &none).await.unwrap_err();
    assert!(matches!(e, Error::QuotaExceeded { .. }), "{e:?}");
    assert!(files_in(&r.env.profile_dir("bob").join("attachments")).is_empty());
    assert!(!r.bob.attachments(&msg).await.unwrap()[0].downloaded);
    assert_eq!(r.bob.attachment_quota().await.unwrap(), (100_000, 0));
    r.bob.set_attachment_quota(1 << 20).await.unwrap();
    r.bob.download_attachment(&att, &none).await.unwrap();
    assert_eq!(r.saved_sha(&r.bob, &att).await, sha);
    let (_, used) = r.bob.attachment_quota().await.unwrap();
    assert!(used > 150_000);
}

#[tokio::test]
async fn the_relay_refuses_what_other_parties_try_with_blobs() {
    let r = rig().await;
    let (_, att, _) = r.send(10_000, 600).await;
    let mut mallory = r.env.raw_device("mallory").await;
    let create = |id: &str, size: u64| AttachmentCreate {
        id: id.into(),
        size,
        ttl_secs: 60,
    };
    // Taking over alice's blob id, or writing into it.
    let e = mallory.api.create_attachment(&create(&att, 10_060)).await;
    assert!(
        matches!(e, Err(TransportError::Rejected { status: 409, .. })),
        "{e:?}"
    );
    let e = mallory
        .api
        .put_attachment_piece(&att, 0, vec![0; 10].into())
        .await;
    assert!(matches!(e, Err(TransportError::NotFound(_))), "{e:?}");
    // Own upload: wrong offset, past the size, incomplete download.
    let id = "00112233445566778899aabbccddeeff";
    let s = mallory
        .api
        .create_attachment(&create(id, 100))
        .await
        .unwrap();
    assert_eq!((s.received, s.size), (0, 100));
    let e = mallory
        .api
        .put_attachment_piece(id, 5, vec![1; 10].into())
        .await;
    assert!(
        matches!(e, Err(TransportError::Rejected { status: 409, .. })),
        "{e:?}"
    );
    let e = mallory
        .api
        .put_attachment_piece(id, 0, vec![1; 101].into())
        .await;
    assert!(
        matches!(e, Err(TransportError::Rejected { status: 413, .. })),
        "{e:?}"
    );
    let s = mallory
        .api
        .put_attachment_piece(id, 0, vec![1; 60].into())
        .await
        .unwrap();
    assert_eq!(s.received, 60);
    let e = mallory
        .api
        .download_attachment(id, 0, 100, &mut |_| Ok(()))
        .await;
    assert!(
        matches!(e, Err(TransportError::Rejected { status: 409, .. })),
        "{e:?}"
    );
    // Resuming an upload continues where the relay stands.
    let s = mallory
        .api
        .create_attachment(&create(id, 100))
        .await
        .unwrap();
    assert_eq!(s.received, 60);
    mallory
        .api
        .put_attachment_piece(id, 60, vec![2; 40].into())
        .await
        .unwrap();
    let mut got = Vec::new();
    mallory
        .api
        .download_attachment(id, 50, 100, &mut |c| {
            got.extend_from_slice(c);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(got, [vec![1u8; 10], vec![2u8; 40]].concat());
    // Bad ids, sizes and TTLs.
    for (id, size, ttl) in [
        ("0011", 10, 60),
        ("00112233445566778899AABBCCDDEEFF", 10, 60),
        ("ffffffffffffffffffffffffffffffff", 0, 60),
        ("ffffffffffffffffffffffffffffffff", 10, 0),
    ] {
        let e = mallory
            .api
            .create_attachment(&AttachmentCreate {
                id: id.into(),
                size,
                ttl_secs: ttl,
            })
            .await;
        assert!(
            matches!(e, Err(TransportError::Rejected { status: 400, .. })),
            "{id} {e:?}"
        );
    }
    let e = mallory
        .api
        .create_attachment(&create("ffffffffffffffffffffffffffffffff", 1 << 40))
        .await;
    assert!(
        matches!(e, Err(TransportError::Rejected { status: 413, .. })),
        "{e:?}"
    );
    let _ = &mut mallory;
}

#[tokio::test]
async fn the_relay_bounds_each_device_s_live_attachment_bytes() {
    let env = Env::start_with(|c| c.limits.attachment_quota = 1000).await;
    let mallory = env.raw_device("mallory").await;
    let mk = |n: u8, size| AttachmentCreate {
        id: format!("{:032x}", n),
        size,
        ttl_secs: 60,
    };
    mallory.api.create_attachment(&mk(1, 600)).await.unwrap();
    let e = mallory.api.create_attachment(&mk(2, 401)).await;
    assert!(
        matches!(e, Err(TransportError::Server { status: 507, .. })),
        "{e:?}"
    );
    mallory.api.create_attachment(&mk(3, 400)).await.unwrap();
    // Another device is not affected by mallory's use.
    let other = env.raw_device("olga").await;
    other.api.create_attachment(&mk(4, 1000)).await.unwrap();
}

#[tokio::test]
async fn policy_limits_attachment_size_and_download() {
    use occ_protocol::org::{ClassRule, OrgPolicy};
    let env = Env::start().await;
    let org = common::org_key();
    let alice = common::member(&env, &org, "alice").await;
    let bob = common::member(&env, &org, "bob").await;
    common::certify_and_install(&org, &alice, "alice").await;
    common::certify_and_install(&org, &bob, "bob").await;
    let files = tempfile::tempdir().unwrap();
    let publish =
        |p: &OrgPolicy| occ_relay::admin::publish_policy(&env.relay_dir, &org, p).unwrap();
    let mut policy = OrgPolicy {
        version: 1,
        max_attachment_bytes: Some(4000),
        ..Default::default()
    };
    publish(&policy);
    alice.org_sync().await.unwrap();
    bob.org_sync().await.unwrap();
    // One byte over the organisation's largest attachment: refused, nothing
    // written; exactly at it: sent.
    let (over, _) = make_file(files.path(), "over.bin", 4001);
    let e = alice
        .send_file(to("bob"), file(&over), Vec::new(), 600, &none)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PolicyDenied { .. }), "{e:?}");
    assert!(files_in(&env.profile_dir("alice").join("attachments")).is_empty());
    let (at, _) = make_file(files.path(), "at.bin", 4000);
    let id = alice
        .send_file(to("bob"), file(&at), Vec::new(), 600, &none)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    bob.receive(0).await.unwrap();
    let att = bob.attachments(&id).await.unwrap().remove(0);
    // The organisation then forbids downloading files on bob's device: the
    // attachment received before stays where it is (on the relay).
    policy.version = 2;
    policy.classes = vec![ClassRule {
        class: "file".into(),
        download: false,
        export: true,
        devices: Vec::new(),
    }];
    publish(&policy);
    bob.org_sync().await.unwrap();
    let e = bob.download_attachment(&att.id, &none).await.unwrap_err();
    assert!(matches!(e, Error::PolicyDenied { .. }), "{e:?}");
    assert!(files_in(&env.profile_dir("bob").join("attachments")).is_empty());
    let denied = bob.security_events().await.unwrap();
    assert!(
        denied
            .iter()
            .any(|e| e.kind == SecurityEventKind::PolicyDenied && e.detail.contains(&att.id))
    );
    // And the inbox refuses a new file message on bob's device.
    let (small, _) = make_file(files.path(), "s.bin", 3000);
    let id = alice
        .send_file(to("bob"), file(&small), Vec::new(), 600, &none)
        .await
        .unwrap();
    alice.flush().await.unwrap();
    bob.receive(0).await.unwrap();
    assert!(bob.attachments(&id).await.is_err());
}

#[tokio::test]
async fn progress_counts_encryption_then_upload_then_download() {
    let r = rig().await;
    let len = 300_000usize;
    let (path, _) = make_file(r.files.path(), "p.bin", len);
    let seen = Mutex::new(Vec::new());
    let id = r
        .alice
        .send_file(to("bob"), file(&path), Vec::new(), 600, &|d, t| {
            seen.lock().unwrap().push((d, t))
        })
        .await
        .unwrap();
    let seen = seen.into_inner().unwrap();
    let blob = occ_core::store::attachments::sealed_len(len as u64);
    let total = len as u64 + blob;
    assert!(seen.iter().all(|&(d, t)| t == total && d <= t), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    assert!(
        seen.contains(&(len as u64, total)),
        "encryption ends at the file size"
    );
    assert_eq!(seen.last(), Some(&(total, total)));
    r.alice.flush().await.unwrap();
    r.bob.receive(0).await.unwrap();
    let att = r.bob.attachments(&id).await.unwrap().remove(0);
    let down = Mutex::new(Vec::new());
    r.bob
        .download_attachment(&att.id, &|d, t| down.lock().unwrap().push((d, t)))
        .await
        .unwrap();
    let down = down.into_inner().unwrap();
    assert_eq!(down.first(), Some(&(0, blob)));
    assert_eq!(down.last(), Some(&(blob, blob)));
}

#[tokio::test]
async fn an_interrupted_upload_resumes_and_the_digest_covers_every_byte() {
    let r = rig().await;
    for (n, stored) in [(2u64, false), (3, true)] {
        // The n-th piece's answer is lost, after or before the relay kept it.
        r.env
            .hooks
            .attachment_fail_stored
            .store(stored, Ordering::SeqCst);
        r.env.hooks.attachment_fail_piece.store(n, Ordering::SeqCst);
        let len = (4 << 20) + n as usize;
        let (msg, att, sha) = r.send(len, 600).await;
        assert_eq!(r.env.hooks.attachment_fail_piece.load(Ordering::SeqCst), 0);
        let blob = std::fs::read(r.env.relay_dir.join("attachments").join(&att)).unwrap();
        let committed = r.bob.attachments(&msg).await.unwrap()[0].blob_sha256;
        assert_eq!(
            committed,
            <[u8; 32]>::from(Sha256::digest(&blob)),
            "stored={stored}"
        );
        r.bob.download_attachment(&att, &none).await.unwrap();
        assert_eq!(r.saved_sha(&r.bob, &att).await, sha);
    }
}

#[tokio::test]
async fn a_send_that_cannot_upload_gives_up_and_leaves_nothing() {
    let mut r = rig().await;
    let (path, _) = make_file(r.files.path(), "x.bin", 100_000);
    let dir = r.env.profile_dir("alice").join("attachments");
    // A relay that claims to hold bytes it was never sent is not believed.
    r.env
        .hooks
        .attachment_claim_all
        .store(true, Ordering::SeqCst);
    let e = r
        .alice
        .send_file(to("bob"), file(&path), Vec::new(), 600, &none)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Untrusted { .. }), "{e:?}");
    r.env
        .hooks
        .attachment_claim_all
        .store(false, Ordering::SeqCst);
    assert!(files_in(&dir).is_empty());
    assert_eq!(r.alice.outbox_len().await.unwrap(), 0);
    // An unreachable relay: a bounded number of attempts, then an error.
    r.env.stop_relay().await;
    let t = std::time::Instant::now();
    let e = r
        .alice
        .send_file(to("bob"), file(&path), Vec::new(), 600, &none)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Network { .. }), "{e:?}");
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "gave up in {:?}",
        t.elapsed()
    );
    assert!(files_in(&dir).is_empty());
    assert_eq!(r.alice.outbox_len().await.unwrap(), 0);
    assert!(r.alice.threads().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_download_complete_before_a_crash_is_accepted_without_the_network() {
    let mut r = rig().await;
    let (msg, att, sha) = r.send(150_000, 600).await;
    // The app died after the last byte arrived, before it was accepted: the
    // whole blob is in the partial file.
    let file_name: String = r
        .env
        .client_db("bob")
        .query_row(
            "SELECT file_name FROM attachments WHERE id = ?1",
            [&att],
            |x| x.get(0),
        )
        .unwrap();
    let part = r
        .env
        .profile_dir("bob")
        .join("attachments")
        .join(file_name.replace(".bin", ".part"));
    std::fs::copy(r.env.relay_dir.join("attachments").join(&att), &part).unwrap();
    r.env.stop_relay().await;
    r.bob.download_attachment(&att, &none).await.unwrap();
    assert!(r.bob.attachments(&msg).await.unwrap()[0].downloaded);
    assert_eq!(r.saved_sha(&r.bob, &att).await, sha);
}
