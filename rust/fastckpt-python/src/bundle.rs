//! Writing bundles: the core's `BundleWriter` as the Python class `BundleWriter`, and the tensors' data it
//! borrows from Python while it writes them.
use std::path::PathBuf;
use std::sync::Mutex;

use fastckpt::bundle::{BundleWriter, NewTensor, TensorData, WriteOptions};
use fastckpt::slices::TensorSlice;
use fastckpt::{DType, Error};
use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::errors::{invalid_argument, to_py_err};
use crate::storage::PyStores;

/// The data of a tensor to write, borrowed from Python: a flat uint8 array, or a list of bytes for strings.
pub(crate) enum HeldData<'py> {
    Array(PyReadonlyArray1<'py, u8>),
    Strings(Vec<Bound<'py, PyBytes>>),
}

impl<'py> HeldData<'py> {
    /// The data of tensor `name`: a flat uint8 array, or a list of bytes.
    fn extract(data: &Bound<'py, PyAny>, name: &[u8]) -> PyResult<HeldData<'py>> {
        if let Ok(array) = data.extract::<PyReadonlyArray1<u8>>() {
            return Ok(HeldData::Array(array));
        }
        let strings = data
            .cast::<PyList>()
            .ok()
            .and_then(|list| list.iter().map(|item| item.cast_into::<PyBytes>()).collect::<Result<Vec<_>, _>>().ok());
        strings.map(HeldData::Strings).ok_or_else(|| {
            let message = format!("the data of a tensor must be a flat uint8 array or a list of bytes, not {data}");
            to_py_err(data.py(), Error::invalid_argument(message).for_key(name))
        })
    }

    /// The elements of a string tensor (empty for an array).
    fn strings(&self) -> Vec<&[u8]> {
        match self {
            HeldData::Array(_) => Vec::new(),
            HeldData::Strings(items) => items.iter().map(|b| b.as_bytes()).collect(),
        }
    }

    fn tensor_data<'a>(&'a self, strings: &'a [&'a [u8]]) -> PyResult<TensorData<'a>> {
        match self {
            HeldData::Array(array) => Ok(TensorData::Bytes(array.as_slice()?)),
            HeldData::Strings(_) => Ok(TensorData::Strings(strings)),
        }
    }
}

/// Writes a V2 checkpoint; see `fastckpt.CheckpointWriter` for the Python API.
#[pyclass(frozen, module = "fastckpt._fastckpt", name = "BundleWriter")]
pub(crate) struct PyBundleWriter {
    inner: Mutex<Option<BundleWriter>>,
}

impl PyBundleWriter {
    fn with_writer<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut BundleWriter) -> fastckpt::Result<T> + Send,
    ) -> PyResult<T>
    where
        T: Send,
    {
        let mut guard = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let writer = guard
            .as_mut()
            .ok_or_else(|| invalid_argument("the checkpoint writer is closed: it finished or was aborted"))?;
        let path = writer.prefix().to_path_buf();
        py.detach(|| f(writer)).map_err(|e| to_py_err(py, e.in_file(&fastckpt::bundle::index_path(&path))))
    }
}

#[pymethods]
impl PyBundleWriter {
    #[new]
    #[pyo3(signature = (prefix, stores, durable=false, num_shards=1))]
    fn new(py: Python<'_>, prefix: PathBuf, stores: &PyStores, durable: bool, num_shards: u32) -> PyResult<Self> {
        let options = WriteOptions { durable, num_shards };
        let writer = py
            .detach(|| {
                let (storage, prefix) = stores.inner.resolve(&prefix)?;
                BundleWriter::create(storage, prefix, options)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(PyBundleWriter { inner: Mutex::new(Some(writer)) })
    }

    /// Adds a tensor: `data` is its bytes as a flat uint8 array (little-endian, row-major), or a list of bytes
    /// for a string tensor. With `full_shape` and `slice_spec`, it is that slice of a partitioned tensor.
    #[pyo3(signature = (name, dtype, shape, data, full_shape=None, slice_spec=None))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn add(
        &self,
        py: Python<'_>,
        name: &[u8],
        dtype: i32,
        shape: Vec<u64>,
        data: &Bound<'_, PyAny>,
        full_shape: Option<Vec<u64>>,
        slice_spec: Option<&str>,
    ) -> PyResult<()> {
        let dtype = DType::from_proto(dtype).map_err(|e| to_py_err(py, e.for_key(name)))?;
        let slice = match (full_shape, slice_spec) {
            (Some(full_shape), Some(spec)) => {
                let slice = TensorSlice::parse(spec)
                    .map_err(|e| to_py_err(py, e.for_tensor(&String::from_utf8_lossy(name))))?;
                Some((full_shape, slice))
            }
            (None, None) => None,
            _ => return Err(invalid_argument("full_shape and slice_spec go together")),
        };
        let add = |writer: &mut BundleWriter, data: TensorData| match &slice {
            None => writer.add(name, dtype, &shape, data),
            Some((full_shape, slice)) => writer.add_slice(name, full_shape, slice, dtype, data),
        };
        let held = HeldData::extract(data, name)?;
        let strings = held.strings();
        let data = held.tensor_data(&strings)?;
        self.with_writer(py, |w| add(w, data))
    }

    /// Adds tensors in one call that writes the data files in parallel: parallel lists of names, dtype
    /// enums, shapes and data (as for `add`).
    fn add_tensors(
        &self,
        py: Python<'_>,
        names: Vec<Vec<u8>>,
        dtypes: Vec<i32>,
        shapes: Vec<Vec<u64>>,
        data: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if dtypes.len() != names.len() || shapes.len() != names.len() || data.len() != names.len() {
            return Err(invalid_argument("names, dtypes, shapes and data differ in length"));
        }
        let dtypes: Vec<DType> = dtypes
            .into_iter()
            .zip(&names)
            .map(|(dtype, name)| DType::from_proto(dtype).map_err(|e| e.for_key(name)))
            .collect::<Result<_, _>>()
            .map_err(|e| to_py_err(py, e))?;
        let held: Vec<HeldData> =
            data.iter().zip(&names).map(|(d, name)| HeldData::extract(d, name)).collect::<PyResult<_>>()?;
        let strings: Vec<Vec<&[u8]>> = held.iter().map(HeldData::strings).collect();
        let tensors: Vec<NewTensor> = (0..names.len())
            .map(|i| {
                let data = held[i].tensor_data(&strings[i])?;
                Ok(NewTensor { key: &names[i], dtype: dtypes[i], shape: &shapes[i], data })
            })
            .collect::<PyResult<_>>()?;
        self.with_writer(py, |w| w.add_tensors(&tensors))
    }

    /// Writes the index; the checkpoint exists once this returns.
    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        let writer = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let writer =
            writer.ok_or_else(|| invalid_argument("the checkpoint writer is closed: it finished or was aborted"))?;
        let path = fastckpt::bundle::index_path(writer.prefix());
        py.detach(|| writer.finish()).map_err(|e| to_py_err(py, e.in_file(&path)))
    }

    /// Drops the checkpoint being written: its temporary files are removed, nothing is renamed into place.
    fn abort(&self) {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    }
}
