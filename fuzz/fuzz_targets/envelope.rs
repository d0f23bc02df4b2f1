//! Envelope parser: never panics; accepted input re-encodes to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use occ_protocol::Envelope;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Envelope::parse(data) {
        assert_eq!(e.encode(), data, "parse/encode is not canonical");
    }
});
