//! The V2 checkpoint format ("tensor bundle"): a `.index` table of entries and `.data-NNNNN-of-NNNNN` files.
mod naming;
mod reader;
mod strings;
mod writer;

pub use naming::{data_path, index_path};
pub use reader::{BundleReader, DataFile, MappedTensor};
pub use strings::{decode_strings, encode_strings};
pub use writer::{merge_bundles, BundleWriter, NewTensor, TensorData, WriteOptions, BUNDLE_VERSION};
