//! Shared harness: a real relay on loopback TLS, and enrolled clients.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use occ_core::store::DbKey;
use occ_core::{Client, EnrolOptions};
use occ_relay::{Hooks, RelayConfig, RelayHandle, TlsSource};

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub relay: Option<RelayHandle>,
    pub relay_dir: PathBuf,
    pub url: String,
    pub pin: String,
    pub ca_pem: String,
    pub hooks: Arc<Hooks>,
    pub keys: std::sync::Mutex<Vec<(String, DbKey)>>,
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(|_| {}).await
    }

    /// A relay configured by `configure` (limits, metrics listener).
    pub async fn start_with(configure: impl FnOnce(&mut RelayConfig)) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let relay_dir = tmp.path().join("relay");
        let hooks = Arc::new(Hooks::default());
        let mut config = RelayConfig::dev(&relay_dir);
        config.purge_interval = Duration::from_millis(200);
        config.hooks = hooks.clone();
        configure(&mut config);
        let relay = occ_relay::start(config).await.unwrap();
        let ca_pem = std::fs::read_to_string(relay.ca_path.as_ref().unwrap()).unwrap();
        Env {
            url: relay.url(),
            pin: relay.pin.clone(),
            relay: Some(relay),
            tmp,
            relay_dir,
            ca_pem,
            hooks,
            keys: Default::default(),
        }
    }

    /// Stops the relay and starts it again on the same port and data.
    pub async fn restart_relay(&mut self) {
        let addr = self.stop_relay().await;
        self.start_relay_at(addr).await;
    }

    /// Stops the relay; returns the address it had.
    pub async fn stop_relay(&mut self) -> std::net::SocketAddr {
        let old = self.relay.take().unwrap();
        let addr = old.addr;
        old.shutdown().await;
        addr
    }

    /// Starts the relay again on `addr` with the same data.
    pub async fn start_relay_at(&mut self, addr: std::net::SocketAddr) {
        let mut config = RelayConfig::dev(&self.relay_dir);
        config.listen = addr;
        config.purge_interval = Duration::from_millis(200);
        config.hooks = self.hooks.clone();
        let relay = occ_relay::start(config).await.unwrap();
        assert_eq!(
            relay.pin, self.pin,
            "the dev certificate survives a restart"
        );
        self.relay = Some(relay);
    }

    pub fn profile_dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join("profiles").join(name)
    }

    pub fn key_of(&self, name: &str) -> DbKey {
        self.keys
            .lock()
            .unwrap()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| k.clone())
            .unwrap()
    }

    pub fn options(&self, name: &str) -> EnrolOptions {
        EnrolOptions {
            relay: occ_core::RelaySettings {
                url: self.url.clone(),
                pins: vec![self.pin.clone()],
                ca_pem: Some(self.ca_pem.clone()),
                ..Default::default()
            },
            user: name.into(),
            ..Default::default()
        }
    }

    /// A new profile for `name` (not enrolled).
    pub fn new_client(&self, name: &str) -> Client {
        let dir = self.profile_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        let key = DbKey::generate().unwrap();
        self.keys
            .lock()
            .unwrap()
            .push((name.to_string(), key.clone()));
        Client::create(dir.to_str().unwrap(), key.as_bytes().to_vec()).unwrap()
    }

    /// A new profile for `name`, enrolled with this relay.
    pub async fn client(&self, name: &str) -> Client {
        self.client_with(name, self.options(name)).await
    }

    pub async fn client_with(&self, name: &str, opts: EnrolOptions) -> Client {
        let c = self.new_client(name);
        c.enrol(opts).await.unwrap();
        c
    }

    pub fn reopen(&self, name: &str) -> Client {
        Client::open(
            self.profile_dir(name).to_str().unwrap(),
            self.key_of(name).as_bytes().to_vec(),
        )
        .unwrap()
    }

    /// A read-only view of the relay's database.
    pub fn relay_db(&self) -> rusqlite::Connection {
        relay_db(&self.relay_dir)
    }

    /// A relay presenting `identity` (for impostors and odd chains).
    pub async fn other_relay(&self, name: &str, identity: occ_relay::Identity) -> RelayHandle {
        let mut config = RelayConfig::dev(self.tmp.path().join(name));
        config.tls = TlsSource::Identity(identity);
        occ_relay::start(config).await.unwrap()
    }

    pub fn ca(&self) -> occ_relay::DevCa {
        occ_relay::DevCa::load_dev(&self.relay_dir).unwrap()
    }
}

