//! Safetensors files, Hugging Face's format: an 8-byte little-endian header length, a JSON header giving each
//! tensor's dtype, shape and byte range, then the tensors' bytes, little-endian and row-major.
//!
//! Read by range and written as a stream, header first, so that neither needs the file in memory: a
//! conversion larger than memory goes tensor by tensor, a large tensor in parts. The header is the
//! `safetensors` crate's own, parsed, checked and serialized by it; this module adds only the storage (any
//! [`Storage`], object stores included) and the dtypes' correspondence.
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::safetensors::tensor::{Dtype, Metadata, TensorInfo};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::slices::num_elements;
use crate::storage::{ReadFile, Storage, WriteFile};

/// Headers longer than this are refused, as the `safetensors` crate refuses them.
const MAX_HEADER: u64 = 100_000_000;

/// Parts of a local read each thread copies at a time.
const LOCAL_PART: usize = 4 << 20;

/// The safetensors dtype of a TensorFlow dtype; `None` for those the format cannot hold (strings,
/// complex128, the quantized, the 4-bit and the fnuz float8 types).
pub fn to_safetensors(dtype: DType) -> Option<Dtype> {
    Some(match dtype {
        DType::Bool => Dtype::BOOL,
        DType::UInt8 => Dtype::U8,
        DType::Int8 => Dtype::I8,
        DType::Float8E5M2 => Dtype::F8_E5M2,
        DType::Float8E4M3FN => Dtype::F8_E4M3,
        DType::Int16 => Dtype::I16,
        DType::UInt16 => Dtype::U16,
        DType::Float16 => Dtype::F16,
        DType::BFloat16 => Dtype::BF16,
        DType::Int32 => Dtype::I32,
        DType::UInt32 => Dtype::U32,
        DType::Float32 => Dtype::F32,
        DType::Complex64 => Dtype::C64,
        DType::Float64 => Dtype::F64,
        DType::Int64 => Dtype::I64,
        DType::UInt64 => Dtype::U64,
        _ => return None,
    })
}

/// The TensorFlow dtype of a safetensors dtype; `None` for those TensorFlow lacks (the 4- and 6-bit floats,
/// `F8_E8M0`).
pub fn from_safetensors(dtype: Dtype) -> Option<DType> {
    [
        DType::Bool,
        DType::UInt8,
        DType::Int8,
        DType::Float8E5M2,
        DType::Float8E4M3FN,
        DType::Int16,
        DType::UInt16,
        DType::Float16,
        DType::BFloat16,
        DType::Int32,
        DType::UInt32,
        DType::Float32,
        DType::Complex64,
        DType::Float64,
        DType::Int64,
        DType::UInt64,
    ]
    .into_iter()
    .find(|&d| to_safetensors(d) == Some(dtype))
}

/// One tensor of a safetensors file.
#[derive(Debug, Clone)]
pub struct SafetensorsTensor {
    /// Its name.
    pub name: String,
    /// The header's name of its dtype (`F32`, `BF16`, ...).
    pub stored_dtype: String,
    /// Its TensorFlow dtype; `None` where TensorFlow has none.
    pub dtype: Option<DType>,
    /// Its shape.
    pub shape: Vec<u64>,
    /// Where its bytes are in the file.
    pub range: Range<u64>,
}

/// A safetensors file opened for reading: its header, read at open, and its tensors, read by range.
///
/// Thread safety: `Send` and `Sync`; reads take `&self`.
#[derive(Debug)]
pub struct SafetensorsReader {
    file: Arc<dyn ReadFile>,
    tensors: Vec<SafetensorsTensor>,
    metadata: BTreeMap<String, String>,
}

