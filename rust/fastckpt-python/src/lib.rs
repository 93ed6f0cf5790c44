//! The Python extension `fastckpt._fastckpt`: converts types and errors between Python and the core crate,
//! and releases the GIL while the core works. One module per module of the core it binds, holding no rule of
//! its own; each class is named as the core type it wraps.
use numpy::PyArray1;
use pyo3::prelude::*;

mod arrays;
mod bundle;
mod checkpoint;
mod dtype;
mod errors;
mod locate;
mod proto;
mod safetensors;
mod snapshot;
mod storage;
mod tensor_proto;

use bundle::PyBundleWriter;
use checkpoint::{PyCheckpoint, PyMappedTensor};
use safetensors::{PySafetensorsReader, PySafetensorsWriter};
use storage::{PyStores, PyWriteFile};

#[pymodule]
fn _fastckpt(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Load numpy's C API now, as C extensions do in their init (import_array): done lazily, it would add a
    // tenth of a millisecond to the first read, which matters to a process that reads one row and exits.
    PyArray1::<u8>::zeros(m.py(), 0, false);
    // The package's version (pyproject.toml takes it from Cargo.toml): no importlib.metadata at start-up.
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyCheckpoint>()?;
    m.add_class::<PyStores>()?;
    m.add_class::<PyBundleWriter>()?;
    m.add_class::<PyMappedTensor>()?;
    m.add_class::<PyWriteFile>()?;
    m.add_class::<PySafetensorsReader>()?;
    m.add_class::<PySafetensorsWriter>()?;
    m.add_function(wrap_pyfunction!(proto::descriptor_set, m)?)?;
    m.add_function(wrap_pyfunction!(dtype::dtype_table, m)?)?;
    m.add_function(wrap_pyfunction!(dtype::numpy_dtype, m)?)?;
    m.add_function(wrap_pyfunction!(safetensors::safetensors_dtypes, m)?)?;
    m.add_function(wrap_pyfunction!(tensor_proto::decode_tensor_proto, m)?)?;
    m.add_function(wrap_pyfunction!(locate::bundle_prefix_of, m)?)?;
    m.add_function(wrap_pyfunction!(locate::meta_graph_path, m)?)?;
    m.add_function(wrap_pyfunction!(locate::listed_checkpoints, m)?)?;
    m.add_function(wrap_pyfunction!(storage::is_url, m)?)?;
    m.add_function(wrap_pyfunction!(snapshot::copy_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(storage::leftover_writer, m)?)?;
    Ok(())
}