/// The relay's database, writable: the relay operator tampering with it.
pub fn relay_db_rw(dir: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(dir.join("relay.db")).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

pub fn relay_db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        dir.join("relay.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

/// A direct recipient.
/// The real wall clock, ms (the relay in these tests runs on it).
/// The bytes of the newest envelope queued for `device` (as the relay
/// operator sees them).
pub fn last_envelope_to(env: &Env, device: &str) -> Vec<u8> {
    env.relay_db()
        .query_row(
            "SELECT envelope FROM envelopes WHERE recipient = ?1 ORDER BY seq DESC LIMIT 1",
            [device],
            |r| r.get(0),
        )
        .unwrap()
}

pub fn real_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn to(name: &str) -> occ_core::Recipient {
    occ_core::Recipient::User { name: name.into() }
}

pub fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

pub fn texts(list: &[occ_core::store::StoredMessage]) -> Vec<String> {
    list.iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

/// Records every client event.
#[derive(Default)]
pub struct Recorder(pub std::sync::Mutex<Vec<occ_core::ClientEvent>>);

impl occ_core::EventListener for Recorder {
    fn on_event(&self, event: occ_core::ClientEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    /// What the listener saw of every event emitted so far (events reach
    /// listeners on their own threads: this waits until they are handed
    /// over).
    pub fn events(&self) -> Vec<occ_core::ClientEvent> {
        assert!(
            occ_core::wait_for_listeners(Duration::from_secs(10)),
            "listeners did not drain"
        );
        self.0.lock().unwrap().clone()
    }
}

impl Recorder {
    /// Waits (up to `secs`) until an event matching `f` has been recorded.
    pub async fn wait_for(&self, secs: u64, f: impl Fn(&occ_core::ClientEvent) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while tokio::time::Instant::now() < deadline {
            if self.events().iter().any(&f) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    pub fn alerts(&self) -> Vec<occ_core::SecurityEventKind> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                occ_core::ClientEvent::SecurityAlert { kind, .. } => Some(kind),
                _ => None,
            })
            .collect()
    }
}

impl Env {
    /// A plain HTTPS client trusting this relay's dev CA (no pins, no
    /// protocol: for hand-made requests).
    pub fn http(&self) -> reqwest::Client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca().cert.clone()).unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap()
    }

    /// An API client for this relay, as any registered party can build one.
    pub fn api(&self) -> occ_core::transport::ApiClient {
        occ_core::transport::ApiClient::new(&occ_core::transport::RelayEndpoint {
            url: self.url.clone(),
            pins: occ_core::transport::PinSet::parse(std::slice::from_ref(&self.pin)).unwrap(),
            ca_pem: Some(self.ca_pem.clone().into_bytes()),
        })
        .unwrap()
    }

    /// A device driven by hand through the protocol: the attacker who can
    /// register on the relay and send whatever bytes they like.
    pub async fn raw_device(&self, user: &str) -> RawDevice {
        self.raw_device_linked(user, None).await
    }

    /// [`Env::raw_device`] registered as a further device of `user`, linked
    /// by `linker` (one of that user's clients).
    pub async fn raw_device_linked(&self, user: &str, linker: Option<&Client>) -> RawDevice {
        let mut account = occ_core::crypto::Account::generate(0).unwrap();
        account.generate_one_time_prekeys(20).unwrap();
        let link = match linker {
            Some(c) => Some(c.link_device(&account.device_id().to_hex()).await.unwrap()),
            None => None,
        };
        let api = self.api();
        // A verified session first: identity answers are checked against
        // the service key it proves.
        api.start_session(None).await.unwrap();
        api.register(
            &occ_core::sync::registration_with_link(
                &account,
                user,
                None,
                real_now_ms(),
                link.as_deref(),
            )
            .unwrap(),
        )
        .await
        .unwrap();
        let id = account.device_id().to_hex();
        api.authenticate(&id, |m| account.identity().sign(b"", m))
            .await
            .unwrap();
        RawDevice {
            user: user.to_string(),
            account,
            api,
            sessions: Default::default(),
            sent: 0,
            envelope_ttl_secs: 600,
        }
    }

    /// The raw SQLCipher connection to a client's database (the device
    /// holder with the key, or a second process).
    pub fn client_db(&self, name: &str) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.profile_dir(name).join("occ.db")).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA key = \"x'{}'\";",
            hex::encode(self.key_of(name).as_bytes())
        ))
        .unwrap();
        conn
    }
}

pub struct RawDevice {
    pub user: String,
    pub account: occ_core::crypto::Account,
    pub api: occ_core::transport::ApiClient,
    sessions: std::collections::HashMap<String, occ_core::crypto::Session>,
    sent: u32,
    /// The relay TTL of what [`RawDevice::send_payload`] sends (600 s).
    pub envelope_ttl_secs: u64,
}

