//! Writing a V2 checkpoint as TensorFlow's BundleWriter does, so that the same tensors added in the same order
//! give the same bytes: tensor data appended to one data file, and an index whose keys are sorted.
//!
//! A writer may also spread tensors over several data files (`WriteOptions::num_shards`), the layout of
//! TensorFlow's sharded saves, so that `add_tensors` writes them in parallel: the kernel serializes writes to
//! one file, not writes to different files.
//!
//! No file appears under its name before it is complete ([`Storage::create`]), and the data files are
//! committed first: the index appearing is what makes a checkpoint exist.
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::index::{write_index, BUNDLE_VERSION};
use super::naming::data_path;
use super::strings::{encode_strings, encoded_len};
use crate::checksum;
use crate::dtype::DType;
use crate::error::{Error, Result, ResultExt};
use crate::proto::{bundle_header_proto::Endianness, BundleEntryProto, BundleHeaderProto, VersionDef};
use crate::proto::{tensor_shape_proto::Dim, TensorShapeProto};
use crate::slices::{num_elements, TensorSlice};
use crate::storage::{Storage, WriteFile};

/// Small tensors are gathered into writes of this size; larger ones are written directly, without a copy.
const WRITE_BUFFER: usize = 256 << 10;

/// The values of one tensor to write.
#[derive(Debug, Clone, Copy)]
pub enum TensorData<'a> {
    /// A fixed-size dtype: the elements' bytes, row-major, in this machine's byte order (which the header
    /// records).
    Bytes(&'a [u8]),
    /// A string tensor: the elements, row-major.
    Strings(&'a [&'a [u8]]),
}

/// One tensor of a batch given to `BundleWriter::add_tensors`.
#[derive(Debug, Clone, Copy)]
pub struct NewTensor<'a> {
    /// The name to store it under: not empty (the empty key holds the header), and new to the checkpoint.
    pub key: &'a [u8],
    /// Its dtype; resources and variants cannot be written.
    pub dtype: DType,
    /// The size of each dimension, outermost first; empty for a scalar.
    pub shape: &'a [u64],
    /// Its values, which must fit `dtype` and `shape`.
    pub data: TensorData<'a>,
}

/// How a checkpoint is written.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Also fsync the files and their directory, so that a finished checkpoint survives a power loss.
    pub durable: bool,
    /// How many data files tensors are spread over (at least 1). One gives TensorFlow's `SaveV2` bytes.
    pub num_shards: u32,
}

impl Default for WriteOptions {
    fn default() -> WriteOptions {
        WriteOptions { durable: false, num_shards: 1 }
    }
}

/// One data file being written.
struct Shard {
    out: BufWriter<Box<dyn WriteFile>>,
    /// Bytes written so far: the offset of the next tensor.
    offset: u64,
    /// Set when a write failed: the file's length is then unknown, so no later offset can be trusted.
    failed: bool,
}

impl Shard {
    fn create(storage: &dyn Storage, target: &Path) -> Result<Shard> {
        let out = BufWriter::with_capacity(WRITE_BUFFER, storage.create(target)?);
        Ok(Shard { out, offset: 0, failed: false })
    }

    fn path(&self) -> &Path {
        self.out.get_ref().path()
    }

    /// Says that the next `len` bytes are coming ([`WriteFile::reserve`]).
    fn reserve(&mut self, len: u64) -> Result<()> {
        let end = self.offset.saturating_add(len);
        self.out.get_mut().reserve(end)
    }

    /// Writes `bytes` at the end of the file; returns their offset.
    fn write_bytes(&mut self, bytes: &[u8]) -> Result<u64> {
        if self.failed {
            return Err(Error::io(std::io::Error::other("an earlier write to this file failed"), self.path()));
        }
        if let Err(e) = self.out.write_all(bytes) {
            self.failed = true;
            return Err(Error::io(e, self.path()));
        }
        let offset = self.offset;
        self.offset += bytes.len() as u64;
        Ok(offset)
    }

