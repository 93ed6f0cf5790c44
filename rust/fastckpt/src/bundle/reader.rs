//! Reading a V2 checkpoint: the whole `.index` is decoded at open, into two allocations per tensor (its name
//! and shape: opening a checkpoint of many small tensors is mostly allocation); data files are mapped at open.
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::data::{open_shard, shard_number, Location, MappedTensor};
use super::index::{entry_info, parse_reader_index, ReaderIndex, BUNDLE_VERSION};
use super::naming::{data_path, index_path};
use super::strings::decode_strings;
use crate::checksum;
use crate::dtype::{byte_swap, DType};
use crate::error::{Error, Result, ResultExt};
use crate::proto::{bundle_header_proto::Endianness, BundleEntryProto, BundleHeaderProto};
use crate::slices::{self, num_elements, Selection, TensorSlice};
use crate::storage::{ReadFile, Storage};
use crate::tensor::{self, TensorInfo, TensorRef};

/// `read_whole` reads whole tensors in pieces of at most this size, whose checksums it combines.
const READ_PIECE: usize = 4 << 20;

/// An open V2 checkpoint.
///
/// Thread safety: `Send` and `Sync`. Reads take `&self` and nothing changes after open, so any number of
/// threads may read at once: reads are positional ([`ReadFile::read_at`]) or of read-only memory maps, and
/// neither moves a shared file position.
///
/// Ownership: the `.index` is read whole and decoded at open, and not kept open. The data files that entries
/// name are opened (and, on local storage, mapped) at open and stay so until the reader is dropped (or longer,
/// while a [`MappedTensor`] holds one), so that a checkpoint deleted after open (by a Saver's `max_to_keep`)
/// is still read. A data file that failed to open then is opened again by each read of a tensor in it, to
/// report why.
///
/// Verification: at open, the checksum of every block of the index, the format version, the byte order, and
/// each tensor's dtype and shape (a known dtype, its element count within an `i64`), and the size of each data
/// file opened against the end of the last entry in it (a truncated data file fails the open). At each read, before any
/// byte is touched: the entry's data file against the header's count, its byte range against the file's
/// size, its size against its dtype and shape, and the slices of a partitioned tensor against the tensor and
/// each other (no overlaps; gaps are found after copying). The CRC32C of stored bytes is checked, with
/// `verify`, on reads of a whole tensor and of every stored slice a read touches, and always for string
/// tensors; not on partial reads of an unpartitioned tensor, which read only the bytes they need, nor for the
/// views of [`BundleReader::mapped`].
pub struct BundleReader {
    storage: Arc<dyn Storage>,
    prefix: PathBuf,
    header: BundleHeaderProto,
    swap_bytes: bool,
    /// The tensors users see (slice entries left out), in key order.
    tensors: Vec<(Vec<u8>, TensorInfo)>,
    /// Where each tensor of `tensors` is stored.
    locations: Vec<Location>,
    /// The entries of the slices of partitioned tensors, in key order.
    slice_entries: Vec<(Vec<u8>, BundleEntryProto)>,
    /// The data files entries name that opened at open, by shard number (sorted). One that failed to open
    /// is opened again when a tensor in it is read, to report why.
    shards: Vec<(u32, Arc<dyn ReadFile>)>,
}

impl std::fmt::Debug for BundleReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleReader").field("prefix", &self.prefix).field("tensors", &self.tensors.len()).finish()
    }
}

/// Where an entry's bytes are: its data file, and a range checked against the file's size.
struct Stored {
    file: Arc<dyn ReadFile>,
    range: std::ops::Range<u64>,
}

impl Stored {
    /// The bytes: borrowed from the map of a local file, read from any other.
    fn bytes(&self) -> Result<Cow<'_, [u8]>> {
        let range = self.range.start as usize..self.range.end as usize;
        if let Some(map) = self.file.mapped() {
            return Ok(Cow::Borrowed(&map[range]));
        }
        let mut bytes = vec![0; range.len()];
        self.file.read_at(self.range.start, &mut bytes)?;
        Ok(Cow::Owned(bytes))
    }

    fn len(&self) -> usize {
        (self.range.end - self.range.start) as usize
    }
}

