//! The order-preserving encoding of the keys under which slices of partitioned tensors are stored.
//!
//! A slice key is `num(0) string(name) num(rank)` followed by `signed(start) signed(length)` for each dimension,
//! where a full dimension has length -1.

/// Appends an unsigned number: a length byte, then the value's big-endian bytes without leading zeros.
pub fn write_num_increasing(out: &mut Vec<u8>, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = (value.leading_zeros() / 8) as usize;
    out.push((8 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a string, escaping 0x00 as 0x00 0xff and 0xff as 0xff 0x00, terminated by 0x00 0x01.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    for &byte in s {
        match byte {
            0x00 => out.extend_from_slice(&[0x00, 0xff]),
            0xff => out.extend_from_slice(&[0xff, 0x00]),
            other => out.push(other),
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Header bits of the first two bytes of a signed number encoded in `len` bytes.
const LENGTH_TO_HEADER_BITS: [[u8; 2]; 11] = [
    [0, 0],
    [0x80, 0],
    [0xc0, 0],
    [0xe0, 0],
    [0xf0, 0],
    [0xf8, 0],
    [0xfc, 0],
    [0xfe, 0],
    [0xff, 0],
    [0xff, 0x80],
    [0xff, 0xc0],
];

/// Appends a signed number: n bytes hold numbers in [-2^(7n-1), 2^(7n-1)), with the sign and the length in the
/// leading bits so that byte order is numeric order.
pub fn write_signed_num_increasing(out: &mut Vec<u8>, value: i64) {
    let magnitude = if value < 0 { !value } else { value } as u64;
    if magnitude < 64 {
        out.push(LENGTH_TO_HEADER_BITS[1][0] ^ (value as u8));
        return;
    }
    let bits = 64 - magnitude.leading_zeros() as usize; // 7..=63
    let len = bits / 7 + 1;
    let sign_byte = if value < 0 { 0xff } else { 0x00 };
    let mut buf = [sign_byte; 10];
    buf[2..].copy_from_slice(&value.to_be_bytes());
    let begin = 10 - len;
    buf[begin] ^= LENGTH_TO_HEADER_BITS[len][0];
    buf[begin + 1] ^= LENGTH_TO_HEADER_BITS[len][1];
    out.extend_from_slice(&buf[begin..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_signed_num_increasing(&mut out, v);
        out
    }

    #[test]
    fn unsigned_numbers() {
        let enc = |v| {
            let mut out = Vec::new();
            write_num_increasing(&mut out, v);
            out
        };
        assert_eq!(enc(0), vec![0]);
        assert_eq!(enc(1), vec![1, 1]);
        assert_eq!(enc(256), vec![2, 1, 0]);
        assert_eq!(enc(u64::MAX), vec![8, 255, 255, 255, 255, 255, 255, 255, 255]);
    }

    #[test]
    fn signed_numbers_match_the_documented_examples() {
        assert_eq!(signed(0x424242), vec![0xf0, 0x42, 0x42, 0x42]);
        assert_eq!(signed(-0x800), vec![0x38, 0x00]);
        assert_eq!(signed(0), vec![0x80]);
        assert_eq!(signed(-1), vec![0x7f]);
        assert_eq!(signed(63), vec![0xbf]);
        assert_eq!(signed(-64), vec![0x40]);
        assert_eq!(signed(64), vec![0xc0, 0x40]);
        assert_eq!(signed(i64::MAX).len(), 10);
        assert_eq!(signed(i64::MIN).len(), 10);
    }

    #[test]
    fn signed_encoding_preserves_order() {
        let mut values: Vec<i64> = vec![i64::MIN, -1 << 40, -70000, -8193, -8192, -65, -64, -1, 0, 1, 63, 64];
        values.extend([8191, 8192, 1 << 20, (1 << 55) - 1, 1 << 55, i64::MAX]);
        let encoded: Vec<Vec<u8>> = values.iter().map(|&v| signed(v)).collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        write_string(&mut out, b"a\x00b\xff");
        assert_eq!(out, b"a\x00\xffb\xff\x00\x00\x01");
    }
}