impl SafetensorsReader {
    /// Opens `path` in `storage` and reads its header (two reads: its length, then it).
    pub fn open(storage: &dyn Storage, path: &Path) -> Result<SafetensorsReader> {
        let file = storage.open(path)?;
        let invalid =
            |message: String| Error::data_loss(format!("not a valid safetensors file: {message}")).in_file(path);
        let size = file.size();
        if size < 8 {
            return Err(invalid(format!("{size} bytes, shorter than the header's length")));
        }
        let mut len = [0u8; 8];
        file.read_at(0, &mut len)?;
        let header_len = u64::from_le_bytes(len);
        if header_len > MAX_HEADER || header_len > size - 8 {
            return Err(invalid(format!("a header of {header_len} bytes in a file of {size}")));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_at(8, &mut header)?;
        let text = std::str::from_utf8(&header).map_err(|e| invalid(format!("the header is not UTF-8: {e}")))?;
        let parsed: Metadata = serde_json::from_str(text).map_err(|e| invalid(format!("{e}")))?;
        let data_start = 8 + header_len;
        if data_start + parsed.data_len() as u64 != size {
            let message = format!(
                "the header gives {} bytes of tensors, the file holds {} (truncated?)",
                parsed.data_len(),
                size - data_start
            );
            return Err(invalid(message));
        }
        let tensors = parsed
            .offset_keys()
            .into_iter()
            .filter_map(|name| {
                let info = parsed.info(&name)?;
                Some(SafetensorsTensor {
                    stored_dtype: info.dtype.to_string(),
                    dtype: from_safetensors(info.dtype),
                    shape: info.shape.iter().map(|&d| d as u64).collect(),
                    range: data_start + info.data_offsets.0 as u64..data_start + info.data_offsets.1 as u64,
                    name,
                })
            })
            .collect();
        let metadata = parsed.metadata().clone().unwrap_or_default().into_iter().collect();
        Ok(SafetensorsReader { file, tensors, metadata })
    }

    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Its tensors, in the order of their bytes.
    pub fn tensors(&self) -> &[SafetensorsTensor] {
        &self.tensors
    }

    /// The header's `__metadata__` strings.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Fills `out` with the bytes of tensor `index` from its byte `start` on (the whole tensor, or one part of
    /// it).
    pub fn read(&self, index: usize, start: u64, out: &mut [u8]) -> Result<()> {
        use rayon::prelude::*;

        let tensor = self
            .tensors
            .get(index)
            .ok_or_else(|| Error::invalid_argument(format!("no tensor {index}")).in_file(self.path()))?;
        let len = tensor.range.end - tensor.range.start;
        if start.checked_add(out.len() as u64).is_none_or(|end| end > len) {
            let message = format!("bytes {start}..+{} of a tensor of {len} bytes", out.len());
            return Err(Error::invalid_argument(message).for_tensor(&tensor.name).in_file(self.path()));
        }
        let at = tensor.range.start + start;
        let read = if self.file.mapped().is_some() {
            out.par_chunks_mut(LOCAL_PART)
                .enumerate()
                .try_for_each(|(i, part)| self.file.read_at(at + (i * LOCAL_PART) as u64, part))
        } else {
            self.file.read_ranges(vec![(at, out)])
        };
        read.map_err(|e| e.for_tensor(&tensor.name))
    }
}

/// A safetensors file being written: the header at creation, then the tensors' bytes as they come, in the
/// order [`SafetensorsWriter::order`] gives.
///
/// Thread safety: `Send`; one thread writes at a time.
///
/// Ownership: nothing appears at the path until [`SafetensorsWriter::commit`]; dropped before, the
/// writer removes what it wrote.
pub struct SafetensorsWriter {
    file: Box<dyn WriteFile>,
    path: PathBuf,
    /// Each tensor's name and byte count, in the order of their bytes.
    order: Vec<(String, u64)>,
    /// Bytes still to come: of `order[next]`, then of those after it.
    next: usize,
    written: u64,
}

impl SafetensorsWriter {
    /// Creates `path` in `storage` for `tensors` (name, dtype, shape) and writes its header, with `metadata`
    /// as its `__metadata__`. The bytes are then expected in the `safetensors` crate's order (by dtype,
    /// widest first, then by name), which keeps every tensor aligned to its element size.
    pub fn create(
        storage: &dyn Storage,
        path: &Path,
        tensors: Vec<(String, DType, Vec<u64>)>,
        metadata: BTreeMap<String, String>,
    ) -> Result<SafetensorsWriter> {
        let mut typed = Vec::with_capacity(tensors.len());
        for (name, dtype, shape) in tensors {
            let stored = to_safetensors(dtype).ok_or_else(|| {
                let message = format!("safetensors cannot hold {} tensors", dtype.name());
                Error::invalid_argument(message).for_tensor(&name).in_file(path)
            })?;
            let bytes = num_elements(&shape)
                .and_then(|n| n.checked_mul(dtype.size().unwrap_or(0) as u64))
                .filter(|&n| usize::try_from(n).is_ok())
                .ok_or_else(|| Error::invalid_argument("too large").for_tensor(&name).in_file(path))?;
            typed.push((name, stored, shape, bytes));
        }
        typed.sort_by(|(a, a_dtype, ..), (b, b_dtype, ..)| b_dtype.cmp(a_dtype).then(a.cmp(b)));
        let mut infos = Vec::with_capacity(typed.len());
        let mut order = Vec::with_capacity(typed.len());
        let mut offset = 0usize;
        for (name, dtype, shape, bytes) in typed {
            let shape = shape.iter().map(|&d| d as usize).collect();
            let end = offset + bytes as usize;
            infos.push((name.clone(), TensorInfo { dtype, shape, data_offsets: (offset, end) }));
            order.push((name, bytes));
            offset = end;
        }
        let metadata = (!metadata.is_empty()).then(|| metadata.into_iter().collect::<HashMap<_, _>>());
        let header = Metadata::new(metadata, infos)
            .map_err(|e| Error::invalid_argument(format!("safetensors header: {e}")).in_file(path))?;
        let mut header = serde_json::to_string(&header)
            .map_err(|e| Error::invalid_argument(format!("safetensors header: {e}")).in_file(path))?
            .into_bytes();
        // The crate pads the header with spaces to a multiple of 8 bytes, so that the data start aligned.
        header.resize(header.len().next_multiple_of(8), b' ');
        let mut file = storage.create(path)?;
        file.reserve(8 + header.len() as u64 + offset as u64)?;
        let io = |e: std::io::Error| Error::io(e, path);
        file.write_all(&(header.len() as u64).to_le_bytes()).map_err(io)?;
        file.write_all(&header).map_err(io)?;
        Ok(SafetensorsWriter { file, path: path.to_path_buf(), order, next: 0, written: 0 })
    }

