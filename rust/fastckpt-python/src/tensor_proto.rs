//! TensorProto values (the core's `tensor_proto`), decoded as TensorFlow decodes them.

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::errors::to_py_err;

/// The dtype number, shape and values of a serialized TensorProto, decoded with TensorFlow's rule (see
/// `fastckpt::tensor_proto`): the values as a flat uint8 array of little-endian elements, or a list of bytes
/// for strings.
#[pyfunction]
pub(crate) fn decode_tensor_proto<'py>(
    py: Python<'py>,
    serialized: &[u8],
) -> PyResult<(i32, Vec<u64>, Bound<'py, PyAny>)> {
    use fastckpt::tensor_proto::{decode_serialized, Values};

    let (dtype, shape, values) = decode_serialized(serialized).map_err(|e| to_py_err(py, e))?;
    let values = match values {
        Values::Bytes(bytes) => PyArray1::from_vec(py, bytes).into_any(),
        Values::Strings(strings) => PyList::new(py, strings.iter().map(|s| PyBytes::new(py, s)))?.into_any(),
    };
    Ok((dtype.as_proto(), shape, values))
}
