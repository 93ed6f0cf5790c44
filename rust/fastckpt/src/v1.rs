//! Reading V1 checkpoints (TensorFlow before 0.11): one table per file, whose `""` key holds the list of
//! tensors and their slices, and whose other keys hold each slice's values in a `TensorProto`.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::dtype::{byte_swap, DType};
use crate::error::{Error, Result, ResultExt};
use crate::proto::{SavedTensorSlices, TensorProto};
use crate::slices::{self, num_elements, Selection, TensorSlice};
use crate::storage::{FileBytes, Storage};
use crate::table::Table;
use crate::tensor::{self, shape_from_proto, TensorInfo, TensorRef};
use crate::tensor_proto;

/// A stored slice: the file that holds it, the slice, and its box in the full tensor.
struct StoredSlice {
    file: usize,
    slice: TensorSlice,
    block: Vec<(u64, u64)>,
}

/// An open V1 checkpoint: one file, or the shards of a sharded save.
///
/// Thread safety: `Send` and `Sync`. Reads take `&self` and only read the files' bytes, and nothing changes
/// after open, so any number of threads may read at once ([`Checkpoint::read_whole`] reads V1 tensors in
/// parallel).
///
/// Ownership: each file is mapped at open (read whole where the storage is not local) and stays so until the
/// reader is dropped. The list of tensors and of their slices is decoded at open; values are decoded from their
/// `TensorProto`s at each read, and nothing is cached.
///
/// Verification: V1 files hold no checksums of tensors; the table's block checksums stand in for them. At
/// open: each file's footer and the checksums of its index block and of the block holding the metadata, each
/// tensor's dtype and shape, that a tensor declared in several files is declared alike, and that every slice
/// lies inside its tensor. At each read: the checksum of every block read (again at every read), the slices
/// against each other (no overlaps, no gaps) and each slice's values against its size. Every offset is
/// bounded before use (see [`Table`]).
///
/// [`Checkpoint::read_whole`]: crate::Checkpoint::read_whole
pub struct V1Reader {
    files: Vec<(PathBuf, Table<FileBytes>)>,
    tensors: Vec<(Vec<u8>, TensorInfo)>,
    /// The stored slices of each tensor of `tensors`.
    slices: Vec<Vec<StoredSlice>>,
}

impl std::fmt::Debug for V1Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths: Vec<&PathBuf> = self.files.iter().map(|(p, _)| p).collect();
        f.debug_struct("V1Reader").field("files", &paths).field("tensors", &self.tensors.len()).finish()
    }
}

