//! The block cache of remote objects: small reads (a `get_tensor` loop over many small tensors, rows of a table
//! read one by one) are served from blocks of [`BLOCK`] bytes fetched whole and kept, so that a loop costs about
//! what one batched read of the same bytes costs, not a request per read.
//!
//! Each miss of an object fetches a window of blocks from the first block missing: twice as many blocks as its
//! miss before, up to [`ONE_REQUEST`] (one read alone costs one block, a loop soon reads ahead in large
//! requests, and a loop in random order over a small object soon holds all of it). Beyond that the window grows
//! only while each miss follows on from where the reads before it ended (a loop in the file's order, which reads
//! the whole file): up to [`MAX_WINDOW`] blocks, fetched by concurrent requests, and at most half the cache, so
//! that a window is not dropped before it is read. Other misses (all but the second and later of a row of misses
//! following on) read ahead no further than the start of the next large read the object's reader expects (a
//! large tensor, which its own read fetches): a loop in random order over small vectors between large kernels
//! fetches the vectors, not the kernels. The
//! window is the object's, kept with its blocks, so that a loop that opens the object anew for every read
//! (`load_variable`) reads ahead as well.
//!
//! A block is named by its object, the object's version as it was opened (its ETag) and its index: a replaced
//! object is never read through another version's blocks. The cache holds at most its capacity in bytes (the
//! `block_cache_bytes` storage option, [`DEFAULT_CAPACITY`] by default; less than two blocks, 0 say, turns it
//! off), the blocks used least
//! recently dropped first.
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;

use bytes::Bytes;

/// Bytes per block (the last block of an object may be shorter).
pub(super) const BLOCK: u64 = 512 << 10;

/// The blocks of one request: 8 MiB, the size of the pieces batched reads are cut into. Any loop's window grows
/// to this; only loops in the file's order grow it further.
pub(super) const ONE_REQUEST: u64 = 16;

/// The most blocks one miss fetches (32 MiB, in concurrent requests of [`ONE_REQUEST`] blocks).
const MAX_WINDOW: u64 = 64;

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

/// How far an object is read ahead.
#[derive(Debug)]
struct Window {
    /// The blocks its next miss fetches.
    blocks: u64,
    /// The block where its last read ended: a miss there follows on.
    end: u64,
    /// How many misses in a row followed on.
    streak: u32,
    /// The large reads its reader expects, in bytes, sorted.
    large_reads: Vec<Range<u64>>,
}

impl Default for Window {
    fn default() -> Window {
        Window { blocks: 1, end: 0, streak: 0, large_reads: Vec::new() }
    }
}

#[derive(Debug, Default)]
struct State {
    blocks: HashMap<BlockId, (Bytes, u64)>,
    /// The read-ahead of each object version.
    windows: HashMap<(String, String), Window>,
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

