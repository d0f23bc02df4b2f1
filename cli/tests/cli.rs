//! The `occ` binary as a user scripts it, against a real relay.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::path::Path;
use std::process::{Command, Output};

fn occ(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_occ"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn one_line_failure(out: &Output) -> String {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "stderr is not one line: {err:?}"
    );
    assert!(err.starts_with("occ: "));
    err
}

struct Relay {
    _rt: tokio::runtime::Runtime,
    url: String,
    pin: String,
    ca: String,
    _handle: occ_relay::RelayHandle,
}

fn relay(dir: &Path) -> Relay {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let handle = rt
        .block_on(occ_relay::start(occ_relay::RelayConfig::dev(dir)))
        .unwrap();
    Relay {
        url: handle.url(),
        pin: handle.pin.clone(),
        ca: handle.ca_path.clone().unwrap().display().to_string(),
        _handle: handle,
        _rt: rt,
    }
}

fn init(r: &Relay, dir: &Path, user: &str) {
    let text = ok(&init_with(r, dir, user, &[]));
    assert!(text.contains(&format!("enrolled {user}")), "{text}");
}

/// `occ init` of `dir` as `user` with this relay, plus `extra` arguments.
fn init_with(r: &Relay, dir: &Path, user: &str, extra: &[&str]) -> Output {
    let p = dir.display().to_string();
    let mut args = vec![
        "--profile",
        &p,
        "init",
        "--server",
        &r.url,
        "--pin",
        &r.pin,
        "--ca",
        &r.ca,
        "--user",
        user,
    ];
    args.extend_from_slice(extra);
    occ(&args)
}

#[test]
fn init_send_sync_and_json_output_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let r = relay(&tmp.path().join("relay"));
    let a = tmp.path().join("alice");
    let b = tmp.path().join("bob");
    init(&r, &a, "alice");
    init(&r, &b, "bob");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a.join("profile.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (a, b) = (a.display().to_string(), b.display().to_string());
    let sent = ok(&occ(&[
        "--profile",
        &a,
        "send",
        "--to",
        "bob",
        "--ttl",
        "600",
        "hello bob",
    ]));
    assert!(sent.starts_with("sent "));
    assert!(ok(&occ(&["--profile", &b, "sync"])).contains("received 1"));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&occ(&["--profile", &b, "messages", "--json"]))).unwrap();
    let m = &json.as_array().unwrap()[0];
    assert_eq!(m["text"], "hello bob");
    assert_eq!(m["sender"], "alice");
    assert_eq!(m["outgoing"], false);
    for field in ["id", "thread_id", "sent_ms", "received_ms", "expires_ms"] {
        assert!(!m[field].is_null(), "missing {field}");
    }
    assert!(m["expires_ms"].as_i64().unwrap() > m["received_ms"].as_i64().unwrap());

    // A thread with two members, from the command line: a free-form id
    // cannot start one (it could be squatted); `new` makes a bound id.
    let free = occ(&[
        "--profile",
        &b,
        "send",
        "--to",
        "alice",
        "--thread",
        "ops-7",
        "--ttl",
        "600",
        "thread hello",
    ]);
    assert!(one_line_failure(&free).contains("--thread new"));
    let started = ok(&occ(&[
        "--profile",
        &b,
        "send",
        "--to",
        "alice",
        "--thread",
        "new",
        "--ttl",
        "600",
        "thread hello",
    ]));
    let ops = started
        .lines()
        .next()
        .unwrap()
        .strip_prefix("thread ")
        .unwrap()
        .to_string();
    ok(&occ(&["--profile", &a, "sync"]));
    // A thread with a fresh id bound to its creator.
    let made = ok(&occ(&[
        "--profile",
        &a,
        "send",
        "--to",
        "bob",
        "--thread",
        "new",
        "--ttl",
        "600",
        "bound thread",
    ]));
    let bound = made
        .lines()
        .next()
        .unwrap()
        .strip_prefix("thread ")
        .unwrap()
        .to_string();
    assert!(bound.starts_with("g:alice:"), "{made}");
    assert!(ok(&occ(&["--profile", &b, "sync"])).contains("received 1"));
    assert!(ok(&occ(&["--profile", &b, "threads"])).contains(&bound));
    let json: serde_json::Value = serde_json::from_str(&ok(&occ(&[
        "--profile",
        &a,
        "messages",
        "--thread",
        &ops,
        "--json",
    ])))
    .unwrap();
    assert_eq!(json[0]["text"], "thread hello");
    let threads: serde_json::Value =
        serde_json::from_str(&ok(&occ(&["--profile", &a, "threads", "--json"]))).unwrap();
    assert!(
        threads
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == ops.as_str() && t["kind"] == "group")
    );

    assert!(
        ok(&occ(&[
            "--profile",
            &a,
            "settings",
            "--keep-period",
            "3600"
        ]))
        .contains("3600")
    );
    let purge: serde_json::Value =
        serde_json::from_str(&ok(&occ(&["--profile", &a, "purge", "--json"]))).unwrap();
    assert!(purge["expired_ids"].is_array() && purge["attachments"].is_number());
    assert!(purge["undelivered_ids"].is_array());

    // Bad input: typed, one line, non-zero.
    one_line_failure(&occ(&[
        "--profile",
        &a,
        "send",
        "--to",
        "bob",
        "--ttl",
        "0",
        "x",
    ]));
    one_line_failure(&occ(&["--profile", &a, "settings", "--keep-period", "0"]));
    one_line_failure(&occ(&[
        "--profile",
        &tmp.path().join("nobody").display().to_string(),
        "messages",
    ]));
    one_line_failure(&occ(&["--profile", &a, "fetch", "not-an-id"]));
}

