//! A minimal UnifiedPush-style push gateway on loopback, for the demo and the
//! tests: it serves HTTPS with a `localhost` certificate from the dev CA,
//! accepts the relay's `POST`ed [`SignedPushNotice`]s and keeps them. A real
//! deployment uses a push distributor (or an FCM/APNs gateway) on a host the
//! relay operator lists as a push gateway.
//!
//! [`PushSink::start_redirecting`] starts one that answers every request with
//! a redirect, to show that the relay does not follow it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use occ_protocol::api::SignedPushNotice;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::RelayError;
use crate::tls::{DevCa, TlsListener, server_config};

#[derive(Default)]
struct Inbox {
    notices: Mutex<Vec<SignedPushNotice>>,
    raw: Mutex<Vec<Vec<u8>>>,
    requests: AtomicUsize,
    arrived: Notify,
    redirect_to: Option<String>,
}

/// Received push notices.
pub struct PushSink {
    /// The endpoint URL to register (`https://localhost:<port>/push`).
    pub url: String,
    inbox: Arc<Inbox>,
    task: tokio::task::JoinHandle<()>,
}

async fn receive(State(inbox): State<Arc<Inbox>>, body: Bytes) -> Response {
    inbox.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(to) = &inbox.redirect_to {
        inbox.arrived.notify_waiters();
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, to.clone())],
        )
            .into_response();
    }
    if let Ok(notice) = serde_json::from_slice::<SignedPushNotice>(&body)
        && let Ok(mut v) = inbox.notices.lock()
    {
        v.push(notice);
    }
    if let Ok(mut v) = inbox.raw.lock() {
        v.push(body.to_vec());
    }
    inbox.arrived.notify_waiters();
    StatusCode::NO_CONTENT.into_response()
}

impl PushSink {
    /// Starts listening on a free loopback port, with a `localhost`
    /// certificate issued by `ca`.
    pub async fn start(ca: &DevCa) -> Result<Self, RelayError> {
        Self::start_inner(ca, None).await
    }

    /// A gateway that answers every request with `307` to `to`.
    pub async fn start_redirecting(ca: &DevCa, to: &str) -> Result<Self, RelayError> {
        Self::start_inner(ca, Some(to.to_string())).await
    }

    async fn start_inner(ca: &DevCa, redirect_to: Option<String>) -> Result<Self, RelayError> {
        let (identity, _) = ca.issue(&["localhost"], false)?;
        let tcp = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| RelayError::io("listen", std::path::Path::new("push sink"), e))?;
        let port = tcp
            .local_addr()
            .map_err(|e| RelayError::io("listen", std::path::Path::new("push sink"), e))?
            .port();
        let listener = TlsListener::new(tcp, server_config(identity)?)
            .map_err(|e| RelayError::io("listen", std::path::Path::new("push sink"), e))?;
        let inbox = Arc::new(Inbox {
            redirect_to,
            ..Inbox::default()
        });
        let app = axum::Router::new()
            .fallback(any(receive))
            .with_state(inbox.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("https://localhost:{port}/push"),
            inbox,
            task,
        })
    }

    /// Notices received so far.
    pub fn notices(&self) -> Vec<SignedPushNotice> {
        self.inbox
            .notices
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Raw request bodies received so far.
    pub fn raw_bodies(&self) -> Vec<Vec<u8>> {
        self.inbox.raw.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Requests received so far (whatever their body).
    pub fn requests(&self) -> usize {
        self.inbox.requests.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` notices arrived (or the timeout passed).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SignedPushNotice> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inbox.arrived.notified();
            let now = self.notices();
            if now.len() >= n || tokio::time::Instant::now() >= deadline {
                return now;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Waits until at least `n` requests arrived (or the timeout passed).
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inbox.arrived.notified();
            let now = self.requests();
            if now >= n || tokio::time::Instant::now() >= deadline {
                return now;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

impl Drop for PushSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
