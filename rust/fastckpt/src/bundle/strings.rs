//! String tensors in a data file: `varint64 len` for each element, a masked CRC32C of the lengths, then the
//! bytes of each element.
//!
//! The tensor's checksum covers each length as a little-endian u32 (u64 when it does not fit), then the four
//! stored bytes of the length checksum, then the string bytes.
use crate::checksum;
use crate::coding::{fixed32, varint64};
use crate::error::{Error, Result};

/// Decodes `count` strings from `data`; returns them with the checksum computed as TensorFlow computes it.
/// `swap` is set for data written on a machine of the other byte order.
pub fn decode_strings(data: &[u8], count: u64, swap: bool) -> Result<(Vec<Vec<u8>>, u32)> {
    if data.is_empty() {
        return if count == 0 {
            Ok((Vec::new(), 0))
        } else {
            Err(Error::data_loss(format!("no bytes stored for {count} strings")))
        };
    }
    // Every length takes at least one byte: this bounds the allocation below by the file's size.
    if count > data.len() as u64 {
        return Err(Error::data_loss(format!("{} bytes cannot hold {count} string lengths", data.len())));
    }
    let mut lengths = Vec::with_capacity(count as usize);
    let mut pos = 0usize;
    let mut crc = 0u32;
    for _ in 0..count {
        let (length, used) = varint64(&data[pos..]).map_err(|_| Error::data_loss("corrupt string length"))?;
        pos += used;
        crc = match u32::try_from(length) {
            Ok(short) => {
                let short = if swap { short.swap_bytes() } else { short };
                checksum::extend(crc, &short.to_le_bytes())
            }
            Err(_) => {
                let long = if swap { length.swap_bytes() } else { length };
                checksum::extend(crc, &long.to_le_bytes())
            }
        };
        lengths.push(length);
    }
    let raw_length_checksum = fixed32(data, pos).map_err(|_| Error::data_loss("truncated string lengths"))?;
    let length_checksum = if swap { raw_length_checksum.swap_bytes() } else { raw_length_checksum };
    if checksum::unmask(length_checksum) != crc {
        return Err(Error::data_loss(format!(
            "string length checksum mismatch: stored {:#010x}, computed {crc:#010x}",
            checksum::unmask(length_checksum)
        )));
    }
    crc = checksum::extend(crc, &raw_length_checksum.to_le_bytes());
    pos += 4;

    let available = (data.len() - pos) as u64;
    let total = lengths.iter().try_fold(0u64, |acc, &l| acc.checked_add(l));
    if total.is_none_or(|total| total > available) {
        return Err(Error::data_loss(format!("string lengths exceed the {available} bytes stored")));
    }
    let mut strings = Vec::with_capacity(lengths.len());
    for length in lengths {
        let bytes = &data[pos..pos + length as usize];
        crc = checksum::extend(crc, bytes);
        strings.push(bytes.to_vec());
        pos += length as usize;
    }
    Ok((strings, crc))
}

/// The number of bytes [`encode_strings`] gives for `strings`.
pub fn encoded_len(strings: &[&[u8]]) -> u64 {
    let varint_len = |v: u64| u64::from(64 - (v | 1).leading_zeros()).div_ceil(7);
    strings.iter().map(|s| varint_len(s.len() as u64) + s.len() as u64).sum::<u64>() + 4
}

/// Encodes strings as [`decode_strings`] reads them; returns the bytes and their checksum.
pub fn encode_strings(strings: &[&[u8]]) -> (Vec<u8>, u32) {
    let mut out = Vec::new();
    let mut crc = 0u32;
    for s in strings {
        crate::coding::put_varint64(&mut out, s.len() as u64);
        crc = match u32::try_from(s.len()) {
            Ok(short) => checksum::extend(crc, &short.to_le_bytes()),
            Err(_) => checksum::extend(crc, &(s.len() as u64).to_le_bytes()),
        };
    }
    let length_checksum = checksum::mask(crc).to_le_bytes();
    out.extend_from_slice(&length_checksum);
    crc = checksum::extend(crc, &length_checksum);
    for s in strings {
        out.extend_from_slice(s);
        crc = checksum::extend(crc, s);
    }
    (out, crc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let long = vec![b'x'; 300];
        let strings: Vec<&[u8]> = vec![b"", b"hello", &long, "ünï".as_bytes()];
        let (bytes, crc) = encode_strings(&strings);
        let (decoded, decoded_crc) = decode_strings(&bytes, 4, false).unwrap();
        assert_eq!(decoded, strings);
        assert_eq!(decoded_crc, crc);
        let huge = vec![b'y'; 20_000];
        for case in [&strings[..], &[], &[b"".as_slice()], &[&long, &huge]] {
            assert_eq!(encoded_len(case), encode_strings(case).0.len() as u64);
        }
    }

    #[test]
    fn corruption_is_detected() {
        let strings: Vec<&[u8]> = vec![b"abc", b"defgh"];
        let (bytes, crc) = encode_strings(&strings);
        assert!(decode_strings(&bytes, 3, false).is_err());
        assert!(decode_strings(&bytes, u64::MAX, false).is_err());
        assert!(decode_strings(&bytes[..bytes.len() - 1], 2, false).is_err());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            if let Ok((_, bad_crc)) = decode_strings(&bad, 2, false) {
                assert_ne!(bad_crc, crc, "flip at {i} undetected");
            }
        }
    }
}
