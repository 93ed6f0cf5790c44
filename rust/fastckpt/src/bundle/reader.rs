//! Reading a V2 checkpoint: the whole `.index` is decoded at open, into two allocations per tensor (its name
//! and shape: opening a checkpoint of many small tensors is mostly allocation); data files are mapped at open.
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use prost::Message;

use super::naming::{data_path, index_path};
use super::strings::decode_strings;
use super::writer::BUNDLE_VERSION;
use crate::checksum;
use crate::dtype::{byte_swap, DType};
use crate::error::{Error, Result, ResultExt};
use crate::io::read_exact_at;
use crate::proto::{bundle_header_proto::Endianness, BundleEntryProto, BundleHeaderProto, TensorSliceProto};
use crate::slices::{self, num_elements, Selection, TensorSlice};
use crate::table::Table;
use crate::tensor::{self, shape_from_proto, TensorInfo, TensorRef};

/// `read_whole` reads whole tensors in pieces of at most this size, whose checksums it combines.
const READ_PIECE: usize = 4 << 20;

/// An open V2 checkpoint.
pub struct BundleReader {
    prefix: PathBuf,
    header: BundleHeaderProto,
    swap_bytes: bool,
    /// The tensors users see (slice entries left out), in key order.
    tensors: Vec<(Vec<u8>, TensorInfo)>,
    /// Where each tensor of `tensors` is stored.
    locations: Vec<Location>,
    /// The entries of the slices of partitioned tensors, in key order.
    slice_entries: Vec<(Vec<u8>, BundleEntryProto)>,
    /// The data files entries name that opened, mapped at open, by shard number (sorted). One that failed
    /// to open is opened again when a tensor in it is read, to report why.
    shards: Vec<(u32, Arc<DataFile>)>,
}

/// Where an entry's bytes are, and their checksum: a `BundleEntryProto` without its dtype and shape.
#[derive(Debug, Clone)]
struct Location {
    shard_id: i32,
    offset: i64,
    size: i64,
    crc32c: u32,
    /// The slices of a partitioned tensor, stored as entries of their own; empty otherwise.
    slices: Vec<TensorSliceProto>,
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
    file: File,
    map: Mmap,
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

impl std::fmt::Debug for BundleReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleReader").field("prefix", &self.prefix).field("tensors", &self.tensors.len()).finish()
    }
}

type Entries = BTreeMap<Vec<u8>, BundleEntryProto>;

/// Reads the header and the entries of `prefix.index`.
pub(crate) fn read_index(prefix: &Path) -> Result<(BundleHeaderProto, Entries)> {
    let index = index_path(prefix);
    let bytes = std::fs::read(&index).map_err(|e| Error::io(e, &index))?;
    parse_index(bytes).in_file(&index)
}

fn parse_index(bytes: Vec<u8>) -> Result<(BundleHeaderProto, Entries)> {
    // Keys come sorted from the table, which lets the map be built in bulk rather than insert by insert.
    let mut entries = Vec::new();
    let header = walk_index(bytes, |key, entry| {
        entries.push((key.to_vec(), entry));
        Ok(())
    })?;
    Ok((header, entries.into_iter().collect()))
}

/// Decodes an index: calls `visit` with each entry in key order, and returns the header. The one decoding of
/// an index, for the reader and for merges.
fn walk_index(
    bytes: Vec<u8>,
    mut visit: impl FnMut(&[u8], BundleEntryProto) -> Result<()>,
) -> Result<BundleHeaderProto> {
    let table = Table::open(bytes)?;
    let mut header = None;
    table.for_each(|key, value| {
        if key.is_empty() {
            let parsed = BundleHeaderProto::decode(value)
                .map_err(|e| Error::data_loss(format!("unparsable bundle header: {e}")))?;
            header = Some(parsed);
            return Ok(());
        }
        visit(key, decode_entry(key, value)?)
    })?;
    header.ok_or_else(|| Error::data_loss("no header entry: not a V2 checkpoint index"))
}

fn decode_entry(key: &[u8], value: &[u8]) -> Result<BundleEntryProto> {
    BundleEntryProto::decode(value)
        .map_err(|e| Error::data_loss(format!("unparsable entry: {e}")).for_tensor(&String::from_utf8_lossy(key)))
}