/// An unpartitioned fixed-size tensor to read whole: its name, entry, byte-swap unit (1: none) and bytes.
struct Whole<'a> {
    name: &'a [u8],
    location: &'a Location,
    unit: usize,
    stored: Stored,
}

/// An entry of the index: a tensor's (by its place in `tensors`), or a slice's (in `slice_entries`).
#[derive(Clone, Copy)]
enum IndexEntry {
    Tensor(usize),
    Slice(usize),
}

/// The stored slices of a partitioned tensor: their boxes in the full tensor, and their entries.
struct StoredSlices {
    boxes: Vec<Vec<(u64, u64)>>,
    entries: Vec<(Location, TensorInfo)>,
}

/// Each entry stored in a data file that opened (a tensor, or a slice of a partitioned one): the entry, its data
/// file's position in `shards`, and its byte range there. Entries whose range the index's numbers do not make, or
/// whose data file did not open, are left out (the reads report them).
fn stored_entries<'a>(
    shards: &'a [(u32, Arc<dyn ReadFile>)],
    locations: &'a [Location],
    slice_entries: &'a [(Vec<u8>, BundleEntryProto)],
) -> impl Iterator<Item = (IndexEntry, usize, std::ops::Range<u64>)> + 'a {
    let tensors = locations.iter().enumerate().filter(|(_, l)| l.slices.is_empty());
    let tensors = tensors.map(|(i, l)| (IndexEntry::Tensor(i), l.shard_id, l.offset, l.size));
    let slices =
        slice_entries.iter().enumerate().map(|(i, (_, e))| (IndexEntry::Slice(i), e.shard_id, e.offset, e.size));
    tensors.chain(slices).filter_map(|(entry, shard, offset, size)| {
        let shard = u32::try_from(shard).ok()?;
        let opened = shards.binary_search_by_key(&shard, |(id, _)| *id).ok()?;
        let (offset, size) = (u64::try_from(offset).ok()?, u64::try_from(size).ok()?);
        Some((entry, opened, offset..offset.checked_add(size)?))
    })
}

/// Tells each data file the ranges of its entries, each read whole when read (see
/// [`ReadFile::expect_whole_reads`]).
fn expect_whole_reads(
    shards: &[(u32, Arc<dyn ReadFile>)],
    locations: &[Location],
    slice_entries: &[(Vec<u8>, BundleEntryProto)],
) {
    // Mapped files read no further than asked: opening a local checkpoint of many tensors costs nothing more.
    if shards.iter().all(|(_, file)| file.mapped().is_some()) {
        return;
    }
    let mut ranges: Vec<Vec<std::ops::Range<u64>>> = vec![Vec::new(); shards.len()];
    for (_, opened, range) in stored_entries(shards, locations, slice_entries) {
        ranges[opened].push(range);
    }
    for ((_, file), ranges) in shards.iter().zip(ranges) {
        file.expect_whole_reads(&ranges);
    }
}

impl BundleReader {
    /// Opens the checkpoint with prefix `prefix` (the path without `.index`) in `storage`.
    pub fn open(storage: Arc<dyn Storage>, prefix: impl AsRef<Path>) -> Result<BundleReader> {
        let prefix = prefix.as_ref().to_path_buf();
        let index = index_path(&prefix);
        let bytes = storage.read(&index)?;
        Self::from_index(storage, prefix, bytes).in_file(&index)
    }

