//! The protocol buffer descriptors compiled into the core, from which Python builds its message classes.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The serialized FileDescriptorSet of the project's .proto files.
#[pyfunction]
pub(crate) fn descriptor_set(py: Python<'_>) -> Bound<'_, PyBytes> {
    PyBytes::new(py, fastckpt::proto::DESCRIPTOR_SET)
}