/// A peer's text carrying terminal escapes and a right-to-left override
/// reaches the terminal as visible escapes, and the JSON output as the exact
/// text.
#[test]
fn sender_controlled_text_cannot_drive_the_terminal_and_safety_numbers_match() {
    let tmp = tempfile::tempdir().unwrap();
    let r = relay(&tmp.path().join("relay"));
    let a = tmp.path().join("alice");
    let b = tmp.path().join("bob");
    init(&r, &a, "alice");
    init(&r, &b, "bob");
    let (a, b) = (a.display().to_string(), b.display().to_string());
    let evil = "ok\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}1m exe.\u{202e}txt\rfake line";
    ok(&occ(&[
        "--profile",
        &a,
        "send",
        "--to",
        "bob",
        "--ttl",
        "600",
        evil,
    ]));
    ok(&occ(&["--profile", &b, "sync"]));
    let shown = ok(&occ(&["--profile", &b, "messages"]));
    for c in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\r'] {
        assert!(!shown.contains(c), "{c:?} reached the terminal: {shown:?}");
    }
    assert!(shown.contains("ok\\u{1b}]0;pwned"), "{shown}");
    assert!(shown.contains("exe.\\u{202e}txt"), "{shown}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&occ(&["--profile", &b, "messages", "--json"]))).unwrap();
    assert_eq!(json[0]["text"], evil);

    // Safety numbers: both sides print the same twelve groups.
    let number = |out: &str| out.lines().nth(1).unwrap().trim().to_string();
    let from_b = ok(&occ(&["--profile", &b, "verify", "alice"]));
    let from_a = ok(&occ(&["--profile", &a, "verify", "bob"]));
    assert_eq!(number(&from_a), number(&from_b));
    assert_eq!(number(&from_a).split(' ').count(), 12);
    assert!(from_a.contains("trusted on first use"), "{from_a}");
    let verified = ok(&occ(&["--profile", &a, "verify", "bob", "--verified"]));
    assert!(verified.contains(": verified"), "{verified}");
    let unknown = occ(&["--profile", &a, "verify", "nobody"]);
    assert!(!unknown.status.success());
}

