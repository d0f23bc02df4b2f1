//! End-to-end payload parser: never panics; accepted input re-encodes to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use occ_protocol::payload::Payload;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Payload::parse(data) {
        assert_eq!(&p.encode()[..], data, "parse/encode is not canonical");
    }
});
