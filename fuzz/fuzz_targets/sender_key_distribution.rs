//! Sender-key distribution parser and its import into thread state.
#![no_main]
use libfuzzer_sys::fuzz_target;
use occ_core::crypto::{DeviceId, ThreadKeys};
use occ_protocol::SenderKeyDistribution;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = SenderKeyDistribution::parse(data) {
        assert_eq!(&d.encode()[..], data, "parse/encode is not canonical");
        if let Ok(mut t) = ThreadKeys::new(&d.thread_id, 0) {
            let _ = t.add_member_key(DeviceId([7; 32]), &d);
        }
    }
});
