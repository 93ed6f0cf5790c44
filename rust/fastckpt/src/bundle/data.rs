//! The data files of a V2 checkpoint: where each entry's bytes are, and the mapped files that hold them.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::naming::data_path;
use crate::error::{Error, Result};
use crate::proto::{BundleEntryProto, TensorSliceProto};

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

/// An open data file: read with `pread` for whole tensors, through its memory map for parts and views.
///
/// Ownership: keeps the file open, and all of it mapped read-only, until the last `Arc` to it is dropped: the
/// reader's, or that of a [`MappedTensor`] outliving the reader.
///
/// Thread safety: `Send` and `Sync`. Positional reads and the map share no file position, so any number of
/// threads may read it at once.
///
/// Verification: none of its own: readers bound every range against the map's length before use. The map
/// relies on the file not changing while mapped: fastckpt replaces checkpoint files by rename, never in
/// place, and a file truncated in place by another program (which makes touching the lost pages fault) is
/// beyond what any reader of a mapping can defend against.
#[derive(Debug)]
pub struct DataFile {
    /// The file's path, which errors about it name.
    pub path: PathBuf,
    pub(crate) file: File,
    pub(crate) map: Mmap,
}

/// The stored bytes of one entry (a tensor, or a stored slice of a partitioned one) inside a mapped data
/// file: a view, made without reading the bytes ([`BundleReader::mapped`](super::BundleReader::mapped) hands
/// out those of unpartitioned fixed-size tensors).
///
/// Ownership: holds its data file, open and mapped, for as long as it lives, even after the reader that made
/// it is dropped; the Python layer keeps one as the owner of each numpy array over the map.
///
/// Thread safety: `Send` and `Sync`; clones share the file.
///
/// Verification: a reader that makes one has checked that `range` lies inside the map and that its length is
/// what the entry's dtype and shape take. The bytes' CRC32C is not checked: that would read them all.
#[derive(Debug, Clone)]
pub struct MappedTensor {
    /// The data file holding the bytes.
    pub data: Arc<DataFile>,
    /// Where the bytes lie in the data file, in bytes from its start.
    pub range: std::ops::Range<usize>,
}

impl MappedTensor {
    /// The bytes as stored, unverified (for a fixed-size dtype, the elements row-major in the byte order the
    /// header records); pages are read from the file as they are first touched. Panics if `range` lies outside
    /// the map, which it never does in one a reader made.
    pub fn bytes(&self) -> &[u8] {
        &self.data.map[self.range.clone()]
    }
}

/// An entry's shard number, checked against the header's count.
pub(crate) fn shard_number(shard: i32, num_shards: i32) -> Result<u32> {
    u32::try_from(shard)
        .ok()
        .filter(|&s| (s as i64) < num_shards as i64)
        .ok_or_else(|| Error::data_loss(format!("entry names data file {shard} of {num_shards}")))
}

/// Opens and maps data file `shard` of `num_shards`.
pub(crate) fn open_shard(prefix: &Path, shard: u32, num_shards: u32) -> Result<Arc<DataFile>> {
    let path = data_path(prefix, shard, num_shards);
    let file = File::open(&path).map_err(|e| Error::io(e, &path))?;
    // Safety: checkpoint files are written under temporary names and renamed into place, never modified in
    // place; a file truncated by someone else while mapped is outside what any reader can defend against.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(e, &path))?;
    Ok(Arc::new(DataFile { path, file, map }))
}