    /// Opens a checkpoint from the bytes of its index; its data files are looked up beside `prefix`.
    pub fn from_index(storage: Arc<dyn Storage>, prefix: PathBuf, bytes: Vec<u8>) -> Result<BundleReader> {
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
        let shards: Vec<(u32, Arc<dyn ReadFile>)> = shard_ids
            .into_iter()
            .filter_map(|id| {
                let id = shard_number(id, header.num_shards).ok()?;
                Some((id, open_shard(&*storage, &prefix, id, header.num_shards as u32).ok()?))
            })
            .collect();
        expect_whole_reads(&shards, &locations, &slice_entries);
        let reader = BundleReader { storage, prefix, header, swap_bytes, tensors, locations, slice_entries, shards };
        reader.check_data_file_sizes()?;
        Ok(reader)
    }

    /// Checks that every data file opened is as long as its entries need, from the sizes the storage gave at
    /// open: a truncated data file is found here, without reading it, rather than by the first read of a
    /// tensor past its end (or by none, for a listing). Entries whose range is invalid in itself (negative,
    /// overflowing) or whose data file did not open are left to the reads, which report them.
    fn check_data_file_sizes(&self) -> Result<()> {
        // Per data file opened: the end of the entry that ends last, and that entry.
        let mut needed: Vec<(u64, Option<IndexEntry>)> = vec![(0, None); self.shards.len()];
        for (entry, opened, range) in stored_entries(&self.shards, &self.locations, &self.slice_entries) {
            if range.end > needed[opened].0 {
                needed[opened] = (range.end, Some(entry));
            }
        }
        for ((shard, file), (end, last)) in self.shards.iter().zip(needed) {
            let (size, Some(last)) = (file.size(), last) else { continue };
            if end > size {
                let (name, what) = self.tensor_of(last);
                let message = format!(
                    "the data file holds {size} bytes, but the index needs {end}: {what} ends there (the data file \
                     is truncated, or is not this index's)"
                );
                let path = data_path(&self.prefix, *shard, self.header.num_shards as u32);
                return Err(Error::data_loss(message).in_file(&path).for_key(name));
            }
        }
        Ok(())
    }

    /// The name of the tensor an entry belongs to, and what the entry is of it: the tensor, or one of its slices.
    /// Looked up only for an error: a slice's key does not name its tensor as such.
    fn tensor_of(&self, entry: IndexEntry) -> (&[u8], &'static str) {
        match entry {
            IndexEntry::Tensor(i) => (&self.tensors[i].0, "the last tensor stored in it"),
            IndexEntry::Slice(i) => {
                let key = &self.slice_entries[i].0;
                let partitioned = self.tensors.iter().zip(&self.locations).find(|((name, _), location)| {
                    location.slices.iter().any(|slice| &TensorSlice::from_proto(slice).key(name) == key)
                });
                match partitioned {
                    Some(((name, _), _)) => (name, "a slice of the last tensor stored in it"),
                    None => (key, "the last slice stored in it"),
                }
            }
        }
    }

    /// The prefix the checkpoint was opened at, as given: the path of its files without `.index` or
    /// `.data-*`.
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
    fn shard(&self, shard: i32) -> Result<Arc<dyn ReadFile>> {
        let shard = shard_number(shard, self.header.num_shards)?;
        match self.shards.binary_search_by_key(&shard, |(id, _)| *id) {
            Ok(i) => Ok(Arc::clone(&self.shards[i].1)),
            Err(_) => open_shard(&*self.storage, &self.prefix, shard, self.header.num_shards as u32),
        }
    }

