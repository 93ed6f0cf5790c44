//! The Python extension `fastckpt._fastckpt`: converts types and errors between Python and the core crate,
//! and releases the GIL while the core reads.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fastckpt::bundle::{merge_bundles, BundleWriter, NewTensor, TensorData, WriteOptions};
use fastckpt::safetensors_file::{to_safetensors, SafetensorsReader, SafetensorsWriter};
use fastckpt::slices::TensorSlice;
use fastckpt::snapshot;
use fastckpt::storage::{self, Expected, FileKind, StorageOptions, WriteFile};
use fastckpt::{locate, Checkpoint, DType, DimSelection, Error, ErrorKind, Selection, TensorRef};
use numpy::ndarray::ArrayView1;
use numpy::npyffi::{self, npy_intp, PY_ARRAY_API};
use numpy::{
    PyArray1, PyArrayDescr, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1, PyReadwriteArray1, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use std::ffi::c_int;

pyo3::import_exception!(fastckpt.errors, OpError);
pyo3::import_exception!(fastckpt.errors, NotFoundError);
pyo3::import_exception!(fastckpt.errors, NotACheckpointError);
pyo3::import_exception!(fastckpt.errors, DataLossError);
pyo3::import_exception!(fastckpt.errors, InvalidArgumentError);
pyo3::import_exception!(fastckpt.errors, UnimplementedError);
pyo3::import_exception!(fastckpt.errors, PermissionDeniedError);
pyo3::import_exception!(fastckpt.errors, UnavailableError);
pyo3::import_exception!(fastckpt.errors, AbortedError);

/// The `fastckpt.errors` exception of the error's kind, with its message, file and tensor: the only
/// exceptions this module raises.
fn to_py_err(_py: Python<'_>, err: Error) -> PyErr {
    let file = err.file.as_ref().map(|f| f.to_string_lossy().into_owned());
    let args = (err.to_string(), file, err.tensor.clone());
    match err.kind {
        ErrorKind::NotFound => NotFoundError::new_err(args),
        ErrorKind::NotACheckpoint => NotACheckpointError::new_err(args),
        ErrorKind::DataLoss => DataLossError::new_err(args),
        ErrorKind::InvalidArgument => InvalidArgumentError::new_err(args),
        ErrorKind::Unimplemented => UnimplementedError::new_err(args),
        ErrorKind::PermissionDenied => PermissionDeniedError::new_err(args),
        ErrorKind::Unavailable => UnavailableError::new_err(args),
        ErrorKind::Aborted => AbortedError::new_err(args),
        ErrorKind::Io => OpError::new_err(args),
    }
}

/// An `InvalidArgumentError` for a request the binding refuses before the core sees it.
fn invalid_argument(message: impl Into<String>) -> PyErr {
    InvalidArgumentError::new_err((message.into(), None::<String>, None::<String>))
}

/// Transparent huge pages on x86-64 and on arm64 with 4 KiB pages.
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// A new, uninitialized, C-contiguous array of dtype `descr` and shape `shape` (`len` bytes) to read a
/// tensor into.
///
/// On Linux a large one starts on a huge-page boundary: numpy asks for transparent huge pages on
/// allocations of 4 MiB and more, but the kernel gives them only to whole aligned 2 MiB spans, and
/// malloc's header puts the data off the boundary, so up to half of a 4 MiB tensor would fault 4 KiB
/// page by page (measured: a 1 GiB transformer checkpoint read 65,000 page faults instead of 900, and
/// ~8% slower warm). The array then lies in an allocation 2 MiB longer whose unused ends are never
/// touched, so they take address space, not memory.
///
/// Safety: the caller fills the array before Python sees it.
unsafe fn new_tensor_array<'py>(
    py: Python<'py>,
    descr: &Bound<'py, PyArrayDescr>,
    shape: &[u64],
    len: usize,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let mut dims = shape.iter().map(|&d| npy_intp::try_from(d)).collect::<Result<Vec<_>, _>>()?;
    // The core fills `len` bytes: numpy's idea of the size must be the same, or it would read past them.
    let numpy_len = shape.iter().try_fold(descr.itemsize() as u64, |n, &d| n.checked_mul(d));
    if numpy_len != Some(len as u64) {
        let message = format!("{shape:?} values of numpy dtype {descr} are not the {len} bytes of the tensor");
        return Err(invalid_argument(message));
    }
    let mut data = std::ptr::null_mut();
    let mut allocation = None;
    #[cfg(target_os = "linux")]
    if len >= 2 * HUGE_PAGE {
        let padded = len.checked_add(HUGE_PAGE).ok_or_else(|| invalid_argument("tensor too large for this machine"))?;
        let bytes = unsafe { PyArray1::<u8>::new(py, [padded], false) };
        let start = (bytes.data() as usize).wrapping_neg() % HUGE_PAGE;
        data = unsafe { bytes.data().add(start) }.cast();
        allocation = Some(bytes);
    }
    // Safety: the descriptor reference is given to (stolen by) the new array; with `data`, numpy neither
    // owns nor frees it, and the allocation that does becomes the array's base below.
    let array = unsafe {
        PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            npyffi::get_type_object(py, npyffi::NpyTypes::PyArray_Type),
            descr.clone().into_dtype_ptr(),
            dims.len() as c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            data,
            // Without data, any flag asks numpy for Fortran order; with data, these are the array's flags.
            if data.is_null() { 0 } else { npyffi::NPY_ARRAY_WRITEABLE },
            std::ptr::null_mut(),
        )
    };
    let array = unsafe { Bound::from_owned_ptr_or_err(py, array)?.cast_into_unchecked::<PyUntypedArray>() };
    if let Some(bytes) = allocation {
        if unsafe { PY_ARRAY_API.PyArray_SetBaseObject(py, array.as_array_ptr(), bytes.into_ptr()) } != 0 {
            return Err(PyErr::fetch(py));
        }
    }
    Ok(array)
}