/// The index as a reader holds it.
struct ReaderIndex {
    header: BundleHeaderProto,
    tensors: Vec<(Vec<u8>, TensorInfo)>,
    locations: Vec<Location>,
    slice_entries: Vec<(Vec<u8>, BundleEntryProto)>,
}

/// Decodes an index in one pass. Keys of slices begin with a 0 byte (their ordered code starts with the
/// number 0), so they sort before every tensor name that does not: entries with such keys are set aside
/// until all the slices partitioned tensors list are known, and those not listed are tensors after all.
fn parse_reader_index(bytes: Vec<u8>) -> Result<ReaderIndex> {
    let mut leading = Vec::new();
    let mut slice_keys = std::collections::HashSet::new();
    let mut tensors = Vec::new();
    let mut locations = Vec::new();
    let header = walk_index(bytes, |key, entry| {
        for slice in &entry.slices {
            slice_keys.insert(TensorSlice::from_proto(slice).key(key));
        }
        if key[0] == 0 {
            leading.push((key.to_vec(), entry));
        } else {
            tensors.push((key.to_vec(), entry_info(&entry).for_key(key)?));
            locations.push(Location::from(entry));
        }
        Ok(())
    })?;
    let mut slice_entries = Vec::new();
    let mut first_tensors = Vec::new();
    let mut first_locations = Vec::new();
    for (key, entry) in leading {
        if slice_keys.contains(&key) {
            slice_entries.push((key, entry));
        } else {
            let info = entry_info(&entry).for_key(&key)?;
            first_tensors.push((key, info));
            first_locations.push(Location::from(entry));
        }
    }
    if !first_tensors.is_empty() {
        first_tensors.append(&mut tensors);
        first_locations.append(&mut locations);
        (tensors, locations) = (first_tensors, first_locations);
    }
    Ok(ReaderIndex { header, tensors, locations, slice_entries })
}

/// The stored slices of a partitioned tensor: their boxes in the full tensor, and their entries.
struct StoredSlices {
    boxes: Vec<Vec<(u64, u64)>>,
    entries: Vec<(Location, TensorInfo)>,
}

/// An entry's shard number, checked against the header's count.
fn shard_number(shard: i32, num_shards: i32) -> Result<u32> {
    u32::try_from(shard)
        .ok()
        .filter(|&s| (s as i64) < num_shards as i64)
        .ok_or_else(|| Error::data_loss(format!("entry names data file {shard} of {num_shards}")))
}

/// Opens and maps data file `shard` of `num_shards`.
fn open_shard(prefix: &Path, shard: u32, num_shards: u32) -> Result<Arc<DataFile>> {
    let path = data_path(prefix, shard, num_shards);
    let file = File::open(&path).map_err(|e| Error::io(e, &path))?;
    // Safety: checkpoint files are written under temporary names and renamed into place, never modified in
    // place; a file truncated by someone else while mapped is outside what any reader can defend against.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(e, &path))?;
    Ok(Arc::new(DataFile { path, file, map }))
}

/// The dtype and shape an entry declares, checked.
fn entry_info(entry: &BundleEntryProto) -> Result<TensorInfo> {
    Ok(TensorInfo { dtype: DType::from_proto(entry.dtype)?, shape: shape_from_proto(entry.shape.as_ref())? })
}

impl BundleReader {
    /// Opens the checkpoint with prefix `prefix` (the path without `.index`).
    pub fn open(prefix: impl AsRef<Path>) -> Result<BundleReader> {
        let prefix = prefix.as_ref().to_path_buf();
        let index = index_path(&prefix);
        let bytes = std::fs::read(&index).map_err(|e| Error::io(e, &index))?;
        Self::from_index(prefix, bytes).in_file(&index)
    }

