//! Reading a whole table: the footer, the index block, and the data blocks it points to.
use super::block::Block;
use super::format::{read_block, BlockHandle, Footer};
use crate::error::Result;

/// An open table over the bytes of its file (a memory map or a buffer).
///
/// Thread safety: `Send` and `Sync` when `D` is, as `Mmap`, `Vec<u8>` and `&[u8]` are. Lookups take `&self`
/// and nothing changes after open, so any number of threads may look up at once.
///
/// Ownership: owns `D` until dropped, and the index decoded at open (a key and a handle per data block). Data
/// blocks are decoded at each lookup, borrowed from `D`, or decompressed into a buffer that lives only for
/// the lookup; nothing is cached.
///
/// Verification: [`Table::open`] checks the footer's magic number and the index block's checksum; a data
/// block's checksum is checked every time it is read. Block handles, restart points, entry lengths and the
/// size a compressed block claims are all bounded before use, so that any bytes give an error, never a
/// panic or an outsized allocation (the `table` fuzz target tries). That keys are sorted is not checked: in a
/// table whose keys are not, [`Table::get`] may miss an entry, without harm.
pub struct Table<D: AsRef<[u8]>> {
    file: D,
    /// For each data block: a key at least as large as its last key, and its handle.
    index: Vec<(Vec<u8>, BlockHandle)>,
}

impl<D: AsRef<[u8]>> Table<D> {
    /// Reads the footer and the index block, verifying their checksums.
    pub fn open(file: D) -> Result<Self> {
        let bytes = file.as_ref();
        let footer = Footer::decode(bytes)?;
        let index_block = Block::new(read_block(bytes, footer.index)?)?;
        let mut index = Vec::new();
        let mut iter = index_block.iter();
        while let Some((key, value)) = iter.next_entry()? {
            let (handle, _) = BlockHandle::decode(value)?;
            index.push((key.to_vec(), handle));
        }
        Ok(Table { file, index })
    }

    fn block(&self, handle: BlockHandle) -> Result<Block<'_>> {
        Block::new(read_block(self.file.as_ref(), handle)?)
    }

    /// Calls `visit` with every key and value, in key order, until it returns an error.
    pub fn for_each(&self, mut visit: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        for (_, handle) in &self.index {
            let block = self.block(*handle)?;
            let mut iter = block.iter();
            while let Some((key, value)) = iter.next_entry()? {
                visit(key, value)?;
            }
        }
        Ok(())
    }

    /// A copy of the value stored under `key`, if any (a copy, since a compressed block is decoded into a
    /// buffer that lives only for the lookup).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let first_candidate = self.index.partition_point(|(last, _)| last.as_slice() < key);
        let Some((_, handle)) = self.index.get(first_candidate) else {
            return Ok(None);
        };
        let block = self.block(*handle)?;
        let mut iter = block.seek(key)?;
        while let Some((k, v)) = iter.next_entry()? {
            if k == key {
                return Ok(Some(v.to_vec()));
            }
            if k > key {
                break;
            }
        }
        Ok(None)
    }

    /// The number of data blocks.
    pub fn num_blocks(&self) -> usize {
        self.index.len()
    }
}

impl<D: AsRef<[u8]>> std::fmt::Debug for Table<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("bytes", &self.file.as_ref().len()).field("blocks", &self.index.len()).finish()
    }
}
