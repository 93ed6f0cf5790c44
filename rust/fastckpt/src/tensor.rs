//! What a checkpoint says of each tensor.
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::proto::TensorShapeProto;
use crate::slices::num_elements;

/// The dtype and shape of a stored tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The dtype the checkpoint declares: one this library knows, or opening failed.
    pub dtype: DType,
    /// The size of each dimension, outermost first; empty for a scalar. For a tensor a reader lists, checked at
    /// open by [`shape_from_proto`]: its element count fits an `i64`.
    pub shape: Vec<u64>,
}

impl TensorInfo {
    /// Bytes per element of a tensor read as raw bytes; strings, variants and resources are errors.
    pub fn numeric_size(&self) -> Result<usize> {
        match self.dtype {
            DType::String => Err(Error::invalid_argument("string tensors are read as strings, not as raw bytes")),
            DType::Resource | DType::Variant => {
                Err(Error::unimplemented(format!("{} tensors cannot be read", self.dtype.name())))
            }
            other => Ok(other.size().expect("fixed-size dtype")),
        }
    }
}

/// A stored shape: every dimension known and non-negative, and the element count representable.
pub fn shape_from_proto(shape: Option<&TensorShapeProto>) -> Result<Vec<u64>> {
    let Some(shape) = shape else { return Ok(Vec::new()) };
    if shape.unknown_rank {
        return Err(Error::data_loss("stored shape has unknown rank"));
    }
    let dims = shape
        .dim
        .iter()
        .map(|d| u64::try_from(d.size).map_err(|_| Error::data_loss(format!("invalid dimension size {}", d.size))))
        .collect::<Result<Vec<u64>>>()?;
    match num_elements(&dims) {
        Some(n) if n <= i64::MAX as u64 => Ok(dims),
        _ => Err(Error::data_loss(format!("shape {dims:?} has too many elements"))),
    }
}

/// A tensor found in a checkpoint by its `find`: its place among the checkpoint's tensors. Every read takes
/// one, so that a name is looked up once however many reads follow. Valid for the checkpoint that made it
/// only (another checkpoint's reads may panic on it or read another tensor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TensorRef(pub(crate) usize);

/// The tensor named `key` among `tensors`, sorted by key.
pub(crate) fn find(tensors: &[(Vec<u8>, TensorInfo)], key: &[u8]) -> Option<TensorRef> {
    tensors.binary_search_by(|(k, _)| k.as_slice().cmp(key)).ok().map(TensorRef)
}
