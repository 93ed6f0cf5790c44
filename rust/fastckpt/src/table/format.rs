//! Block handles, the footer and the block trailer.
use std::borrow::Cow;

use crate::checksum;
use crate::coding::{fixed32, fixed64, put_varint64, varint64};
use crate::error::{Error, Result};

/// The last 8 bytes of every table, little-endian.
pub const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Two block handles of at most 20 bytes each, padded, then the magic number.
pub const FOOTER_SIZE: usize = 2 * BlockHandle::MAX_ENCODED_LEN + 8;
/// After each block: one compression-type byte and a masked CRC32C of the block and that byte.
pub const BLOCK_TRAILER_SIZE: usize = 5;

/// How a block's bytes are stored; the discriminant is the type byte of the block's trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// As they are.
    None = 0,
    /// Compressed with Snappy (the raw format, without framing).
    Snappy = 1,
}

/// Where a block lies in the file: its offset and size, without the trailer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockHandle {
    /// The block's first byte, from the start of the file.
    pub offset: u64,
    /// The block's length in bytes, without its [`BLOCK_TRAILER_SIZE`]-byte trailer. As decoded, any number:
    /// it is bounded against the file when the block is read.
    pub size: u64,
}

impl BlockHandle {
    /// The longest an encoded handle can be: two varint64s of at most 10 bytes each.
    pub const MAX_ENCODED_LEN: usize = 20;

    /// Decodes a handle from the start of `data`; returns it and the bytes it took.
    pub fn decode(data: &[u8]) -> Result<(BlockHandle, usize)> {
        let (offset, a) = varint64(data).map_err(|_| Error::data_loss("bad block handle"))?;
        let (size, b) = varint64(&data[a..]).map_err(|_| Error::data_loss("bad block handle"))?;
        Ok((BlockHandle { offset, size }, a + b))
    }

    /// Appends the handle as [`BlockHandle::decode`] reads it: the offset, then the size, as varint64s.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        put_varint64(out, self.offset);
        put_varint64(out, self.size);
    }
}

/// The footer: handles of the metaindex and index blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// The metaindex block: empty in the tables TensorFlow and [`TableWriter`](super::TableWriter) write,
    /// and never read.
    pub metaindex: BlockHandle,
    /// The index block: for each data block, a key at least as large as its last key, and its handle.
    pub index: BlockHandle,
}

impl Footer {
    /// Decodes the footer at the end of a whole table file.
    pub fn decode(file: &[u8]) -> Result<Footer> {
        if file.len() < FOOTER_SIZE {
            return Err(Error::data_loss(format!(
                "not a table: {} bytes is shorter than the {FOOTER_SIZE}-byte footer (file truncated?)",
                file.len()
            )));
        }
        let footer = &file[file.len() - FOOTER_SIZE..];
        if fixed64(footer, FOOTER_SIZE - 8)? != TABLE_MAGIC {
            return Err(Error::data_loss("not a table (bad magic number): truncated, or not a checkpoint file"));
        }
        let (metaindex, used) = BlockHandle::decode(footer)?;
        let (index, _) = BlockHandle::decode(&footer[used..])?;
        Ok(Footer { metaindex, index })
    }

    /// The footer's [`FOOTER_SIZE`] bytes: the two handles, zero-padded to 40 bytes, then [`TABLE_MAGIC`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_SIZE);
        self.metaindex.encode_to(&mut out);
        self.index.encode_to(&mut out);
        out.resize(2 * BlockHandle::MAX_ENCODED_LEN, 0);
        out.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        out
    }
}

/// The most a Snappy block can expand: no valid stream decodes to more than ~22 bytes per input byte.
const MAX_SNAPPY_EXPANSION: usize = 32;

