//! Destination::parse on arbitrary UTF-8: never panics; what it prints parses back to itself.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::destination(data));
