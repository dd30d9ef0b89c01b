//! source::open on an OCI layout directory built from the input (fuzz_support::layout_input).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::layout(data));