    /// Opens a checkpoint from the bytes of its index; its data files are looked up beside `prefix`.
    pub fn from_index(prefix: PathBuf, bytes: Vec<u8>) -> Result<BundleReader> {
        let ReaderIndex { header, tensors, locations, slice_entries } = parse_reader_index(bytes)?;
        if let Some(version) = &header.version {
            if version.min_consumer > BUNDLE_VERSION || version.bad_consumers.contains(&BUNDLE_VERSION) {
                return Err(Error::unimplemented(format!(
                    "checkpoint format version (producer {}, min consumer {}) is newer than this reader ({BUNDLE_VERSION})",
                    version.producer, version.min_consumer
                )));
            }
        }
        let swap_bytes = match Endianness::try_from(header.endianness) {
            Ok(Endianness::Little) => cfg!(target_endian = "big"),
            Ok(Endianness::Big) => cfg!(target_endian = "little"),
            Err(_) => return Err(Error::data_loss(format!("unknown endianness {}", header.endianness))),
        };
        // Map the data files now: a Saver deleting this checkpoint later (max_to_keep) then cannot take them
        // away from this reader. A file that fails to open is reported when a tensor in it is read.
        let stored = locations.iter().filter(|l| l.slices.is_empty()).map(|l| l.shard_id);
        let shard_ids: std::collections::BTreeSet<i32> =
            stored.chain(slice_entries.iter().map(|(_, e)| e.shard_id)).collect();
        let shards = shard_ids
            .into_iter()
            .filter_map(|id| {
                let id = shard_number(id, header.num_shards).ok()?;
                Some((id, open_shard(&prefix, id, header.num_shards as u32).ok()?))
            })
            .collect();
        Ok(BundleReader { prefix, header, swap_bytes, tensors, locations, slice_entries, shards })
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The tensors of the checkpoint, by name in key order.
    pub fn tensors(&self) -> &[(Vec<u8>, TensorInfo)] {
        &self.tensors
    }

    /// The tensor named `key`; the one not-found error otherwise.
    pub fn find(&self, key: &[u8]) -> Result<TensorRef> {
        tensor::find(&self.tensors, key).ok_or_else(|| Error::tensor_not_found(key).in_file(&index_path(&self.prefix)))
    }

    /// The key, location and dtype and shape of a tensor found by `find`.
    fn entry(&self, t: TensorRef) -> (&[u8], &Location, &TensorInfo) {
        let (key, info) = &self.tensors[t.0];
        (key, &self.locations[t.0], info)
    }

    /// Names tensor `name` and the index file in an error, unless more precise ones are named already. Built
    /// only on error: tensors are read by the thousand.
    fn in_context<'a>(&'a self, name: &'a [u8]) -> impl Fn(Error) -> Error + 'a {
        move |e| e.for_tensor(&String::from_utf8_lossy(name)).in_file(&index_path(&self.prefix))
    }

    /// Data file `shard`.
    fn shard(&self, shard: i32) -> Result<Arc<DataFile>> {
        let shard = shard_number(shard, self.header.num_shards)?;
        match self.shards.binary_search_by_key(&shard, |(id, _)| *id) {
            Ok(i) => Ok(Arc::clone(&self.shards[i].1)),
            Err(_) => open_shard(&self.prefix, shard, self.header.num_shards as u32),
        }
    }

    /// The stored bytes of an unpartitioned entry, checked against the data file and the declared shape.
    fn entry_bytes(&self, entry: &Location, info: &TensorInfo) -> Result<MappedTensor> {
        let data = self.shard(entry.shard_id)?;
        let map = &data.map;
        let path = || data_path(&self.prefix, entry.shard_id as u32, self.header.num_shards as u32);
        let range = u64::try_from(entry.offset)
            .ok()
            .zip(u64::try_from(entry.size).ok())
            .and_then(|(offset, size)| Some(offset..offset.checked_add(size)?))
            .filter(|r| r.end <= map.len() as u64)
            .ok_or_else(|| {
                Error::data_loss(format!(
                    "entry bytes [{}, +{}) lie outside the {}-byte data file (truncated?)",
                    entry.offset,
                    entry.size,
                    map.len()
                ))
                .in_file(&path())
            })?;
        if let Some(elem) = info.dtype.size() {
            let expected = num_elements(&info.shape).unwrap_or(u64::MAX).saturating_mul(elem as u64);
            if range.end - range.start != expected {
                return Err(Error::data_loss(format!(
                    "entry holds {} bytes but a {} tensor of shape {:?} takes {expected}",
                    range.end - range.start,
                    info.dtype.name(),
                    info.shape
                ))
                .in_file(&path()));
            }
        }
        let range = range.start as usize..range.end as usize;
        Ok(MappedTensor { data, range })
    }

    /// The mapped bytes of an unpartitioned fixed-size tensor as stored, without reading or verifying them;
    /// `None` where they cannot stand for the tensor as is (partitioned, strings, the other byte order).
    pub fn mapped(&self, t: TensorRef) -> Result<Option<MappedTensor>> {
        let (name, entry, info) = self.entry(t);
        let fixed_size = info.dtype.size().is_some();
        if !entry.slices.is_empty() || !fixed_size || (self.swap_bytes && info.dtype.swap_unit() > 1) {
            return Ok(None);
        }
        self.entry_bytes(entry, info).map_err(self.in_context(name)).map(Some)
    }

    fn verify(&self, entry: &Location, actual: u32) -> Result<()> {
        let stored = checksum::unmask(entry.crc32c);
        if stored != actual {
            let path = data_path(&self.prefix, entry.shard_id as u32, self.header.num_shards as u32);
            return Err(Error::data_loss(format!(
                "checksum mismatch: stored {stored:#010x}, computed {actual:#010x} over {} bytes at offset {}",
                entry.size, entry.offset
            ))
            .in_file(&path));
        }
        Ok(())
    }

    /// The stored slices of a partitioned tensor, checked against it.
    fn slices(&self, name: &[u8], entry: &Location, info: &TensorInfo) -> Result<StoredSlices> {
        let mut slices = StoredSlices { boxes: Vec::new(), entries: Vec::new() };
        for proto in &entry.slices {
            let slice = TensorSlice::from_proto(proto);
            let block = slice.resolve(&info.shape)?;
            let key = slice.key(name);
            let found = self.slice_entries.binary_search_by(|(k, _)| k.as_slice().cmp(&key));
            let slice_entry = &self.slice_entries
                [found.map_err(|_| Error::data_loss(format!("missing the entry of slice {block:?}")))?]
            .1;
            let slice_info = entry_info(slice_entry)?;
            let block_shape: Vec<u64> = block.iter().map(|&(_, len)| len).collect();
            if slice_info.dtype != info.dtype || slice_info.shape != block_shape {
                return Err(Error::data_loss(format!(
                    "slice {block:?} is stored as {} {:?}, not {} {block_shape:?}",
                    slice_info.dtype.name(),
                    slice_info.shape,
                    info.dtype.name()
                )));
            }
            slices.boxes.push(block);
            slices.entries.push((Location::from(slice_entry.clone()), slice_info));
        }
        Ok(slices)
    }

    /// Reads the selection `sel` of a numeric tensor into `out` (row-major, native byte order). With `verify`,
    /// the checksum of every stored tensor or slice read is checked; partial reads of an unpartitioned tensor
    /// read only the bytes they need and so cannot be checked.
    pub fn read_selection(&self, t: TensorRef, sel: &Selection, verify: bool, out: &mut [u8]) -> Result<()> {
        let (name, entry, info) = self.entry(t);
        self.read_entry_into(name, entry, info, sel, verify, out).map_err(self.in_context(name))
    }

    fn read_entry_into(
        &self,
        name: &[u8],
        entry: &Location,
        info: &TensorInfo,
        sel: &Selection,
        verify: bool,
        out: &mut [u8],
    ) -> Result<()> {
        let elem = info.numeric_size()?;
        if out.len() as u64 != sel.num_elements().saturating_mul(elem as u64) {
            return Err(Error::invalid_argument(format!(
                "output buffer of {} bytes for {} elements",
                out.len(),
                sel.num_elements()
            )));
        }
        if entry.slices.is_empty() {
            let mapped = self.entry_bytes(entry, info)?;
            let bytes = mapped.bytes();
            if sel.is_full(&info.shape) {
                if verify {
                    // pread straight into the output, each piece checksummed while in cache: one copy. Not a copy
                    // from the mapping: its page faults map in the kernel's readahead window around every tensor,
                    // which inflates the process's memory for nothing.
                    let start = mapped.range.start as u64;
                    let file = &mapped.data.file;
                    let crc = checksum::fill_with_checksum_parallel(out, |offset, piece| {
                        read_exact_at(file, piece, start + offset as u64)
                    })
                    .map_err(|e| Error::io(e, &mapped.data.path))?;
                    self.verify(entry, crc)?;
                } else {
                    out.copy_from_slice(bytes);
                }
            } else {
                let full: Vec<(u64, u64)> = info.shape.iter().map(|&d| (0, d)).collect();
                sel.copy_bytes(&full, bytes, elem, out);
            }
        } else {
            let slices = self.slices(name, entry, info)?;
            let maps = slices
                .entries
                .iter()
                .map(|(slice_entry, slice_info)| self.entry_bytes(slice_entry, slice_info))
                .collect::<Result<Vec<_>>>()?;
            slices::assemble(sel, &slices.boxes, elem, out, |i| {
                let bytes = maps[i].bytes();
                if verify {
                    self.verify(&slices.entries[i].0, checksum::value_parallel(bytes))?;
                }
                Ok(Cow::Borrowed(bytes))
            })?;
        }
        if self.swap_bytes {
            byte_swap(out, info.dtype.swap_unit());
        }
        Ok(())
    }

    /// Reads whole numeric tensors, each `(name, out)` into its `out` (row-major, native byte order), on all
    /// threads; with `verify`, every tensor's checksum is checked.
    ///
    /// Unpartitioned tensors are read in the order of their bytes in the data files, each thread reading one
    /// equal share of those bytes from start to end: on a cold file the disk sees one sequential stream per
    /// thread, which the kernel's readahead serves in large requests (tensors read in name order give it short
    /// scattered ones: five times as many requests), and threads rarely fault in pages of the same array at
    /// once (threads taking turns piece by piece made a first read twice as slow). Tensors are cut in pieces
    /// of at most 4 MiB, so that shares can end inside one; each piece is checksummed while in cache, and a
    /// tensor's checksum is combined from its pieces'.
    pub fn read_whole(&self, jobs: &mut [(TensorRef, &mut [u8])], verify: bool) -> Result<()> {
        use rayon::prelude::*;
        use std::sync::atomic::{AtomicBool, Ordering};

        struct Stored<'a> {
            name: &'a [u8],
            location: &'a Location,
            unit: usize,
            mapped: MappedTensor,
        }
        let mut stored: Vec<(Stored, &mut [u8])> = Vec::new();
        let mut others: Vec<(&[u8], &Location, &TensorInfo, &mut [u8])> = Vec::new();
        for (t, out) in jobs.iter_mut() {
            let (name, location, info) = self.entry(*t);
            if !location.slices.is_empty() || info.dtype.size().is_none() {
                others.push((name, location, info, out));
                continue;
            }
            let context = self.in_context(name);
            let mapped = self.entry_bytes(location, info).map_err(&context)?;
            if out.len() != mapped.range.len() {
                let message = format!("output buffer of {} bytes for a tensor of {}", out.len(), mapped.range.len());
                return Err(context(Error::invalid_argument(message)));
            }
            let unit = if self.swap_bytes { info.dtype.swap_unit() } else { 1 };
            stored.push((Stored { name, location, unit, mapped }, out));
        }
        stored.sort_by_key(|(t, _)| (t.location.shard_id, t.mapped.range.start));

        // Pieces, in file order: (tensor, offset in the tensor, bytes to fill). Tensor i's are those from
        // first_piece[i] on.
        let mut pieces = Vec::new();
        let mut first_piece = Vec::with_capacity(stored.len());
        let mut tensors = Vec::with_capacity(stored.len());
        for (i, (tensor, out)) in stored.into_iter().enumerate() {
            first_piece.push(pieces.len());
            for (k, piece) in out.chunks_mut(READ_PIECE).enumerate() {
                pieces.push((i, k * READ_PIECE, piece));
            }
            tensors.push(tensor);
        }
        // Thread t reads the pieces of the t-th equal share of the bytes, in order.
        let threads = rayon::current_num_threads().max(1);
        let total = pieces.iter().map(|(_, _, out)| out.len()).sum::<usize>().max(1);
        let mut shares: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
        let mut before = 0;
        for (i, offset, out) in pieces {
            let share = (before as u128 * threads as u128 / total as u128) as usize;
            before += out.len();
            shares[share.min(threads - 1)].push((i, offset, out));
        }
        let failed = AtomicBool::new(false);
        // The checksums of the pieces, in order (the shares are consecutive).
        let crcs: Vec<u32> = shares
            .into_par_iter()
            .with_max_len(1)
            .map(|share| {
                let mut crcs = Vec::with_capacity(share.len());
                for (i, offset, out) in share {
                    if failed.load(Ordering::Relaxed) {
                        break; // another share failed: the error is theirs to report
                    }
                    let tensor = &tensors[i];
                    let data = &tensor.mapped.data;
                    let start = (tensor.mapped.range.start + offset) as u64;
                    let fill = |at: usize, part: &mut [u8]| read_exact_at(&data.file, part, start + at as u64);
                    let read = if verify { checksum::fill_with_checksum(out, fill) } else { fill(0, out).map(|()| 0) };
                    let crc = read.map_err(|e| {
                        failed.store(true, Ordering::Relaxed);
                        Error::io(e, &data.path).for_tensor(&String::from_utf8_lossy(tensor.name))
                    })?;
                    if tensor.unit > 1 {
                        byte_swap(out, tensor.unit);
                    }
                    crcs.push(crc);
                }
                Ok(crcs)
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        if verify {
            for (tensor, first) in tensors.iter().zip(first_piece) {
                let len = tensor.mapped.range.len();
                let piece_crc = |k: usize| crcs[first + k];
                // Combining costs microseconds: a tensor of one piece (most of them) has its piece's checksum.
                let crc = match len.div_ceil(READ_PIECE) {
                    0 => 0,
                    pieces => (1..pieces).fold(piece_crc(0), |acc, k| {
                        checksum::combine(acc, piece_crc(k), READ_PIECE.min(len - k * READ_PIECE))
                    }),
                };
                self.verify(tensor.location, crc).for_key(tensor.name)?;
            }
        }
        others.into_par_iter().try_for_each(|(name, location, info, out)| {
            self.read_entry_into(name, location, info, &Selection::full(&info.shape), verify, out)
                .map_err(self.in_context(name))
        })
    }

    /// Reads the selection `sel` of a string tensor, verifying checksums.
    pub fn read_strings(&self, t: TensorRef, sel: &Selection) -> Result<Vec<Vec<u8>>> {
        let (name, entry, info) = self.entry(t);
        self.read_entry_strings(name, entry, info, sel).map_err(self.in_context(name))
    }

    fn read_entry_strings(
        &self,
        name: &[u8],
        entry: &Location,
        info: &TensorInfo,
        sel: &Selection,
    ) -> Result<Vec<Vec<u8>>> {
        if info.dtype != DType::String {
            return Err(Error::invalid_argument(format!("a {} tensor is not a string tensor", info.dtype.name())));
        }
        let read_entry = |entry: &Location, info: &TensorInfo| -> Result<Vec<Vec<u8>>> {
            let mapped = self.entry_bytes(entry, info)?;
            let count = num_elements(&info.shape).unwrap_or(u64::MAX);
            let (strings, crc) = decode_strings(mapped.bytes(), count, self.swap_bytes)?;
            self.verify(entry, crc)?;
            Ok(strings)
        };
        if entry.slices.is_empty() {
            let strings = read_entry(entry, info)?;
            if sel.is_full(&info.shape) {
                return Ok(strings);
            }
            let full: Vec<(u64, u64)> = info.shape.iter().map(|&d| (0, d)).collect();
            let mut strings = Some(strings);
            return slices::assemble_strings(sel, &[full], |_| Ok(strings.take().unwrap_or_default()));
        }
        let slices = self.slices(name, entry, info)?;
        slices::assemble_strings(sel, &slices.boxes, |i| read_entry(&slices.entries[i].0, &slices.entries[i].1))
    }
}