/// The bytes of an array made by [`new_tensor_array`] (C-contiguous, so its elements times their size), to
/// fill.
///
/// Safety: nothing else refers to the array's data while the slice lives (as for numpy's `as_slice_mut`).
#[allow(clippy::mut_from_ref)]
unsafe fn tensor_bytes<'a>(array: &'a Bound<'_, PyUntypedArray>) -> &'a mut [u8] {
    let len = array.len() * array.dtype().itemsize();
    if len == 0 {
        return &mut []; // numpy's data pointer is then not promised to be non-null
    }
    unsafe { std::slice::from_raw_parts_mut((*array.as_array_ptr()).fields.data.cast::<u8>(), len) }
}

/// The numpy dtype of a DType, as `fastckpt.dtypes` defines it (ml_dtypes' types among them).
fn numpy_dtype(py: Python<'_>, dtype: DType) -> PyResult<Bound<'_, PyArrayDescr>> {
    static DTYPES: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module = DTYPES.get_or_try_init(py, || py.import("fastckpt.dtypes").map(Bound::unbind))?;
    let dtype = module.bind(py).call_method1("dtype_of_enum", (dtype.as_proto(),))?;
    Ok(dtype.getattr("numpy_dtype")?.cast_into::<PyArrayDescr>()?)
}

/// A tensor name as Python sees it: a str, with bytes that are not UTF-8 decoded as surrogates (as
/// `bytes.decode("utf-8", "surrogateescape")` does), so that encoding it back gives the stored key.
fn py_name<'py>(py: Python<'py>, key: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match std::str::from_utf8(key) {
        Ok(name) => Ok(PyString::new(py, name).into_any()),
        Err(_) => PyBytes::new(py, key).call_method1("decode", ("utf-8", "surrogateescape")),
    }
}

/// An open checkpoint (V2 bundle or V1 file).
#[pyclass(frozen, module = "fastckpt._fastckpt")]
struct CheckpointFile {
    inner: Checkpoint,
    /// What was opened: the V2 prefix, or the V1 file or pattern.
    path: PathBuf,
}

