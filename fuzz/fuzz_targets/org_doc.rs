//! Organisation documents (policy, device commands): the framing parser
//! never panics and is canonical; verification of arbitrary bytes (framing,
//! signature, JSON body) never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use occ_protocol::org::OrgDoc;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = OrgDoc::parse(data) {
        assert_eq!(d.encode(), data, "parse/encode is not canonical");
    }
    let key = [7u8; 32];
    let _ = occ_core::policy::verify_policy(&key, data);
    let _ = occ_core::policy::verify_command(&key, data, "bob", "ab");
});
