//! Building a block: keys are prefix-compressed against the previous key, with a full key every
//! `restart_interval` entries.
use crate::coding::put_varint64;

/// Builds the bytes of one block in memory, making LevelDB's choices: the same entries and restart interval
/// give the same bytes.
pub struct BlockBuilder {
    restart_interval: usize,
    buffer: Vec<u8>,
    restarts: Vec<u32>,
    entries_since_restart: usize,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    /// An empty block that stores a full key every `restart_interval` entries (0 is taken as 1).
    pub fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            restart_interval: restart_interval.max(1),
            buffer: Vec::new(),
            restarts: vec![0],
            entries_since_restart: 0,
            last_key: Vec::new(),
        }
    }

    /// Adds an entry; keys must be added in increasing order.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.entries_since_restart < self.restart_interval {
            key.iter().zip(&self.last_key).take_while(|(a, b)| a == b).count()
        } else {
            self.restarts.push(self.buffer.len() as u32);
            self.entries_since_restart = 0;
            0
        };
        put_varint64(&mut self.buffer, shared as u64);
        put_varint64(&mut self.buffer, (key.len() - shared) as u64);
        put_varint64(&mut self.buffer, value.len() as u64);
        self.buffer.extend_from_slice(&key[shared..]);
        self.buffer.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.entries_since_restart += 1;
    }

    /// The size the block would have if finished now.
    pub fn size_estimate(&self) -> usize {
        self.buffer.len() + 4 * self.restarts.len() + 4
    }

    /// Whether no entry was added since the last [`BlockBuilder::finish`]; a block finished empty still takes
    /// 8 bytes (its one restart point and their count).
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// Returns the block's bytes and resets the builder.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buffer);
        for restart in &self.restarts {
            out.extend_from_slice(&restart.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts = vec![0];
        self.entries_since_restart = 0;
        self.last_key.clear();
        out
    }
}
