//! `occ demo`: the whole system on one machine, narrated.
//!
//! A relay starts on loopback with a dev certificate; three responders get
//! profiles and enrol over a pinned, verified connection; a thread message
//! reaches one responder at once and another who comes online later; bob
//! links a tablet, which gets the next message at once; a message
//! expires by TTL (the relay answers 410 and the devices drop it); the keep
//! period removes an old message; a photo travels as an attachment and the
//! conversation is exported, signed and age-encrypted, and a changed byte
//! of the export is caught; a shared phone keeps a locked profile shut to
//! the next user and shows nothing of it on a push; and a connection to an
//! impostor with a valid
//! certificate for the right name but another key is refused on the pin.

use std::path::Path;
use std::time::Duration;

use occ_core::store::DbKey;
use occ_core::{Client, EnrolOptions, Error, Recipient, RelaySettings};
use occ_relay::push_sink::PushSink;
use occ_relay::{RelayConfig, TlsSource};

use crate::Fail;

fn say(step: &str, text: &str) {
    println!("\n== {step}\n{text}");
}

fn note(text: &str) {
    println!("   {text}");
}

/// Where and how a demo device enrols.
struct Relay<'a> {
    url: &'a str,
    pin: &'a str,
    ca: &'a str,
    org: &'a ed25519_dalek::SigningKey,
}

async fn person(
    root: &Path,
    name: &str,
    relay: &Relay<'_>,
    push: Option<&str>,
) -> Result<Client, Fail> {
    device(root, name, name, relay, push, None).await
}

/// A device of `name` in profile `profile`; with `linked_by`, a further
/// device of that user, linked by one of its devices.
async fn device(
    root: &Path,
    profile: &str,
    name: &str,
    relay: &Relay<'_>,
    push: Option<&str>,
    linked_by: Option<&Client>,
) -> Result<Client, Fail> {
    let dir = root.join(profile);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Fail(format!("cannot create {}: {e}", dir.display())))?;
    let key = DbKey::generate()?;
    let client = Client::create(crate::path_str(&dir)?, key.as_bytes().to_vec())?;
    enrol(&client, name, relay, push, linked_by).await?;
    Ok(client)
}

/// Enrols `client` as `name` and installs its organisation certificate.
async fn enrol(
    client: &Client,
    name: &str,
    relay: &Relay<'_>,
    push: Option<&str>,
    linked_by: Option<&Client>,
) -> Result<(), Fail> {
    let Relay { url, pin, ca, org } = *relay;
    let link = match linked_by {
        Some(other) => Some(other.link_device(&client.device_id().await?).await?),
        None => None,
    };
    client
        .enrol(EnrolOptions {
            relay: RelaySettings {
                url: url.into(),
                pins: vec![pin.into()],
                ca_pem: Some(ca.into()),
                ..Default::default()
            },
            user: name.into(),
            push_endpoint: push.map(str::to_string),
            org_key: Some(hex::encode(org.verifying_key().to_bytes())),
            link,
        })
        .await?;
    // The administrator certifies the new device for a year; the device
    // installs its certificate on the relay.
    let device: [u8; 32] = hex::decode(client.device_id().await?)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Fail("device id".into()))?;
    let now = client.now_ms().await?;
    let cert = occ_core::crypto::org::certify(org, name, &device, now, now + 365 * 86_400_000);
    client.install_certificate(cert.encode()).await?;
    Ok(())
}

