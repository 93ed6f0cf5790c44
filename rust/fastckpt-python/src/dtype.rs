//! The core's dtype table, as Python's `fastckpt.dtypes` takes it, and the numpy dtype of each.

use fastckpt::DType;
use numpy::PyArrayDescr;
use pyo3::prelude::*;

use crate::arrays;
use crate::errors::to_py_err;

/// The core's dtype table: `(name, DataType number, bytes per element or 0, numpy type name, is floating)`
/// per dtype, the numpy name being a numpy type, `object`, or `ml_dtypes.<type>`.
#[pyfunction]
pub(crate) fn dtype_table() -> Vec<(&'static str, i32, usize, &'static str, bool)> {
    fastckpt::dtype::TABLE
        .iter()
        .map(|row| (row.name, row.dtype.as_proto(), row.size.unwrap_or(0), row.numpy, row.dtype.is_floating()))
        .collect()
}

/// The numpy dtype of the dtype whose `DataType` number is `dtype`, as arrays of it are read (ml_dtypes
/// imported for its types).
#[pyfunction]
pub(crate) fn numpy_dtype(py: Python<'_>, dtype: i32) -> PyResult<Bound<'_, PyArrayDescr>> {
    let dtype = DType::from_proto(dtype).map_err(|e| to_py_err(py, e))?;
    arrays::numpy_dtype(py, dtype)
}
