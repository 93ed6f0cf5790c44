//! Any text as a slice spec against any small shape: parse, resolve, key, and copy a strided selection.
#![no_main]
use fastckpt::slices::{check_disjoint, TensorSlice};
use fastckpt::{DimSelection, Selection};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let shape: Vec<u64> = data[..3].iter().map(|&d| u64::from(d % 9)).collect();
    let Ok(spec) = std::str::from_utf8(&data[3..]) else { return };
    let Ok(slice) = TensorSlice::parse(spec) else { return };
    let _ = slice.key(b"tensor");
    let Ok(block) = slice.resolve(&shape[..slice.extents.len().min(3)]) else { return };
    let rank = block.len();
    let _ = check_disjoint(&[block.clone(), block.clone()]);
    let dims: Vec<DimSelection> = (0..rank)
        .map(|d| DimSelection { start: u64::from(data[d] % 3), count: u64::from(data[(d + 1) % 3] % 4), step: u64::from(data[(d + 2) % 3] % 3) + 1 })
        .collect();
    let full_shape = &shape[..rank];
    if let Ok(sel) = Selection::new(full_shape, dims) {
        let src = vec![7u8; block.iter().map(|b| b.1 as usize).product::<usize>()];
        let mut dst = vec![0u8; sel.num_elements() as usize];
        let copied = sel.copy_bytes(&block, &src, 1, &mut dst);
        assert!(copied <= sel.num_elements());
    }
});