#[test]
fn a_pin_failure_exits_non_zero_with_one_line_that_says_pin() {
    let tmp = tempfile::tempdir().unwrap();
    let r = relay(&tmp.path().join("relay"));
    let dir = tmp.path().join("alice");
    let p = dir.display().to_string();
    let wrong = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let err = one_line_failure(&occ(&[
        "--profile",
        &p,
        "init",
        "--server",
        &r.url,
        "--pin",
        wrong,
        "--ca",
        &r.ca,
        "--user",
        "alice",
    ]));
    assert!(err.contains("pin"), "{err}");
    assert!(!dir.exists(), "a failed init leaves nothing behind");

    // Nested new directories: all of them are removed again.
    let nested = tmp.path().join("new/deeper/alice");
    let err = init_with_pin(&r, &nested, wrong);
    assert!(err.contains("pin"), "{err}");
    assert!(!tmp.path().join("new").exists());
}

fn init_with_pin(r: &Relay, dir: &Path, pin: &str) -> String {
    one_line_failure(&occ(&[
        "--profile",
        &dir.display().to_string(),
        "init",
        "--server",
        &r.url,
        "--pin",
        pin,
        "--ca",
        &r.ca,
        "--user",
        "alice",
    ]))
}

/// `init` into a directory the user already uses: a mistyped pin must never
/// cost them a file.
#[test]
fn init_never_deletes_what_it_did_not_make() {
    let tmp = tempfile::tempdir().unwrap();
    let r = relay(&tmp.path().join("relay"));
    let wrong = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    // A non-empty directory that is not a profile is refused outright.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("notes.txt"), "my notes").unwrap();
    let err = init_with_pin(&r, &home, &r.pin);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(home.join("notes.txt")).unwrap(),
        "my notes"
    );
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 1);

    // An empty directory and a wrong pin: the profile's files go, the
    // directory (the user's) stays, and so does anything else put in it.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = init_with_pin(&r, &empty, wrong);
    assert!(err.contains("pin"), "{err}");
    assert!(empty.is_dir());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    // A directory holding a profile is refused.
    let a = tmp.path().join("alice");
    init(&r, &a, "alice");
    let err = init_with_pin(&r, &a, &r.pin);
    assert!(err.contains("already holds"), "{err}");

    // Profile directories are 0700 and their files 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fn walk(p: &Path, out: &mut Vec<(std::path::PathBuf, u32)>) {
            let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            out.push((p.to_path_buf(), mode));
            if p.is_dir() {
                for e in std::fs::read_dir(p).unwrap() {
                    walk(&e.unwrap().path(), out);
                }
            }
        }
        // Write something so the database's companions exist.
        ok(&occ(&[
            "--profile",
            &a.display().to_string(),
            "settings",
            "--keep-period",
            "600",
        ]));
        let mut all = Vec::new();
        walk(&a, &mut all);
        assert!(all.len() >= 4, "{all:?}");
        for (path, mode) in all {
            let want = if path.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode, want, "{} is {mode:o}", path.display());
        }
    }
}

#[test]
fn the_demo_runs_and_exits_zero() {
    let text = ok(&occ(&["demo"]));
    for phrase in [
        "pinned TLS ok",
        "carol comes online: 1 new",
        "410 Gone",
        "keep period",
        "pin mismatch",
    ] {
        assert!(
            text.contains(phrase),
            "the demo did not show {phrase:?}:\n{text}"
        );
    }
}

