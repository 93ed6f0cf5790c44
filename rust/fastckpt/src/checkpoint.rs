//! One interface over both checkpoint formats.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bundle::{index_path, BundleReader};
use crate::error::{Error, Result};
use crate::locate::{locate, Location};
use crate::slices::{DimSelection, Selection};
use crate::storage::{self, Storage, StorageOptions};
use crate::tensor::{TensorInfo, TensorRef};
use crate::v1::V1Reader;

/// An open checkpoint of either format.
///
/// Thread safety: `Send` and `Sync`. Every read takes `&self` and nothing changes after open, so any number of
/// threads may read one checkpoint at once: the Python layer shares one between threads, and
/// [`Checkpoint::read_whole`] reads on all of them.
///
/// ```
/// fn shared_between_threads<T: Send + Sync>() {}
/// shared_between_threads::<fastckpt::Checkpoint>();
/// shared_between_threads::<fastckpt::bundle::MappedTensor>();
/// fn moved_between_threads<T: Send>() {}
/// moved_between_threads::<fastckpt::bundle::BundleWriter>();
/// ```
///
/// Ownership and verification: those of the format's reader, [`BundleReader`] or [`V1Reader`]: what it keeps
/// open or mapped until dropped, which checksums it checks at open and at each read, and that it bounds every
/// offset a file holds before using it.
#[derive(Debug)]
pub enum Checkpoint {
    /// The V2 format: `P.index` and `P.data-*`.
    Bundle(BundleReader),
    /// The single-file V1 format, possibly sharded over several files.
    V1(V1Reader),
}

impl Checkpoint {
    /// Opens the checkpoint `path` names (see [`locate`]), in the storage that holds it
    /// ([`storage::resolve`], configured by `options`): a V2 prefix or one of its files, a V1 file or the
    /// pattern of a sharded V1 checkpoint.
    pub fn open(path: impl AsRef<Path>, options: &StorageOptions) -> Result<Checkpoint> {
        let (storage, path) = storage::resolve(path.as_ref(), options)?;
        let location = locate(&*storage, &path)?;
        Self::open_location(storage, &location)
    }

    /// Opens a checkpoint found by [`locate`] in `storage`.
    pub fn open_location(storage: Arc<dyn Storage>, location: &Location) -> Result<Checkpoint> {
        match location {
            Location::Bundle(prefix) => Ok(Checkpoint::Bundle(BundleReader::open(storage, prefix)?)),
            Location::V1 { files, .. } => Ok(Checkpoint::V1(V1Reader::open(&*storage, files)?)),
        }
    }

    /// The file errors about the checkpoint as a whole name: the V2 index, or the (first) V1 file.
    pub fn path(&self) -> PathBuf {
        match self {
            Checkpoint::Bundle(r) => index_path(r.prefix()),
            Checkpoint::V1(r) => r.paths().next().map(Path::to_path_buf).unwrap_or_default(),
        }
    }

    /// The tensors, by name in key order; slices of partitioned tensors are not listed.
    pub fn tensors(&self) -> &[(Vec<u8>, TensorInfo)] {
        match self {
            Checkpoint::Bundle(r) => r.tensors(),
            Checkpoint::V1(r) => r.tensors(),
        }
    }

    /// The tensor named `key`, for the reads below: the one place a name is looked up, and the one
    /// not-found error (`Key <name> not found in checkpoint`).
    pub fn find(&self, key: &[u8]) -> Result<TensorRef> {
        match self {
            Checkpoint::Bundle(r) => r.find(key),
            Checkpoint::V1(r) => r.find(key),
        }
    }

    /// Every tensor, in key order, as the references reads take.
    pub fn refs(&self) -> impl Iterator<Item = TensorRef> {
        (0..self.tensors().len()).map(TensorRef)
    }

    /// The key, dtype and shape of a tensor found by [`Checkpoint::find`].
    pub fn tensor(&self, t: TensorRef) -> (&[u8], &TensorInfo) {
        let (key, info) = &self.tensors()[t.0];
        (key, info)
    }

    /// Reads the selection `sel` of a numeric tensor into `out`, row-major in native byte order. `verify` checks the checksums of V2 data where a read covers what they cover (see
    /// [`BundleReader`]); V1 files have block checksums only, always checked.
    pub fn read_selection(&self, t: TensorRef, sel: &Selection, verify: bool, out: &mut [u8]) -> Result<()> {
        match self {
            Checkpoint::Bundle(r) => r.read_selection(t, sel, verify, out),
            Checkpoint::V1(r) => r.read_selection(t, sel, out),
        }
    }

    /// Reads rows `first..first + count` of numeric tensor `t` (indices of its first dimension; a scalar has
    /// one row) into `out`, so that a tensor larger than memory can be read in consecutive parts.
    ///
    /// `crc` carries the checksum from part to part: 0 for the first part, then what the call before
    /// returned. The part that ends the tensor checks it against the stored checksum, so a tensor read in
    /// order from row 0 is verified as a whole read verifies it. Partitioned tensors and V1 files check
    /// what their reads of a region check, and return `crc` as it was.
    pub fn read_rows(&self, t: TensorRef, first: u64, count: u64, crc: u32, out: &mut [u8]) -> Result<u32> {
        if let Checkpoint::Bundle(r) = self {
            if let Some(crc) = r.read_rows(t, first, count, crc, out)? {
                return Ok(crc);
            }
        }
        let shape = &self.tensor(t).1.shape;
        let mut dims: Vec<DimSelection> = shape.iter().map(|&d| DimSelection { start: 0, count: d, step: 1 }).collect();
        if let Some(rows) = dims.first_mut() {
            *rows = DimSelection { start: first, count, step: 1 };
        } else if (first, count) != (0, 1) {
            return Err(Error::invalid_argument("a scalar has one row, row 0").for_key(self.tensor(t).0));
        }
        let sel = Selection::new(shape, dims).map_err(|e| e.for_key(self.tensor(t).0))?;
        self.read_selection(t, &sel, true, out)?;
        Ok(crc)
    }

    /// Reads whole numeric tensors, each `(tensor, out)` pair into its `out`, on all threads.
    pub fn read_whole(&self, jobs: &mut [(TensorRef, &mut [u8])], verify: bool) -> Result<()> {
        use rayon::prelude::*;

        match self {
            Checkpoint::Bundle(r) => r.read_whole(jobs, verify),
            Checkpoint::V1(r) => jobs
                .par_iter_mut()
                .try_for_each(|(t, out)| r.read_selection(*t, &Selection::full(&self.tensor(*t).1.shape), out)),
        }
    }

    /// Reads the selection `sel` of a string tensor.
    pub fn read_strings(&self, t: TensorRef, sel: &Selection) -> Result<Vec<Vec<u8>>> {
        match self {
            Checkpoint::Bundle(r) => r.read_strings(t, sel),
            Checkpoint::V1(r) => r.read_strings(t, sel),
        }
    }
}
