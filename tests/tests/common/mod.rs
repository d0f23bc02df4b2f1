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
        let tmp = tempfile::tempdir().unwrap();
        let relay_dir = tmp.path().join("relay");
        let hooks = Arc::new(Hooks::default());
        let mut config = RelayConfig::dev(&relay_dir);
        config.purge_interval = Duration::from_millis(200);
        config.hooks = hooks.clone();
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
            url: self.url.clone(),
            pins: vec![self.pin.clone()],
            ca_pem: Some(self.ca_pem.clone()),
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

pub fn relay_db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        dir.join("relay.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
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
    pub fn events(&self) -> Vec<occ_core::ClientEvent> {
        self.0.lock().unwrap().clone()
    }
}
