//! The relay's published OpenAPI 3.1 description (`docs/openapi.json`) is
//! exactly what the code generates, and schemathesis, driven against a dev
//! relay with a real device token (authenticated routes included), finds no
//! 5xx and no answer outside the description.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::path::PathBuf;

use common::Env;
use occ_protocol::api::{B64, TokenRequest, TokenResponse, auth_message};

fn published() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

#[test]
fn the_published_description_is_the_generated_one() {
    let generated = format!("{}\n", occ_relay::openapi::openapi_json());
    if std::env::var_os("OCC_UPDATE_OPENAPI").is_some() {
        std::fs::write(published(), &generated).unwrap();
    }
    let file = std::fs::read_to_string(published()).unwrap_or_default();
    assert!(
        file == generated,
        "docs/openapi.json is stale: run `OCC_UPDATE_OPENAPI=1 cargo test -p occ-e2e --test openapi`"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // Every route the relay serves is described (a route added without its
    // annotation would not even be served: see `api::routes`).
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/session",
        "/v1/devices",
        "/v1/auth/challenge",
        "/v1/auth/token",
        "/v1/users/{user}/devices",
        "/v1/devices/{device}",
        "/v1/devices/{device}/bundle",
        "/v1/prekeys",
        "/v1/certificate",
        "/v1/revocations",
        "/v1/messages",
        "/v1/messages/{id}",
        "/v1/inbox",
        "/v1/inbox/ack",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    assert_eq!(
        doc["paths"]["/v1/inbox"]["get"]["security"][0]["bearer"],
        serde_json::json!([])
    );
}

/// A bearer token for a freshly registered device, as any client gets one.
async fn token(env: &Env) -> String {
    let device = env.raw_device("schemathesis").await;
    let api = env.api();
    let id = device.device_id();
    let ch = api.challenge(&id).await.unwrap();
    let signature = device
        .account
        .identity()
        .sign(b"", &auth_message(ch.challenge.as_slice(), &id));
    let answer: TokenResponse = env
        .http()
        .post(format!("{}/v1/auth/token", env.url))
        .json(&TokenRequest {
            device_id: id,
            challenge: ch.challenge,
            signature: B64(signature.to_vec()),
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer.token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs schemathesis (PyPI); scripts/schemathesis.sh installs it and runs this"]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_description() {
    let st = std::env::var("OCC_SCHEMATHESIS").expect("OCC_SCHEMATHESIS: the schemathesis binary");
    let env = Env::start_with(|c| c.limits = occ_relay::Limits::unlimited()).await;
    // A second user, so directory routes have someone to find.
    let _bob = env.client("bob").await;
    let token = token(&env).await;
    let ca = env.tmp.path().join("ca.pem");
    std::fs::write(&ca, &env.ca_pem).unwrap();
    let schema = env.tmp.path().join("openapi.json");
    std::fs::write(&schema, occ_relay::openapi::openapi_json()).unwrap();
    let examples = std::env::var("OCC_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "50".into());
    let out = tokio::process::Command::new(st)
        .current_dir(env.tmp.path())
        .args(["run", schema.to_str().unwrap(), "--url", &env.url])
        .args(["--tls-verify", ca.to_str().unwrap()])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance",
        ])
        .args(["--max-examples", &examples, "--seed", "1", "--no-color"])
        .output()
        .await
        .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "schemathesis failed:\n{report}");
    assert!(
        !report.contains("Unresolvable"),
        "parts of the description were skipped:\n{report}"
    );
}
