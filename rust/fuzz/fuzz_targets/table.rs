//! Any bytes as a table file: open, walk every entry, look keys up.
#![no_main]
use fastckpt::table::Table;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = Table::open(data) {
        let mut keys = Vec::new();
        let _ = table.for_each(|key, _| {
            keys.push(key.to_vec());
            Ok(())
        });
        for key in keys.iter().take(16) {
            let _ = table.get(key);
        }
        let _ = table.get(b"");
    }
});