impl RawDevice {
    pub fn device_id(&self) -> String {
        self.account.device_id().to_hex()
    }

    /// Claims `device`'s prekey bundle and starts a session from it.
    pub async fn open_session(&mut self, device: &str) -> occ_protocol::PreKeyBundle {
        let bundle =
            occ_protocol::PreKeyBundle::parse(&self.api.bundle(device).await.unwrap()).unwrap();
        let s = occ_core::crypto::Session::initiate(self.account.identity(), &bundle).unwrap();
        self.sessions.insert(device.to_string(), s);
        bundle
    }

    /// Encrypts `payload` for `device` (a session is started from a claimed
    /// bundle the first time) and sends it as its own relay item.
    pub async fn send_payload(&mut self, device: &str, payload: &[u8]) {
        self.try_send_payload(device, payload).await.unwrap();
    }

    /// [`RawDevice::send_payload`], returning the relay's answer.
    pub async fn try_send_payload(
        &mut self,
        device: &str,
        payload: &[u8],
    ) -> Result<occ_protocol::api::SendResponse, occ_core::transport::TransportError> {
        if !self.sessions.contains_key(device) {
            self.open_session(device).await;
        }
        let envelope = self
            .sessions
            .get_mut(device)
            .unwrap()
            .encrypt(payload)
            .unwrap();
        self.send_envelope(device, &envelope).await
    }

    /// Sends already-made envelope bytes to `device` as a new relay item.
    pub async fn send_envelope(
        &mut self,
        device: &str,
        envelope: &[u8],
    ) -> Result<occ_protocol::api::SendResponse, occ_core::transport::TransportError> {
        self.sent += 1;
        self.api
            .send(&occ_protocol::api::SendRequest {
                idempotency_key: format!("{}-{}", self.user, self.sent),
                ttl_secs: self.envelope_ttl_secs,
                class: "text".into(),
                thread: None,
                envelopes: vec![occ_protocol::api::OutEnvelope {
                    device_id: device.to_string(),
                    envelope: envelope.to_vec().into(),
                }],
                listed_devices: Vec::new(),
                urgent: false,
            })
            .await
    }

    /// A direct text payload from this device's user to `to`.
    pub fn text(&self, to: &str, message_id: &str, body: &str) -> Vec<u8> {
        self.text_with_ttl(to, message_id, body, 600_000)
    }

    /// [`RawDevice::text`] expiring `ttl_ms` after now (real time).
    pub fn text_with_ttl(&self, to: &str, message_id: &str, body: &str, ttl_ms: i64) -> Vec<u8> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        occ_protocol::payload::Payload::Text(occ_protocol::payload::TextMessage {
            message_id: message_id.into(),
            thread_id: occ_core::sync::direct_thread_id(&self.user, to),
            thread_title: self.user.clone(),
            group: false,
            sender_user: self.user.clone(),
            sent_ms: now,
            ttl_expiry_ms: now + ttl_ms,
            read_timer_ms: None,
            body: body.as_bytes().to_vec(),
            urgent: None,
            attachment: None,
        })
        .encode()
        .to_vec()
    }
}

/// A fresh organisation key (any 32 random bytes are an Ed25519 seed).
pub fn org_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(DbKey::generate().unwrap().as_bytes())
}

/// A client of `name` enrolled with the organisation key pinned.
pub async fn member(env: &Env, org: &ed25519_dalek::SigningKey, name: &str) -> Client {
    let mut opts = env.options(name);
    opts.org_key = Some(hex::encode(org.verifying_key().to_bytes()));
    env.client_with(name, opts).await
}

/// Certifies `client` as `name`'s device for a day and installs it.
pub async fn certify_and_install(org: &ed25519_dalek::SigningKey, client: &Client, name: &str) {
    const HOUR: i64 = 3_600_000;
    let device: [u8; 32] = hex::decode(client.device_id().await.unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let now = real_now_ms();
    let cert = occ_core::crypto::org::certify(org, name, &device, now - HOUR, now + 24 * HOUR);
    client.install_certificate(cert.encode()).await.unwrap();
}

/// Writes `len` pseudo-random bytes (xorshift from `seed`: incompressible,
/// repeatable) to `path` in 1 MiB pieces, never holding the whole file;
/// returns their SHA-256.
pub fn write_pseudo_random(path: &Path, len: usize, seed: u64) -> [u8; 32] {
    use sha2::Digest;
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut h = sha2::Sha256::new();
    let mut x = seed;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len());
        for b in &mut block[..n] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        h.update(&block[..n]);
        f.write_all(&block[..n]).unwrap();
        left -= n;
    }
    f.flush().unwrap();
    h.finalize().into()
}
