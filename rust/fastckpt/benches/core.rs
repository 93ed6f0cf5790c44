//! `cargo bench`: the core alone, without Python. Builds a bundle of many small tensors and one of a few large
//! ones under the target directory, then times opening, reading and writing them.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastckpt::bundle::{BundleWriter, NewTensor, TensorData, WriteOptions};
use fastckpt::storage::LocalStorage;
use fastckpt::{checksum, Checkpoint, DType, Selection, TensorRef};

fn time<T>(label: &str, bytes: usize, rounds: u32, mut f: impl FnMut() -> T) {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        std::hint::black_box(f());
        best = best.min(start.elapsed());
    }
    let rate = if bytes > 0 { format!("{:8.2} GB/s", bytes as f64 / best.as_secs_f64() / 1e9) } else { String::new() };
    println!("{label:<44} {:>10.3} ms {rate}", best.as_secs_f64() * 1e3);
}

fn write_bundle(prefix: &Path, tensors: &[(String, Vec<u64>, Vec<u8>)]) {
    let mut writer = BundleWriter::create(Arc::new(LocalStorage), prefix, WriteOptions::default()).unwrap();
    for (name, shape, data) in tensors {
        writer.add(name.as_bytes(), DType::Float32, shape, TensorData::Bytes(data)).unwrap();
    }
    writer.finish().unwrap();
}

/// Writes `tensors` in one batch over `num_shards` data files, written in parallel.
fn write_batch(prefix: &Path, tensors: &[(String, Vec<u64>, Vec<u8>)], num_shards: u32) {
    let mut writer =
        BundleWriter::create(Arc::new(LocalStorage), prefix, WriteOptions { num_shards, ..Default::default() })
            .unwrap();
    let batch: Vec<NewTensor> = tensors
        .iter()
        .map(|(name, shape, data)| NewTensor {
            key: name.as_bytes(),
            dtype: DType::Float32,
            shape,
            data: TensorData::Bytes(data),
        })
        .collect();
    writer.add_tensors(&batch).unwrap();
    writer.finish().unwrap();
}

fn read_all(prefix: &Path) -> usize {
    let ckpt = Checkpoint::open(prefix, &Default::default()).unwrap();
    let tensors: Vec<(Vec<u8>, Vec<u64>)> = ckpt.tensors().iter().map(|(n, i)| (n.clone(), i.shape.clone())).collect();
    let mut buffers: Vec<Vec<u8>> =
        tensors.iter().map(|(_, s)| vec![0u8; Selection::full(s).num_elements() as usize * 4]).collect();
    let mut jobs: Vec<(TensorRef, &mut [u8])> =
        tensors.iter().zip(buffers.iter_mut()).map(|((n, _), b)| (ckpt.find(n).unwrap(), b.as_mut_slice())).collect();
    ckpt.read_whole(&mut jobs, true).unwrap();
    buffers.len()
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fastckpt-bench");
    std::fs::create_dir_all(&dir).unwrap();

    let small: Vec<(String, Vec<u64>, Vec<u8>)> = (0..10_000)
        .map(|i| (format!("model/block_{:03}/unit_{:02}/weights", i / 100, i % 100), vec![64], vec![1u8; 256]))
        .collect();
    let small_prefix = dir.join("small");
    write_bundle(&small_prefix, &small);
    time("open, 10,000 tensors", 0, 20, || Checkpoint::open(&small_prefix, &Default::default()).unwrap());
    time("read all, 10,000 tensors", small.len() * 256, 10, || read_all(&small_prefix));

    let large: Vec<(String, Vec<u64>, Vec<u8>)> = (0..16)
        .map(|i| (format!("layer_{i}/kernel"), vec![2048, 2048], vec![(i * 7) as u8; 2048 * 2048 * 4]))
        .collect();
    let total: usize = large.iter().map(|t| t.2.len()).sum();
    let large_prefix = dir.join("large");
    // Each round writes a new checkpoint: replacing one would free the old one's page cache inside the timing.
    let mut round = 0;
    let mut fresh_prefix = |name: &str| {
        round += 1;
        dir.join(format!("{name}-{round}"))
    };
    time("write 16 x 16 MiB", total, 3, || write_bundle(&fresh_prefix("write"), &large));
    time("write 16 x 16 MiB, 2 data files in parallel", total, 3, || write_batch(&fresh_prefix("write"), &large, 2));
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("write-") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    write_bundle(&large_prefix, &large);
    time("read all 16 x 16 MiB, verified", total, 5, || read_all(&large_prefix));
    let data = vec![3u8; 64 << 20];
    time("crc32c, one thread, 64 MiB", data.len(), 5, || checksum::value(&data));
    time("crc32c, all threads, 64 MiB", data.len(), 5, || checksum::value_parallel(&data));
    let mut copy = vec![0u8; data.len()];
    time("memcpy 64 MiB", data.len(), 5, || {
        copy.copy_from_slice(std::hint::black_box(&data));
        copy[copy.len() - 1]
    });
}
