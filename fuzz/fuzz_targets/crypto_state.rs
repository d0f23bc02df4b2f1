//! Persisted state parsers (session, account, thread keys): never panic;
//! accepted state re-serialises to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use occ_core::crypto::{Account, Session, ThreadKeys};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Session::from_bytes(data) {
        assert_eq!(&s.to_bytes()[..], data);
    }
    if let Ok(a) = Account::from_bytes(data) {
        let _ = a.to_bytes();
    }
    if let Ok(t) = ThreadKeys::from_bytes(data) {
        let _ = t.to_bytes();
    }
});