    /// The tensors' names, in the order their bytes are to be written.
    pub fn order(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(|(name, _)| name.as_str())
    }

    /// Appends `data`, the next bytes of the tensors in [`SafetensorsWriter::order`] (a tensor may come in
    /// several calls, several tensors in one).
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let mut left = data.len() as u64;
        while left > 0 {
            let Some((_, bytes)) = self.order.get(self.next) else {
                let message = format!("{left} bytes more than the header's tensors hold");
                return Err(Error::invalid_argument(message).in_file(&self.path));
            };
            let take = left.min(bytes - self.written);
            self.written += take;
            left -= take;
            if self.written == *bytes {
                self.next += 1;
                self.written = 0;
            }
        }
        // Skip tensors without bytes, so that `next` names the one the next bytes belong to.
        while self.order.get(self.next).is_some_and(|(_, bytes)| *bytes == 0) {
            self.next += 1;
        }
        self.file.write_all(data).map_err(|e| Error::io(e, &self.path))
    }

    /// Finishes the file: it appears at its path once every tensor's bytes are written (and, with
    /// `durable`, are on disk).
    pub fn commit(mut self, durable: bool) -> Result<()> {
        while self.order.get(self.next).is_some_and(|(_, bytes)| *bytes == 0) {
            self.next += 1;
        }
        if let Some((name, bytes)) = self.order.get(self.next) {
            let message = format!("{} of its {bytes} bytes were written", self.written);
            return Err(Error::invalid_argument(message).for_tensor(name).in_file(&self.path));
        }
        self.file.commit(durable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;

    #[test]
    fn written_files_read_back_and_dtypes_correspond() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let tensors = vec![
            ("b".to_string(), DType::BFloat16, vec![2, 3]),
            ("a".to_string(), DType::Float64, vec![2]),
            ("empty".to_string(), DType::Int8, vec![0]),
        ];
        let mut writer = SafetensorsWriter::create(&LocalStorage, &path, tensors, BTreeMap::new()).unwrap();
        assert_eq!(writer.order().collect::<Vec<_>>(), ["a", "b", "empty"]);
        writer.write(&[1; 10]).unwrap();
        writer.write(&[2; 18]).unwrap();
        assert!(writer.write(&[0]).is_err());
        writer.commit(false).unwrap();
        let reader = SafetensorsReader::open(&LocalStorage, &path).unwrap();
        let names: Vec<_> = reader.tensors().iter().map(|t| (t.name.as_str(), t.dtype, t.shape.clone())).collect();
        assert_eq!(
            names,
            [
                ("a", Some(DType::Float64), vec![2]),
                ("b", Some(DType::BFloat16), vec![2, 3]),
                ("empty", Some(DType::Int8), vec![0])
            ]
        );
        let mut out = [0u8; 4];
        reader.read(1, 8, &mut out).unwrap();
        assert_eq!(out, [2, 2, 2, 2]);
        assert!(reader.read(1, 10, &mut out).is_err());
        for row in crate::dtype::TABLE.iter() {
            if let Some(stored) = to_safetensors(row.dtype) {
                assert_eq!(from_safetensors(stored), Some(row.dtype));
            }
        }
    }

    #[test]
    fn an_unfinished_file_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let tensors = vec![("a".to_string(), DType::Float32, vec![4])];
        let mut writer = SafetensorsWriter::create(&LocalStorage, &path, tensors, BTreeMap::new()).unwrap();
        writer.write(&[0; 8]).unwrap();
        let err = writer.commit(false).unwrap_err();
        assert!(err.to_string().contains("8 of its 16 bytes"), "{err}");
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn damaged_headers_are_data_loss_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        for contents in [&b"1234"[..], &[255; 16][..], b"\x05\0\0\0\0\0\0\0{\"a\":", b"\x02\0\0\0\0\0\0\0{}\0"] {
            std::fs::write(&path, contents).unwrap();
            let err = SafetensorsReader::open(&LocalStorage, &path).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::DataLoss, "{err}");
            assert!(err.to_string().contains("bad.safetensors"), "{err}");
        }
    }
}
