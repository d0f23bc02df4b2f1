//! Export: a thread with an attachment to a folder whose manifest the
//! device signed; any changed, added, removed byte fails `verify_export`;
//! an encrypted export opens with the standard `age` tool and the
//! passphrase (and not without); policy and data-loss prevention refuse or
//! redact before anything is written; every export is audited.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Env, to};
use occ_core::export::{DlpAction, DlpRules};
use occ_core::{
    Client, Error, ExportEncryption, ExportOptions, ExportScope, OutgoingFile, verify_export,
};
use occ_protocol::org::{ClassRule, OrgPolicy};
use zeroize::Zeroizing;

const PASSPHRASE: &str = "correct horse battery staple";

fn none(_: u64, _: u64) {}

struct Rig {
    env: Env,
    alice: Client,
    bob: Client,
    thread: String,
    files: tempfile::TempDir,
}

/// Alice sends bob two texts and a photo; bob downloads the photo.
async fn rig_with(env: Env, alice: Client, bob: Client) -> Rig {
    let files = tempfile::tempdir().unwrap();
    let photo = files.path().join("site photo.jpg");
    std::fs::write(&photo, b"\xff\xd8 jpeg bytes of the site".repeat(5000)).unwrap();
    alice
        .send(
            to("bob"),
            b"Gate code is 4471 <b>not bold</b>".to_vec(),
            600,
            None,
        )
        .await
        .unwrap();
    alice
        .send(
            to("bob"),
            b"Card on file 4111 1111 1111 1111, case CASE-2231".to_vec(),
            600,
            None,
        )
        .await
        .unwrap();
    alice
        .send_file(
            to("bob"),
            OutgoingFile {
                path: photo,
                mime: "image/jpeg".into(),
                name: None,
                thumb: Vec::new(),
            },
            b"the site".to_vec(),
            600,
            &none,
        )
        .await
        .unwrap();
    alice.flush().await.unwrap();
    bob.receive(0).await.unwrap();
    let thread = bob.threads().await.unwrap()[0].id.clone();
    let msgs = bob.messages(&thread, 10).await.unwrap();
    assert_eq!(msgs.len(), 3);
    for m in &msgs {
        for a in bob.attachments(&m.id).await.unwrap() {
            bob.download_attachment(&a.id, &none).await.unwrap();
        }
    }
    Rig {
        env,
        alice,
        bob,
        thread,
        files,
    }
}

async fn rig() -> Rig {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    rig_with(env, alice, bob).await
}

impl Rig {
    fn out(&self, name: &str) -> PathBuf {
        self.files.path().join(name)
    }

    async fn export(&self, name: &str, options: ExportOptions) -> Result<PathBuf, Error> {
        let dir = self.out(name);
        self.bob
            .export(
                ExportScope::Thread {
                    id: self.thread.clone(),
                },
                &dir,
                options,
                &none,
            )
            .await
            .map(|_| dir)
    }
}

fn passphrase() -> ExportOptions {
    ExportOptions {
        encryption: ExportEncryption::Passphrase {
            passphrase: Zeroizing::new(PASSPHRASE.into()),
        },
        ..Default::default()
    }
}

