//! Someone holds the relay's TLS key (so the pins pass) but not its service
//! key: they sit in the middle, pass the signed acknowledgement and every
//! other request through to the real relay, and answer the directory
//! themselves, listing their own device as bob's. The client refuses the
//! unsigned (or wrongly signed) answer, records it, and sends nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::{Env, count, to};
use occ_core::SecurityEventKind;

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    /// The forged directory answer for bob.
    forged: Vec<u8>,
    /// Whether to sign the forgery with a key of the attacker's own.
    sign_with: Option<ed25519_dalek::SigningKey>,
}

async fn forward(
    State(p): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path() == "/v1/users/bob/devices" {
        let mut resp = (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            p.forged.clone(),
        )
            .into_response();
        if let Some(key) = &p.sign_with {
            use ed25519_dalek::Signer;
            let nonce = headers
                .get(occ_protocol::api::ANSWER_NONCE_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| hex::decode(v).ok())
                .unwrap_or_default();
            let sig = key.sign(&occ_protocol::api::signed_answer_message(
                &nonce, "devices", "bob", &p.forged,
            ));
            let sig =
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sig.to_bytes());
            resp.headers_mut().insert(
                occ_protocol::api::ANSWER_SIGNATURE_HEADER,
                sig.parse().unwrap(),
            );
        }
        return resp;
    }
    let mut req = p
        .http
        .request(
            method,
            format!(
                "{}{}",
                p.upstream,
                uri.path_and_query().map_or("/", |pq| pq.as_str())
            ),
        )
        .body(body.to_vec());
    for (k, v) in &headers {
        if k != axum::http::header::HOST {
            req = req.header(k, v);
        }
    }
    match req.send().await {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
            let hs = r.headers().clone();
            let bytes = r.bytes().await.unwrap_or_default();
            let mut resp = (status, bytes).into_response();
            for (k, v) in &hs {
                resp.headers_mut().insert(k, v.clone());
            }
            resp
        }
        Err(e) => {
            eprintln!("proxy: {e:?}");
            (StatusCode::BAD_GATEWAY, e.to_string()).into_response()
        }
    }
}

async fn start_proxy(
    env: &Env,
    forged: Vec<u8>,
    sign_with: Option<ed25519_dalek::SigningKey>,
) -> String {
    let identity = occ_relay::tls::load_identity(
        &env.relay_dir.join("dev-server.pem"),
        &env.relay_dir.join("dev-server.key"),
    )
    .unwrap();
    let http = env.http();
    let proxy = Arc::new(Proxy {
        upstream: env.url.clone(),
        http,
        forged,
        sign_with,
    });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener =
        occ_relay::TlsListener::new(tcp, occ_relay::tls::server_config(identity).unwrap()).unwrap();
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("https://localhost:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_answered_past_the_pins_is_refused() {
    let env = Env::start().await;
    let _bob = env.client("bob").await;
    let mut mallory = env.raw_device("mallory").await;
    mallory.user = "bob".into();
    let fake = mallory.device_id();
    let forged = serde_json::to_vec(&occ_protocol::api::DevicesResponse {
        devices: vec![occ_protocol::api::DeviceInfo {
            device_id: fake.clone(),
            identity: {
                let mut w = occ_protocol::codec::Writer::new();
                mallory.account.identity().public().keys().write(&mut w);
                w.into_vec().into()
            },
            certificate: None,
            link: None,
        }],
    })
    .unwrap();

    for sign_with in [None, Some(ed25519_dalek::SigningKey::from_bytes(&[7; 32]))] {
        let signed = sign_with.is_some();
        let url = start_proxy(&env, forged.clone(), sign_with).await;
        let name = if signed { "alice2" } else { "alice" };
        let mut opts = env.options(name);
        opts.relay.url = url;
        let alice = env.client_with(name, opts).await;
        let events = Arc::new(common::Recorder::default());
        alice.set_listener(Some(events.clone())).unwrap();
        alice
            .send(to("bob"), b"for bob".to_vec(), 600, None)
            .await
            .unwrap();
        let e = alice.flush().await.unwrap_err();
        assert!(
            matches!(e, occ_core::Error::Untrusted { .. }),
            "signed={signed}: {e:?}"
        );
        assert!(
            events
                .alerts()
                .contains(&SecurityEventKind::RelayUnverified)
        );
        let recorded = alice.security_events().await.unwrap();
        assert!(
            recorded
                .iter()
                .any(|e| e.kind == SecurityEventKind::RelayUnverified
                    && e.detail.contains("devices answer")),
            "{recorded:?}"
        );
        assert_eq!(alice.outbox_len().await.unwrap(), 1, "kept queued");
        assert_eq!(
            count(
                &env.relay_db(),
                &format!("SELECT count(*) FROM envelopes WHERE recipient = '{fake}'")
            ),
            0
        );
    }
}
