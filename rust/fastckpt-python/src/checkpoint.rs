//! Reading: an open checkpoint (the core's `Checkpoint`, V2 bundle or V1 file) as the Python class
//! `Checkpoint`, and the data files a numpy view keeps mapped.
use std::path::PathBuf;

use fastckpt::{locate, Checkpoint, DType, DimSelection, Error, Selection, TensorRef};
use numpy::ndarray::ArrayView1;
use numpy::{PyArray1, PyArrayDescr, PyArrayMethods, PyReadwriteArray1, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::arrays::{new_tensor_array, numpy_dtype, tensor_bytes};
use crate::errors::{invalid_argument, to_py_err};
use crate::storage::PyStores;

/// A tensor name as Python sees it: a str, with bytes that are not UTF-8 decoded as surrogates (as
/// `bytes.decode("utf-8", "surrogateescape")` does), so that encoding it back gives the stored key.
pub(crate) fn py_name<'py>(py: Python<'py>, key: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match std::str::from_utf8(key) {
        Ok(name) => Ok(PyString::new(py, name).into_any()),
        Err(_) => PyBytes::new(py, key).call_method1("decode", ("utf-8", "surrogateescape")),
    }
}

/// An open checkpoint (V2 bundle or V1 file).
#[pyclass(frozen, module = "fastckpt._fastckpt", name = "Checkpoint")]
pub(crate) struct PyCheckpoint {
    inner: Checkpoint,
    /// What was opened: the V2 prefix, or the V1 file or pattern.
    path: PathBuf,
}

impl PyCheckpoint {
    fn in_context(&self, err: Error, key: &[u8]) -> Error {
        err.for_key(key).in_file(&self.inner.path())
    }

    /// The tensor named `key`, looked up once for the reads that follow.
    fn find(&self, py: Python<'_>, key: &[u8]) -> PyResult<TensorRef> {
        self.inner.find(key).map_err(|e| to_py_err(py, e))
    }

    /// The bytes that `elements` elements of the numeric tensor `t` take.
    fn byte_len(&self, py: Python<'_>, t: TensorRef, elements: u64) -> PyResult<usize> {
        let (key, info) = self.inner.tensor(t);
        let elem = info.numeric_size().map_err(|e| to_py_err(py, self.in_context(e, key)))?;
        usize::try_from(elements).ok().and_then(|n| n.checked_mul(elem)).ok_or_else(|| {
            to_py_err(py, self.in_context(Error::invalid_argument("tensor too large for this machine"), key))
        })
    }

    /// Reads whole numeric tensors into new arrays of their dtype and shape, in parallel with the GIL
    /// released.
    fn read_arrays<'py>(
        &self,
        py: Python<'py>,
        tensors: &[TensorRef],
        verify: bool,
    ) -> PyResult<Vec<Bound<'py, PyUntypedArray>>> {
        let mut arrays = Vec::with_capacity(tensors.len());
        let mut descrs: Vec<(DType, Bound<'py, PyArrayDescr>)> = Vec::new(); // a checkpoint has few dtypes
        for &t in tensors {
            let info = self.inner.tensor(t).1;
            let len = self.byte_len(py, t, Selection::full(&info.shape).num_elements())?;
            let descr = match descrs.iter().find(|(dtype, _)| *dtype == info.dtype) {
                Some((_, descr)) => descr.clone(),
                None => {
                    let descr = numpy_dtype(py, info.dtype)?;
                    descrs.push((info.dtype, descr.clone()));
                    descr
                }
            };
            // Safety: filled entirely by the read below before Python sees it; dropped unread on error.
            arrays.push(unsafe { new_tensor_array(py, &descr, &info.shape, len) }?);
        }
        let mut jobs = Vec::with_capacity(tensors.len());
        for (&t, array) in tensors.iter().zip(&arrays) {
            jobs.push((t, unsafe { tensor_bytes(array) }));
        }
        py.detach(|| self.inner.read_whole(&mut jobs, verify)).map_err(|e| to_py_err(py, e))?;
        Ok(arrays)
    }

    fn selection(&self, py: Python<'_>, t: TensorRef, region: Option<Vec<(u64, u64, u64)>>) -> PyResult<Selection> {
        let (key, info) = self.inner.tensor(t);
        match region {
            None => Ok(Selection::full(&info.shape)),
            Some(dims) => {
                let dims = dims.into_iter().map(|(start, count, step)| DimSelection { start, count, step }).collect();
                Selection::new(&info.shape, dims).map_err(|e| to_py_err(py, self.in_context(e, key)))
            }
        }
    }

    /// The elements of the selection `sel` of string tensor `t`, as a flat list of bytes.
    fn strings<'py>(&self, py: Python<'py>, t: TensorRef, sel: &Selection) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let strings = py.detach(|| self.inner.read_strings(t, sel)).map_err(|e| to_py_err(py, e))?;
        Ok(strings.iter().map(|s| PyBytes::new(py, s)).collect())
    }
}