fn untrusted_naming(r: Result<occ_core::ExportVerification, Error>, what: &str) {
    match r {
        Err(Error::Untrusted { reason }) => assert!(reason.contains(what), "{reason}"),
        other => panic!("expected a refusal naming {what}, got {other:?}"),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 1;
    std::fs::write(path, b).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_export_verifies_and_any_change_fails() {
    let r = rig().await;
    let dir = r.export("plain", ExportOptions::default()).await.unwrap();
    let v = verify_export(&dir).unwrap();
    assert_eq!(v.user, "bob");
    assert_eq!(v.device_id, r.bob.device_id().await.unwrap());
    assert_eq!((v.messages, v.files), (3, 3), "jsonl, html and the photo");
    let jsonl = std::fs::read_to_string(dir.join("messages.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 3);
    assert!(jsonl.contains("Gate code is 4471"));
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        html.contains("&lt;b&gt;not bold&lt;/b&gt;"),
        "message text is escaped"
    );
    assert!(!html.contains("<b>not bold"));
    let photo = dir.join("attachments/001-site_photo.jpg");
    assert_eq!(
        std::fs::read(&photo).unwrap(),
        b"\xff\xd8 jpeg bytes of the site".repeat(5000)
    );
    // One changed byte in each kind of file, a removed file, an added one,
    // an edited manifest, a forged signature: each is caught, by name.
    type Change = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "messages.jsonl",
            Box::new(|d| flip(&d.join("messages.jsonl"), 10)),
        ),
        ("index.html", Box::new(|d| flip(&d.join("index.html"), 200))),
        (
            "001-site_photo.jpg",
            Box::new(|d| flip(&d.join("attachments/001-site_photo.jpg"), 7)),
        ),
        (
            "missing",
            Box::new(|d| std::fs::remove_file(d.join("index.html")).unwrap()),
        ),
        (
            "not in the manifest",
            Box::new(|d| std::fs::write(d.join("extra.txt"), b"x").unwrap()),
        ),
        (
            "signature",
            Box::new(|d| {
                let m = std::fs::read_to_string(d.join("manifest.json")).unwrap();
                assert!(m.contains("\"user\": \"bob\""));
                let m = m.replace("\"user\": \"bob\"", "\"user\": \"eve\"");
                std::fs::write(d.join("manifest.json"), m).unwrap();
            }),
        ),
        (
            "manifest.json",
            Box::new(|d| flip(&d.join("manifest.json"), 0)),
        ),
        (
            "signature",
            Box::new(|d| {
                let sig = std::fs::read_to_string(d.join("manifest.sig")).unwrap();
                let mut s = sig.into_bytes();
                s[5] = if s[5] == b'A' { b'B' } else { b'A' };
                std::fs::write(d.join("manifest.sig"), s).unwrap();
            }),
        ),
    ];
    for (n, (what, change)) in cases.iter().enumerate() {
        let copy = r.out(&format!("copy{n}"));
        copy_dir(&dir, &copy);
        assert!(verify_export(&copy).is_ok());
        change(&copy);
        untrusted_naming(verify_export(&copy), what);
    }
    // The export is in bob's audit trail, with no content.
    let entries = r.bob.audit_entries(0, 1000).await.unwrap();
    let exported: Vec<_> = entries.iter().filter(|e| e.kind == "exported").collect();
    assert_eq!(exported.len(), 1);
    assert!(exported[0].detail.contains("messages=3"));
    assert!(!format!("{entries:?}").contains("Gate code"));
    // A second export into a non-empty folder is refused, nothing changed.
    let e = r
        .export("plain", ExportOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
    verify_export(&dir).unwrap();
    let _ = &r.alice;
}

/// Runs `age -d` with `passphrase` typed on its terminal (age reads
/// passphrases from the TTY only; `script` gives it one).
fn age_decrypt(input: &Path, output: &Path, passphrase: &str) -> bool {
    assert!(
        Command::new("age").arg("--version").output().is_ok(),
        "the `age` tool is needed (scripts/test.sh installs the Debian package)"
    );
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("age -d -o '{}' '{}'", output.display(), input.display()),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{passphrase}\n").as_bytes())
        .unwrap();
    child.wait().unwrap().success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_export_opens_with_the_age_tool_and_the_passphrase_only() {
    let r = rig().await;
    let dir = r.export("sealed", passphrase()).await.unwrap();
    let v = verify_export(&dir).unwrap();
    assert_eq!(v.encryption.as_deref(), Some("passphrase"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["export.tar.age", "manifest.json", "manifest.sig"]);
    let archive = dir.join("export.tar.age");
    let raw = std::fs::read(&archive).unwrap();
    assert!(raw.starts_with(b"age-encryption.org/v1"));
    assert!(
        !raw.windows(9).any(|w| w == b"Gate code"),
        "no readable text"
    );
    // The wrong passphrase opens nothing.
    let tar = r.out("out.tar");
    assert!(!age_decrypt(&archive, &tar, "wrong passphrase"));
    assert!(std::fs::metadata(&tar).map_or(true, |m| m.len() == 0));
    let _ = std::fs::remove_file(&tar);
    // The right one opens it; inside is a complete, signed export.
    assert!(age_decrypt(&archive, &tar, PASSPHRASE));
    let inner = r.out("inner");
    std::fs::create_dir_all(&inner).unwrap();
    let ok = Command::new("tar")
        .args(["-xf"])
        .arg(&tar)
        .arg("-C")
        .arg(&inner)
        .status()
        .unwrap();
    assert!(ok.success());
    let v = verify_export(&inner).unwrap();
    assert_eq!((v.messages, v.files, v.encryption), (3, 3, None));
    assert!(
        std::fs::read_to_string(inner.join("messages.jsonl"))
            .unwrap()
            .contains("Gate code")
    );
    // A changed byte of the archive fails the outer manifest.
    flip(&archive, raw.len() - 20);
    untrusted_naming(verify_export(&dir), "export.tar.age");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_to_age_recipients_opens_with_their_identity() {
    let r = rig().await;
    let keys = r.out("key.txt");
    let keygen = Command::new("age-keygen")
        .arg("-o")
        .arg(&keys)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let text = std::fs::read_to_string(&keys).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    let dir = r
        .export(
            "to-officer",
            ExportOptions {
                encryption: ExportEncryption::Recipients {
                    recipients: vec![recipient],
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let tar = r.out("officer.tar");
    let ok = Command::new("age")
        .args(["-d", "-i"])
        .arg(&keys)
        .arg("-o")
        .arg(&tar)
        .arg(dir.join("export.tar.age"))
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(std::fs::metadata(&tar).unwrap().len() > 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_loss_prevention_blocks_or_redacts_and_never_leaks_the_match() {
    let r = rig().await;
    let rules = |action| DlpRules {
        card_numbers: true,
        patterns: vec![r"CASE-\d{4}".into()],
        action,
    };
    let blocked = r
        .export(
            "blocked",
            ExportOptions {
                dlp: Some(rules(DlpAction::Block)),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    match &blocked {
        Error::PolicyDenied { reason } => {
            assert!(reason.contains("1 card number"), "{reason}");
            assert!(
                !reason.contains("4111") && !reason.contains("2231"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!r.out("blocked").exists(), "nothing written");
    let events = r.bob.security_events().await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.detail.contains("data-loss prevention"))
    );
    assert!(!format!("{events:?}").contains("4111"));
    let dir = r
        .export(
            "redacted",
            ExportOptions {
                dlp: Some(rules(DlpAction::Redact)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let jsonl = std::fs::read_to_string(dir.join("messages.jsonl")).unwrap();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    for text in [&jsonl, &html] {
        assert!(!text.contains("4111") && !text.contains("CASE-2231"));
        assert!(text.contains("[redacted:card]") && text.contains("[redacted:pattern1]"));
        assert!(
            text.contains("Gate code is 4471"),
            "a short number is not a card"
        );
    }
    let m: occ_core::export::Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m.redactions, 2);
    verify_export(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organisation_policy_forbids_or_demands_encryption() {
    let env = Env::start().await;
    let org = common::org_key();
    let alice = common::member(&env, &org, "alice").await;
    let bob = common::member(&env, &org, "bob").await;
    common::certify_and_install(&org, &alice, "alice").await;
    common::certify_and_install(&org, &bob, "bob").await;
    let r = rig_with(env, alice, bob).await;
    let publish = |p: &OrgPolicy| {
        occ_relay::admin::publish_policy(&r.env.relay_dir, &org, p).unwrap();
    };
    publish(&OrgPolicy {
        version: 1,
        export_requires_encryption: true,
        ..Default::default()
    });
    r.bob.org_sync().await.unwrap();
    let e = r
        .export("clear", ExportOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PolicyDenied { .. }), "{e:?}");
    assert!(!r.out("clear").exists());
    r.export("sealed", passphrase()).await.unwrap();
    // The organisation's DLP rules replace the device's own (weaker) ones.
    publish(&OrgPolicy {
        version: 2,
        dlp: Some(DlpRules {
            card_numbers: true,
            patterns: Vec::new(),
            action: DlpAction::Block,
        }),
        ..Default::default()
    });
    r.bob.org_sync().await.unwrap();
    let e = r
        .export("org-dlp", ExportOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PolicyDenied { .. }), "{e:?}");
    // A class the organisation forbids to export (files).
    publish(&OrgPolicy {
        version: 3,
        classes: vec![ClassRule {
            class: "file".into(),
            download: true,
            export: false,
            devices: Vec::new(),
        }],
        ..Default::default()
    });
    r.bob.org_sync().await.unwrap();
    let e = r
        .export("files", ExportOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PolicyDenied { .. }), "{e:?}");
    let msgs = r.bob.messages(&r.thread, 10).await.unwrap();
    let photo_msg = msgs.iter().find(|m| m.body == b"the site").unwrap();
    let att = r.bob.attachments(&photo_msg.id).await.unwrap().remove(0);
    let e = r
        .bob
        .save_attachment(&att.id, &r.out("photo.jpg"), &none)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PolicyDenied { .. }), "{e:?}");
    assert!(!r.out("photo.jpg").exists());
    // A text alone may still be exported.
    let text = msgs.iter().find(|m| m.body.starts_with(b"Gate")).unwrap();
    r.bob
        .export(
            ExportScope::Message {
                id: text.id.clone(),
            },
            &r.out("one"),
            ExportOptions::default(),
            &none,
        )
        .await
        .unwrap();
    assert_eq!(verify_export(&r.out("one")).unwrap().messages, 1);
}