#[test]
fn sync_watch_prints_events_as_they_happen_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let r = relay(&tmp.path().join("relay"));
    let (a, b) = (tmp.path().join("alice"), tmp.path().join("bob"));
    init(&r, &a, "alice");
    init(&r, &b, "bob");
    let mut watch = Command::new(env!("CARGO_BIN_EXE_occ"))
        .args(["--profile", &b.display().to_string(), "sync", "--watch"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let sent = ok(&occ(&[
        "--profile",
        &a.display().to_string(),
        "send",
        "--to",
        "bob",
        "--ttl",
        "600",
        "watch this",
    ]));
    let id = sent.trim().strip_prefix("sent ").unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with(&format!("received {id} from alice")))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no event for {id}; saw {seen:?}"),
        }
    }
    assert!(seen.iter().all(|l| !l.contains("watch this")), "{seen:?}");
    let interrupted = Command::new("kill")
        .args(["-INT", &watch.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = watch.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// The organisation flow from the command line: an administrator makes the
/// key, members enrol pinning it, each device's certificate is made and
/// installed; then they message. Before bob's certificate is installed,
/// alice refuses to send to him.
#[test]
fn organisation_key_certify_install_then_message() {
    let tmp = tempfile::tempdir().unwrap();
    let r = relay(&tmp.path().join("relay"));
    let key_file = tmp.path().join("org.key");
    let kf = key_file.display().to_string();
    let made = ok(&occ(&["admin", "keygen", "--out", &kf]));
    let public = made
        .lines()
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(public.len(), 64, "{made}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Never overwrites an existing key.
    one_line_failure(&occ(&["admin", "keygen", "--out", &kf]));

    let mut devices = Vec::new();
    for user in ["alice", "bob"] {
        let dir = tmp.path().join(user);
        let p = dir.display().to_string();
        let text = ok(&init_with(&r, &dir, user, &["--org-key", &public]));
        let device = text
            .split_whitespace()
            .skip_while(|w| *w != "device")
            .nth(1)
            .unwrap()
            .to_string();
        devices.push((p, user, device));
    }
    let install = |(p, user, device): &(String, &str, String)| {
        let cert = ok(&occ(&[
            "admin", "certify", "--key", &kf, "--user", user, "--device", device, "--days", "30",
        ]));
        let file = tmp.path().join(format!("{user}.cert"));
        std::fs::write(&file, cert.trim()).unwrap();
        ok(&occ(&[
            "--profile",
            p,
            "certificate",
            "install",
            &file.display().to_string(),
        ]))
    };
    assert!(install(&devices[0]).contains("installed"));
    let a = devices[0].0.clone();
    let b = devices[1].0.clone();
    let refused = one_line_failure(&occ(&[
        "--profile",
        &a,
        "send",
        "--to",
        "bob",
        "--ttl",
        "600",
        "hi",
    ]));
    assert!(
        refused.contains("queued") && refused.contains("organisation certificate"),
        "{refused}"
    );
    install(&devices[1]);
    let sync = ok(&occ(&["--profile", &a, "sync"]));
    assert!(sync.contains("sent 1"), "{sync}");
    assert!(ok(&occ(&["--profile", &b, "sync"])).contains("received 1"));
    // A certificate for someone else's device is not installed.
    let other = ok(&occ(&[
        "admin",
        "certify",
        "--key",
        &kf,
        "--user",
        "bob",
        "--device",
        &devices[0].2,
    ]));
    let file = tmp.path().join("wrong.cert");
    std::fs::write(&file, other.trim()).unwrap();
    one_line_failure(&occ(&[
        "--profile",
        &b,
        "certificate",
        "install",
        &file.display().to_string(),
    ]));
}

#[test]
fn a_second_device_is_linked_and_shows_what_the_first_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let r = relay(&tmp.path().join("relay"));
    let a = tmp.path().join("alice");
    let a2 = tmp.path().join("alice-tablet");
    let b = tmp.path().join("bob");
    init(&r, &a, "alice");
    init(&r, &b, "bob");
    let (a, a2s, b) = (
        a.display().to_string(),
        a2.display().to_string(),
        b.display().to_string(),
    );
    // The new device shows its id; the first device links it.
    let id = ok(&occ(&["--profile", &a2s, "device", "id"]))
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(ok(&occ(&["--profile", &a2s, "device", "id"])).trim(), id);
    let link = ok(&occ(&["--profile", &a, "device", "link", &id]));
    let link_file = tmp.path().join("link.hex");
    std::fs::write(&link_file, link.trim()).unwrap();
    let link_arg = link_file.display().to_string();
    let enrolled = ok(&init_with(&r, &a2, "alice", &["--link", &link_arg]));
    assert!(enrolled.contains(&format!("as device {id}")), "{enrolled}");
    ok(&occ(&[
        "--profile",
        &a,
        "send",
        "--to",
        "bob",
        "--ttl",
        "600",
        "from the phone",
    ]));
    ok(&occ(&["--profile", &b, "sync"]));
    ok(&occ(&["--profile", &a2s, "sync"]));
    assert!(ok(&occ(&["--profile", &b, "messages"])).contains("from the phone"));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&occ(&["--profile", &a2s, "messages", "--json"]))).unwrap();
    assert_eq!(json[0]["text"], "from the phone");
    assert_eq!(json[0]["outgoing"], true, "{json}");
    // A link for another device cannot enrol this one.
    let out = init_with(
        &r,
        &tmp.path().join("other"),
        "alice",
        &["--link", &link_arg],
    );
    assert!(!out.status.success());
    assert!(one_line_failure(&out).contains("link"));
}