/// Returns the contents of the block `handle` points to in `file`, after verifying its checksum and
/// decompressing it.
pub fn read_block<'f>(file: &'f [u8], handle: BlockHandle) -> Result<Cow<'f, [u8]>> {
    let start = usize::try_from(handle.offset).ok();
    let size = usize::try_from(handle.size).ok();
    let range = start.zip(size).and_then(|(start, size)| {
        let end = start.checked_add(size)?.checked_add(BLOCK_TRAILER_SIZE)?;
        (end <= file.len()).then_some(start..end)
    });
    let Some(range) = range else {
        return Err(Error::data_loss(format!(
            "block at offset {} of {} bytes lies outside the {}-byte file (truncated?)",
            handle.offset,
            handle.size,
            file.len()
        )));
    };
    let bytes = &file[range];
    let n = bytes.len() - BLOCK_TRAILER_SIZE;
    let stored = checksum::unmask(fixed32(bytes, n + 1)?);
    let actual = checksum::value(&bytes[..=n]);
    if stored != actual {
        return Err(Error::data_loss(format!(
            "block checksum mismatch at offset {}: stored {stored:#010x}, computed {actual:#010x}",
            handle.offset
        )));
    }
    let contents = &bytes[..n];
    match bytes[n] {
        0 => Ok(Cow::Borrowed(contents)),
        1 => {
            let len = snap::raw::decompress_len(contents)
                .map_err(|e| Error::data_loss(format!("corrupt compressed block: {e}")))?;
            if len > contents.len().saturating_mul(MAX_SNAPPY_EXPANSION).saturating_add(64) {
                return Err(Error::data_loss(format!(
                    "corrupt compressed block: claims {len} bytes from {} compressed bytes",
                    contents.len()
                )));
            }
            let data = snap::raw::Decoder::new()
                .decompress_vec(contents)
                .map_err(|e| Error::data_loss(format!("corrupt compressed block: {e}")))?;
            Ok(Cow::Owned(data))
        }
        other => Err(Error::data_loss(format!("unknown block compression type {other}"))),
    }
}

/// Appends `contents` as a block with its trailer to `out`; returns its handle.
pub fn write_raw_block(out: &mut Vec<u8>, base_offset: u64, contents: &[u8], compression: Compression) -> BlockHandle {
    let handle = BlockHandle { offset: base_offset + out.len() as u64, size: contents.len() as u64 };
    out.extend_from_slice(contents);
    let crc = checksum::extend(checksum::value(contents), &[compression as u8]);
    out.push(compression as u8);
    out.extend_from_slice(&checksum::mask(crc).to_le_bytes());
    handle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trip() {
        let footer = Footer {
            metaindex: BlockHandle { offset: 1234, size: 8 },
            index: BlockHandle { offset: 1247, size: u64::MAX },
        };
        let encoded = footer.encode();
        assert_eq!(encoded.len(), FOOTER_SIZE);
        assert_eq!(&encoded[40..], &[0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb]);
        let mut file = vec![7u8; 100];
        file.extend_from_slice(&encoded);
        assert_eq!(Footer::decode(&file).unwrap(), footer);
    }

    #[test]
    fn footer_errors() {
        assert!(Footer::decode(&[0u8; 10]).is_err());
        assert!(Footer::decode(&[0u8; 48]).is_err());
    }

    #[test]
    fn block_round_trip_and_corruption() {
        let mut file = Vec::new();
        let handle = write_raw_block(&mut file, 0, b"hello", Compression::None);
        assert_eq!(&*read_block(&file, handle).unwrap(), b"hello");

        let compressed = snap::raw::Encoder::new().compress_vec(&[b'a'; 1000]).unwrap();
        let mut file = Vec::new();
        let handle = write_raw_block(&mut file, 0, &compressed, Compression::Snappy);
        assert_eq!(&*read_block(&file, handle).unwrap(), &[b'a'; 1000][..]);

        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x10;
            assert!(read_block(&bad, handle).is_err(), "flip at {i} undetected");
        }
        assert!(read_block(&file[..file.len() - 1], handle).is_err());
        assert!(read_block(&file, BlockHandle { offset: u64::MAX, size: 10 }).is_err());
        assert!(read_block(&file, BlockHandle { offset: 0, size: u64::MAX }).is_err());
    }
}