    /// Appends a tensor; returns its offset, size and CRC32C.
    fn append(&mut self, data: TensorData) -> Result<(u64, u64, u32)> {
        match data {
            TensorData::Bytes(bytes) if bytes.len() >= WRITE_BUFFER => {
                // Past the buffer's size the bytes go straight to the file (no copy into the buffer), a piece
                // at a time, each checksummed right after the kernel has copied it, while it is in cache.
                self.reserve(bytes.len() as u64)?;
                let offset = self.offset;
                let mut crc = 0;
                for piece in bytes.chunks(checksum::CACHE_CHUNK) {
                    self.write_bytes(piece)?;
                    crc = checksum::extend(crc, piece);
                }
                Ok((offset, bytes.len() as u64, crc))
            }
            TensorData::Bytes(bytes) => Ok((self.write_bytes(bytes)?, bytes.len() as u64, checksum::value(bytes))),
            TensorData::Strings(strings) => {
                let (bytes, crc) = encode_strings(strings);
                Ok((self.write_bytes(&bytes)?, bytes.len() as u64, crc))
            }
        }
    }

    /// Flushes the file and commits it ([`WriteFile::commit`]).
    fn commit(self, durable: bool) -> Result<()> {
        if self.failed {
            return Err(Error::io(std::io::Error::other("an earlier write to this file failed"), self.path()));
        }
        let path = self.path().to_path_buf();
        let file = self.out.into_inner().map_err(|e| Error::io(e.into_error(), &path))?;
        file.commit(durable)
    }
}

/// Writes one V2 checkpoint.
///
/// Thread safety: `Send`, so it may move between threads (the Python layer keeps it behind a mutex). Every
/// method that writes takes `&mut self`, so one thread writes at a time; [`BundleWriter::add_tensors`] writes
/// the data files in parallel itself.
///
/// Ownership: [`BundleWriter::create`] creates every data file at once ([`Storage::create`]: invisible
/// until committed), each kept open behind a 256 KiB buffer until [`BundleWriter::finish`]; the entries stay
/// in memory until `finish` writes the index. Dropped unfinished, it removes what it wrote, and nothing at the
/// prefix changes; `finish` commits the data files, then writes the index.
///
/// Verification: each tensor is checked before any of it is written: a key neither empty nor added before,
/// data that fits its dtype and shape (an element count within an `i64`), and for a slice, that it lies inside
/// its tensor and matches the dtype and shape given for it before. The CRC32C of each tensor's bytes is
/// computed as they are written and stored in its entry. A failed write leaves its data file failed: later
/// writes to it fail, and so does `finish`, since the file's length is no longer known.
pub struct BundleWriter {
    storage: Arc<dyn Storage>,
    prefix: PathBuf,
    options: WriteOptions,
    shards: Vec<Shard>,
    entries: BTreeMap<Vec<u8>, BundleEntryProto>,
}

fn shape_proto(shape: &[u64]) -> Option<TensorShapeProto> {
    let dim = shape.iter().map(|&size| Dim { size: size as i64, name: String::new() }).collect();
    Some(TensorShapeProto { dim, unknown_rank: false })
}

/// Checks that `data` fits `dtype` and `shape`.
fn check_data(dtype: DType, shape: &[u64], data: &TensorData) -> Result<()> {
    let count = num_elements(shape).filter(|&n| n <= i64::MAX as u64);
    let Some(count) = count else {
        return Err(Error::invalid_argument(format!("shape {shape:?} has too many elements")));
    };
    match (data, dtype.size()) {
        (TensorData::Bytes(bytes), Some(size)) if bytes.len() as u64 == count.saturating_mul(size as u64) => Ok(()),
        (TensorData::Strings(strings), None) if dtype == DType::String && strings.len() as u64 == count => Ok(()),
        (TensorData::Bytes(bytes), Some(_)) => Err(Error::invalid_argument(format!(
            "{} bytes do not hold a {} tensor of shape {shape:?}",
            bytes.len(),
            dtype.name()
        ))),
        (TensorData::Strings(strings), None) if dtype == DType::String => {
            Err(Error::invalid_argument(format!("{} strings for a tensor of shape {shape:?}", strings.len())))
        }
        _ => Err(Error::invalid_argument(format!("cannot write {} tensors", dtype.name()))),
    }
}

