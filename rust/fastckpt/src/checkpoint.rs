//! One interface over both checkpoint formats.
use std::path::{Path, PathBuf};

use crate::bundle::{index_path, BundleReader};
use crate::error::{Error, Result};
use crate::locate::{locate, Location};
use crate::slices::Selection;
use crate::tensor::TensorInfo;
use crate::v1::V1Reader;

/// An open checkpoint of either format.
#[derive(Debug)]
pub enum Checkpoint {
    /// The V2 format: `P.index` and `P.data-*`.
    Bundle(BundleReader),
    /// The single-file V1 format, possibly sharded over several files.
    V1(V1Reader),
}

impl Checkpoint {
    /// Opens the checkpoint `path` names (see [`locate`]): a V2 prefix or one of its files, a V1 file or
    /// the pattern of a sharded V1 checkpoint.
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint> {
        Self::open_location(&locate(path.as_ref())?)
    }

    /// Opens a checkpoint found by [`locate`].
    pub fn open_location(location: &Location) -> Result<Checkpoint> {
        match location {
            Location::Bundle(prefix) => Ok(Checkpoint::Bundle(BundleReader::open(prefix)?)),
            Location::V1 { files, .. } => Ok(Checkpoint::V1(V1Reader::open(files)?)),
        }
    }

    /// Opens the files of a sharded V1 checkpoint together.
    pub fn open_v1(paths: &[PathBuf]) -> Result<Checkpoint> {
        Ok(Checkpoint::V1(V1Reader::open(paths)?))
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

    pub fn info(&self, name: &[u8]) -> Option<&TensorInfo> {
        let tensors = self.tensors();
        tensors.binary_search_by(|(key, _)| key.as_slice().cmp(name)).ok().map(|i| &tensors[i].1)
    }

    /// Reads the selection `sel` of a numeric tensor into `out`, row-major in native byte order. `verify`
    /// checks the checksums of V2 data (V1 files have block checksums only, always checked).
    pub fn read_into(&self, name: &[u8], sel: &Selection, verify: bool, out: &mut [u8]) -> Result<()> {
        match self {
            Checkpoint::Bundle(r) => r.read_into(name, sel, verify, out),
            Checkpoint::V1(r) => r.read_into(name, sel, out),
        }
    }

    /// Reads whole numeric tensors, each `(name, out)` pair into its `out`, on all threads.
    pub fn read_many(&self, jobs: &mut [(&[u8], &mut [u8])], verify: bool) -> Result<()> {
        use rayon::prelude::*;

        match self {
            Checkpoint::Bundle(r) => r.read_tensors(jobs, verify),
            Checkpoint::V1(r) => jobs.par_iter_mut().try_for_each(|(name, out)| {
                let info = self.info(name).ok_or_else(|| Error::tensor_not_found(name).in_file(&self.path()))?;
                r.read_into(name, &Selection::full(&info.shape), out)
            }),
        }
    }

    /// Reads the selection `sel` of a string tensor.
    pub fn read_strings(&self, name: &[u8], sel: &Selection) -> Result<Vec<Vec<u8>>> {
        match self {
            Checkpoint::Bundle(r) => r.read_strings(name, sel),
            Checkpoint::V1(r) => r.read_strings(name, sel),
        }
    }
}
