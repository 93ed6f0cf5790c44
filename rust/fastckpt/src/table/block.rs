//! Reading a block: prefix-compressed entries followed by an array of restart points.
//!
//! Each entry is `varint32 shared, varint32 non_shared, varint32 value_len, key[shared..], value`, where the key
//! shares its first `shared` bytes with the previous key. The block ends with the offsets of the restart points
//! (entries stored with their full key) as fixed32s, and their count as a fixed32.
use std::borrow::Cow;

use crate::coding::{fixed32, varint32};
use crate::error::{Error, Result};

/// The decoded contents of one block.
pub struct Block<'a> {
    data: Cow<'a, [u8]>,
    /// Where the entries end and the restart array begins.
    entries_end: usize,
    num_restarts: usize,
}

impl<'a> Block<'a> {
    /// A block over its contents, as read from a table (checksum checked, decompressed, trailer removed),
    /// borrowed from the file or owned when decompressed. Checks only that the restart array fits; entries
    /// and restart offsets are checked as they are read.
    pub fn new(data: Cow<'a, [u8]>) -> Result<Self> {
        let len = data.len();
        if len < 4 {
            return Err(Error::data_loss(format!("block of {len} bytes is too short to hold its restart count")));
        }
        let num_restarts = fixed32(&data, len - 4)? as usize;
        let max_restarts = (len - 4) / 4;
        if num_restarts > max_restarts {
            return Err(Error::data_loss(format!("block of {len} bytes claims {num_restarts} restart points")));
        }
        let entries_end = len - 4 * (num_restarts + 1);
        Ok(Block { data, entries_end, num_restarts })
    }

    /// Walks the entries from the first.
    pub fn iter(&self) -> BlockIter<'_> {
        self.iter_from(0)
    }

    fn iter_from(&self, pos: usize) -> BlockIter<'_> {
        BlockIter { data: &self.data[..self.entries_end], pos, key: Vec::new() }
    }

    /// Walks the entries from the last restart point whose key is before `target` (LevelDB's `Seek`): the
    /// restart points are binary-searched, so only the entries of one restart interval are decoded before
    /// the first key at or after `target`.
    pub fn seek(&self, target: &[u8]) -> Result<BlockIter<'_>> {
        let (mut low, mut high) = (0, self.num_restarts);
        // Invariant: the restart points before `low` have keys before `target`; those from `high` on do not.
        while low < high {
            let mid = low + (high - low) / 2;
            let offset = self.restart(mid)?;
            // An entry at a restart point shares nothing with a previous key: started with none, the iterator
            // refuses one that claims to.
            let key_before = match self.iter_from(offset).next_entry()? {
                Some((key, _)) => key < target,
                None => false,
            };
            if key_before {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        let start = if low == 0 { 0 } else { self.restart(low - 1)? };
        Ok(self.iter_from(start))
    }

    /// The offset of restart point `i`, checked to lie among the entries.
    fn restart(&self, i: usize) -> Result<usize> {
        let offset = fixed32(&self.data, self.entries_end + 4 * i)? as usize;
        if offset > self.entries_end {
            return Err(Error::data_loss(format!("restart point {i} at {offset} lies outside the block's entries")));
        }
        Ok(offset)
    }
}

/// Walks the entries of a block in order.
pub struct BlockIter<'b> {
    data: &'b [u8],
    pos: usize,
    key: Vec<u8>,
}

impl<'b> BlockIter<'b> {
    /// The next key and value, or `None` at the end of the block. The key is valid until the next call.
    pub fn next_entry(&mut self) -> Result<Option<(&[u8], &'b [u8])>> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let mut pos = self.pos;
        let mut header = [0u32; 3];
        for field in &mut header {
            let (value, used) = varint32(&self.data[pos..]).map_err(|_| self.corrupt())?;
            *field = value;
            pos += used;
        }
        let [shared, non_shared, value_len] = header.map(|v| v as usize);
        let key_end = pos.checked_add(non_shared).ok_or_else(|| self.corrupt())?;
        let value_end = key_end.checked_add(value_len).ok_or_else(|| self.corrupt())?;
        if shared > self.key.len() || value_end > self.data.len() {
            return Err(self.corrupt());
        }
        self.key.truncate(shared);
        self.key.extend_from_slice(&self.data[pos..key_end]);
        self.pos = value_end;
        Ok(Some((&self.key, &self.data[key_end..value_end])))
    }

