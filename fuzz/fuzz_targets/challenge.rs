//! parse_challenge on arbitrary WWW-Authenticate values: never panics; bearer has a realm.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::challenge(data));
