//! numpy arrays: the arrays tensors are read into (on huge-page boundaries where large), their bytes, and the
//! numpy dtype of each of the core's dtypes.
use std::ffi::c_int;

use fastckpt::DType;
use numpy::npyffi::{self, npy_intp, PY_ARRAY_API};
use numpy::{PyArray1, PyArrayDescr, PyArrayDescrMethods, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;

use crate::errors::invalid_argument;

/// Transparent huge pages on x86-64 and on arm64 with 4 KiB pages.
#[cfg(target_os = "linux")]
pub(crate) const HUGE_PAGE: usize = 2 << 20;

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
pub(crate) unsafe fn new_tensor_array<'py>(
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
pub(crate) unsafe fn tensor_bytes<'a>(array: &'a Bound<'_, PyUntypedArray>) -> &'a mut [u8] {
    let len = array.len() * array.dtype().itemsize();
    if len == 0 {
        return &mut []; // numpy's data pointer is then not promised to be non-null
    }
    unsafe { std::slice::from_raw_parts_mut((*array.as_array_ptr()).fields.data.cast::<u8>(), len) }
}

/// The numpy dtype of arrays of `dtype`, from the core's table ([`DType::numpy_name`]): a numpy type, `object`,
/// or one of ml_dtypes' types (ml_dtypes imported when the first is needed). Made once per dtype.
pub(crate) fn numpy_dtype(py: Python<'_>, dtype: DType) -> PyResult<Bound<'_, PyArrayDescr>> {
    static DESCRIPTORS: [PyOnceLock<Py<PyArrayDescr>>; 30] = [const { PyOnceLock::new() }; 30];
    let slot = usize::try_from(dtype.as_proto() - 1).ok().and_then(|index| DESCRIPTORS.get(index));
    let slot = slot.ok_or_else(|| invalid_argument(format!("no numpy dtype for {}", dtype.name())))?;
    let descriptor = slot.get_or_try_init(py, || {
        let name = dtype.numpy_name();
        let numpy_type = match name.strip_prefix("ml_dtypes.") {
            Some(ml_dtypes_name) => py.import("ml_dtypes")?.getattr(ml_dtypes_name)?,
            None => PyString::new(py, name).into_any(),
        };
        PyArrayDescr::new(py, numpy_type).map(Bound::unbind)
    })?;
    Ok(descriptor.bind(py).clone())
}
