//! CRC32C as TensorFlow and LevelDB store it: masked, so that a checksum of data that embeds checksums
//! does not degenerate.
const MASK_DELTA: u32 = 0xa282_ead8;

/// The CRC32C of `data`.
pub fn value(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// The CRC32C of the concatenation of the bytes `crc` covers and `data`.
pub fn extend(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// Copies `src` into `dst` (of the same length) and returns the CRC32C of the bytes, computed chunk by chunk on
/// the copy while it is in cache, so that the data is read from memory once.
pub fn copy_with_checksum(src: &[u8], dst: &mut [u8]) -> u32 {
    const CHUNK: usize = 256 * 1024;
    let mut crc = 0;
    for (from, to) in src.chunks(CHUNK).zip(dst.chunks_mut(CHUNK)) {
        to.copy_from_slice(from);
        crc = extend(crc, to);
    }
    crc
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
    fn copy_with_checksum_copies_and_checksums() {
        let src: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7) as u8).collect();
        let mut dst = vec![0u8; src.len()];
        assert_eq!(copy_with_checksum(&src, &mut dst), value(&src));
        assert_eq!(dst, src);
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
