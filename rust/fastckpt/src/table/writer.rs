//! Writing a table with the same choices as TensorFlow's table builder, so that the same entries give the same
//! bytes.
use super::block_builder::BlockBuilder;
use super::format::{write_raw_block, BlockHandle, Compression, Footer};

/// How a [`TableWriter`] lays out a table.
#[derive(Debug, Clone, Copy)]
pub struct TableOptions {
    /// A data block is closed once its estimated size reaches this, in bytes; an entry of twice this or more
    /// gets a block of its own.
    pub block_size: usize,
    /// Data blocks store a full key every this many entries, the others sharing a prefix with the key before
    /// (the index block stores every key in full).
    pub restart_interval: usize,
    /// How blocks are stored. With [`Compression::Snappy`], a block is stored compressed only where that saves
    /// at least an eighth of its size.
    pub compression: Compression,
}

impl Default for TableOptions {
    /// TensorFlow's choices for `.index` files: 256 KiB blocks, a restart every 16 keys, no compression.
    fn default() -> Self {
        TableOptions { block_size: 262_144, restart_interval: 16, compression: Compression::None }
    }
}

/// Builds a table in memory; keys must be added in strictly increasing order.
pub struct TableWriter {
    options: TableOptions,
    out: Vec<u8>,
    data_block: BlockBuilder,
    index_block: BlockBuilder,
    last_key: Vec<u8>,
    num_entries: u64,
    /// The handle of the last flushed data block, whose index entry waits for the next key so that it can be
    /// a short separator.
    pending_handle: Option<BlockHandle>,
}

impl TableWriter {
    /// An empty table, to be laid out as `options` say.
    pub fn new(options: TableOptions) -> Self {
        TableWriter {
            options,
            out: Vec::new(),
            data_block: BlockBuilder::new(options.restart_interval),
            index_block: BlockBuilder::new(1),
            last_key: Vec::new(),
            num_entries: 0,
            pending_handle: None,
        }
    }

    /// Adds an entry. Keys must be strictly increasing, which only debug builds check: out of order, lookups
    /// in the finished table may miss entries.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        debug_assert!(self.num_entries == 0 || key > self.last_key.as_slice(), "keys must increase");
        if self.num_entries > 0 && key.len() + value.len() >= 2 * self.options.block_size {
            self.flush();
        }
        if let Some(handle) = self.pending_handle.take() {
            shorten_to_separator(&mut self.last_key, key);
            self.add_index_entry(handle);
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.num_entries += 1;
        self.data_block.add(key, value);
        if self.data_block.size_estimate() >= self.options.block_size {
            self.flush();
        }
    }

    fn add_index_entry(&mut self, handle: BlockHandle) {
        let mut encoded = Vec::with_capacity(BlockHandle::MAX_ENCODED_LEN);
        handle.encode_to(&mut encoded);
        self.index_block.add(&self.last_key, &encoded);
    }

    fn flush(&mut self) {
        if self.data_block.is_empty() {
            return;
        }
        let contents = self.data_block.finish();
        self.pending_handle = Some(self.write_block(&contents));
    }

    fn write_block(&mut self, raw: &[u8]) -> BlockHandle {
        if self.options.compression == Compression::Snappy {
            if let Ok(compressed) = snap::raw::Encoder::new().compress_vec(raw) {
                // Compression must save at least 12.5% to be worth it.
                if compressed.len() < raw.len() - raw.len() / 8 {
                    return write_raw_block(&mut self.out, 0, &compressed, Compression::Snappy);
                }
            }
        }
        write_raw_block(&mut self.out, 0, raw, Compression::None)
    }

    /// Writes the metaindex and index blocks and the footer; returns the whole file.
    pub fn finish(mut self) -> Vec<u8> {
        self.flush();
        let metaindex = self.write_block(&BlockBuilder::new(self.options.restart_interval).finish());
        if let Some(handle) = self.pending_handle.take() {
            shorten_to_successor(&mut self.last_key);
            self.add_index_entry(handle);
        }
        let index_contents = self.index_block.finish();
        let index = self.write_block(&index_contents);
        self.out.extend_from_slice(&Footer { metaindex, index }.encode());
        self.out
    }
}

/// Shortens `start` to a key in `[start, limit)` where one exists by incrementing the first differing byte.
fn shorten_to_separator(start: &mut Vec<u8>, limit: &[u8]) {
    let common = start.iter().zip(limit).take_while(|(a, b)| a == b).count();
    if common < start.len().min(limit.len()) {
        let byte = start[common];
        if byte < 0xff && byte + 1 < limit[common] {
            start[common] += 1;
            start.truncate(common + 1);
        }
    }
}

/// Shortens `key` to a short key at least as large, by incrementing its first byte that is not 0xff.
fn shorten_to_successor(key: &mut Vec<u8>) {
    if let Some(i) = key.iter().position(|&b| b != 0xff) {
        key[i] += 1;
        key.truncate(i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Table;

    fn entries(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n).map(|i| (format!("tensor/{i:06}/kernel").into_bytes(), vec![(i % 251) as u8; i % 300])).collect()
    }

    fn read_all(table: &Table<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        table
            .for_each(|k, v| {
                out.push((k.to_vec(), v.to_vec()));
                Ok(())
            })
            .unwrap();
        out
    }

    #[test]
    fn round_trip_many_blocks() {
        for compression in [Compression::None, Compression::Snappy] {
            let options = TableOptions { block_size: 4096, compression, ..TableOptions::default() };
            let mut writer = TableWriter::new(options);
            let data = entries(3000);
            for (k, v) in &data {
                writer.add(k, v);
            }
            let table = Table::open(writer.finish()).unwrap();
            assert!(table.num_blocks() > 10);
            assert_eq!(read_all(&table), data);
            for (k, v) in data.iter().step_by(97) {
                assert_eq!(table.get(k).unwrap().as_deref(), Some(v.as_slice()));
            }
            assert!(table.get(b"tensor/0").unwrap().is_none());
            assert!(table.get(b"zzz").unwrap().is_none());
            assert!(table.get(b"").unwrap().is_none());
        }
    }

    #[test]
    fn empty_table() {
        let table = Table::open(TableWriter::new(TableOptions::default()).finish()).unwrap();
        assert_eq!(table.num_blocks(), 0);
        assert!(read_all(&table).is_empty());
    }

    #[test]
    fn separators() {
        let mut key = b"the quick brown fox".to_vec();
        shorten_to_separator(&mut key, b"the who");
        assert_eq!(key, b"the r");
        let mut key = b"abc".to_vec();
        shorten_to_separator(&mut key, b"abcd");
        assert_eq!(key, b"abc");
        let mut key = b"abc".to_vec();
        shorten_to_separator(&mut key, b"abd");
        assert_eq!(key, b"abc");
        let mut key = vec![0xff, 0xff, 3];
        shorten_to_successor(&mut key);
        assert_eq!(key, vec![0xff, 0xff, 4]);
    }

    #[test]
    fn truncated_or_flipped_tables_never_panic() {
        let mut writer = TableWriter::new(TableOptions { block_size: 256, ..TableOptions::default() });
        for (k, v) in entries(40) {
            writer.add(&k, &v);
        }
        let file = writer.finish();
        for len in 0..file.len() {
            if let Ok(table) = Table::open(file[..len].to_vec()) {
                let _ = table.for_each(|_, _| Ok(()));
            }
        }
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x41;
            if let Ok(table) = Table::open(bad) {
                let _ = table.for_each(|_, _| Ok(()));
                let _ = table.get(b"tensor/000001/kernel");
            }
        }
    }
}
