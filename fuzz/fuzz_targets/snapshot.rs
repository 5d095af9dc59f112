//! The `snapshot` target: see `auth_fuzz::snapshot`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth_fuzz::snapshot(data));
