//! The `Client` facade: everything an app (or the terminal client, or the
//! UniFFI bindings) needs, over one open profile.
//!
//! All methods are `async` and take `&self`; operations on one client are
//! serialised by an internal async mutex (the store is a single SQLite
//! connection). Events — new messages, expiries, delivery failures, security
//! alerts — go to an optional [`EventListener`].
//!
//! Lifecycle: [`Client::create`] makes a profile (identity and prekeys
//! generated), [`Client::enrol`] registers it with a relay (URL, pins, optional
//! private CA, user name) and remembers the relay's service key;
//! [`Client::open`] reopens it later. [`Client::send`] is durable acceptance;
//! [`Client::sync`] delivers the outbox and drains the inbox.

use std::path::Path;
use std::sync::Arc;

use crate::crypto::Account;
use crate::error::{Error, Result};
use crate::retention::{Clock, PurgeReport};
use crate::store::outbox::{self, SecurityEvent};
use crate::store::{DbKey, Store, StoredMessage, ThreadSummary, sessions};
use crate::sync::{Enrolment, FlushReport, Inner, PREKEY_BATCH, ReceiveReport, Recipient};
use crate::transport::{ApiClient, SessionInfo};

/// Something the app should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A new message was stored.
    MessageReceived {
        /// Its thread.
        thread_id: String,
        /// Its id.
        message_id: String,
        /// The sending user.
        sender: String,
    },
    /// Messages were removed (TTL, read timer or keep period).
    MessagesExpired {
        /// Their ids.
        message_ids: Vec<String>,
    },
    /// A queued message could not be delivered and was dropped.
    DeliveryFailed {
        /// The message.
        message_id: String,
        /// Why.
        reason: String,
    },
    /// A security-relevant failure (pin mismatch, forged data).
    SecurityAlert {
        /// Kind, e.g. `pin_failure`.
        kind: String,
        /// Metadata, never content.
        detail: String,
    },
}

/// Receives [`ClientEvent`]s (a foreign trait in the bindings).
pub trait EventListener: Send + Sync {
    /// Called after the change is stored.
    fn on_event(&self, event: ClientEvent);
}

/// How to enrol with a relay.
#[derive(Clone, Debug, Default)]
pub struct EnrolOptions {
    /// `https://host:port`.
    pub url: String,
    /// `sha256/<base64>` SPKI pins (primary and backups).
    pub pins: Vec<String>,
    /// When the pins expire (ms since the epoch), if ever.
    pub pins_expire_ms: Option<i64>,
    /// After expiry, fall back to chain validation (default: fail closed).
    pub pins_lapse_to_chain: bool,
    /// A private CA certificate (PEM) instead of the public roots.
    pub ca_pem: Option<String>,
    /// The user name to enrol as.
    pub user: String,
    /// A UnifiedPush-style endpoint for push notices.
    pub push_endpoint: Option<String>,
}

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Outgoing messages the relay accepted.
    pub sent: usize,
    /// Outgoing messages still queued.
    pub pending: usize,
    /// New incoming messages: (thread, message id, sender).
    pub received: Vec<(String, String, String)>,
    /// Incoming envelopes refused as unauthenticated.
    pub rejected: usize,
}

/// An open profile: store, keys and relay connection.
pub struct Client {
    inner: tokio::sync::Mutex<Inner>,
    listener: std::sync::Mutex<Option<Arc<dyn EventListener>>>,
}

const ENROLMENT_KEY: &str = "enrolment";

impl Client {
    /// Creates a profile in the existing empty directory `dir`.
    pub fn create(dir: &Path, key: &DbKey, clock: Arc<dyn Clock>) -> Result<Self> {
        let mut store = Store::create(dir, key, clock)?;
        let account = Account::generate((store.now_ms() / 1000) as u64)?;
        store.save_account(&account)?;
        Ok(Self::with(Inner::new(store, account, None)))
    }

    /// Opens an existing profile.
    pub fn open(dir: &Path, key: &DbKey, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::from_store(Store::open(dir, key, clock)?)
    }

    /// Wraps an already opened store (e.g. from a `ProfileManager`).
    pub fn from_store(mut store: Store) -> Result<Self> {
        let account = match store.account()? {
            Some(a) => a,
            None => {
                let a = Account::generate((store.now_ms() / 1000) as u64)?;
                store.save_account(&a)?;
                a
            }
        };
        let enrolment = outbox::config_get(&store.conn, ENROLMENT_KEY)?
            .map(|v| serde_json::from_slice::<Enrolment>(&v))
            .transpose()
            .map_err(|e| Error::Storage(format!("enrolment record: {e}")))?;
        Ok(Self::with(Inner::new(store, account, enrolment)))
    }

    fn with(inner: Inner) -> Self {
        Self {
            inner: tokio::sync::Mutex::new(inner),
            listener: std::sync::Mutex::new(None),
        }
    }