fn texts(list: &[occ_core::store::StoredMessage]) -> Vec<String> {
    list.iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

pub(crate) async fn run() -> Result<(), Fail> {
    let tmp = tempfile::tempdir().map_err(|e| Fail(format!("no temporary directory: {e}")))?;
    let root = tmp.path();

    say(
        "1. A relay starts on loopback",
        "It makes a private CA and a certificate for localhost, and an Ed25519 service key.",
    );
    let mut config = RelayConfig::dev(root.join("relay"));
    config.purge_interval = Duration::from_millis(500);
    let relay = occ_relay::start(config)
        .await
        .map_err(|e| Fail(format!("relay: {e}")))?;
    let url = relay.url();
    let ca_path = relay
        .ca_path
        .clone()
        .ok_or_else(|| Fail("the dev relay has no CA".into()))?;
    let ca = std::fs::read_to_string(&ca_path).map_err(|e| Fail(format!("CA: {e}")))?;
    note(&format!("listening at {url}"));
    note(&format!("pin: {}", relay.pin));
    note(&format!("ca:  {}", ca_path.display()));

    say(
        "2. Three responders enrol: alice, bob and carol",
        "Each device checks the relay's certificate chain against the CA, then the key pin on the\n\
         validated chain, then the relay's signed acknowledgement of a fresh nonce; only then does it\n\
         register its identity key, signed prekey and one-time prekeys. Each pins the organisation's\n\
         key, which the administrator holds off the relay and uses to certify every device: from now\n\
         on a device without a valid certificate is neither messaged nor believed.",
    );
    let org = ed25519_dalek::SigningKey::from_bytes(DbKey::generate()?.as_bytes());
    let dev_ca = occ_relay::DevCa::load_dev(&root.join("relay"))
        .map_err(|e| Fail(format!("dev CA: {e}")))?;
    let push = PushSink::start(&dev_ca)
        .await
        .map_err(|e| Fail(format!("push endpoint: {e}")))?;
    let here = Relay {
        url: &url,
        pin: &relay.pin,
        ca: &ca,
        org: &org,
    };
    let alice = person(root, "alice", &here, None).await?;
    let bob = person(root, "bob", &here, Some(&push.url)).await?;
    let carol = person(root, "carol", &here, None).await?;
    note("organisation certificates installed for all three devices");
    let session = alice.connect().await?;
    let service_key = alice
        .enrolment()
        .await?
        .map(|e| e.service_key)
        .unwrap_or_default();
    note(&format!(
        "alice: pinned TLS ok; acknowledgement signed by service key {}… verified; server time {} ms",
        service_key.get(..16).unwrap_or_default(),
        session.server_time_ms
    ));
    note("bob and carol: the same checks passed at enrolment");

    say(
        "3. Alice starts a thread with bob and carol; carol is offline",
        "The thread's id is 128 random bits bound to alice, so nobody can squat or take it over.\n\
         The message is encrypted once under alice's sender key; the key itself travels to bob and\n\
         carol over X3DH + Double Ratchet sessions made on demand. The relay stores ciphertext only.",
    );
    let incident = alice.new_thread_id().await?;
    note(&format!("alice: thread {incident}"));
    alice
        .send(
            Recipient::Thread {
                id: incident.clone(),
                members: vec!["bob".into(), "carol".into()],
            },
            b"Road closed at the north bridge; use the east access.".to_vec(),
            3600,
            None,
        )
        .await?;
    let r = alice.sync().await?;
    note(&format!("alice: {} message sent", r.sent));
    let r = bob.sync().await?;
    note(&format!(
        "bob syncs: {} new message(s): {:?}",
        r.received.received().len(),
        texts(&bob.messages(&incident, 10).await?)
    ));
    note("carol is still offline; the relay keeps her copy queued");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = carol.sync().await?;
    note(&format!(
        "carol comes online: {} new message(s): {:?}",
        r.received.received().len(),
        texts(&carol.messages(&incident, 10).await?)
    ));

    say(
        "3b. Bob adds his tablet",
        "Bob's phone signs a link for the tablet's key (the relay registers a further device of a user\n\
         only with one) and the administrator certifies the tablet. From now on what is sent to bob,\n\
         and what bob sends, reaches both of his devices.",
    );
    let tablet = device(root, "bob-tablet", "bob", &here, None, Some(&bob)).await?;
    alice
        .send(
            Recipient::Thread {
                id: incident.clone(),
                members: vec![],
            },
            b"Bob, your tablet has the map.".to_vec(),
            3600,
            None,
        )
        .await?;
    alice.sync().await?;
    bob.sync().await?;
    tablet.sync().await?;
    note(&format!(
        "bob's phone has {} message(s) in the thread; his tablet {:?}",
        bob.messages(&incident, 10).await?.len(),
        texts(&tablet.messages(&incident, 10).await?)
    ));

    say(
        "4. A message with a 2-second Time To Live",
        "Alice sends bob a message that must not outlive 2 seconds. Bob's phone gets a signed push\n\
         notice (no content) but bob does not open it in time.",
    );
    alice
        .send(
            Recipient::User { name: "bob".into() },
            b"Gate code 4471 (valid 2 s)".to_vec(),
            2,
            None,
        )
        .await?;
    alice.flush().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let notice = loop {
        let direct = push
            .notices()
            .into_iter()
            .find(|n| n.notice.thread.is_none());
        match direct {
            Some(n) => break n,
            None if tokio::time::Instant::now() < deadline => {
                push.wait_for(push.notices().len() + 1, Duration::from_millis(200))
                    .await;
            }
            None => return Err(Fail("no push notice arrived".into())),
        }
    };
    note(&format!(
        "push notice for bob: message {} from device {}…, {} bytes, class {}, expires at {} (no plaintext)",
        notice.notice.message_id,
        &notice.notice.sender_device[..12],
        notice.notice.size,
        notice.notice.class,
        notice.notice.expires_ms
    ));
    let bytes = serde_json::to_vec(&notice).map_err(|e| Fail(format!("notice: {e}")))?;
    let prompt = bob.verify_notice(bytes.clone()).await?;
    note(&format!(
        "bob's phone verifies it offline (relay signature, this device, not expired, not a replay): \
         \"Do you want to download this OCC message?\" from {}, decision {:?}",
        prompt.sender_user.as_deref().unwrap_or("?"),
        prompt.decision
    ));
    let mut forged = notice.clone();
    forged.notice.size += 1;
    let forged = serde_json::to_vec(&forged).map_err(|e| Fail(format!("notice: {e}")))?;
    match (
        bob.verify_notice(forged).await,
        bob.verify_notice(bytes).await,
    ) {
        (Err(_), Err(_)) => {
            note("a forged copy and a replay of the notice give no prompt (both audited)")
        }
        _ => return Err(Fail("a forged or replayed notice was accepted".into())),
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    match bob.fetch(&notice.notice.message_id).await {
        Err(Error::Expired) => {
            note("bob taps the notice 2.5 s later: the relay answers 410 Gone — expired")
        }
        Ok(_) => return Err(Fail("the expired message was still downloadable".into())),
        Err(e) => return Err(e.into()),
    }
    let r = bob.sync().await?;
    note(&format!(
        "bob syncs: {} new message(s): the relay no longer hands it out, and purges it",
        r.received.received().len()
    ));
    let direct = occ_core::sync::direct_thread_id("alice", "bob");
    let left = alice.messages(&direct, 10).await?;
    note(&format!(
        "alice's own copy is no longer returned either ({} live in that conversation)",
        left.len()
    ));
    let purged = alice.purge().await?;
    note(&format!(
        "alice's purge removed {} expired message(s) for real (secure_delete, WAL truncated)",
        purged.messages()
    ));

    say(
        "4b. An urgent alert that must be acknowledged within 2 seconds",
        "Alice alerts the thread. Bob's device returns a delivered receipt by itself; bob acknowledges\n\
         with a short reply. Carol is offline: when the deadline passes, alice's client escalates,\n\
         naming carol. Receipts are end-to-end encrypted; the relay sees ciphertext.",
    );
    let alert = alice
        .send_urgent(
            Recipient::Thread {
                id: incident.clone(),
                members: vec![],
            },
            b"Gas leak at block C: evacuate and confirm.".to_vec(),
            3600,
            Some(2),
        )
        .await?;
    alice.sync().await?;
    bob.sync().await?;
    bob.acknowledge(&alert, Some("on my way".into())).await?;
    bob.sync().await?;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    alice.sync().await?;
    for r in alice.receipts(&alert).await? {
        note(&format!(
            "{}: delivered {}, acknowledged {}{}",
            r.user,
            if r.delivered_ms.is_some() {
                "yes"
            } else {
                "no"
            },
            if r.acknowledged_ms.is_some() {
                "yes"
            } else {
                "no"
            },
            r.reply.map(|t| format!(" (\"{t}\")")).unwrap_or_default()
        ));
    }
    let escalated: Vec<String> = alice
        .timeline(&incident)
        .await?
        .into_iter()
        .filter(|e| e.kind == "escalated")
        .map(|e| e.subject)
        .collect();
    note(&format!(
        "escalation after the deadline, not acknowledged by: {escalated:?}"
    ));
    carol.sync().await?;
    carol.acknowledge(&alert, None).await?;
    carol.sync().await?;
    alice.sync().await?;
    let late = alice
        .receipts(&alert)
        .await?
        .into_iter()
        .any(|r| r.user == "carol" && r.acknowledged_ms.is_some());
    note(&format!(
        "carol comes online and acknowledges late: recorded {late}"
    ));
    let audit = alice.audit_verify(true).await?;
    note(&format!(
        "alice's audit trail: {} hash-chained entries, countersigned by the relay up to {:?}, intact: {}",
        audit.entries,
        audit.countersigned_seq,
        audit.broken.is_none()
    ));
    if !late || escalated.is_empty() || audit.broken.is_some() {
        return Err(Fail(
            "the alert, its receipts or the audit trail did not behave".into(),
        ));
    }

    say(
        "5. Carol's keep period",
        "Carol's device keeps messages at most 2 seconds, whatever their TTL (her shared phone\n\
         passes to the next shift). Alice posts an update with a one-hour TTL.",
    );
    carol.set_keep_period_secs(2).await?;
    alice
        .send(
            Recipient::Thread {
                id: incident.clone(),
                members: vec![],
            },
            b"Update: east access congested, allow ten minutes.".to_vec(),
            3600,
            None,
        )
        .await?;
    alice.sync().await?;
    carol.sync().await?;
    note(&format!(
        "carol now holds {:?}",
        texts(&carol.messages(&incident, 10).await?)
    ));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    note(&format!(
        "2.5 s later her reads already return {} message(s), before any purge",
        carol.messages(&incident, 10).await?.len()
    ));
    let purged = carol.purge().await?;
    note(&format!(
        "purge: {} message(s) removed past the keep period, for real",
        purged.kept_too_long_ids.len()
    ));
    note(&format!(
        "bob, with the default 30-day keep period, still has {} message(s) in the thread",
        {
            bob.sync().await?;
            bob.messages(&incident, 10).await?.len()
        }
    ));

    say(
        "5b. A photo, and a record of the incident",
        "Alice sends bob a 2 MB photo: encrypted under its own key into her profile, uploaded in\n\
         pieces; the message carries the key and the blob's SHA-256. Bob downloads it (checked\n\
         against that digest), saves it, then exports the conversation for the record: signed by\n\
         his device, encrypted with a passphrase in the standard age format.",
    );
    let photo = root.join("scene.jpg");
    let bytes: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&photo, &bytes).map_err(|e| Fail(format!("photo: {e}")))?;
    let sent = alice
        .send_file(
            Recipient::User { name: "bob".into() },
            occ_core::OutgoingFile {
                path: photo,
                mime: "image/jpeg".into(),
                name: None,
                thumb: Vec::new(),
            },
            b"the scene on arrival".to_vec(),
            3600,
            &|_, _| {},
        )
        .await?;
    alice.flush().await?;
    bob.sync().await?;
    let att = bob
        .attachments(&sent)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Fail("bob did not get the photo".into()))?;
    let last = std::sync::Mutex::new((0, 0));
    bob.download_attachment(&att.id, &|done, total| {
        if let Ok(mut l) = last.lock() {
            *l = (done, total);
        }
    })
    .await?;
    let (done, total) = last.lock().map(|l| *l).unwrap_or_default();
    let saved = root.join("scene-saved.jpg");
    bob.save_attachment(&att.id, &saved, &|_, _| {}).await?;
    let same = std::fs::read(&saved).map_err(|e| Fail(format!("saved: {e}")))? == bytes;
    note(&format!(
        "bob downloaded {done} of {total} encrypted bytes, digest checked; saved copy identical: {same}"
    ));
    if !same {
        return Err(Fail("the saved photo differs".into()));
    }
    let record = root.join("incident-record");
    let report = bob
        .export(
            occ_core::ExportScope::Message { id: sent.clone() },
            &record,
            occ_core::ExportOptions {
                encryption: occ_core::ExportEncryption::Passphrase {
                    passphrase: zeroize::Zeroizing::new("demo passphrase 4471".into()),
                },
                ..Default::default()
            },
            &|_, _| {},
        )
        .await?;
    let verified = occ_core::verify_export(&record)?;
    note(&format!(
        "exported {} message and {} attachment to {} (age-encrypted); verify_export: signed by {}'s device {}…",
        report.messages,
        report.attachments,
        record.display(),
        verified.user,
        &verified.device_id[..16]
    ));
    let archive = record.join(occ_core::export::ARCHIVE);
    let mut tampered = std::fs::read(&archive).map_err(|e| Fail(format!("export: {e}")))?;
    let at = tampered.len() / 2;
    tampered[at] ^= 1;
    std::fs::write(&archive, tampered).map_err(|e| Fail(format!("export: {e}")))?;
    match occ_core::verify_export(&record) {
        Err(Error::Untrusted { reason }) => note(&format!("one byte changed: {reason}")),
        other => return Err(Fail(format!("a changed export was not refused: {other:?}"))),
    }

    say(
        "5c. A shared device at shift change",
        "Erin and Femi share one phone. Each profile's database key exists only wrapped under its\n\
         user's PIN and a secret the phone's keystore holds: whoever picks the phone up cannot open\n\
         the other's profile, guessing is slowed and ends in a wipe, and a push for a locked profile\n\
         is verified without its key and shows nothing of it.",
    );
    let shared = occ_core::ProfileManager::new(crate::path_str(&root.join("shared-phone"))?)?;
    let keystore_secret = DbKey::generate()?.as_bytes().to_vec(); // the platform keystore's, in the app
    let erin = shared.create_locked(
        "erin",
        b"4711".to_vec(),
        keystore_secret.clone(),
        occ_core::LockOptions::default(),
    )?;
    enrol(&erin, "erin", &here, Some(&push.url), None).await?;
    erin.close(); // end of erin's shift
    match shared.unlock("erin", b"1234".to_vec(), keystore_secret.clone()) {
        Err(Error::WrongCredential { attempts_left, .. }) => note(&format!(
            "femi tries a PIN on erin's profile: refused, {attempts_left} attempts left before it is wiped"
        )),
        other => return Err(Fail(format!("a wrong PIN was not refused: {other:?}"))),
    }
    let before = push.notices().len();
    alice
        .send(
            Recipient::User {
                name: "erin".into(),
            },
            b"Handover at 19:00 at the north gate".to_vec(),
            3600,
            None,
        )
        .await?;
    alice.flush().await?;
    push.wait_for(before + 1, Duration::from_secs(5)).await;
    let body = push
        .raw_bodies()
        .pop()
        .ok_or_else(|| Fail("no push".into()))?;
    let dir = root.join("shared-phone").join("erin");
    let shown = occ_core::verify_notice_locked(crate::path_str(&dir)?, &body)?;
    note(&format!(
        "a push for erin's locked profile, verified without its key: a {} message; the phone shows \"New occ message — unlock your profile to see it\" (no sender, no thread)",
        shown.message_class
    ));
    let started = std::time::Instant::now();
    let erin = shared.unlock("erin", b"4711".to_vec(), keystore_secret)?;
    note(&format!(
        "erin unlocks with her PIN in {} ms; her message arrives: {:?}",
        started.elapsed().as_millis(),
        erin.sync()
            .await?
            .received
            .received()
            .iter()
            .map(|m| m.sender.clone())
            .collect::<Vec<_>>()
    ));
    erin.close();

    say(
        "6. An impostor relay",
        "Someone runs a relay with a certificate for localhost from the same trusted CA, but with a\n\
         different key, and steers dave's new device to it.",
    );
    let ca_issuer =
        occ_relay::DevCa::load_dev(&root.join("relay")).map_err(|e| Fail(format!("CA: {e}")))?;
    let (identity, _) = ca_issuer
        .issue(&["localhost", "127.0.0.1"], false)
        .map_err(|e| Fail(format!("impostor certificate: {e}")))?;
    let mut impostor_config = RelayConfig::dev(root.join("impostor"));
    impostor_config.tls = TlsSource::Identity(identity);
    let impostor = occ_relay::start(impostor_config)
        .await
        .map_err(|e| Fail(format!("impostor: {e}")))?;
    note(&format!(
        "impostor at {} presents {}",
        impostor.url(),
        impostor.pin
    ));
    let impostor_url = impostor.url();
    let elsewhere = Relay {
        url: &impostor_url,
        ..here
    };
    match person(root, "dave", &elsewhere, None).await {
        Err(Fail(reason)) if reason.contains("pin") => {
            note(&format!("dave's device refuses: {reason}"))
        }
        Err(Fail(reason)) => {
            return Err(Fail(format!(
                "the impostor was refused for the wrong reason: {reason}"
            )));
        }
        Ok(_) => return Err(Fail("the impostor was accepted".into())),
    }
    impostor.shutdown().await;

    say(
        "Done",
        "Everything above ran for real: TLS, X3DH, Double Ratchet, sender keys, SQLCipher.",
    );
    drop((alice, bob, carol));
    relay.shutdown().await;
    Ok(())
}
