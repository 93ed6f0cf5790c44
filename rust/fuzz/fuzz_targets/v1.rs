//! Any bytes as a V1 checkpoint file: open and read every tensor.
#![no_main]
use fastckpt::storage::LocalStorage;
use fastckpt::v1::V1Reader;
use fastckpt::{Checkpoint, Selection};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("fastckpt-fuzz-v1-{}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let Ok(ckpt) = V1Reader::open(&LocalStorage, &[path]).map(Checkpoint::V1) else { return };
    for (name, info) in ckpt.tensors().to_vec() {
        let t = ckpt.find(&name).expect("a listed tensor is found");
        let full = Selection::full(&info.shape);
        match info.dtype.size() {
            Some(size) if full.num_elements().saturating_mul(size as u64) <= 1 << 20 => {
                let mut out = vec![0u8; full.num_elements() as usize * size];
                let _ = ckpt.read_selection(t, &full, true, &mut out);
            }
            None => {
                let _ = ckpt.read_strings(t, &full);
            }
            _ => {}
        }
    }
});