impl BundleWriter {
    /// Starts a checkpoint at `prefix` in `storage`, creating its directory if needed.
    pub fn create(storage: Arc<dyn Storage>, prefix: impl AsRef<Path>, options: WriteOptions) -> Result<BundleWriter> {
        let prefix = prefix.as_ref().to_path_buf();
        if options.num_shards == 0 {
            return Err(Error::invalid_argument("a checkpoint needs at least one data file").in_file(&prefix));
        }
        // Creating each data file creates the directory.
        let shards = (0..options.num_shards)
            .map(|shard| Shard::create(&*storage, &data_path(&prefix, shard, options.num_shards)))
            .collect::<Result<_>>()?;
        Ok(BundleWriter { storage, prefix, options, shards, entries: BTreeMap::new() })
    }

    /// The prefix the checkpoint is written at, as given to [`BundleWriter::create`].
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The data file with the fewest bytes so far (the first of those): where the next tensor goes.
    fn lightest_shard(loads: impl Iterator<Item = u64>) -> usize {
        loads.enumerate().min_by_key(|&(shard, load)| (load, shard)).map_or(0, |(shard, _)| shard)
    }

    /// Checks that a tensor can be added under `key` without writing anything.
    fn check_new(&self, key: &[u8], dtype: DType, shape: &[u64], data: &TensorData) -> Result<()> {
        if key.is_empty() {
            return Err(Error::invalid_argument("the empty name is reserved for the header"));
        }
        if self.entries.contains_key(key) {
            return Err(Error::invalid_argument("tensor added twice"));
        }
        check_data(dtype, shape, data)
    }

    fn record(&mut self, key: &[u8], dtype: DType, shape: &[u64], shard: usize, (offset, size, crc): (u64, u64, u32)) {
        let entry = BundleEntryProto {
            dtype: dtype.as_proto(),
            shape: shape_proto(shape),
            shard_id: shard as i32,
            offset: offset as i64,
            size: size as i64,
            crc32c: checksum::mask(crc),
            slices: Vec::new(),
        };
        self.entries.insert(key.to_vec(), entry);
    }

    /// Adds a tensor under `key`; keys must be unique.
    pub fn add(&mut self, key: &[u8], dtype: DType, shape: &[u64], data: TensorData) -> Result<()> {
        self.check_new(key, dtype, shape, &data).for_key(key)?;
        let shard = Self::lightest_shard(self.shards.iter().map(|s| s.offset));
        let written = self.shards[shard].append(data).for_key(key)?;
        self.record(key, dtype, shape, shard, written);
        Ok(())
    }

