//! Storage: `Stores` (the core's `storage::Stores`), through which every file of a reader, writer or saver is
//! read, written, listed and deleted; `WriteFile`, a file written as a stream; and the names of files storage
//! leaves behind.
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use fastckpt::bundle::{merge_bundles, WriteOptions};
use fastckpt::storage::{self, Expected, FileKind, StorageOptions, WriteFile};
use fastckpt::{locate, Error};
use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{invalid_argument, to_py_err};

/// The storages of one `storage_options` configuration ([`storage::Stores`]): what a reader, writer or saver
/// makes once and passes to everything that touches its files. Local paths and `file://` URLs are local files;
/// the URLs of object stores name their bucket's store, made on first use and kept.
#[pyclass(frozen, module = "fastckpt._fastckpt", name = "Stores")]
pub(crate) struct PyStores {
    pub(crate) inner: storage::Stores,
}

#[pymethods]
impl PyStores {
    #[new]
    #[pyo3(signature = (storage_options=None))]
    fn new(storage_options: Option<StorageOptions>) -> Self {
        PyStores { inner: storage::Stores::new(storage_options.unwrap_or_default()) }
    }

    /// The name of the checkpoint `path` names (its V2 prefix, or the V1 file or pattern), without opening
    /// it; a NotACheckpointError saying what is there instead when nothing is.
    fn locate_checkpoint(&self, py: Python<'_>, path: PathBuf) -> PyResult<String> {
        py.detach(|| {
            let (storage, path) = self.inner.resolve(&path)?;
            locate(&*storage, &path)
        })
        .map(|location| location.path().to_string_lossy().into_owned())
        .map_err(|e| to_py_err(py, e))
    }

    /// Merges checkpoints into one at `merged_prefix` (TensorFlow's MergeV2Checkpoints).
    #[pyo3(signature = (prefixes, merged_prefix, durable=false))]
    fn merge_checkpoints(
        &self,
        py: Python<'_>,
        prefixes: Vec<PathBuf>,
        merged_prefix: PathBuf,
        durable: bool,
    ) -> PyResult<()> {
        let options = WriteOptions { durable, ..Default::default() };
        py.detach(|| {
            let (storage, merged_prefix) = self.inner.resolve(&merged_prefix)?;
            let prefixes =
                prefixes.iter().map(|p| Ok(self.inner.resolve(p)?.1)).collect::<fastckpt::Result<Vec<_>>>()?;
            merge_bundles(&*storage, &prefixes, &merged_prefix, options)
        })
        .map_err(|e| to_py_err(py, e))
    }

