//! Arbitrary envelopes against live sessions, an account and thread state:
//! every input is refused or decrypted, nothing panics, and a refused input
//! leaves the state unchanged.
#![no_main]
use std::sync::Mutex;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use occ_core::crypto::{Account, DeviceId, Session, ThreadKeys};
use occ_protocol::Envelope;

struct World {
    bob: Account,
    session: Session,
    thread: ThreadKeys,
}

static WORLD: OnceLock<Mutex<World>> = OnceLock::new();

fn world() -> &'static Mutex<World> {
    WORLD.get_or_init(|| {
        let alice = Account::generate(0).expect("account");
        let mut bob = Account::generate(0).expect("account");
        let id = bob.generate_one_time_prekeys(2).expect("prekeys")[0].0;
        let mut a = Session::initiate(alice.identity(), &bob.bundle(Some(id)).expect("bundle"))
            .expect("initiate");
        let Ok(Envelope::PreKey(p)) = Envelope::parse(&a.encrypt(b"hi").expect("encrypt")) else {
            unreachable!()
        };
        let (session, _) = bob.accept(p).expect("accept");
        let mut thread = ThreadKeys::new(b"t", 0).expect("thread");
        let other = ThreadKeys::new(b"t", 0).expect("thread");
        thread
            .add_member_key(DeviceId([1; 32]), &other.distribution())
            .expect("member");
        Mutex::new(World {
            bob,
            session,
            thread,
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let mut w = world().lock().unwrap_or_else(|e| e.into_inner());
    let before = w.session.to_bytes();
    if w.session.decrypt(data).is_err() {
        assert_eq!(
            w.session.to_bytes(),
            before,
            "a refused envelope changed the session"
        );
    }
    let before = w.thread.to_bytes();
    if w.thread.decrypt(DeviceId([1; 32]), data).is_err() {
        assert_eq!(
            w.thread.to_bytes(),
            before,
            "a refused envelope changed the thread"
        );
    }
    if let Ok(Envelope::PreKey(p)) = Envelope::parse(data) {
        let before = w.bob.to_bytes();
        if w.bob.accept(p).is_err() {
            assert_eq!(
                w.bob.to_bytes(),
                before,
                "a refused prekey message changed the account"
            );
        }
    }
});