    /// Where the bytes of an unpartitioned entry are, checked against the data file and the declared shape.
    fn stored(&self, entry: &Location, info: &TensorInfo) -> Result<Stored> {
        let file = self.shard(entry.shard_id)?;
        let file_size = file.size();
        let path = || data_path(&self.prefix, entry.shard_id as u32, self.header.num_shards as u32);
        let range = u64::try_from(entry.offset)
            .ok()
            .zip(u64::try_from(entry.size).ok())
            .and_then(|(offset, size)| Some(offset..offset.checked_add(size)?))
            .filter(|r| r.end <= file_size && usize::try_from(r.end).is_ok())
            .ok_or_else(|| {
                Error::data_loss(format!(
                    "entry bytes [{}, +{}) lie outside the {file_size}-byte data file (truncated?)",
                    entry.offset, entry.size,
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
        Ok(Stored { file, range })
    }

    /// Reads rows `first..first + count` of an unpartitioned fixed-size tensor, as [`Checkpoint::read_rows`]
    /// says; `None` for other tensors, which the caller reads by selection.
    ///
    /// [`Checkpoint::read_rows`]: crate::Checkpoint::read_rows
    pub fn read_rows(&self, t: TensorRef, first: u64, count: u64, crc: u32, out: &mut [u8]) -> Result<Option<u32>> {
        let (name, entry, info) = self.entry(t);
        let Some(elem) = info.dtype.size() else { return Ok(None) };
        if !entry.slices.is_empty() {
            return Ok(None);
        }
        let context = self.in_context(name);
        let stored = self.stored(entry, info).map_err(&context)?;
        let rows = info.shape.first().copied().unwrap_or(1);
        let row_bytes = num_elements(info.shape.get(1..).unwrap_or(&[])).unwrap_or(0) * elem as u64;
        let end = first.checked_add(count).filter(|&end| end <= rows);
        if end.is_none() || out.len() as u64 != count * row_bytes {
            let message = format!(
                "rows {first}..+{count} into {} bytes, of a tensor of {rows} rows of {row_bytes} bytes",
                out.len()
            );
            return Err(context(Error::invalid_argument(message)));
        }
        let start = stored.range.start + first * row_bytes;
        let file = &stored.file;
        let part_crc = if file.mapped().is_some() {
            checksum::fill_with_checksum_parallel(out, |at, part| file.read_at(start + at as u64, part))
        } else {
            file.read_ranges_checksummed(vec![(start, &mut *out)]).map(|crcs| crcs[0])
        }
        .map_err(&context)?;
        let crc = if first == 0 { part_crc } else { checksum::combine(crc, part_crc, out.len()) };
        if end == Some(rows) {
            self.verify(entry, crc).map_err(&context)?;
        }
        if self.swap_bytes {
            byte_swap(out, info.dtype.swap_unit());
        }
        Ok(Some(crc))
    }

    /// The mapped bytes of an unpartitioned fixed-size tensor as stored, without reading or verifying them;
    /// `None` where they cannot stand for the tensor as is (partitioned, strings, the other byte order) or are
    /// not mapped (storage that is not local).
    pub fn mapped(&self, t: TensorRef) -> Result<Option<MappedTensor>> {
        let (name, entry, info) = self.entry(t);
        let fixed_size = info.dtype.size().is_some();
        if !entry.slices.is_empty() || !fixed_size || (self.swap_bytes && info.dtype.swap_unit() > 1) {
            return Ok(None);
        }
        let stored = self.stored(entry, info).map_err(self.in_context(name))?;
        if stored.file.mapped().is_none() {
            return Ok(None);
        }
        let range = stored.range.start as usize..stored.range.end as usize;
        Ok(Some(MappedTensor { data: stored.file, range }))
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
            let stored = self.stored(entry, info)?;
            if sel.is_full(&info.shape) && stored.file.mapped().is_none() {
                // Remote: one read, fetched in concurrent pieces, then checksummed.
                stored.file.read_at(stored.range.start, out)?;
                if verify {
                    self.verify(entry, checksum::value_parallel(out))?;
                }
            } else if sel.is_full(&info.shape) {
                if verify {
                    // Read straight into the output, each piece checksummed while in cache: one copy. Not a copy
                    // from the mapping: its page faults map in the kernel's readahead window around every tensor,
                    // which inflates the process's memory for nothing.
                    let start = stored.range.start;
                    let file = &stored.file;
                    let crc = checksum::fill_with_checksum_parallel(out, |offset, piece| {
                        file.read_at(start + offset as u64, piece)
                    })?;
                    if verify {
                        self.verify(entry, crc)?;
                    }
                } else {
                    out.copy_from_slice(&stored.bytes()?);
                }
            } else if stored.file.mapped().is_none() {
                self.read_remote_selection(&stored, info, sel, elem, out)?;
            } else {
                let full: Vec<(u64, u64)> = info.shape.iter().map(|&d| (0, d)).collect();
                sel.copy_bytes(&full, &stored.bytes()?, elem, out);
            }
        } else {
            let slices = self.slices(name, entry, info)?;
            let stored = slices
                .entries
                .iter()
                .map(|(slice_entry, slice_info)| self.stored(slice_entry, slice_info))
                .collect::<Result<Vec<_>>>()?;
            slices::assemble(sel, &slices.boxes, elem, out, |i| {
                let bytes = stored[i].bytes()?;
                if verify {
                    self.verify(&slices.entries[i].0, checksum::value_parallel(&bytes))?;
                }
                Ok(bytes)
            })?;
        }
        if self.swap_bytes {
            byte_swap(out, info.dtype.swap_unit());
        }
        Ok(())
    }

    /// Reads part of an unpartitioned tensor of a remote file: only the bytes of the selected runs of
    /// elements, fetched concurrently ([`ReadFile::read_ranges`]), then copied into `out`.
    fn read_remote_selection(
        &self,
        stored: &Stored,
        info: &TensorInfo,
        sel: &Selection,
        elem: usize,
        out: &mut [u8],
    ) -> Result<()> {
        let full: Vec<(u64, u64)> = info.shape.iter().map(|&d| (0, d)).collect();
        // (first element in the tensor, first element in `out`, elements, step between them)
        let mut runs = Vec::new();
        sel.for_each_run(&full, |src, dst, count, step| runs.push((src, dst, count, step)));
        let mut fetched: Vec<Vec<u8>> =
            runs.iter().map(|&(_, _, count, step)| vec![0u8; ((count - 1) * step + 1) * elem]).collect();
        let ranges = runs
            .iter()
            .zip(fetched.iter_mut())
            .map(|(&(src, ..), bytes)| (stored.range.start + (src * elem) as u64, bytes.as_mut_slice()))
            .collect();
        stored.file.read_ranges(ranges)?;
        for (&(_, dst, count, step), bytes) in runs.iter().zip(&fetched) {
            if step == 1 {
                out[dst * elem..(dst + count) * elem].copy_from_slice(bytes);
                continue;
            }
            for i in 0..count {
                let (from, to) = (i * step * elem, (dst + i) * elem);
                out[to..to + elem].copy_from_slice(&bytes[from..from + elem]);
            }
        }
        Ok(())
    }

    /// Reads whole numeric tensors, each `(name, out)` into its `out` (row-major, native byte order), on all
    /// threads; with `verify`, every tensor's checksum is checked. Unpartitioned tensors of local files are
    /// read as [`BundleReader::read_local`] says, those of remote ones by concurrent range requests.
    pub fn read_whole(&self, jobs: &mut [(TensorRef, &mut [u8])], verify: bool) -> Result<()> {
        use rayon::prelude::*;

        let mut stored: Vec<(Whole, &mut [u8])> = Vec::new();
        let mut others: Vec<(&[u8], &Location, &TensorInfo, &mut [u8])> = Vec::new();
        for (t, out) in jobs.iter_mut() {
            let (name, location, info) = self.entry(*t);
            if !location.slices.is_empty() || info.dtype.size().is_none() {
                others.push((name, location, info, out));
                continue;
            }
            let context = self.in_context(name);
            let whole = self.stored(location, info).map_err(&context)?;
            if out.len() != whole.len() {
                let message = format!("output buffer of {} bytes for a tensor of {}", out.len(), whole.len());
                return Err(context(Error::invalid_argument(message)));
            }
            let unit = if self.swap_bytes { info.dtype.swap_unit() } else { 1 };
            stored.push((Whole { name, location, unit, stored: whole }, out));
        }
        stored.sort_by_key(|(t, _)| (t.location.shard_id, t.stored.range.start));
        // Every data file of a checkpoint is in one storage: local (mapped) or not.
        if stored.first().is_some_and(|(t, _)| t.stored.file.mapped().is_some()) {
            self.read_local(stored, verify)?;
        } else {
            self.read_remote(stored, verify)?;
        }
        others.into_par_iter().try_for_each(|(name, location, info, out)| {
            self.read_entry_into(name, location, info, &Selection::full(&info.shape), verify, out)
                .map_err(self.in_context(name))
        })
    }

    /// Reads whole unpartitioned tensors of local files, sorted by their place in the data files.
    ///
    /// Each thread reads one equal share of the bytes from start to end: on a cold file the disk sees one
    /// sequential stream per thread, which the kernel's readahead serves in large requests (tensors read in
    /// name order give it short scattered ones: five times as many requests), and threads rarely fault in
    /// pages of the same array at once (threads taking turns piece by piece made a first read twice as slow).
    /// Tensors are cut in pieces of at most 4 MiB, so that shares can end inside one; each piece is
    /// checksummed while in cache, and a tensor's checksum is combined from its pieces'.
    fn read_local(&self, stored: Vec<(Whole, &mut [u8])>, verify: bool) -> Result<()> {
        use rayon::prelude::*;
        use std::sync::atomic::{AtomicBool, Ordering};

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
                    let file = &tensor.stored.file;
                    let start = tensor.stored.range.start + offset as u64;
                    let fill = |at: usize, part: &mut [u8]| file.read_at(start + at as u64, part);
                    let read = if verify { checksum::fill_with_checksum(out, fill) } else { fill(0, out).map(|()| 0) };
                    let crc = read.map_err(|e| {
                        failed.store(true, Ordering::Relaxed);
                        e.for_key(tensor.name)
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
                let len = tensor.stored.len();
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
        Ok(())
    }

    /// Reads whole unpartitioned tensors of remote files: every tensor of a data file in one batch of
    /// concurrent range requests ([`ReadFile::read_ranges_checksummed`]), checksummed as the bytes arrive.
    fn read_remote(&self, stored: Vec<(Whole, &mut [u8])>, verify: bool) -> Result<()> {
        use rayon::prelude::*;

        let (tensors, mut outs): (Vec<Whole>, Vec<&mut [u8]>) = stored.into_iter().unzip();
        // Sorted by data file: each file's tensors are one batch.
        let mut start = 0;
        while start < tensors.len() {
            let shard = tensors[start].location.shard_id;
            let end = start + tensors[start..].iter().take_while(|t| t.location.shard_id == shard).count();
            let batch = &tensors[start..end];
            let ranges =
                batch.iter().zip(outs[start..end].iter_mut()).map(|(t, out)| (t.stored.range.start, &mut **out));
            let file = &batch[0].stored.file;
            if verify {
                let crcs = file.read_ranges_checksummed(ranges.collect()).for_key(batch[0].name)?;
                for (tensor, crc) in batch.iter().zip(crcs) {
                    self.verify(tensor.location, crc).for_key(tensor.name)?;
                }
            } else {
                file.read_ranges(ranges.collect()).for_key(batch[0].name)?;
            }
            start = end;
        }
        tensors.par_iter().zip(outs.par_iter_mut()).filter(|(tensor, _)| tensor.unit > 1).for_each(|(tensor, out)| {
            byte_swap(out, tensor.unit);
        });
        Ok(())
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
            let stored = self.stored(entry, info)?;
            let count = num_elements(&info.shape).unwrap_or(u64::MAX);
            let (strings, crc) = decode_strings(&stored.bytes()?, count, self.swap_bytes)?;
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
