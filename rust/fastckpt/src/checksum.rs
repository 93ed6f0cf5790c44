//! CRC32C as TensorFlow and LevelDB store it: masked, so that a checksum of data that embeds checksums
//! does not degenerate.
const MASK_DELTA: u32 = 0xa282_ead8;

use std::sync::OnceLock;

use crc_fast::CrcAlgorithm::Crc32Iscsi;

/// How crc_fast computes a CRC32C on this CPU. Its default fuses the CPU's crc32 instruction with carry-less
/// multiplication; where that instruction is slow (as on the AMD Zen 1 of BENCHMARKS.md), its plain
/// carry-less folding is faster (there 9.7 against 7.5 GB/s). Both give the same values.
#[derive(Clone, Copy)]
enum Engine {
    Fused,
    Folding,
}

/// CRC32C's parameters, which select crc_fast's carry-less folding.
fn folding_params() -> crc_fast::CrcParams {
    static PARAMS: OnceLock<crc_fast::CrcParams> = OnceLock::new();
    *PARAMS.get_or_init(|| {
        crc_fast::CrcParams::new("CRC-32/ISCSI", 32, 0x1edc_6f41, 0xffff_ffff, true, 0xffff_ffff, 0xe306_9283)
    })
}

/// Inputs from this size on use the engine found faster on this CPU; smaller ones, where the engines differ
/// little, the default, so that small reads never pay for the timing.
const TIMED_FROM: usize = 64 << 10;

/// The faster engine on this CPU, found by timing both once.
fn engine() -> Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    *ENGINE.get_or_init(|| {
        let sample = vec![0x5a_u8; TIMED_FROM];
        // The best of a few runs: about 100 microseconds in all.
        let fastest = |engine| {
            (0..5)
                .map(|_| {
                    let start = std::time::Instant::now();
                    std::hint::black_box(extend_with(engine, 0, std::hint::black_box(&sample)));
                    start.elapsed()
                })
                .min()
        };
        if fastest(Engine::Folding) < fastest(Engine::Fused) {
            Engine::Folding
        } else {
            Engine::Fused
        }
    })
}

fn extend_with(engine: Engine, crc: u32, data: &[u8]) -> u32 {
    // The running state of a CRC32C is its value with the final inversion undone.
    let state = u64::from(!crc);
    match engine {
        Engine::Fused => {
            let mut digest = crc_fast::Digest::new_with_init_state(Crc32Iscsi, state);
            digest.update(data);
            digest.finalize() as u32
        }
        Engine::Folding => {
            let mut params = folding_params();
            params.init = state;
            params.init_algorithm = state;
            crc_fast::checksum_with_params(params, data) as u32
        }
    }
}

/// The CRC32C of `data`.
pub fn value(data: &[u8]) -> u32 {
    if data.len() < TIMED_FROM {
        return crc_fast::crc32_iscsi(data);
    }
    extend_with(engine(), 0, data)
}

/// The CRC32C of the concatenation of the bytes `crc` covers and `data`.
pub fn extend(crc: u32, data: &[u8]) -> u32 {
    extend_with(if data.len() < TIMED_FROM { Engine::Fused } else { engine() }, crc, data)
}

/// The CRC32C of `a ++ b`, from the CRC32Cs of `a` and `b` and the length of `b`.
pub fn combine(crc_a: u32, crc_b: u32, len_b: usize) -> u32 {
    crc_fast::checksum_combine(Crc32Iscsi, u64::from(crc_a), u64::from(crc_b), len_b as u64) as u32
}

/// Bytes checksummed right after they are copied, while they are still in cache.
pub const CACHE_CHUNK: usize = 256 * 1024;
/// Work below this size stays on one thread.
pub const PARALLEL_CHUNK: usize = 4 << 20;

/// Fills `dst` piece by piece with `fill(offset, piece)` and returns the CRC32C of what was filled: each piece is
/// checksummed right after it is filled, so the data crosses the memory bus once.
pub fn fill_with_checksum<E>(dst: &mut [u8], fill: impl Fn(usize, &mut [u8]) -> Result<(), E>) -> Result<u32, E> {
    let mut crc = 0;
    for (i, piece) in dst.chunks_mut(CACHE_CHUNK).enumerate() {
        fill(i * CACHE_CHUNK, piece)?;
        crc = extend(crc, piece);
    }
    Ok(crc)
}

