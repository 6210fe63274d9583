#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| r58::fuzz::stun_demux(data));