#[test]
fn urgent_alert_receipts_notice_prompt_audit_and_policy_verbs() {
    let tmp = tempfile::tempdir().unwrap();
    let relay_dir = tmp.path().join("relay");
    let r = relay(&relay_dir);
    let push = r
        ._rt
        .block_on(occ_relay::push_sink::PushSink::start(
            &occ_relay::DevCa::load_dev(&relay_dir).unwrap(),
        ))
        .unwrap();
    let a = tmp.path().join("alice");
    let b = tmp.path().join("bob");
    init(&r, &a, "alice");
    ok(&init_with(&r, &b, "bob", &["--push", &push.url]));
    let (a, b) = (a.display().to_string(), b.display().to_string());

    let sent = ok(&occ(&[
        "--profile",
        &a,
        "send",
        "--to",
        "bob",
        "--ttl",
        "600",
        "--urgent",
        "--ack-within",
        "600",
        "pump 2 down",
    ]));
    let id = sent.trim().strip_prefix("sent ").unwrap().to_string();
    let notices = r
        ._rt
        .block_on(push.wait_for(1, std::time::Duration::from_secs(5)));
    let file = tmp.path().join("notice.json");
    std::fs::write(&file, serde_json::to_vec(&notices[0]).unwrap()).unwrap();
    let f = file.display().to_string();
    let prompt: serde_json::Value = serde_json::from_str(&ok(&occ(&[
        "--profile",
        &b,
        "notice",
        "verify",
        &f,
        "--json",
    ])))
    .unwrap();
    assert_eq!(prompt["urgent"], true);
    assert_eq!(prompt["class"], "alert");
    assert_eq!(
        prompt["decision"], "confirm",
        "alice is not yet known to bob"
    );
    // The same notice again is a replay: one line on stderr, exit 1.
    one_line_failure(&occ(&["--profile", &b, "notice", "verify", &f]));
    let relay_id = prompt["relay_message_id"].as_str().unwrap();
    let got: serde_json::Value = serde_json::from_str(&ok(&occ(&[
        "--profile",
        &b,
        "download",
        relay_id,
        "--json",
    ])))
    .unwrap();
    assert_eq!(got[0]["message_id"], id.as_str());
    ok(&occ(&["--profile", &b, "ack", &id, "--reply", "on it"]));
    ok(&occ(&["--profile", &a, "sync"]));
    let receipts: serde_json::Value =
        serde_json::from_str(&ok(&occ(&["--profile", &a, "receipts", &id, "--json"]))).unwrap();
    assert_eq!(receipts[0]["user"], "bob");
    assert!(receipts[0]["delivered_ms"].is_i64());
    assert!(receipts[0]["acknowledged_ms"].is_i64());
    assert_eq!(receipts[0]["reply"], "on it");

    let report: serde_json::Value =
        serde_json::from_str(&ok(&occ(&["--profile", &b, "audit", "verify", "--json"]))).unwrap();
    assert_eq!(report["broken"], serde_json::Value::Null);
    assert_eq!(report["checked_with_relay"], true);
    assert_eq!(report["countersigned_seq"], report["entries"]);
    let lines = ok(&occ(&["--profile", &b, "audit", "export"]));
    let kinds: Vec<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for k in [
        "forged_notice",
        "prompt_shown",
        "received",
        "downloaded",
        "acknowledged",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    assert!(!lines.contains("pump 2 down"), "no content in the trail");
    assert_eq!(
        ok(&occ(&["--profile", &b, "policy", "show", "--json"])).trim(),
        "null"
    );
}
