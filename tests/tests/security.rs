//! The relay's identity end to end: pinning on the validated chain, the
//! signed acknowledgement, and the relay's refusal of bad requests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use occ_core::SecurityEventKind;

use std::sync::{Arc, Mutex};

use base64::Engine;
use common::{Env, count};
use occ_core::transport::{ApiClient, PinSet, RelayEndpoint, TransportError};
use occ_core::{Error, Recipient};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

fn random_pin() -> String {
    let mut b = [0u8; 32];
    getrandom_fill(&mut b);
    format!(
        "sha256/{}",
        base64::engine::general_purpose::STANDARD.encode(b)
    )
}

fn getrandom_fill(b: &mut [u8]) {
    let key = occ_core::store::DbKey::generate().unwrap();
    for (i, x) in b.iter_mut().enumerate() {
        *x = key.as_bytes()[i % 32];
    }
}

fn is_pin_mismatch(r: &Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(r, Err(Error::PinMismatch { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_refused_and_recorded() {
    let env = Env::start().await;
    let c = env.new_client("alice");
    let events = Arc::new(common::Recorder::default());
    c.set_listener(Some(events.clone())).unwrap();
    let mut opts = env.options("alice");
    opts.relay.pins = vec![random_pin()];
    let r = c.enrol(opts).await;
    assert!(matches!(
        events.events().as_slice(),
        [occ_core::ClientEvent::SecurityAlert { kind, .. }] if *kind == SecurityEventKind::PinFailure
    ));
    match &r {
        Err(Error::PinMismatch { host, presented }) => {
            assert_eq!(host, "localhost");
            assert!(
                presented.contains(&env.pin),
                "names the key the server presented"
            );
        }
        other => panic!("expected a pin mismatch, got {other:?}"),
    }
    assert!(r.unwrap_err().to_string().contains("pin"));
    let events = c.security_events().await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == SecurityEventKind::PinFailure && e.detail.contains("localhost"))
    );
    // And in the hash-chained audit trail.
    let trail = c.audit_entries(0, 100).await.unwrap();
    assert!(
        trail
            .iter()
            .any(|e| e.kind == "pin_failure" && e.detail.contains("localhost"))
    );
    assert!(c.enrolment().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_certificate_for_the_right_name_with_another_key_is_refused() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    // A certificate for localhost from the very CA the client trusts.
    let (identity, _) = env.ca().issue(&["localhost", "127.0.0.1"], false).unwrap();
    let impostor = env.other_relay("impostor", identity).await;
    assert_ne!(impostor.pin, env.pin);
    let c = env.new_client("victim");
    let mut opts = env.options("victim");
    opts.relay.url = impostor.url();
    assert!(is_pin_mismatch(&c.enrol(opts).await));
    // Without pins, the same chain would have been accepted: the CA trusts it.
    let mut lax = env.options("victim2");
    lax.relay.url = impostor.url();
    lax.relay.pins = vec![impostor.pin.clone()];
    env.new_client("victim2").enrol(lax).await.unwrap();
    // The enrolled client still works with the real relay.
    alice.connect().await.unwrap();
}

/// Records the certificates a server presents (what a naive pinning
/// implementation would hash), accepting anything.
#[derive(Debug)]
struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut v = self.0.lock().unwrap();
        v.push(end_entity.to_vec());
        v.extend(intermediates.iter().map(|c| c.to_vec()));
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The pins (SPKI SHA-256) of every certificate a server presents.
fn presented_pins(port: u16) -> Vec<String> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(Recorder(seen.clone())))
    .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    let certs = seen.lock().unwrap().clone();
    certs
        .iter()
        .map(|c| occ_relay::spki_pin_of_cert(c).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appending_the_pinned_certificate_to_an_unpinned_chain_is_refused() {
    let env = Env::start().await;
    // The attacker has a trusted certificate for the name (another key) and
    // appends the genuine, pinned certificate to the chain it sends.
    let genuine_leaf = std::fs::read(env.relay_dir.join("dev-server.pem")).unwrap();
    let genuine_leaf: CertificateDer<'static> = {
        use rustls_pki_types::pem::PemObject;
        CertificateDer::pem_slice_iter(&genuine_leaf)
            .next()
            .unwrap()
            .unwrap()
    };
    let (mut identity, _) = env.ca().issue(&["localhost"], false).unwrap();
    identity.chain.push(genuine_leaf);
    let attacker = env.other_relay("attacker", identity).await;
    // The pinned key really is in what the attacker presents...
    let presented = tokio::task::spawn_blocking({
        let port = attacker.addr.port();
        move || presented_pins(port)
    })
    .await
    .unwrap();
    assert!(
        presented.contains(&env.pin),
        "a naive verifier would have matched: {presented:?}"
    );
    // ...but it is not on any validated path, so occ refuses.
    let c = env.new_client("victim");
    let mut opts = env.options("victim");
    opts.relay.url = attacker.url();
    let r = c.enrol(opts).await;
    match &r {
        Err(Error::PinMismatch { presented, .. }) => assert!(!presented.contains(&env.pin)),
        other => panic!("expected a pin mismatch, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_intermediate_and_root_pins_are_accepted() {
    let env = Env::start().await;
    // A backup pin next to one that matches nothing.
    let mut opts = env.options("alice");
    opts.relay.pins = vec![random_pin(), env.pin.clone()];
    let alice = env.client_with("alice", opts).await;
    alice.connect().await.unwrap();

    // A chain through an intermediate: pin the intermediate, or the root.
    let root = env.ca();
    let intermediate = root.intermediate("occ issuing CA").unwrap();
    let (identity, _) = intermediate.issue(&["localhost"], false).unwrap();
    let server = env.other_relay("intermediate", identity).await;
    let root_pin = occ_relay::spki_pin_of_cert(&root.cert).unwrap();
    let inter_pin = occ_relay::spki_pin_of_cert(&intermediate.cert).unwrap();
    for (name, pin) in [("via-intermediate", inter_pin), ("via-root", root_pin)] {
        let mut opts = env.options(name);
        opts.relay.url = server.url();
        opts.relay.pins = vec![pin];
        env.client_with(name, opts).await.connect().await.unwrap();
    }
    // A random pin on the same chain is still refused.
    let mut opts = env.options("nobody");
    opts.relay.url = server.url();
    opts.relay.pins = vec![random_pin()];
    assert!(is_pin_mismatch(&env.new_client("nobody").enrol(opts).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_pins_fail_closed_unless_configured_to_lapse() {
    let env = Env::start().await;
    let mut opts = env.options("alice");
    opts.relay.pins_expire_ms = Some(1);
    assert!(is_pin_mismatch(
        &env.new_client("alice").enrol(opts.clone()).await
    ));
    opts.user = "bob".into();
    opts.relay.pins = vec![random_pin()];
    opts.relay.pins_lapse_to_chain = true;
    env.client_with("bob", opts).await.connect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_chain_is_a_tls_error_even_with_the_right_pin() {
    let env = Env::start().await;
    let mut opts = env.options("alice");
    opts.relay.ca_pem = None; // public roots do not include the dev CA
    let r = env.new_client("alice").enrol(opts).await;
    assert!(
        matches!(r, Err(Error::Untrusted { ref reason }) if reason.contains("TLS")),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_signed_by_another_service_key_is_refused() {
    let mut env = Env::start().await;
    let alice = env.client("alice").await;
    alice.connect().await.unwrap();
    // Same certificate (the pin passes), different service key.
    let mut key = [0u8; 32];
    getrandom_fill(&mut key);
    std::fs::write(env.relay_dir.join("service.key"), key).unwrap();
    env.restart_relay().await;
    let r = alice.connect().await;
    assert!(matches!(r, Err(Error::Untrusted { .. })), "{r:?}");
    let events = alice.security_events().await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == SecurityEventKind::RelayUnverified)
    );
    // Nothing is sent to an unverified relay.
    alice
        .send(
            Recipient::User {
                name: "alice2".into(),
            },
            b"x".to_vec(),
            60,
            None,
        )
        .await
        .unwrap();
    assert!(matches!(alice.flush().await, Err(Error::Untrusted { .. })));
    assert_eq!(alice.outbox_len().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_acknowledgement_over_another_nonce_is_refused() {
    use axum::routing::post;
    let env = Env::start().await;
    // Capture a genuine acknowledgement (over some other nonce)...
    let endpoint = RelayEndpoint {
        url: env.url.clone(),
        pins: PinSet::parse(std::slice::from_ref(&env.pin)).unwrap(),
        ca_pem: Some(env.ca_pem.clone().into_bytes()),
    };
    let api = ApiClient::new(&endpoint).unwrap();
    let genuine = api.start_session(None).await.unwrap();
    let captured = reqwest_session(&env).await;
    // ...and replay it from a server holding the relay's own certificate, so
    // that only the acknowledgement can give it away.
    let identity = occ_relay::tls::load_identity(
        &env.relay_dir.join("dev-server.pem"),
        &env.relay_dir.join("dev-server.key"),
    )
    .unwrap();
    let app = axum::Router::new().route(
        "/v1/session",
        post(move || {
            let body = captured.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    );
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener =
        occ_relay::tls::TlsListener::new(tcp, occ_relay::tls::server_config(identity).unwrap())
            .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let replay = ApiClient::new(&RelayEndpoint {
        url: format!("https://localhost:{port}"),
        ..endpoint
    })
    .unwrap();
    let r = replay.start_session(Some(&genuine.service_key)).await;
    assert!(
        matches!(r, Err(TransportError::ForgedAcknowledgement(_))),
        "{r:?}"
    );
    let r = replay.start_session(None).await;
    assert!(
        matches!(r, Err(TransportError::ForgedAcknowledgement(_))),
        "{r:?}"
    );
}

/// A raw client trusting the dev CA (no pinning), for hostile requests.
fn raw_client(env: &Env) -> reqwest::Client {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(env.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // HTTP/2, so an early answer (401 before a huge body was read) arrives
    // cleanly instead of as a broken pipe mid-upload.
    config.alpn_protocols = vec![b"h2".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

async fn reqwest_session(env: &Env) -> String {
    raw_client(env)
        .post(format!("{}/v1/session", env.url))
        .json(&serde_json::json!({"nonce": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn snapshot(env: &Env) -> Vec<i64> {
    let db = env.relay_db();
    [
        "users",
        "devices",
        "one_time_prekeys",
        "envelopes",
        "idempotency",
        "tombstones",
    ]
    .iter()
    .map(|t| count(&db, &format!("SELECT count(*) FROM {t}")))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_unauthenticated_requests_get_json_4xx_and_change_nothing() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    let bob_id = bob.device_id().await.unwrap();
    let before = snapshot(&env);
    let http = raw_client(&env);
    let routes: Vec<(&str, String)> = vec![
        ("POST", "/v1/session".into()),
        ("POST", "/v1/devices".into()),
        ("POST", "/v1/auth/challenge".into()),
        ("POST", "/v1/auth/token".into()),
        ("GET", "/v1/users/bob/devices".into()),
        ("GET", format!("/v1/devices/{bob_id}")),
        ("POST", format!("/v1/devices/{bob_id}/bundle")),
        ("POST", "/v1/prekeys".into()),
        ("POST", "/v1/messages".into()),
        ("GET", format!("/v1/messages/{}", "ab".repeat(16))),
        ("GET", "/v1/inbox".into()),
        ("POST", "/v1/inbox/ack".into()),
        ("GET", "/v1/nowhere".into()),
    ];
    let huge = vec![b'{'; 5 << 20];
    let mut checked = 0;
    for (method, path) in &routes {
        let url = format!("{}{path}", env.url);
        let bodies: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("garbage", b"\x00\xffnot json".to_vec()),
            ("wrong shape", br#"{"unexpected": [1,2,3]}"#.to_vec()),
            ("oversized", huge.clone()),
        ];
        for (what, body) in bodies {
            for token in [None, Some("not-a-token")] {
                let mut req = if *method == "GET" {
                    http.get(&url)
                } else {
                    http.post(&url)
                };
                req = req
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap();
                assert!(
                    (400..500).contains(&status),
                    "{method} {path} {what}: {status} {text}"
                );
                let json: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{method} {path} {what}: not JSON: {text}"));
                assert!(
                    json["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{text}"
                );
                checked += 1;
            }
        }
        // The wrong method gets a JSON error too.
        let wrong = if *method == "GET" {
            http.delete(&url)
        } else {
            http.get(&url)
        };
        let resp = wrong.send().await.unwrap();
        assert!((400..500).contains(&resp.status().as_u16()));
        assert!(resp.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    }
    assert!(checked >= routes.len() * 8);
    assert_eq!(
        snapshot(&env),
        before,
        "refused requests changed the relay's state"
    );

    // Authenticated but invalid requests: refused, typed, nothing queued.
    let endpoint = RelayEndpoint {
        url: env.url.clone(),
        pins: PinSet::parse(std::slice::from_ref(&env.pin)).unwrap(),
        ca_pem: Some(env.ca_pem.clone().into_bytes()),
    };
    let api = ApiClient::new(&endpoint).unwrap();
    api.start_session(None).await.unwrap();
    let account = occ_core::crypto::Account::generate(0).unwrap();
    api.register(
        &occ_core::sync::registration(&account, "mallory", None, common::real_now_ms()).unwrap(),
    )
    .await
    .unwrap();
    api.authenticate(&account.device_id().to_hex(), |m| {
        account.identity().sign(b"", m)
    })
    .await
    .unwrap();
    let before = snapshot(&env);
    let send = |envelope: Vec<u8>, device: String, ttl: u64| occ_protocol::api::SendRequest {
        idempotency_key: "k1".into(),
        ttl_secs: ttl,
        class: "text".into(),
        thread: None,
        envelopes: vec![occ_protocol::api::OutEnvelope {
            device_id: device,
            envelope: envelope.into(),
        }],
        listed_devices: Vec::new(),
        urgent: false,
    };
    let valid_envelope = {
        let bundle =
            occ_protocol::PreKeyBundle::parse(&api.bundle(&bob_id).await.unwrap()).unwrap();
        let mut s = occ_core::crypto::Session::initiate(account.identity(), &bundle).unwrap();
        s.encrypt(b"hi").unwrap()
    };
    let before_bundle_spent = snapshot(&env); // claiming a bundle consumed one prekey
    assert_eq!(before_bundle_spent[2], before[2] - 1);
    for (req, what) in [
        (
            send(b"garbage".to_vec(), bob_id.clone(), 60),
            "malformed envelope",
        ),
        (
            send(valid_envelope.clone(), "ab".repeat(32), 60),
            "unknown device",
        ),
        (
            send(valid_envelope.clone(), "xyz".into(), 60),
            "bad device id",
        ),
        (send(valid_envelope.clone(), bob_id.clone(), 0), "zero TTL"),
        (
            send(valid_envelope.clone(), bob_id.clone(), 10 * 365 * 86400),
            "TTL too long",
        ),
    ] {
        let r = api.send(&req).await;
        assert!(
            matches!(
                r,
                Err(TransportError::Rejected { .. } | TransportError::NotFound { .. })
            ),
            "{what}: {r:?}"
        );
    }
    assert!(matches!(
        api.ack(-1).await,
        Err(TransportError::Rejected { .. })
    ));
    assert!(matches!(
        api.bundle(&"cd".repeat(32)).await,
        Err(TransportError::NotFound { .. })
    ));
    assert!(matches!(
        api.devices("Nobody!").await,
        Err(TransportError::Rejected { .. })
    ));
    assert_eq!(snapshot(&env), before_bundle_spent);
    // A second device for an existing user is refused.
    let other = occ_core::crypto::Account::generate(0).unwrap();
    let r = api
        .register(
            &occ_core::sync::registration(&other, "alice", None, common::real_now_ms()).unwrap(),
        )
        .await;
    assert!(
        matches!(r, Err(TransportError::Rejected { status: 409, .. })),
        "{r:?}"
    );
    assert_eq!(snapshot(&env), before_bundle_spent);
    // The real clients are unaffected.
    alice
        .send(
            Recipient::User { name: "bob".into() },
            b"still fine".to_vec(),
            60,
            None,
        )
        .await
        .unwrap();
    alice.sync().await.unwrap();
    assert_eq!(bob.sync().await.unwrap().received.received().len(), 1);
}