    /// Adds a batch of tensors, as many `add` calls in this order would, but writing the data files in
    /// parallel. Nothing is written unless every tensor of the batch can be added.
    pub fn add_tensors(&mut self, tensors: &[NewTensor]) -> Result<()> {
        let mut batch_keys = std::collections::HashSet::with_capacity(tensors.len());
        for t in tensors {
            self.check_new(t.key, t.dtype, t.shape, &t.data).for_key(t.key)?;
            if !batch_keys.insert(t.key) {
                return Err(Error::invalid_argument("tensor added twice")).for_key(t.key);
            }
        }
        // Each tensor goes to the data file with the fewest bytes so far, as `add` would send it.
        let mut loads: Vec<u64> = self.shards.iter().map(|s| s.offset).collect();
        let mut assigned: Vec<Vec<usize>> = vec![Vec::new(); self.shards.len()];
        for (i, t) in tensors.iter().enumerate() {
            let shard = Self::lightest_shard(loads.iter().copied());
            loads[shard] += stored_size(&t.data);
            assigned[shard].push(i);
        }
        // Each data file is written by one thread, tensors whole (small ones gathered in the buffer), while the
        // other threads checksum the numeric tensors: the checksums stay off the writers' path.
        let shards = &mut self.shards;
        let (written, crcs) = rayon::join(
            || {
                shards
                    .par_iter_mut()
                    .zip(&assigned)
                    .map(|(shard, indices)| {
                        shard.reserve(indices.iter().map(|&i| stored_size(&tensors[i].data)).sum())?;
                        indices
                            .iter()
                            .map(|&i| {
                                let written = match tensors[i].data {
                                    TensorData::Bytes(bytes) => {
                                        shard.write_bytes(bytes).map(|offset| (offset, bytes.len() as u64, None))
                                    }
                                    strings => {
                                        shard.append(strings).map(|(offset, size, crc)| (offset, size, Some(crc)))
                                    }
                                };
                                written.for_key(tensors[i].key)
                            })
                            .collect()
                    })
                    .collect::<Vec<Result<Vec<_>>>>()
            },
            || {
                tensors
                    .par_iter()
                    .map(|t| match t.data {
                        TensorData::Bytes(bytes) => checksum::value(bytes),
                        TensorData::Strings(_) => 0,
                    })
                    .collect::<Vec<u32>>()
            },
        );
        // A failed write leaves its data file failed, so the checkpoint can no longer be finished.
        for ((shard, indices), written) in assigned.iter().enumerate().zip(written) {
            for (&i, (offset, size, strings_crc)) in indices.iter().zip(written?) {
                let crc = strings_crc.unwrap_or(crcs[i]);
                self.record(tensors[i].key, tensors[i].dtype, tensors[i].shape, shard, (offset, size, crc));
            }
        }
        Ok(())
    }

    /// Adds the slice `slice` of the partitioned tensor `name` of shape `full_shape`. A slice covering the
    /// whole tensor is added as the tensor itself, as TensorFlow does.
    pub fn add_slice(
        &mut self,
        name: &[u8],
        full_shape: &[u64],
        slice: &TensorSlice,
        dtype: DType,
        data: TensorData,
    ) -> Result<()> {
        let tensor_name = String::from_utf8_lossy(name).into_owned();
        let block =
            slice.resolve(full_shape).map_err(|e| Error::invalid_argument(e.message)).for_tensor(&tensor_name)?;
        let slice_shape: Vec<u64> = block.iter().map(|&(_, len)| len).collect();
        if slice_shape == full_shape {
            return self.add(name, dtype, full_shape, data);
        }
        if let Some(full) = self.entries.get(name) {
            let same_tensor = full.dtype == dtype.as_proto() && full.shape == shape_proto(full_shape);
            if !same_tensor || full.slices.is_empty() {
                return Err(Error::invalid_argument("slice does not match the tensor added before under that name")
                    .for_tensor(&tensor_name));
            }
        }
        self.add(&slice.key(name), dtype, &slice_shape, data).for_tensor(&tensor_name)?;
        let full = self.entries.entry(name.to_vec()).or_insert_with(|| BundleEntryProto {
            dtype: dtype.as_proto(),
            shape: shape_proto(full_shape),
            ..Default::default()
        });
        full.slices.push(slice.to_proto());
        Ok(())
    }

    /// Finishes the data files and writes the index; the checkpoint exists once this returns.
    pub fn finish(self) -> Result<()> {
        let durable = self.options.durable;
        let committed: Vec<Result<()>> = self.shards.into_par_iter().map(|shard| shard.commit(durable)).collect();
        committed.into_iter().collect::<Result<()>>()?;
        let header = BundleHeaderProto {
            num_shards: self.options.num_shards as i32,
            endianness: if cfg!(target_endian = "big") { Endianness::Big } else { Endianness::Little } as i32,
            version: Some(VersionDef { producer: BUNDLE_VERSION, min_consumer: 0, bad_consumers: vec![] }),
        };
        write_index(&*self.storage, &self.prefix, &header, &self.entries, self.options.durable)
    }
}

/// The bytes a tensor takes in a data file.
fn stored_size(data: &TensorData) -> u64 {
    match data {
        TensorData::Bytes(bytes) => bytes.len() as u64,
        TensorData::Strings(strings) => encoded_len(strings),
    }
}