/// [`fill_with_checksum`] on several threads when `dst` is large, the checksums of their parts combined.
pub fn fill_with_checksum_parallel<E: Send>(
    dst: &mut [u8],
    fill: impl Fn(usize, &mut [u8]) -> Result<(), E> + Sync,
) -> Result<u32, E> {
    use rayon::prelude::*;

    if dst.len() <= PARALLEL_CHUNK {
        return fill_with_checksum(dst, fill);
    }
    // One contiguous part per thread: each thread then reads sequentially, which keeps the kernel's
    // readahead working on cold files (interleaved chunks defeat it).
    let parts = rayon::current_num_threads().min(dst.len() / PARALLEL_CHUNK).max(1);
    let part_len = dst.len().div_ceil(parts);
    let crcs = dst
        .par_chunks_mut(part_len)
        .enumerate()
        .map(|(i, chunk)| {
            Ok((fill_with_checksum(chunk, |offset, piece| fill(i * part_len + offset, piece))?, chunk.len()))
        })
        .collect::<Result<Vec<(u32, usize)>, E>>()?;
    Ok(crcs.into_iter().fold(0, |acc, (crc, len)| combine(acc, crc, len)))
}

/// The CRC32C of `data`, computed on several threads when it is large.
pub fn value_parallel(data: &[u8]) -> u32 {
    use rayon::prelude::*;

    if data.len() <= PARALLEL_CHUNK {
        return value(data);
    }
    let crcs: Vec<(u32, usize)> = data.par_chunks(PARALLEL_CHUNK).map(|chunk| (value(chunk), chunk.len())).collect();
    crcs.into_iter().fold(0, |acc, (crc, len)| combine(acc, crc, len))
}

/// The form in which a CRC32C is stored: rotated right by 15 bits, plus a constant.
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// The inverse of [`mask`].
pub fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // From the CRC32C specification (RFC 3720, B.4) and LevelDB's crc32c tests.
        assert_eq!(value(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(value(&[0xffu8; 32]), 0x62a8_ab43);
        assert_eq!(value(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn extend_agrees_with_value() {
        let data = b"hello world, this is a checkpoint";
        let (a, b) = data.split_at(11);
        assert_eq!(extend(value(a), b), value(data));
    }

    #[test]
    fn fill_with_checksum_parallel_fills_and_checksums() {
        for len in [0, 1, CACHE_CHUNK + 3, PARALLEL_CHUNK * 3 + 12345] {
            let src: Vec<u8> = (0..len as u32).map(|i| (i * 7 + i / 5000) as u8).collect();
            let mut dst = vec![0u8; src.len()];
            let crc = fill_with_checksum_parallel(&mut dst, |offset, piece| {
                piece.copy_from_slice(&src[offset..offset + piece.len()]);
                Ok::<(), ()>(())
            });
            assert_eq!(crc, Ok(value(&src)));
            assert_eq!(dst, src);
            assert_eq!(value_parallel(&src), value(&src));
        }
    }

    #[test]
    fn both_engines_agree() {
        let data: Vec<u8> = (0..TIMED_FROM as u32 * 3).map(|i| (i * 31 + i / 977) as u8).collect();
        for len in [0, 1, 15, 16, 17, 63, 64, 65, 255, 4097, TIMED_FROM - 1, TIMED_FROM, data.len()] {
            for crc in [0, 1, 0xe306_9283, u32::MAX] {
                let (fused, folding) =
                    (extend_with(Engine::Fused, crc, &data[..len]), extend_with(Engine::Folding, crc, &data[..len]));
                assert_eq!(folding, fused, "{len} bytes after {crc:#x}");
            }
        }
        assert_eq!(extend_with(Engine::Folding, 0, b"123456789"), 0xe306_9283);
        assert_eq!(value(&data), extend_with(Engine::Fused, 0, &data));
    }

    #[test]
    fn combine_agrees_with_value() {
        let (a, b) = b"hello world, this is a checkpoint".split_at(11);
        assert_eq!(combine(value(a), value(b), b.len()), value(b"hello world, this is a checkpoint"));
    }

    #[test]
    fn mask_round_trips_and_changes_the_value() {
        let crc = value(b"foo");
        assert_ne!(mask(crc), crc);
        assert_ne!(mask(mask(crc)), crc);
        assert_eq!(unmask(mask(crc)), crc);
        assert_eq!(unmask(unmask(mask(mask(crc)))), crc);
    }
}