impl CheckpointFile {
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
impl CheckpointFile {
    /// Opens the checkpoint a path names: a V2 prefix or one of its files, a V1 file or file pattern.
    #[staticmethod]
    #[pyo3(signature = (path, stores))]
    fn open(py: Python<'_>, path: PathBuf, stores: &Stores) -> PyResult<Self> {
        let opened = py.detach(|| {
            let (storage, path) = stores.inner.resolve(&path)?;
            let location = locate(&*storage, &path)?;
            Ok::<_, Error>((Checkpoint::open_location(storage, &location)?, location.path().to_path_buf()))
        });
        let (inner, path) = opened.map_err(|e| to_py_err(py, e))?;
        Ok(CheckpointFile { inner, path })
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
        let owner = Bound::new(py, MappedOwner { _mapped: mapped.clone() })?.into_any();
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
#[pyclass(frozen, module = "fastckpt._fastckpt")]
struct MappedOwner {
    _mapped: fastckpt::bundle::MappedTensor,
}

/// The data of a tensor to write, borrowed from Python: a flat uint8 array, or a list of bytes for strings.
enum HeldData<'py> {
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
#[pyclass(frozen, module = "fastckpt._fastckpt")]
struct BundleFileWriter {
    inner: Mutex<Option<BundleWriter>>,
}

impl BundleFileWriter {
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
impl BundleFileWriter {
    #[new]
    #[pyo3(signature = (prefix, stores, durable=false, num_shards=1))]
    fn new(py: Python<'_>, prefix: PathBuf, stores: &Stores, durable: bool, num_shards: u32) -> PyResult<Self> {
        let options = WriteOptions { durable, num_shards };
        let writer = py
            .detach(|| {
                let (storage, prefix) = stores.inner.resolve(&prefix)?;
                BundleWriter::create(storage, prefix, options)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(BundleFileWriter { inner: Mutex::new(Some(writer)) })
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

/// A file being written as a stream (local, or an object uploaded in parts), for writers of other formats
/// (zip archives, torch's files); nothing appears at its path until `commit`.
#[pyclass(frozen, module = "fastckpt._fastckpt")]
struct FileWriter {
    inner: Mutex<Option<Box<dyn WriteFile>>>,
    path: PathBuf,
}

impl FileWriter {
    fn take(&self) -> Option<Box<dyn WriteFile>> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

#[pymethods]
impl FileWriter {
    #[new]
    #[pyo3(signature = (path, stores))]
    fn new(py: Python<'_>, path: PathBuf, stores: &Stores) -> PyResult<Self> {
        let file = py
            .detach(|| {
                let (storage, path) = stores.inner.resolve(&path)?;
                storage.create(&path)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(FileWriter { inner: Mutex::new(Some(file)), path })
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

/// A safetensors file opened for reading (its header read at open).
#[pyclass(frozen, module = "fastckpt._fastckpt")]
struct SafetensorsFile {
    inner: SafetensorsReader,
}

#[pymethods]
impl SafetensorsFile {
    #[new]
    #[pyo3(signature = (path, stores))]
    fn new(py: Python<'_>, path: PathBuf, stores: &Stores) -> PyResult<Self> {
        let inner = py
            .detach(|| {
                let (storage, path) = stores.inner.resolve(&path)?;
                SafetensorsReader::open(storage.as_ref(), &path)
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(SafetensorsFile { inner })
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
#[pyclass(frozen, module = "fastckpt._fastckpt")]
struct SafetensorsFileWriter {
    inner: Mutex<Option<SafetensorsWriter>>,
}

impl SafetensorsFileWriter {
    fn take(&self) -> Option<SafetensorsWriter> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

#[pymethods]
impl SafetensorsFileWriter {
    /// Creates `path` for `tensors` (name, dtype enum, shape), with `metadata` as the header's `__metadata__`.
    #[new]
    #[pyo3(signature = (path, tensors, metadata, stores))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        tensors: Vec<(String, i32, Vec<u64>)>,
        metadata: std::collections::BTreeMap<String, String>,
        stores: &Stores,
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
        Ok(SafetensorsFileWriter { inner: Mutex::new(Some(writer)) })
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

/// The storages of one `storage_options` configuration ([`storage::Stores`]): what a reader, writer or saver
/// makes once and passes to everything that touches its files. Local paths and `file://` URLs are local files;
/// the URLs of object stores name their bucket's store, made on first use and kept.
#[pyclass(frozen, module = "fastckpt._fastckpt")]
struct Stores {
    inner: storage::Stores,
}

#[pymethods]
impl Stores {
    #[new]
    #[pyo3(signature = (storage_options=None))]
    fn new(storage_options: Option<StorageOptions>) -> Self {
        Stores { inner: storage::Stores::new(storage_options.unwrap_or_default()) }
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

fn seconds_since_epoch(time: std::time::SystemTime) -> f64 {
    time.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Copies each source (a contiguous uint8 array) into its destination of the same length, on every core
/// with the GIL released: how `Saver.save_async` captures the values it then writes in the background.
#[pyfunction]
fn copy_arrays(
    py: Python<'_>,
    sources: Vec<PyReadonlyArray1<'_, u8>>,
    mut destinations: Vec<PyReadwriteArray1<'_, u8>>,
) -> PyResult<()> {
    if sources.len() != destinations.len() {
        return Err(invalid_argument(format!("{} sources for {} destinations", sources.len(), destinations.len())));
    }
    let mut copies = Vec::with_capacity(sources.len());
    for (source, destination) in sources.iter().zip(destinations.iter_mut()) {
        copies.push((source.as_slice()?, destination.as_slice_mut()?));
    }
    py.detach(|| snapshot::copy_parallel(&mut copies)).map_err(|e| to_py_err(py, e))
}

/// Whether `path` is the URL of an object store (`s3://`, `gs://`, `az://`, `https://`, ...) rather than a
/// local path.
#[pyfunction]
fn is_url(path: PathBuf) -> bool {
    storage::is_url(&path)
}

/// The prefix of the V2 checkpoint whose own file `name` is (`P.index`, `P.data-NNNNN-of-NNNNN`), as a name
/// in the same directory listing; None for any other name.
#[pyfunction]
fn bundle_prefix_of(name: &str) -> Option<String> {
    fastckpt::bundle_prefix_of(Path::new(name)).map(|prefix| prefix.to_string_lossy().into_owned())
}

/// For the name of a temporary file a fastckpt writer made, `(target name, writer's process id)`; None for
/// any other name.
#[pyfunction]
fn leftover_writer(file_name: &str) -> Option<(&str, u32)> {
    storage::leftover_writer(file_name)
}

/// The dtype number, shape and values of a serialized TensorProto, decoded with TensorFlow's rule (see
/// `fastckpt::tensor_proto`): the values as a flat uint8 array of little-endian elements, or a list of bytes
/// for strings.
#[pyfunction]
fn decode_tensor_proto<'py>(py: Python<'py>, serialized: &[u8]) -> PyResult<(i32, Vec<u64>, Bound<'py, PyAny>)> {
    use fastckpt::tensor_proto::{decode_serialized, Values};

    let (dtype, shape, values) = decode_serialized(serialized).map_err(|e| to_py_err(py, e))?;
    let values = match values {
        Values::Bytes(bytes) => PyArray1::from_vec(py, bytes).into_any(),
        Values::Strings(strings) => PyList::new(py, strings.iter().map(|s| PyBytes::new(py, s)))?.into_any(),
    };
    Ok((dtype.as_proto(), shape, values))
}

/// The core's dtype table: `(name, DataType number, bytes per element or 0, numpy type name)` per dtype, the
/// numpy name being a numpy type, `object`, or `ml_dtypes.<type>`.
#[pyfunction]
fn dtype_table() -> Vec<(&'static str, i32, usize, &'static str)> {
    fastckpt::dtype::TABLE
        .iter()
        .map(|row| (row.name, row.dtype.as_proto(), row.size.unwrap_or(0), row.numpy))
        .collect()
}

/// The `DataType` numbers of the dtypes safetensors files hold.
#[pyfunction]
fn safetensors_dtypes() -> Vec<i32> {
    let table = fastckpt::dtype::TABLE.iter();
    table.filter(|row| to_safetensors(row.dtype).is_some()).map(|row| row.dtype.as_proto()).collect()
}

/// The serialized FileDescriptorSet of the project's .proto files.
#[pyfunction]
fn descriptor_set(py: Python<'_>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, fastckpt::proto::DESCRIPTOR_SET)
}

#[pymodule]
fn _fastckpt(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Load numpy's C API now, as C extensions do in their init (import_array): done lazily, it would add a
    // tenth of a millisecond to the first read, which matters to a process that reads one row and exits.
    PyArray1::<u8>::zeros(m.py(), 0, false);
    // The package's version (pyproject.toml takes it from Cargo.toml): no importlib.metadata at start-up.
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<CheckpointFile>()?;
    m.add_class::<Stores>()?;
    m.add_class::<BundleFileWriter>()?;
    m.add_class::<MappedOwner>()?;
    m.add_class::<FileWriter>()?;
    m.add_class::<SafetensorsFile>()?;
    m.add_class::<SafetensorsFileWriter>()?;
    m.add_function(wrap_pyfunction!(descriptor_set, m)?)?;
    m.add_function(wrap_pyfunction!(dtype_table, m)?)?;
    m.add_function(wrap_pyfunction!(safetensors_dtypes, m)?)?;
    m.add_function(wrap_pyfunction!(decode_tensor_proto, m)?)?;
    m.add_function(wrap_pyfunction!(bundle_prefix_of, m)?)?;
    m.add_function(wrap_pyfunction!(is_url, m)?)?;
    m.add_function(wrap_pyfunction!(copy_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(leftover_writer, m)?)?;
    Ok(())
}
