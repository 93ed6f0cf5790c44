//! Any bytes as a stored string tensor: the first byte gives the element count (and the byte order bit).
#![no_main]
use fastckpt::bundle::decode_strings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&first, rest)) = data.split_first() {
        let count = u64::from(first & 0x7f) * 3;
        let _ = decode_strings(rest, count, first & 0x80 != 0);
        let _ = decode_strings(rest, u64::MAX - u64::from(first), false);
    }
});
