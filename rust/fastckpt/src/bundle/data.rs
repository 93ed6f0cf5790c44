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
#[derive(Debug)]
pub struct DataFile {
    pub path: PathBuf,
    pub(crate) file: File,
    pub(crate) map: Mmap,
}

/// The stored bytes of one unpartitioned tensor, inside a mapped data file.
#[derive(Debug, Clone)]
pub struct MappedTensor {
    pub data: Arc<DataFile>,
    pub range: std::ops::Range<usize>,
}

impl MappedTensor {
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
