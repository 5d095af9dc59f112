//! The `fleet` target: see `auth_fuzz::fleet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth_fuzz::fleet(data));
