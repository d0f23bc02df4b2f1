//! Health and Prometheus-format metrics, on a listener of their own (plain
//! HTTP, meant for the operator's network only; it serves no user data).
//!
//! `GET /health` answers `ok` when the database answers; `GET /metrics` gives
//! counters (requests, envelopes accepted, envelopes delivered, refusals by
//! reason, rate-limit hits) and gauges (queued envelopes and bytes, live
//! tokens and challenges) in the text exposition format.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::{AppState, RelayError};

/// Counters, updated by the routes.
#[derive(Default)]
pub struct Metrics {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Envelopes accepted for delivery.
    pub envelopes_accepted: AtomicU64,
    /// Envelopes handed out in inbox pages or fetches.
    pub envelopes_delivered: AtomicU64,
    /// Requests refused with a 4xx (rate limits and quotas included).
    pub rejections: AtomicU64,
    /// Requests refused by a rate limit (429).
    pub rate_limited: AtomicU64,
    /// Sends refused by an inbox quota (507).
    pub quota_refusals: AtomicU64,
    /// Registrations refused as stale or replayed.
    pub stale_registrations: AtomicU64,
    /// Bundles handed out without a one-time prekey because of the hand-out
    /// limit.
    pub prekeys_withheld: AtomicU64,
    /// Attachment bytes received.
    pub attachment_bytes_in: AtomicU64,
    /// Attachment bytes served.
    pub attachment_bytes_out: AtomicU64,
}

impl Metrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn render(s: &AppState) -> Result<String, RelayError> {
    let (queued, queued_bytes) = crate::api::lock(&s.db)?.queue_depth(crate::now_ms())?;
    let tokens = crate::api::lock(&s.tokens)?.len();
    let challenges = crate::api::lock(&s.used_challenges)?.len();
    let m = &s.metrics;
    let mut out = String::new();
    let counters: [(&str, &str, &AtomicU64); 10] = [
        (
            "occ_relay_requests_total",
            "Requests answered.",
            &m.requests,
        ),
        (
            "occ_relay_envelopes_accepted_total",
            "Envelopes accepted for delivery.",
            &m.envelopes_accepted,
        ),
        (
            "occ_relay_envelopes_delivered_total",
            "Envelopes handed to their recipient.",
            &m.envelopes_delivered,
        ),
        (
            "occ_relay_rejections_total",
            "Requests refused with a 4xx status.",
            &m.rejections,
        ),
        (
            "occ_relay_rate_limited_total",
            "Requests refused by a rate limit (429).",
            &m.rate_limited,
        ),
        (
            "occ_relay_quota_refusals_total",
            "Sends refused by an inbox quota (507).",
            &m.quota_refusals,
        ),
        (
            "occ_relay_stale_registrations_total",
            "Registrations refused as stale or replayed.",
            &m.stale_registrations,
        ),
        (
            "occ_relay_prekeys_withheld_total",
            "Bundles served without a one-time prekey by the hand-out limit.",
            &m.prekeys_withheld,
        ),
        (
            "occ_relay_attachment_bytes_in_total",
            "Attachment bytes received.",
            &m.attachment_bytes_in,
        ),
        (
            "occ_relay_attachment_bytes_out_total",
            "Attachment bytes served.",
            &m.attachment_bytes_out,
        ),
    ];
    for (name, help, c) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let _ = writeln!(out, "{name} {}", c.load(Ordering::Relaxed));
    }
    let gauges: [(&str, &str, u64); 4] = [
        ("occ_relay_queue_depth", "Live envelopes queued.", queued),
        (
            "occ_relay_queue_bytes",
            "Bytes of live envelopes queued.",
            queued_bytes,
        ),
        ("occ_relay_tokens", "Bearer tokens held.", tokens as u64),
        (
            "occ_relay_spent_challenges",
            "Spent authentication challenges remembered until they expire.",
            challenges as u64,
        ),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    Ok(out)
}

async fn metrics(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    match render(&s) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            body,
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("unavailable: {e}\n"),
        ),
    }
}

async fn health(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    let ok = crate::api::lock(&s.db)
        .and_then(|db| db.queue_depth(crate::now_ms()))
        .is_ok();
    if ok {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
    }
}

/// Serves `/health` and `/metrics` on `addr` until the relay stops; returns
/// the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    state: Arc<AppState>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), RelayError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| RelayError::io("listen on", std::path::Path::new(&addr.to_string()), e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| RelayError::io("listen", std::path::Path::new(""), e))?;
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("metrics listener stopped: {e}");
        }
    });
    Ok((bound, task))
}