#[pymethods]
impl PyCheckpoint {
    /// Opens the checkpoint a path names: a V2 prefix or one of its files, a V1 file or file pattern.
    #[staticmethod]
    #[pyo3(signature = (path, stores))]
    fn open(py: Python<'_>, path: PathBuf, stores: &PyStores) -> PyResult<Self> {
        let opened = py.detach(|| {
            let (storage, path) = stores.inner.resolve(&path)?;
            let location = locate(&*storage, &path)?;
            Ok::<_, Error>((Checkpoint::open_location(storage, &location)?, location.path().to_path_buf()))
        });
        let (inner, path) = opened.map_err(|e| to_py_err(py, e))?;
        Ok(PyCheckpoint { inner, path })
    }

    /// What was opened: the V2 prefix (also when a path to its `.index` or a data file was given), or the V1
    /// file or pattern.
    #[getter]
    fn path(&self) -> String {
        // A str, not a pathlib.Path, which would fold the `//` of a URL.
        self.path.to_string_lossy().into_owned()
    }

    /// "v2" or "v1".
    #[getter]
    fn format(&self) -> &'static str {
        match self.inner {
            Checkpoint::Bundle(_) => "v2",
            Checkpoint::V1(_) => "v1",
        }
    }

    /// The tensors, in key order, as three lists: names, dtype enums and shapes (tuples).
    fn tensors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let tensors = self.inner.tensors();
        let names = self.names(py)?;
        let dtypes = PyList::new(py, tensors.iter().map(|(_, info)| info.dtype.as_proto()))?;
        let shapes = PyList::new(
            py,
            tensors.iter().map(|(_, info)| PyTuple::new(py, &info.shape)).collect::<PyResult<Vec<_>>>()?,
        )?;
        PyTuple::new(py, [names.into_any(), dtypes.into_any(), shapes.into_any()])
    }

    /// The names of the tensors, in key order.
    fn names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let names = self.inner.tensors().iter().map(|(key, _)| py_name(py, key)).collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, names)
    }

    fn __len__(&self) -> usize {
        self.inner.tensors().len()
    }

    fn __contains__(&self, name: &[u8]) -> bool {
        self.inner.find(name).is_ok()
    }

    /// The dtype enum and shape of tensor `name`.
    fn dtype_and_shape<'py>(&self, py: Python<'py>, name: &[u8]) -> PyResult<(i32, Bound<'py, PyTuple>)> {
        let info = self.inner.tensor(self.find(py, name)?).1;
        Ok((info.dtype.as_proto(), PyTuple::new(py, &info.shape)?))
    }

    /// `{name: [d0, d1, ...]}` of every tensor.
    fn shape_map<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let map = PyDict::new(py);
        for (key, info) in self.inner.tensors() {
            map.set_item(py_name(py, key)?, PyList::new(py, &info.shape)?)?;
        }
        Ok(map)
    }

    /// `{name: dtype enum}` of every tensor.
    fn dtype_map<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let map = PyDict::new(py);
        for (key, info) in self.inner.tensors() {
            map.set_item(py_name(py, key)?, info.dtype.as_proto())?;
        }
        Ok(map)
    }

    /// The value of tensor `name`, in one call: an array of its dtype and shape (read with the GIL
    /// released), or for a string tensor an object array of bytes.
    #[pyo3(signature = (name, verify=true))]
    fn get<'py>(&self, py: Python<'py>, name: &[u8], verify: bool) -> PyResult<Bound<'py, PyAny>> {
        let t = self.find(py, name)?;
        let info = self.inner.tensor(t).1;
        if info.dtype != DType::String {
            let array = self.read_arrays(py, &[t], verify)?.pop().expect("one array for one tensor");
            return Ok(array.into_any());
        }
        let strings: Vec<Py<PyAny>> =
            self.strings(py, t, &Selection::full(&info.shape))?.into_iter().map(|s| s.into_any().unbind()).collect();
        let flat = PyArray1::from_vec(py, strings);
        let shape: Vec<usize> = info.shape.iter().map(|&d| d as usize).collect();
        Ok(flat.reshape(shape)?.into_any())
    }

    /// The bytes of the region `[(start, count, step)]` of numeric tensor `name` (all of it by default), as
    /// a flat uint8 array in native byte order. `verify` checks the stored checksums (whole tensors and
    /// slices only).
    #[pyo3(signature = (name, region=None, verify=true))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        name: &[u8],
        region: Option<Vec<(u64, u64, u64)>>,
        verify: bool,
    ) -> PyResult<Bound<'py, PyUntypedArray>> {
        let t = self.find(py, name)?;
        let sel = self.selection(py, t, region)?;
        let len = self.byte_len(py, t, sel.num_elements())?;
        // Safety: the array is uninitialized until the read fills all of it; on error it is dropped unread.
        let array = unsafe { new_tensor_array(py, &numpy::dtype::<u8>(py), &[len as u64], len) }?;
        let out = unsafe { tensor_bytes(&array) };
        py.detach(|| self.inner.read_selection(t, &sel, verify, out)).map_err(|e| to_py_err(py, e))?;
        Ok(array)
    }

    /// Several whole numeric tensors as arrays of their dtype and shape, read in parallel with the GIL
    /// released.
    #[pyo3(signature = (names, verify=true))]
    fn read_tensors<'py>(
        &self,
        py: Python<'py>,
        names: Vec<Vec<u8>>,
        verify: bool,
    ) -> PyResult<Vec<Bound<'py, PyUntypedArray>>> {
        let tensors = names.iter().map(|name| self.find(py, name)).collect::<PyResult<Vec<_>>>()?;
        self.read_arrays(py, &tensors, verify)
    }

    /// Every tensor, in key order, as `(names, values)`: each numeric tensor an array of its dtype and shape,
    /// read in parallel with the GIL released, each string tensor None (see `get`).
    #[pyo3(signature = (verify=true))]
    fn read_all<'py>(&self, py: Python<'py>, verify: bool) -> PyResult<Bound<'py, PyTuple>> {
        let all = self.inner.tensors();
        let is_numeric = |info: &fastckpt::TensorInfo| info.dtype.size().is_some();
        let numeric: Vec<TensorRef> = self.inner.refs().filter(|&t| is_numeric(self.inner.tensor(t).1)).collect();
        let mut arrays = self.read_arrays(py, &numeric, verify)?.into_iter();
        let values = all.iter().map(|(_, info)| if is_numeric(info) { arrays.next() } else { None });
        let values = PyList::new(py, values)?;
        PyTuple::new(py, [self.names(py)?.into_any(), values.into_any()])
    }

    /// Reads whole numeric tensors into the caller's arrays, `names[i]` into `outs[i]` (writable flat uint8
    /// views), in parallel with the GIL released.
    #[pyo3(signature = (names, outs, verify=true))]
    fn read_tensors_into(
        &self,
        py: Python<'_>,
        names: Vec<Vec<u8>>,
        mut outs: Vec<PyReadwriteArray1<'_, u8>>,
        verify: bool,
    ) -> PyResult<()> {
        if names.len() != outs.len() {
            return Err(invalid_argument(format!("{} names for {} arrays", names.len(), outs.len())));
        }
        let mut jobs = Vec::with_capacity(names.len());
        for (name, out) in names.iter().zip(outs.iter_mut()) {
            jobs.push((self.find(py, name)?, out.as_slice_mut()?));
        }
        py.detach(|| self.inner.read_whole(&mut jobs, verify)).map_err(|e| to_py_err(py, e))
    }

    /// Reads rows `first..first + count` of numeric tensor `name` into `out` (a writable flat uint8 view),
    /// with the GIL released, for a tensor read in parts; `crc` carries the checksum from part to part (0,
    /// then what the call before returned), and the part that ends the tensor verifies it.
    fn read_rows(
        &self,
        py: Python<'_>,
        name: &[u8],
        first: u64,
        count: u64,
        crc: u32,
        mut out: PyReadwriteArray1<'_, u8>,
    ) -> PyResult<u32> {
        let t = self.find(py, name)?;
        let out = out.as_slice_mut()?;
        py.detach(|| self.inner.read_rows(t, first, count, crc, out))
            .map_err(|e| to_py_err(py, self.in_context(e, name)))
    }

    /// A read-only uint8 array over the mapped bytes of a tensor, without reading them, or None where the
    /// stored bytes cannot be used as they are (V1 files, partitioned or string tensors, the other byte order).
    fn mapped<'py>(&self, py: Python<'py>, name: &[u8]) -> PyResult<Option<Bound<'py, PyArray1<u8>>>> {
        let t = self.find(py, name)?;
        let Checkpoint::Bundle(bundle) = &self.inner else { return Ok(None) };
        let Some(mapped) = bundle.mapped(t).map_err(|e| to_py_err(py, e))? else { return Ok(None) };
        let bytes: &[u8] = mapped.bytes();
        let view = ArrayView1::from(bytes);
        let owner = Bound::new(py, PyMappedTensor { _mapped: mapped.clone() })?.into_any();
        // Safety: the array points into the mapping, which `owner` (the array's base) keeps alive. The mapping
        // is read-only memory, so the array is made read-only before Python sees it.
        let array = unsafe { PyArray1::borrow_from_array(&view, owner) };
        unsafe { (*array.as_array_ptr()).fields.flags &= !numpy::npyffi::NPY_ARRAY_WRITEABLE };
        Ok(Some(array))
    }

    /// Where the bytes of tensor `name` lie, as `(data file, offset, length, size of the data file when it
    /// was opened)`, for a framework to map them itself; None where `mapped` is None.
    fn stored_range(&self, py: Python<'_>, name: &[u8]) -> PyResult<Option<(PathBuf, u64, u64, u64)>> {
        let t = self.find(py, name)?;
        let Checkpoint::Bundle(bundle) = &self.inner else { return Ok(None) };
        let Some(mapped) = bundle.mapped(t).map_err(|e| to_py_err(py, e))? else { return Ok(None) };
        let range = mapped.range();
        Ok(Some((mapped.file().to_path_buf(), range.start, range.end - range.start, mapped.file_size())))
    }

    /// The elements of the region `[(start, count, step)]` of string tensor `name` (all of it by default) as
    /// a flat list of bytes, row-major.
    #[pyo3(signature = (name, region=None))]
    fn read_strings<'py>(
        &self,
        py: Python<'py>,
        name: &[u8],
        region: Option<Vec<(u64, u64, u64)>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let t = self.find(py, name)?;
        let sel = self.selection(py, t, region)?;
        PyList::new(py, self.strings(py, t, &sel)?)
    }
}

/// Keeps a data file mapped while numpy arrays view it.
#[pyclass(frozen, module = "fastckpt._fastckpt", name = "MappedTensor")]
pub(crate) struct PyMappedTensor {
    _mapped: fastckpt::bundle::MappedTensor,
}