    /// Whether the cache keeps anything: it holds at least two blocks (a smaller one would fetch a block for
    /// every read and keep none).
    pub(super) fn enabled(&self) -> bool {
        self.capacity as u64 >= 2 * BLOCK
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

    /// The blocks a miss of blocks `missing` of the object `key` at `version` (of `count` blocks) fetches: from
    /// the first missing, all of `missing` and as many as the object's window says. Widens the window.
    pub(super) fn window(&self, key: &str, version: &str, missing: Range<u64>, count: u64) -> Range<u64> {
        let most = (self.capacity as u64 / 2 / BLOCK).clamp(1, MAX_WINDOW);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.windows.len() > 1024 {
            state.windows.clear(); // objects read long ago start over at one block
        }
        let window = state.windows.entry((key.to_owned(), version.to_owned())).or_default();
        let follows_on = missing.start == window.end;
        window.streak = if follows_on { window.streak + 1 } else { 0 };
        let mut end = (missing.start + window.blocks.max(missing.end - missing.start)).min(count);
        // Only a loop in the file's order reads on into large reads (which it will make); a miss following on
        // once may be chance.
        if window.streak < 2 {
            let next_large = window.large_reads.partition_point(|large| large.end <= missing.end * BLOCK);
            if let Some(large) = window.large_reads.get(next_large) {
                end = end.min(large.start.div_ceil(BLOCK)).max(missing.end);
            }
        }
        let fetched = missing.start..end;
        window.blocks = (window.blocks * 2).min(if follows_on { most } else { most.min(ONE_REQUEST) });
        window.end = fetched.end;
        fetched
    }

    /// Notes the large reads of the object `key` at `version` its reader expects (`ranges`, sorted, apart):
    /// misses that are not part of a loop in the file's order read ahead no further than the next one.
    pub(super) fn set_large_reads(&self, key: &str, version: &str, ranges: Vec<Range<u64>>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.windows.entry((key.to_owned(), version.to_owned())).or_default().large_reads = ranges;
    }

    /// Notes that a read of the object `key` at `version` not served from blocks ended at byte `end`, so that a
    /// miss where it ended follows on.
    pub(super) fn read_ended(&self, key: &str, version: &str, end: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(window) = state.windows.get_mut(&(key.to_owned(), version.to_owned())) {
            window.end = end / BLOCK;
        }
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
        assert!(!BlockCache::new(0).enabled() && !BlockCache::new(BLOCK as usize).enabled());
        assert!(BlockCache::new(2 * BLOCK as usize).enabled());
    }

    #[test]
    fn windows_grow_to_one_request_and_beyond_it_only_in_the_files_order() {
        let cache = BlockCache::new(1 << 30);
        let mut at = 0;
        let mut sizes = Vec::new();
        for _ in 0..9 {
            let fetched = cache.window("key", "etag", at..at + 1, 1000);
            sizes.push(fetched.end - fetched.start);
            at = fetched.end;
        }
        assert_eq!(sizes, [1, 2, 4, 8, 16, 32, 64, 64, 64]);
        // A miss elsewhere fetches the window, which then shrinks back to one request.
        assert_eq!(cache.window("key", "etag", 10..11, 1000), 10..74);
        assert_eq!(cache.window("key", "etag", 500..501, 1000), 500..516);
        // Misses in random order grow it to one request, never beyond.
        let random: Vec<u64> = [7, 300, 90, 600, 20, 400, 800]
            .iter()
            .map(|&i| cache.window("key", "other", i..i + 1, 1000))
            .map(|fetched| fetched.end - fetched.start)
            .collect();
        assert_eq!(random, [1, 2, 4, 8, 16, 16, 16]);
        // A read not served from blocks that ends where the next miss is makes that miss follow on.
        cache.read_ended("key", "other", 900 * BLOCK + 10);
        assert_eq!(cache.window("key", "other", 900..901, 1000), 900..916);
        assert_eq!(cache.window("key", "other", 916..917, 1000), 916..948);
        // Every miss fetches what it misses; no window passes the end of the object, or half the cache.
        assert_eq!(cache.window("key", "third", 5..9, 1000), 5..9);
        assert_eq!(cache.window("key", "third", 9..10, 10), 9..10);
        // Misses up to the block where the next large read starts, at most, unless in a row following on.
        cache.set_large_reads("key", "fourth", vec![3 * BLOCK + 10..9 * BLOCK, 40 * BLOCK..50 * BLOCK]);
        assert_eq!(cache.window("key", "fourth", 7..8, 1000), 7..8); // inside a large read: nothing more
        assert_eq!(cache.window("key", "fourth", 20..21, 1000), 20..22);
        assert_eq!(cache.window("key", "fourth", 30..31, 1000), 30..34);
        assert_eq!(cache.window("key", "fourth", 1..2, 1000), 1..4);
        assert_eq!(cache.window("key", "fourth", 4..5, 1000), 4..5); // following on once
        assert_eq!(cache.window("key", "fourth", 5..6, 1000), 5..37); // twice: a loop in the file's order
        let small = BlockCache::new(4 * BLOCK as usize);
        let grown: Vec<u64> = (0..4).map(|i| small.window("key", "etag", 2 * i..2 * i + 1, 100).end - 2 * i).collect();
        assert_eq!(grown, [1, 2, 2, 2]);
    }
}
