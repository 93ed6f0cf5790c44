//! Varints and fixed-width little-endian integers, decoded with bounds checks.
use crate::error::{Error, Result};

/// Reads a little-endian u32 at `pos`.
pub fn fixed32(data: &[u8], pos: usize) -> Result<u32> {
    data.get(pos..pos.wrapping_add(4))
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| Error::data_loss(format!("truncated: no 4-byte integer at offset {pos}")))
}

/// Reads a little-endian u64 at `pos`.
pub fn fixed64(data: &[u8], pos: usize) -> Result<u64> {
    data.get(pos..pos.wrapping_add(8))
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| Error::data_loss(format!("truncated: no 8-byte integer at offset {pos}")))
}

/// Decodes the varint at the start of `data`; returns it and the number of bytes it took.
pub fn varint64(data: &[u8]) -> Result<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in data.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && byte > 1 {
            break; // More than 64 bits.
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(Error::data_loss("malformed or truncated varint"))
}

/// Decodes a varint that must fit in 32 bits.
pub fn varint32(data: &[u8]) -> Result<(u32, usize)> {
    let (value, len) = varint64(data)?;
    let value = u32::try_from(value).map_err(|_| Error::data_loss("varint32 out of range"))?;
    Ok((value, len))
}

/// Appends `value` as a varint.
pub fn put_varint64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for value in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut buf = Vec::new();
            put_varint64(&mut buf, value);
            assert_eq!(varint64(&buf).unwrap(), (value, buf.len()));
        }
    }

    #[test]
    fn bad_varints_are_errors() {
        assert!(varint64(&[]).is_err());
        assert!(varint64(&[0x80, 0x80]).is_err());
        assert!(varint64(&[0xff; 11]).is_err());
        assert!(varint64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]).is_err());
        assert!(varint32(&[0xff, 0xff, 0xff, 0xff, 0x1f]).is_err());
        assert!(fixed32(&[1, 2, 3], 0).is_err());
        assert!(fixed64(&[0; 8], usize::MAX).is_err());
    }
}
