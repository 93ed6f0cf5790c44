//! The block cache of remote objects: small reads (a `get_tensor` loop over many small tensors, rows of a table
//! read one by one) are served from blocks of [`BLOCK`] bytes fetched whole and kept, so that a loop costs about
//! what one batched read of the same bytes costs, not a request per read. Each miss of an object fetches a window
//! of blocks in one request, twice as many as its miss before up to [`MAX_WINDOW`]: one read alone costs one
//! block, a loop soon reads ahead in large requests. The window is the object's, kept with its blocks, so that a
//! loop that opens the object anew for every read (`load_variable`) reads ahead as well.
//!
//! A block is named by its object, the object's version as it was opened (its ETag) and its index: a replaced
//! object is never read through another version's blocks. The cache holds at most its capacity in bytes (the
//! `block_cache_bytes` storage option, [`DEFAULT_CAPACITY`] by default; 0 turns it off), the blocks used least
//! recently dropped first.
use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

/// Bytes per block (the last block of an object may be shorter).
pub(super) const BLOCK: u64 = 512 << 10;

/// The most blocks one miss fetches: 8 MiB, the size of the pieces batched reads are cut into.
pub(super) const MAX_WINDOW: u64 = 16;

/// The capacity of a cache when the `block_cache_bytes` option does not set it.
pub(super) const DEFAULT_CAPACITY: usize = 64 << 20;

/// A block: its object's key, the object's version, its index in the object.
pub(super) type BlockId = (String, String, u64);

/// Blocks of remote objects, shared by every file opened through one object storage.
///
/// Thread safety: `Send` and `Sync`; every method takes `&self` (one lock, held only to look up or insert).
#[derive(Debug)]
pub(super) struct BlockCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    blocks: HashMap<BlockId, (Bytes, u64)>,
    /// The blocks the next miss of each object version fetches.
    windows: HashMap<(String, String), u64>,
    /// Bytes held.
    size: usize,
    /// Incremented at every use: a block's last use orders evictions.
    clock: u64,
}

impl BlockCache {
    /// A cache of at most `capacity` bytes (0: nothing is kept).
    pub(super) fn new(capacity: usize) -> BlockCache {
        BlockCache { capacity, state: Mutex::default() }
    }

    /// Whether the cache keeps anything.
    pub(super) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// The block `id`, if it is kept.
    pub(super) fn get(&self, id: &BlockId) -> Option<Bytes> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.clock += 1;
        let clock = state.clock;
        let (bytes, last_use) = state.blocks.get_mut(id)?;
        *last_use = clock;
        Some(bytes.clone())
    }

    /// How many blocks a miss of the object `key` at `version` fetches now; the next miss fetches twice as many
    /// (up to [`MAX_WINDOW`]).
    pub(super) fn next_window(&self, key: &str, version: &str) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.windows.len() > 1024 {
            state.windows.clear(); // objects read long ago start over at one block
        }
        let window = state.windows.entry((key.to_owned(), version.to_owned())).or_insert(1);
        let now = *window;
        *window = (now * 2).min(MAX_WINDOW);
        now
    }

    /// Keeps the block `id`, dropping the least recently used ones until it fits. A block larger than the
    /// capacity is not kept.
    pub(super) fn insert(&self, id: BlockId, bytes: Bytes) {
        if bytes.len() > self.capacity {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.clock += 1;
        let clock = state.clock;
        if let Some((old, _)) = state.blocks.insert(id, (bytes.clone(), clock)) {
            state.size -= old.len();
        }
        state.size += bytes.len();
        while state.size > self.capacity {
            let Some(oldest) = state.blocks.iter().min_by_key(|(_, (_, last_use))| *last_use).map(|(id, _)| id.clone())
            else {
                break;
            };
            if let Some((dropped, _)) = state.blocks.remove(&oldest) {
                state.size -= dropped.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(index: u64) -> BlockId {
        ("key".to_owned(), "etag".to_owned(), index)
    }

    #[test]
    fn the_least_recently_used_blocks_go_first_and_the_size_stays_bounded() {
        let cache = BlockCache::new(10);
        cache.insert(id(0), Bytes::from_static(b"aaaa"));
        cache.insert(id(1), Bytes::from_static(b"bbbb"));
        assert!(cache.get(&id(0)).is_some()); // 1 is now the least recently used
        cache.insert(id(2), Bytes::from_static(b"cccc"));
        assert_eq!(cache.get(&id(0)).as_deref(), Some(&b"aaaa"[..]));
        assert!(cache.get(&id(1)).is_none());
        assert!(cache.get(&id(2)).is_some());
        cache.insert(id(3), Bytes::from_static(b"far too large"));
        assert!(cache.get(&id(3)).is_none());
        let other_version = ("key".to_owned(), "other".to_owned(), 0);
        assert!(cache.get(&other_version).is_none());
        assert!(!BlockCache::new(0).enabled());
        let windows: Vec<u64> = (0..6).map(|_| cache.next_window("key", "etag")).collect();
        assert_eq!(windows, [1, 2, 4, 8, 16, 16]);
        assert_eq!(cache.next_window("key", "other"), 1);
    }
}