impl V1Reader {
    /// Opens the files of a V1 checkpoint in `storage`; tensors split across them are joined.
    pub fn open(storage: &dyn Storage, paths: &[PathBuf]) -> Result<V1Reader> {
        if paths.is_empty() {
            return Err(Error::not_found("no V1 checkpoint files given"));
        }
        let mut files = Vec::with_capacity(paths.len());
        let mut infos: HashMap<Vec<u8>, TensorInfo> = HashMap::new();
        let mut slices: HashMap<Vec<u8>, Vec<StoredSlice>> = HashMap::new();
        for (file_index, path) in paths.iter().enumerate() {
            let table = Table::open(FileBytes::of(storage.open(path)?)?).in_file(path)?;
            let meta = table
                .get(b"")
                .in_file(path)?
                .ok_or_else(|| Error::data_loss("not a V1 checkpoint: no metadata entry").in_file(path))?;
            let meta = SavedTensorSlices::decode(&*meta)
                .ok()
                .and_then(|m| m.meta)
                .ok_or_else(|| Error::data_loss("not a V1 checkpoint: unparsable metadata").in_file(path))?;
            for tensor in meta.tensor {
                let name = tensor.name.into_bytes();
                let context = |e: Error| e.for_tensor(&String::from_utf8_lossy(&name)).in_file(path);
                let info = TensorInfo {
                    dtype: DType::from_proto(tensor.r#type).map_err(context)?,
                    shape: shape_from_proto(tensor.shape.as_ref()).map_err(context)?,
                };
                if let Some(known) = infos.get(&name) {
                    if *known != info {
                        return Err(context(Error::data_loss(format!(
                            "declared as {} {:?} here and {} {:?} in another file",
                            info.dtype.name(),
                            info.shape,
                            known.dtype.name(),
                            known.shape
                        ))));
                    }
                }
                for proto in &tensor.slice {
                    let slice = TensorSlice::from_proto(proto);
                    let block = slice.resolve(&info.shape).map_err(context)?;
                    slices.entry(name.clone()).or_default().push(StoredSlice { file: file_index, slice, block });
                }
                infos.insert(name, info);
            }
            files.push((path.clone(), table));
        }
        let mut tensors: Vec<(Vec<u8>, TensorInfo)> = infos.into_iter().collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let slices = tensors.iter().map(|(name, _)| slices.remove(name).unwrap_or_default()).collect();
        Ok(V1Reader { files, tensors, slices })
    }

    /// The tensors, by name in key order, each listed once however many slices and files hold it.
    pub fn tensors(&self) -> &[(Vec<u8>, TensorInfo)] {
        &self.tensors
    }

    /// The files, in the order given to [`V1Reader::open`]; errors about the checkpoint as a whole name the
    /// first.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }

    /// The tensor named `key`; the one not-found error otherwise.
    pub fn find(&self, key: &[u8]) -> Result<TensorRef> {
        tensor::find(&self.tensors, key).ok_or_else(|| Error::tensor_not_found(key).in_file(&self.files[0].0))
    }

    /// The name, dtype and shape, and stored slices of a tensor found by `find`.
    fn entry(&self, t: TensorRef) -> (&[u8], &TensorInfo, &[StoredSlice]) {
        let (name, info) = &self.tensors[t.0];
        (name, info, &self.slices[t.0])
    }

    /// The `TensorProto` holding the values of a stored slice.
    fn slice_values(&self, name: &[u8], stored: &StoredSlice) -> Result<TensorProto> {
        let (path, table) = &self.files[stored.file];
        let value = table
            .get(&stored.slice.key(name))
            .in_file(path)?
            .ok_or_else(|| Error::data_loss(format!("missing the values of slice {:?}", stored.block)).in_file(path))?;
        SavedTensorSlices::decode(&*value)
            .ok()
            .and_then(|s| s.data)
            .and_then(|d| d.data)
            .ok_or_else(|| Error::data_loss(format!("unparsable values of slice {:?}", stored.block)).in_file(path))
    }

    /// Reads the selection `sel` of a numeric tensor into `out` (row-major, in native byte order: the values
    /// of a `TensorProto` are little-endian, and swapped on a big-endian machine).
    pub fn read_selection(&self, t: TensorRef, sel: &Selection, out: &mut [u8]) -> Result<()> {
        let (name, info, stored) = self.entry(t);
        let context = |e: Error| e.for_key(name).in_file(&self.files[0].0);
        let elem = info.numeric_size().map_err(context)?;
        if out.len() as u64 != sel.num_elements().saturating_mul(elem as u64) {
            return Err(context(Error::invalid_argument("output buffer of the wrong size")));
        }
        let boxes: Vec<Vec<(u64, u64)>> = stored.iter().map(|s| s.block.clone()).collect();
        slices::assemble(sel, &boxes, elem, out, |i| {
            let values = self.slice_values(name, &stored[i])?;
            let count = num_elements(&stored[i].block.iter().map(|b| b.1).collect::<Vec<_>>()).unwrap_or(0);
            Ok(tensor_proto::bytes(&values, info.dtype, count)?.into())
        })
        .map_err(context)?;
        if cfg!(target_endian = "big") {
            byte_swap(out, info.dtype.swap_unit());
        }
        Ok(())
    }

    /// Reads the selection `sel` of a string tensor.
    pub fn read_strings(&self, t: TensorRef, sel: &Selection) -> Result<Vec<Vec<u8>>> {
        let (name, info, stored) = self.entry(t);
        let context = |e: Error| e.for_key(name).in_file(&self.files[0].0);
        if info.dtype != DType::String {
            return Err(context(Error::invalid_argument("not a string tensor")));
        }
        let boxes: Vec<Vec<(u64, u64)>> = stored.iter().map(|s| s.block.clone()).collect();
        slices::assemble_strings(sel, &boxes, |i| {
            let count = num_elements(&stored[i].block.iter().map(|b| b.1).collect::<Vec<_>>()).unwrap_or(0);
            tensor_proto::strings(&self.slice_values(name, &stored[i])?, count)
        })
        .map_err(context)
    }
}
