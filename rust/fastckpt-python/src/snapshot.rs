//! Snapshots (the core's `snapshot`): the parallel copy `Saver.save_async` captures values with.

use fastckpt::snapshot;
use numpy::{PyReadonlyArray1, PyReadwriteArray1};
use pyo3::prelude::*;

use crate::errors::{invalid_argument, to_py_err};

/// Copies each source (a contiguous uint8 array) into its destination of the same length, on every core
/// with the GIL released: how `Saver.save_async` captures the values it then writes in the background.
#[pyfunction]
pub(crate) fn copy_arrays(
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
