//! A minimal UnifiedPush-style push endpoint on loopback, for the demo and the
//! tests: it accepts the relay's `POST`ed [`SignedPushNotice`]s over plain
//! HTTP/1.1 and keeps them. A real deployment uses a push distributor (or an
//! FCM/APNs gateway) behind the same kind of URL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use occ_protocol::api::SignedPushNotice;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Received push notices.
pub struct PushSink {
    /// The endpoint URL to register (`http://127.0.0.1:<port>/push`).
    pub url: String,
    notices: Arc<Mutex<Vec<SignedPushNotice>>>,
    raw: Arc<Mutex<Vec<Vec<u8>>>>,
    arrived: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl PushSink {
    /// Starts listening on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/push", listener.local_addr()?);
        let notices: Arc<Mutex<Vec<SignedPushNotice>>> = Arc::default();
        let raw: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let arrived = Arc::new(Notify::new());
        let (n, r, a) = (notices.clone(), raw.clone(), arrived.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (n, r, a) = (n.clone(), r.clone(), a.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let body = loop {
                        let Ok(k) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if k == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..k]);
                        if buf.len() > 1 << 20 {
                            return;
                        }
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break buf[end + 4..end + 4 + len].to_vec();
                        }
                    };
                    let _ = stream
                        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    if let Ok(notice) = serde_json::from_slice::<SignedPushNotice>(&body)
                        && let Ok(mut v) = n.lock()
                    {
                        v.push(notice);
                    }
                    if let Ok(mut v) = r.lock() {
                        v.push(body);
                    }
                    a.notify_waiters();
                });
            }
        });
        Ok(Self {
            url,
            notices,
            raw,
            arrived,
            task,
        })
    }

    /// Notices received so far.
    pub fn notices(&self) -> Vec<SignedPushNotice> {
        self.notices.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Raw request bodies received so far.
    pub fn raw_bodies(&self) -> Vec<Vec<u8>> {
        self.raw.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits until at least `n` notices arrived (or the timeout passed).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SignedPushNotice> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let now = self.notices();
            if now.len() >= n || tokio::time::Instant::now() >= deadline {
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
