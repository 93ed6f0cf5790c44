//! safetensors files: the core's `SafetensorsReader` and `SafetensorsWriter` as Python classes of those names,
//! and the dtypes the format holds.

use std::path::PathBuf;
use std::sync::Mutex;

use fastckpt::safetensors_file::{to_safetensors, SafetensorsReader, SafetensorsWriter};
use fastckpt::DType;
use numpy::{PyReadonlyArray1, PyReadwriteArray1};
use pyo3::prelude::*;

use crate::errors::{invalid_argument, to_py_err};
use crate::storage::PyStores;

/// A safetensors file opened for reading (its header read at open).
#[pyclass(frozen, module = "fastckpt._fastckpt", name = "SafetensorsReader")]
pub(crate) struct PySafetensorsReader {
    inner: SafetensorsReader,
}

#[pymethods]
impl PySafetensorsReader {
    #[new]
    #[pyo3(signature = (path, stores))]
    fn new(py: Python<'_>, path: PathBuf, stores: &PyStores) -> PyResult<Self> {
        let inner = py
            .detach(|| {
                let (storage, path) = stores.inner.resolve(&path)?;
                SafetensorsReader::open(storage.as_ref(), &path)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(PySafetensorsReader { inner })
    }

    /// The path it was opened at.
    #[getter]
    fn path(&self) -> String {
        self.inner.path().to_string_lossy().into_owned()
    }

    /// Its tensors in the order of their bytes, as `(name, dtype enum or None, stored dtype name, shape)`:
    /// the dtype enum is None for safetensors dtypes TensorFlow lacks.
    fn tensors(&self) -> Vec<(String, Option<i32>, String, Vec<u64>)> {
        let tensors = self.inner.tensors().iter();
        tensors
            .map(|t| (t.name.clone(), t.dtype.map(DType::as_proto), t.stored_dtype.clone(), t.shape.clone()))
            .collect()
    }

    /// The header's `__metadata__` strings.
    fn metadata(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.metadata().clone()
    }

    /// Fills `out` (a writable flat uint8 view) with the bytes of tensor `index` (of `tensors()`) from its
    /// byte `start` on, with the GIL released.
    fn read_into(&self, py: Python<'_>, index: usize, start: u64, mut out: PyReadwriteArray1<'_, u8>) -> PyResult<()> {
        let out = out.as_slice_mut()?;
        py.detach(|| self.inner.read(index, start, out)).map_err(|e| to_py_err(py, e))
    }
}

/// A safetensors file being written: the header at creation, then the tensors' bytes in `order()`.
#[pyclass(frozen, module = "fastckpt._fastckpt", name = "SafetensorsWriter")]
pub(crate) struct PySafetensorsWriter {
    inner: Mutex<Option<SafetensorsWriter>>,
}

impl PySafetensorsWriter {
    fn take(&self) -> Option<SafetensorsWriter> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

#[pymethods]
impl PySafetensorsWriter {
    /// Creates `path` for `tensors` (name, dtype enum, shape), with `metadata` as the header's `__metadata__`.
    #[new]
    #[pyo3(signature = (path, tensors, metadata, stores))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        tensors: Vec<(String, i32, Vec<u64>)>,
        metadata: std::collections::BTreeMap<String, String>,
        stores: &PyStores,
    ) -> PyResult<Self> {
        let tensors = tensors
            .into_iter()
            .map(|(name, dtype, shape)| {
                Ok((name.clone(), DType::from_proto(dtype).map_err(|e| e.for_tensor(&name))?, shape))
            })
            .collect::<fastckpt::Result<Vec<_>>>()
            .map_err(|e| to_py_err(py, e))?;
        let writer = py
            .detach(|| {
                let (storage, path) = stores.inner.resolve(&path)?;
                SafetensorsWriter::create(storage.as_ref(), &path, tensors, metadata)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(PySafetensorsWriter { inner: Mutex::new(Some(writer)) })
    }

    /// The tensors' names in the order their bytes are to be written.
    fn order(&self) -> PyResult<Vec<String>> {
        let guard = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let writer = guard.as_ref().ok_or_else(|| invalid_argument("the safetensors writer is closed"))?;
        Ok(writer.order().map(str::to_string).collect())
    }

    /// Appends `data` (a flat uint8 array), the next bytes in `order()`, with the GIL released.
    fn write(&self, py: Python<'_>, data: PyReadonlyArray1<'_, u8>) -> PyResult<()> {
        let data = data.as_slice()?;
        let mut guard = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let writer = guard.as_mut().ok_or_else(|| invalid_argument("the safetensors writer is closed"))?;
        py.detach(|| writer.write(data)).map_err(|e| to_py_err(py, e))
    }

    /// Finishes the file: it appears at its path now, complete.
    #[pyo3(signature = (durable=false))]
    fn commit(&self, py: Python<'_>, durable: bool) -> PyResult<()> {
        let writer = self.take().ok_or_else(|| invalid_argument("the safetensors writer is closed"))?;
        py.detach(|| writer.commit(durable)).map_err(|e| to_py_err(py, e))
    }

    /// Drops the file being written: nothing appears at its path.
    fn abort(&self) {
        self.take();
    }
}

/// The `DataType` numbers of the dtypes safetensors files hold.
#[pyfunction]
pub(crate) fn safetensors_dtypes() -> Vec<i32> {
    let table = fastckpt::dtype::TABLE.iter();
    table.filter(|row| to_safetensors(row.dtype).is_some()).map(|row| row.dtype.as_proto()).collect()
}
