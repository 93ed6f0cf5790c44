//! Message types generated from the project's `protos/` directory.
#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/tensorflow.rs"));

/// The serialized `FileDescriptorSet` of `protos/`, from which the Python package builds its message classes.
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor_set.bin"));