    /// Sets (or replaces) the event listener.
    pub fn set_listener(&self, listener: Arc<dyn EventListener>) {
        if let Ok(mut l) = self.listener.lock() {
            *l = Some(listener);
        }
    }

    fn emit(&self, event: ClientEvent) {
        let listener = self.listener.lock().ok().and_then(|l| l.clone());
        if let Some(l) = listener {
            l.on_event(event);
        }
    }

    fn emit_failure(&self, e: &Error) {
        match e {
            Error::PinMismatch { host, presented } => self.emit(ClientEvent::SecurityAlert {
                kind: "pin_failure".into(),
                detail: format!("host={host} presented={}", presented.join(",")),
            }),
            Error::UntrustedRelay(m) => self.emit(ClientEvent::SecurityAlert {
                kind: "relay_unverified".into(),
                detail: m.clone(),
            }),
            _ => {}
        }
    }

    fn watch<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.emit_failure(e);
        }
        r
    }

    /// Registers this device with a relay as `user`, learning (and from then
    /// on requiring) the relay's service key.
    pub async fn enrol(&self, opts: EnrolOptions) -> Result<Enrolment> {
        let r = self.enrol_inner(opts).await;
        self.watch(r)
    }

    async fn enrol_inner(&self, opts: EnrolOptions) -> Result<Enrolment> {
        let mut inner = self.inner.lock().await;
        if inner.enrolment.is_some() {
            return Err(Error::InvalidInput(
                "this profile is already enrolled".into(),
            ));
        }
        if !occ_protocol::api::valid_user_name(&opts.user) {
            return Err(Error::InvalidInput(
                "a user name is 1 to 64 characters of a-z 0-9 . _ -".into(),
            ));
        }
        let endpoint = crate::sync::endpoint(
            &opts.url,
            &opts.pins,
            opts.pins_expire_ms,
            opts.pins_lapse_to_chain,
            opts.ca_pem.as_deref(),
        )?;
        let api = ApiClient::new(&endpoint)?;
        let info = match api.start_session(None).await {
            Ok(i) => i,
            Err(e) => {
                if let crate::transport::TransportError::PinMismatch { host, presented } = &e {
                    let detail = format!("host={host} presented={}", presented.join(","));
                    let _ = inner.store.record_security_event("pin_failure", &detail);
                }
                return Err(e.into());
            }
        };
        inner.store.observe_server_time(info.server_time_ms)?;
        let missing = PREKEY_BATCH.saturating_sub(inner.account.one_time_prekey_count());
        inner.account.generate_one_time_prekeys(missing)?;
        let request =
            crate::sync::registration(&inner.account, &opts.user, opts.push_endpoint.as_deref())?;
        let device_id = inner.account.device_id().to_hex();
        let resp = api.register(&request).await?;
        if resp.device_id != device_id || resp.service_key.as_slice() != info.service_key {
            return Err(Error::UntrustedRelay(
                "the registration answer does not match this device or relay".into(),
            ));
        }
        let enrolment = Enrolment {
            url: opts.url,
            pins: opts.pins,
            pins_expire_ms: opts.pins_expire_ms,
            pins_lapse_to_chain: opts.pins_lapse_to_chain,
            ca_pem: opts.ca_pem,
            user: opts.user,
            device_id,
            service_key: hex::encode(info.service_key),
        };
        let json = serde_json::to_vec(&enrolment).map_err(|e| Error::Storage(e.to_string()))?;
        {
            let inner = &mut *inner;
            let tx = inner.store.conn.transaction()?;
            sessions::save_account_in(&tx, &inner.account)?;
            outbox::config_set(&tx, ENROLMENT_KEY, &json)?;
            tx.commit()?;
        }
        inner.enrolment = Some(enrolment.clone());
        inner.api = Some(api);
        inner.connect().await?;
        Ok(enrolment)
    }

    /// Opens a verified session with the relay (pinned TLS, signed
    /// acknowledgement, device token).
    pub async fn connect(&self) -> Result<SessionInfo> {
        let r = self.inner.lock().await.connect().await;
        self.watch(r)
    }

    /// Accepts a message for delivery (durable at once; [`Client::sync`]
    /// delivers it). Returns its message id.
    pub async fn send(
        &self,
        to: Recipient,
        text: &[u8],
        ttl_secs: u64,
        read_timer_secs: Option<u64>,
    ) -> Result<String> {
        self.inner
            .lock()
            .await
            .enqueue(&to, text, ttl_secs, read_timer_secs)
    }

    /// Removes a member from a thread: sender keys rotate, and nothing sent
    /// afterwards is readable by the removed user.
    pub async fn remove_member(&self, thread_id: &str, user: &str) -> Result<()> {
        self.inner.lock().await.remove_member(thread_id, user)
    }

    /// Delivers the outbox now, retrying at once whatever is backing off
    /// (for an explicit user action).
    pub async fn flush(&self) -> Result<FlushReport> {
        self.flush_inner(true).await
    }

    /// Delivers what is due: a message backing off after a network failure
    /// (exponential, at most 5 minutes) waits, and so do those after it.
    pub async fn flush_due(&self) -> Result<FlushReport> {
        self.flush_inner(false).await
    }

    async fn flush_inner(&self, now_regardless: bool) -> Result<FlushReport> {
        let r = self.inner.lock().await.flush(now_regardless).await;
        if let Ok(report) = &r {
            for (message_id, reason) in &report.failed {
                self.emit(ClientEvent::DeliveryFailed {
                    message_id: message_id.clone(),
                    reason: reason.clone(),
                });
            }
        }
        self.watch(r)
    }

    /// Drains the inbox, waiting up to `wait_ms` for the first message.
    pub async fn receive(&self, wait_ms: u64) -> Result<ReceiveReport> {
        let r = self.inner.lock().await.receive(wait_ms).await;
        if let Ok(report) = &r {
            self.emit_received(report);
        }
        self.watch(r)
    }

    fn emit_received(&self, report: &ReceiveReport) {
        for (thread_id, message_id, sender) in &report.messages {
            self.emit(ClientEvent::MessageReceived {
                thread_id: thread_id.clone(),
                message_id: message_id.clone(),
                sender: sender.clone(),
            });
        }
    }

    /// Delivers what is due in the outbox, then drains the inbox.
    pub async fn sync(&self) -> Result<SyncReport> {
        let flushed = self.flush_due().await?;
        let received = self.receive(0).await?;
        Ok(SyncReport {
            sent: flushed.sent,
            pending: flushed.pending,
            received: received.messages,
            rejected: received.rejected,
        })
    }

    /// Downloads one message by its relay id (the push-prompt path):
    /// [`Error::Expired`] once the relay answers 410.
    pub async fn fetch(&self, relay_message_id: &str) -> Result<ReceiveReport> {
        let r = self.inner.lock().await.fetch(relay_message_id).await;
        if let Ok(report) = &r {
            self.emit_received(report);
        }
        self.watch(r)
    }

    /// Threads, most recently active first.
    pub async fn threads(&self) -> Result<Vec<ThreadSummary>> {
        Ok(self.inner.lock().await.store.threads()?)
    }

    /// The newest `limit` live messages of a thread, newest first.
    pub async fn messages(&self, thread_id: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        Ok(self
            .inner
            .lock()
            .await
            .store
            .thread_messages(thread_id, limit, None)?)
    }

    /// One live message.
    pub async fn message(&self, id: &str) -> Result<StoredMessage> {
        Ok(self.inner.lock().await.store.message(id)?)
    }

    /// Marks a message opened (starts its read timer).
    pub async fn mark_read(&self, id: &str) -> Result<StoredMessage> {
        Ok(self.inner.lock().await.store.mark_read(id)?)
    }

    /// Sets the device keep period.
    pub async fn set_keep_period_secs(&self, secs: u64) -> Result<()> {
        let ms = i64::try_from(secs)
            .ok()
            .and_then(|s| s.checked_mul(1000))
            .ok_or_else(|| Error::InvalidInput("keep period too large".into()))?;
        Ok(self.inner.lock().await.store.set_keep_period_ms(ms)?)
    }

    /// The keep period in force, seconds.
    pub async fn keep_period_secs(&self) -> Result<u64> {
        Ok((self.inner.lock().await.store.keep_period_ms()? / 1000) as u64)
    }

    /// Removes everything past its deadline now.
    pub async fn purge(&self) -> Result<PurgeReport> {
        let report = self.inner.lock().await.store.purge()?;
        if report.messages() > 0 {
            let mut ids = report.expired_ids.clone();
            ids.extend(report.kept_too_long_ids.iter().cloned());
            self.emit(ClientEvent::MessagesExpired { message_ids: ids });
        }
        Ok(report)
    }

    /// The enrolment, if enrolled.
    pub async fn enrolment(&self) -> Option<Enrolment> {
        self.inner.lock().await.enrolment.clone()
    }

    /// This device's id (hex Ed25519 key).
    pub async fn device_id(&self) -> String {
        self.inner.lock().await.account.device_id().to_hex()
    }

    /// Recorded security events.
    pub async fn security_events(&self) -> Result<Vec<SecurityEvent>> {
        Ok(self.inner.lock().await.store.security_events()?)
    }

    /// Messages waiting to be sent.
    pub async fn outbox_len(&self) -> Result<i64> {
        Ok(self.inner.lock().await.store.outbox_len()?)
    }

    /// Trusted time now, ms.
    pub async fn now_ms(&self) -> i64 {
        self.inner.lock().await.store.now_ms()
    }
}
