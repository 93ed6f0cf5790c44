//! What a path names (the core's `locate`): the names of a bundle's own files and of a checkpoint's meta graph,
//! and the checkpoints a directory listing shows.
use std::path::Path;

use pyo3::prelude::*;

/// The prefix of the V2 checkpoint whose own file `name` is (`P.index`, `P.data-NNNNN-of-NNNNN`), as a name
/// in the same directory listing; None for any other name.
#[pyfunction]
pub(crate) fn bundle_prefix_of(name: &str) -> Option<String> {
    fastckpt::bundle_prefix_of(Path::new(name)).map(|prefix| prefix.to_string_lossy().into_owned())
}

/// The meta graph file TensorFlow's Saver writes beside the checkpoint `path` (`P.<suffix>`, a V1 shard
/// pattern dropped).
#[pyfunction]
pub(crate) fn meta_graph_path(path: &str, suffix: &str) -> String {
    fastckpt::meta_graph_path(Path::new(path), suffix).to_string_lossy().into_owned()
}

/// The prefixes (names in the same directory) of the V2 checkpoints whose index is among `names`, a directory
/// listing, in their order.
#[pyfunction]
pub(crate) fn listed_checkpoints(names: Vec<String>) -> Vec<String> {
    fastckpt::listed_checkpoints(names.iter().map(String::as_str))
}
