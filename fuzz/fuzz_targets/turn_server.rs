#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| r58::fuzz::turn_server(data));
