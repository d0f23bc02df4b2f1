//! Helpers the relay benches share: an enrolled client and a listener that
//! timestamps arrivals.
#![allow(dead_code)]

use std::path::Path;
use std::time::Instant;

use occ_core::store::DbKey;
use occ_core::{Client, ClientEvent, EnrolOptions, EventListener};

/// A new profile under `root/name`, enrolled as `name` with the relay at
/// `url` (pinned `pin`, trusting the CA `ca` PEM).
pub async fn client(root: &Path, url: &str, pin: &str, ca: &str, name: &str) -> Client {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let c = Client::create(
        dir.to_str().unwrap(),
        DbKey::generate().unwrap().as_bytes().to_vec(),
    )
    .unwrap();
    c.enrol(EnrolOptions {
        relay: occ_core::RelaySettings {
            url: url.into(),
            pins: vec![pin.into()],
            ca_pem: Some(ca.into()),
            ..Default::default()
        },
        user: name.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    c
}

/// Records when each message arrives at the app.
pub struct Arrivals(pub std::sync::mpsc::Sender<(String, Instant)>);

impl EventListener for Arrivals {
    fn on_event(&self, event: ClientEvent) {
        if let ClientEvent::MessagesReceived { messages } = event {
            let now = Instant::now();
            for m in messages {
                let _ = self.0.send((m.message_id, now));
            }
        }
    }
}
