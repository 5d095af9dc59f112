//! The `www_authenticate` target: see `auth_fuzz::www_authenticate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth_fuzz::www_authenticate(data));