    fn corrupt(&self) -> Error {
        Error::data_loss(format!("corrupt block entry at offset {} of the block", self.pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::BlockBuilder;

    fn collect(block: &Block) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut iter = block.iter();
        let mut out = Vec::new();
        while let Some((k, v)) = iter.next_entry()? {
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    #[test]
    fn round_trip_with_restarts() {
        let entries: Vec<(Vec<u8>, Vec<u8>)> =
            (0..100).map(|i| (format!("key{i:04}").into_bytes(), format!("value{i}").into_bytes())).collect();
        let mut builder = BlockBuilder::new(16);
        for (k, v) in &entries {
            builder.add(k, v);
        }
        let bytes = builder.finish();
        let block = Block::new(Cow::Owned(bytes)).unwrap();
        assert_eq!(collect(&block).unwrap(), entries);
    }

    #[test]
    fn seek_starts_at_the_restart_interval_of_the_key() {
        let entries: Vec<(Vec<u8>, Vec<u8>)> =
            (0..100).map(|i| (format!("key{:04}", 2 * i).into_bytes(), vec![i as u8])).collect();
        let block = Block::new(Cow::Owned({
            let mut builder = BlockBuilder::new(16);
            entries.iter().for_each(|(k, v)| builder.add(k, v));
            builder.finish()
        }))
        .unwrap();
        let first_at_or_after = |target: &[u8]| -> Option<Vec<u8>> {
            let mut iter = block.seek(target).unwrap();
            while let Some((k, _)) = iter.next_entry().unwrap() {
                if k >= target {
                    return Some(k.to_vec());
                }
            }
            None
        };
        for i in 0..200 {
            let target = format!("key{i:04}").into_bytes();
            let expected = entries.iter().map(|(k, _)| k).find(|k| **k >= target).cloned();
            assert_eq!(first_at_or_after(&target), expected, "{i}");
        }
        assert_eq!(first_at_or_after(b""), Some(b"key0000".to_vec()));
        assert_eq!(first_at_or_after(b"z"), None);
        let empty = BlockBuilder::new(16).finish();
        assert!(Block::new(Cow::Owned(empty)).unwrap().seek(b"k").unwrap().next_entry().unwrap().is_none());
        // A restart point past the entries is corruption, not a panic.
        let bad = [0u8, 1, 1, b'k', b'v', 9, 0, 0, 0, 1, 0, 0, 0];
        assert!(Block::new(Cow::Borrowed(&bad)).unwrap().seek(b"k").is_err());
    }

    #[test]
    fn empty_block() {
        let bytes = BlockBuilder::new(16).finish();
        assert_eq!(bytes, vec![0, 0, 0, 0, 1, 0, 0, 0]);
        assert!(collect(&Block::new(Cow::Owned(bytes)).unwrap()).unwrap().is_empty());
    }

    #[test]
    fn corrupt_blocks_are_errors_not_panics() {
        assert!(Block::new(Cow::Borrowed(&[1, 2, 3])).is_err());
        assert!(Block::new(Cow::Borrowed(&[0, 0, 0, 0, 9, 0, 0, 0])).is_err());
        // shared = 5 with no previous key.
        let bad = [5u8, 1, 1, b'k', b'v', 0, 0, 0, 0, 1, 0, 0, 0];
        assert!(collect(&Block::new(Cow::Borrowed(&bad)).unwrap()).is_err());
        // value runs past the entries.
        let bad = [0u8, 1, 100, b'k', b'v', 0, 0, 0, 0, 1, 0, 0, 0];
        assert!(collect(&Block::new(Cow::Borrowed(&bad)).unwrap()).is_err());

        let mut builder = BlockBuilder::new(2);
        for i in 0..10u8 {
            builder.add(&[b'a', i], &[i; 3]);
        }
        let good = builder.finish();
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= flip;
                if let Ok(block) = Block::new(Cow::Owned(bad)) {
                    let _ = collect(&block);
                }
            }
        }
    }
}
