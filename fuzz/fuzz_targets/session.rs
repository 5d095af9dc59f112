//! The `session` target: see `auth_fuzz::session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth_fuzz::session(data));
