//! Any bytes as a V2 checkpoint: the first two bytes give the length of the index, the rest is the data file.
//! Opens it and reads every tensor, whole and in part, one by one and all at once (which must agree).
#![no_main]
use std::path::PathBuf;
use std::sync::Arc;

use fastckpt::bundle::{data_path, BundleReader};
use fastckpt::storage::LocalStorage;
use fastckpt::{DimSelection, Selection, TensorRef};
use libfuzzer_sys::fuzz_target;

fn prefix() -> PathBuf {
    std::env::temp_dir().join(format!("fastckpt-fuzz-{}", std::process::id())).join("ckpt")
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (index, contents) = data[2..].split_at(split);
    let prefix = prefix();
    std::fs::create_dir_all(prefix.parent().unwrap()).unwrap();
    std::fs::write(data_path(&prefix, 0, 1), contents).unwrap();
    let Ok(reader) = BundleReader::from_index(Arc::new(LocalStorage), prefix, index.to_vec()) else { return };
    let tensors = reader.tensors().to_vec();
    let mut one_by_one: Vec<(TensorRef, Vec<u8>, bool)> = Vec::new();
    for (name, info) in tensors {
        let t = reader.find(&name).expect("a listed tensor is found");
        let full = Selection::full(&info.shape);
        match info.dtype.size() {
            // Bounded, as a caller allocating from an untrusted shape would check first.
            Some(size) if full.num_elements().saturating_mul(size as u64) <= 1 << 20 => {
                let mut out = vec![0u8; full.num_elements() as usize * size];
                let read = reader.read_selection(t, &full, true, &mut out).is_ok();
                one_by_one.push((t, out, read));
                if let Ok(first) = Selection::new(
                    &info.shape,
                    info.shape.iter().map(|&d| DimSelection { start: 0, count: d.min(1), step: 1 }).collect(),
                ) {
                    let mut out = vec![0u8; first.num_elements() as usize * size];
                    let _ = reader.read_selection(t, &first, false, &mut out);
                }
            }
            None => {
                let _ = reader.read_strings(t, &full);
            }
            _ => {}
        }
    }
    let mut together: Vec<Vec<u8>> = one_by_one.iter().map(|(_, out, _)| vec![0u8; out.len()]).collect();
    let mut jobs: Vec<(TensorRef, &mut [u8])> =
        one_by_one.iter().zip(together.iter_mut()).map(|((t, _, _), out)| (*t, out.as_mut_slice())).collect();
    if reader.read_whole(&mut jobs, true).is_ok() {
        for ((_, out, read), all) in one_by_one.iter().zip(&together) {
            assert!(*read && out == all, "read_whole read what read_selection refuses or reads otherwise");
        }
    }
});
