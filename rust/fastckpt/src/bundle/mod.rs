//! The V2 checkpoint format ("tensor bundle"): a `.index` table of entries and `.data-NNNNN-of-NNNNN` files.
mod data;
mod index;
mod merge;
mod naming;
mod reader;
mod strings;
mod writer;

pub use data::MappedTensor;
pub use index::BUNDLE_VERSION;
pub use merge::merge_bundles;
pub use naming::{data_path, index_path};
pub use reader::BundleReader;
pub use strings::{decode_strings, encode_strings};
pub use writer::{BundleWriter, NewTensor, TensorData, WriteOptions};
