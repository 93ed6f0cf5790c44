//! TensorFlow's sorted string table (derived from LevelDB's), the format of `.index` files and V1 checkpoints.
//!
//! A table is a sequence of blocks followed by a fixed-size footer. Data blocks hold sorted key/value pairs; the
//! index block maps, for each data block, a key at least as large as the block's last key to the block's handle.
mod block;
mod block_builder;
mod format;
mod reader;
mod writer;

pub use block::{Block, BlockIter};
pub use block_builder::BlockBuilder;
pub use format::{BlockHandle, Compression, Footer, BLOCK_TRAILER_SIZE, FOOTER_SIZE, TABLE_MAGIC};
pub use reader::Table;
pub use writer::{TableOptions, TableWriter};
