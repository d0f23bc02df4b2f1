//! Prekey bundle parser and the signature checks of session initiation.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use occ_core::crypto::{Account, Session};
use occ_protocol::PreKeyBundle;

static ALICE: OnceLock<Account> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = PreKeyBundle::parse(data) {
        assert_eq!(bundle.encode(), data, "parse/encode is not canonical");
        let alice = ALICE.get_or_init(|| Account::generate(0).expect("account"));
        // Random bytes almost never carry valid signatures; this must refuse, not panic.
        let _ = Session::initiate(alice.identity(), &bundle);
    }
});
