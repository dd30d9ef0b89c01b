//! source::open on the input as an archive file (tar, tar.gz, docker or OCI).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_support::archive(data));
