//! The data files of a V2 checkpoint: where each entry's bytes are, and the views of mapped ones.
use std::path::Path;
use std::sync::Arc;

use super::naming::data_path;
use crate::error::{Error, Result};
use crate::proto::{BundleEntryProto, TensorSliceProto};
use crate::storage::{ReadFile, Storage};

/// Where an entry's bytes are, and their checksum: a `BundleEntryProto` without its dtype and shape.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    pub(crate) shard_id: i32,
    pub(crate) offset: i64,
    pub(crate) size: i64,
    pub(crate) crc32c: u32,
    /// The slices of a partitioned tensor, stored as entries of their own; empty otherwise.
    pub(crate) slices: Vec<TensorSliceProto>,
}

impl From<BundleEntryProto> for Location {
    fn from(entry: BundleEntryProto) -> Location {
        let BundleEntryProto { shard_id, offset, size, crc32c, slices, .. } = entry;
        Location { shard_id, offset, size, crc32c, slices }
    }
}

/// The stored bytes of one entry (a tensor, or a stored slice of a partitioned one) inside a data file mapped
/// from local storage: a view, made without reading the bytes
/// ([`BundleReader::mapped`](super::BundleReader::mapped) hands out those of unpartitioned fixed-size tensors).
///
/// Ownership: holds its data file, open and mapped, for as long as it lives, even after the reader that made
/// it is dropped; the Python layer keeps one as the owner of each numpy array over the map.
///
/// Thread safety: `Send` and `Sync`; clones share the file.
///
/// Verification: a reader that makes one has checked that the file is mapped, that `range` lies inside the
/// map, and that its length is what the entry's dtype and shape take. The bytes' CRC32C is not checked: that
/// would read them all.
#[derive(Debug, Clone)]
pub struct MappedTensor {
    /// The data file holding the bytes, which is mapped.
    pub(crate) data: Arc<dyn ReadFile>,
    /// Where the bytes lie in the data file, in bytes from its start.
    pub(crate) range: std::ops::Range<usize>,
}

impl MappedTensor {
    /// The bytes as stored, unverified (for a fixed-size dtype, the elements row-major in the byte order the
    /// header records); pages are read from the file as they are first touched.
    pub fn bytes(&self) -> &[u8] {
        // A reader makes one only of a mapped file and a range inside its map.
        &self.data.mapped().expect("a mapped tensor's file is mapped")[self.range.clone()]
    }

    /// The data file holding the bytes, for mapping them anew (copy-on-write, by a framework's own mapping).
    pub fn file(&self) -> &Path {
        self.data.path()
    }

    /// The size of that data file when it was opened, in bytes: a file found at its path with another size
    /// has been replaced since.
    pub fn file_size(&self) -> u64 {
        self.data.size()
    }

    /// Where the bytes lie in the data file, in bytes from its start.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.range.start as u64..self.range.end as u64
    }
}

/// An entry's shard number, checked against the header's count.
pub(crate) fn shard_number(shard: i32, num_shards: i32) -> Result<u32> {
    u32::try_from(shard)
        .ok()
        .filter(|&s| (s as i64) < num_shards as i64)
        .ok_or_else(|| Error::data_loss(format!("entry names data file {shard} of {num_shards}")))
}

/// Opens data file `shard` of `num_shards`.
pub(crate) fn open_shard(
    storage: &dyn Storage,
    prefix: &Path,
    shard: u32,
    num_shards: u32,
) -> Result<Arc<dyn ReadFile>> {
    storage.open(&data_path(prefix, shard, num_shards))
}