    /// The contents of the file `path`.
    fn read_file<'py>(&self, py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = py
            .detach(|| {
                let (storage, path) = self.inner.resolve(&path)?;
                storage.read(&path)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Replaces the file `path` with `data` at once: readers see the old contents or the new, never a part;
    /// with `durable`, the new contents survive a power loss. Missing directories are created.
    #[pyo3(signature = (path, data, durable=false))]
    fn write_file(&self, py: Python<'_>, path: PathBuf, data: &[u8], durable: bool) -> PyResult<()> {
        py.detach(|| {
            let (storage, path) = self.inner.resolve(&path)?;
            storage.write(&path, data, durable)
        })
        .map_err(|e| to_py_err(py, e))
    }

    /// The contents of the file `path` and their version (an opaque str that changes with every write, for
    /// `write_file_if`), or None for the version where the storage keeps none (local files).
    fn read_file_versioned<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
    ) -> PyResult<(Bound<'py, PyBytes>, Option<String>)> {
        let (bytes, version) = py
            .detach(|| {
                let (storage, path) = self.inner.resolve(&path)?;
                storage.read_versioned(&path)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok((PyBytes::new(py, &bytes), version))
    }

    /// `write_file`, only if the file is still at `expected_version` (None: only if there is no file);
    /// returns the version written. An AbortedError when another writer replaced it. Local files, which keep
    /// no versions, are written unconditionally.
    #[pyo3(signature = (path, data, expected_version, durable=false))]
    fn write_file_if(
        &self,
        py: Python<'_>,
        path: PathBuf,
        data: &[u8],
        expected_version: Option<String>,
        durable: bool,
    ) -> PyResult<Option<String>> {
        py.detach(|| {
            let (storage, path) = self.inner.resolve(&path)?;
            let expected = expected_version.as_deref().map_or(Expected::Absent, Expected::Version);
            storage.write_if(&path, data, durable, expected)
        })
        .map_err(|e| to_py_err(py, e))
    }

    /// What `path` names: "file", "directory", or None when nothing is there.
    fn file_kind(&self, py: Python<'_>, path: PathBuf) -> PyResult<Option<&'static str>> {
        let kind = py
            .detach(|| {
                let (storage, path) = self.inner.resolve(&path)?;
                storage.kind(&path)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(kind.map(|kind| match kind {
            FileKind::File => "file",
            FileKind::Directory => "directory",
        }))
    }

    /// When the file `path` was last written, in seconds since the epoch; None when it does not exist.
    fn modified_time(&self, py: Python<'_>, path: PathBuf) -> PyResult<Option<f64>> {
        let modified = py
            .detach(|| {
                let (storage, path) = self.inner.resolve(&path)?;
                storage.modified(&path)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(modified.map(seconds_since_epoch))
    }

    /// When the checkpoint `path` names was completed (seconds since the epoch: its V2 index's or V1 file's
    /// modification time), or None where no checkpoint is there.
    fn checkpoint_modified_time(&self, py: Python<'_>, path: PathBuf) -> PyResult<Option<f64>> {
        let modified = py
            .detach(|| {
                let (storage, path) = self.inner.resolve(&path)?;
                fastckpt::checkpoint_modified(storage.as_ref(), &path)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(modified.map(seconds_since_epoch))
    }

    /// The names of the entries of the directory `path`, sorted; empty when it does not exist.
    fn list_directory(&self, py: Python<'_>, path: PathBuf) -> PyResult<Vec<String>> {
        py.detach(|| {
            let (storage, path) = self.inner.resolve(&path)?;
            storage.list(&path)
        })
        .map_err(|e| to_py_err(py, e))
    }

    /// Deletes the file `path`; a file already gone is not an error.
    fn delete_file(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| {
            let (storage, path) = self.inner.resolve(&path)?;
            storage.delete(&path)
        })
        .map_err(|e| to_py_err(py, e))
    }

    /// The unfinished multipart uploads of files whose paths begin with `prefix` (a directory and the start of
    /// a file name), as (path, upload id); empty where the store cannot list them (see the core's
    /// `Storage::uploads`).
    fn uploads(&self, py: Python<'_>, prefix: PathBuf) -> PyResult<Vec<(String, String)>> {
        let uploads = py.detach(|| {
            let (storage, prefix) = self.inner.resolve(&prefix)?;
            storage.uploads(&prefix)
        });
        // URLs, as strings: a path object would merge the slashes of `s3://`.
        let uploads = uploads.map_err(|e| to_py_err(py, e))?;
        Ok(uploads.into_iter().map(|(path, id)| (path.to_string_lossy().into_owned(), id)).collect())
    }

    /// Aborts the upload `upload_id` of the file `path`, deleting its parts.
    fn abort_upload(&self, py: Python<'_>, path: PathBuf, upload_id: &str) -> PyResult<()> {
        py.detach(|| {
            let (storage, path) = self.inner.resolve(&path)?;
            storage.abort_upload(&path, upload_id)
        })
        .map_err(|e| to_py_err(py, e))
    }

    /// Deletes the checkpoint `prefix` (index first, then its data files, or a V1 checkpoint's file or
    /// shards) from one listing of its directory (`listing`, its names, when the caller has one); returns the
    /// files deleted. What is already gone is no error.
    #[pyo3(signature = (prefix, listing=None))]
    fn delete_checkpoint(
        &self,
        py: Python<'_>,
        prefix: PathBuf,
        listing: Option<Vec<String>>,
    ) -> PyResult<Vec<PathBuf>> {
        py.detach(|| {
            let (storage, prefix) = self.inner.resolve(&prefix)?;
            fastckpt::delete_checkpoint(storage.as_ref(), &prefix, listing)
        })
        .map_err(|e| to_py_err(py, e))
    }
}

pub(crate) fn seconds_since_epoch(time: std::time::SystemTime) -> f64 {
    time.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A file being written as a stream (local, or an object uploaded in parts), for writers of other formats
/// (zip archives, torch's files); nothing appears at its path until `commit`.
#[pyclass(frozen, module = "fastckpt._fastckpt", name = "WriteFile")]
pub(crate) struct PyWriteFile {
    inner: Mutex<Option<Box<dyn WriteFile>>>,
    path: PathBuf,
}

impl PyWriteFile {
    fn take(&self) -> Option<Box<dyn WriteFile>> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

#[pymethods]
impl PyWriteFile {
    #[new]
    #[pyo3(signature = (path, stores))]
    fn new(py: Python<'_>, path: PathBuf, stores: &PyStores) -> PyResult<Self> {
        let file = py
            .detach(|| {
                let (storage, path) = stores.inner.resolve(&path)?;
                storage.create(&path)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(PyWriteFile { inner: Mutex::new(Some(file)), path })
    }

    /// Appends the bytes of `data` (a flat uint8 array), with the GIL released; returns their count.
    fn write(&self, py: Python<'_>, data: PyReadonlyArray1<'_, u8>) -> PyResult<usize> {
        let bytes = data.as_slice()?;
        let mut guard = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let file = guard.as_mut().ok_or_else(|| invalid_argument("the file writer is closed"))?;
        let path = &self.path;
        py.detach(|| file.write_all(bytes).map_err(|e| Error::io(e, path))).map_err(|e| to_py_err(py, e))?;
        Ok(bytes.len())
    }

    /// Finishes the file: it appears at its path now, complete.
    #[pyo3(signature = (durable=false))]
    fn commit(&self, py: Python<'_>, durable: bool) -> PyResult<()> {
        let file = self.take().ok_or_else(|| invalid_argument("the file writer is closed"))?;
        py.detach(|| file.commit(durable)).map_err(|e| to_py_err(py, e))
    }

    /// Drops the file being written: nothing appears at its path.
    fn abort(&self) {
        self.take();
    }
}

/// Whether `path` is the URL of an object store (`s3://`, `gs://`, `az://`, `https://`, ...) rather than a
/// local path.
#[pyfunction]
pub(crate) fn is_url(path: PathBuf) -> bool {
    storage::is_url(&path)
}

/// For the name of a temporary file a fastckpt writer made, `(target name, writer's process id)`; None for
/// any other name.
#[pyfunction]
pub(crate) fn leftover_writer(file_name: &str) -> Option<(&str, u32)> {
    storage::leftover_writer(file_name)
}
