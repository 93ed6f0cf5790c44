#![deny(missing_docs)]
//! fastckpt: reads TensorFlow checkpoints without TensorFlow.
//!
//! The modules follow the layers of the formats: [`checksum`] and `coding` underneath; [`table`], the sorted
//! string table of `.index` and V1 files; [`bundle`], the V2 checkpoint format; [`v1`], the V1 format;
//! [`slices`] and [`dtype`], what both share; [`locate`](mod@locate), which decides what a path names;
//! [`checkpoint`], one interface over both; [`storage`], through which every byte is read and written; and
//! [`snapshot`], which captures values for saves that finish in the background.
pub mod bundle;
pub mod checkpoint;
pub mod checksum;
pub(crate) mod coding;
pub mod dtype;
pub mod error;
pub mod locate;
pub(crate) mod ordered_code;
pub mod proto;
pub mod safetensors_file;
pub mod slices;
pub mod snapshot;
pub mod storage;
pub mod table;
pub mod tensor;
pub mod tensor_proto;
pub mod v1;

pub use checkpoint::Checkpoint;
pub use dtype::DType;
pub use error::{Error, ErrorKind, Result};
pub use locate::{
    bundle_prefix_of, checkpoint_modified, delete_checkpoint, listed_checkpoints, locate, meta_graph_path, Location,
};
pub use slices::{DimSelection, Selection};
pub use tensor::{TensorInfo, TensorRef};
