//! The values of a `TensorProto` (the slices of V1 checkpoints, the constants of graphs), decoded with
//! TensorFlow's rule (`Tensor::FromProto`): `tensor_content` holds exactly the tensor's bytes; otherwise the
//! typed values hold at most one value per element, the last one repeated over the elements left (so one
//! value fills a tensor), and no values at all mean zeros (empty strings).
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::proto::TensorProto;
use crate::slices::num_elements;
use crate::tensor::shape_from_proto;

/// Decoded values: the elements' bytes (row-major, little-endian) or a string tensor's elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// A fixed-size dtype's elements.
    Bytes(Vec<u8>),
    /// A string tensor's elements.
    Strings(Vec<Vec<u8>>),
}

/// The dtype, shape and values of a `TensorProto`.
pub fn decode(t: &TensorProto) -> Result<(DType, Vec<u64>, Values)> {
    let dtype = DType::from_proto(t.dtype)?;
    let shape = shape_from_proto(t.tensor_shape.as_ref())?;
    let count = num_elements(&shape).ok_or_else(|| Error::data_loss(format!("shape {shape:?} is too large")))?;
    let values = match dtype {
        DType::String => Values::Strings(strings(t, count)?),
        _ => Values::Bytes(bytes(t, dtype, count)?),
    };
    Ok((dtype, shape, values))
}

/// [`decode`] of a serialized `TensorProto`.
pub fn decode_serialized(serialized: &[u8]) -> Result<(DType, Vec<u64>, Values)> {
    let proto = <TensorProto as prost::Message>::decode(serialized)
        .map_err(|e| Error::data_loss(format!("unparsable TensorProto: {e}")))?;
    decode(&proto)
}

/// The `count` elements of a string `TensorProto`.
pub fn strings(t: &TensorProto, count: u64) -> Result<Vec<Vec<u8>>> {
    let given = &t.string_val;
    check_count(given.len(), count)?;
    let mut out = allocate::<Vec<u8>>(count)?;
    out.extend(given.iter().cloned());
    let last = given.last().cloned().unwrap_or_default();
    out.resize(count as usize, last);
    Ok(out)
}

/// The `count` elements of a numeric `TensorProto` of `dtype`, as little-endian bytes.
pub fn bytes(t: &TensorProto, dtype: DType, count: u64) -> Result<Vec<u8>> {
    let elem = match dtype.size() {
        Some(size) => size,
        None => return Err(Error::unimplemented(format!("{} values in a TensorProto", dtype.name()))),
    };
    let len = count.checked_mul(elem as u64).ok_or_else(|| Error::data_loss("tensor too large"))?;
    if !t.tensor_content.is_empty() {
        if t.tensor_content.len() as u64 != len {
            return Err(Error::data_loss(format!(
                "tensor_content holds {} bytes, not the {len} of {count} {} values",
                t.tensor_content.len(),
                dtype.name()
            )));
        }
        return Ok(t.tensor_content.clone());
    }
    let given = typed_values(t, dtype);
    let given_count = given.len() / elem;
    check_count(given_count, count)?;
    let mut out = allocate::<u8>(len)?;
    out.extend_from_slice(&given);
    // The last value stands for the elements left; none given means zeros.
    let last = given.get(given.len().saturating_sub(elem)..).filter(|v| v.len() == elem).unwrap_or(&[]);
    if last.is_empty() {
        out.resize(len as usize, 0);
    } else {
        while out.len() < len as usize {
            out.extend_from_slice(last);
        }
    }
    Ok(out)
}

/// The typed values as little-endian bytes, one element each (a complex element is two values).
fn typed_values(t: &TensorProto, dtype: DType) -> Vec<u8> {
    fn collect<T: Copy, const N: usize>(values: &[T], to_bytes: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        values.iter().flat_map(|&v| to_bytes(v)).collect()
    }
    match dtype {
        DType::Float32 => collect(&t.float_val, f32::to_le_bytes),
        DType::Float64 => collect(&t.double_val, f64::to_le_bytes),
        DType::Int32 | DType::QInt32 => collect(&t.int_val, i32::to_le_bytes),
        DType::Int16 | DType::QInt16 => collect(&t.int_val, |v| (v as i16).to_le_bytes()),
        DType::UInt16 | DType::QUInt16 => collect(&t.int_val, |v| (v as u16).to_le_bytes()),
        DType::Int8 | DType::QInt8 | DType::UInt8 | DType::QUInt8 => collect(&t.int_val, |v| [v as u8]),
        DType::Int64 => collect(&t.int64_val, i64::to_le_bytes),
        DType::UInt32 => collect(&t.uint32_val, u32::to_le_bytes),
        DType::UInt64 => collect(&t.uint64_val, u64::to_le_bytes),
        DType::Bool => collect(&t.bool_val, |v| [v as u8]),
        DType::Complex64 => collect(&t.scomplex_val, f32::to_le_bytes),
        DType::Complex128 => collect(&t.dcomplex_val, f64::to_le_bytes),
        DType::Float16 | DType::BFloat16 => collect(&t.half_val, |v| (v as u16).to_le_bytes()),
        DType::Float8E5M2
        | DType::Float8E4M3FN
        | DType::Float8E4M3FNUZ
        | DType::Float8E4M3B11FNUZ
        | DType::Float8E5M2FNUZ
        | DType::Int4
        | DType::UInt4 => t.float8_val.clone(),
        DType::String | DType::Resource | DType::Variant => Vec::new(),
    }
}

fn check_count(given: usize, count: u64) -> Result<()> {
    if given as u64 > count {
        return Err(Error::data_loss(format!("{given} values for a tensor of {count} elements")));
    }
    Ok(())
}

/// An empty vector with room for `count` items, or an error where this machine cannot hold them: a
/// proto of a few bytes may declare any shape.
fn allocate<T>(count: u64) -> Result<Vec<T>> {
    let mut out = Vec::new();
    usize::try_from(count)
        .ok()
        .and_then(|n| out.try_reserve_exact(n).ok())
        .ok_or_else(|| Error::invalid_argument(format!("a tensor of {count} elements does not fit in memory")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{tensor_shape_proto::Dim, TensorShapeProto};

    fn proto(dtype: DType, shape: &[i64]) -> TensorProto {
        let dim = shape.iter().map(|&size| Dim { size, name: String::new() }).collect();
        TensorProto {
            dtype: dtype.as_proto(),
            tensor_shape: Some(TensorShapeProto { dim, unknown_rank: false }),
            ..Default::default()
        }
    }

    #[test]
    fn the_last_value_fills_the_rest_and_none_means_zeros() {
        let t = TensorProto { float_val: vec![1.0, 2.0], ..proto(DType::Float32, &[4]) };
        let expected: Vec<u8> = [1.0f32, 2.0, 2.0, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(decode(&t).unwrap().2, Values::Bytes(expected));
        assert_eq!(decode(&proto(DType::Int64, &[3])).unwrap().2, Values::Bytes(vec![0; 24]));
        let t = TensorProto { string_val: vec![b"a".to_vec()], ..proto(DType::String, &[2]) };
        assert_eq!(decode(&t).unwrap().2, Values::Strings(vec![b"a".to_vec(), b"a".to_vec()]));
        let t = TensorProto { scomplex_val: vec![1.0, 2.0], ..proto(DType::Complex64, &[2]) };
        let Values::Bytes(bytes) = decode(&t).unwrap().2 else { panic!() };
        assert_eq!(bytes[..8], bytes[8..]);
    }

    #[test]
    fn too_many_values_or_a_wrong_content_length_is_data_loss() {
        let t = TensorProto { int_val: vec![1, 2, 3], ..proto(DType::Int32, &[2]) };
        assert!(decode(&t).is_err());
        let t = TensorProto { tensor_content: vec![0; 7], ..proto(DType::Int32, &[2]) };
        assert!(decode(&t).is_err());
    }

    #[test]
    fn a_huge_declared_shape_is_refused_not_allocated() {
        let t = TensorProto { float_val: vec![1.0], ..proto(DType::Float32, &[1 << 31, 1 << 31]) };
        assert!(decode(&t).is_err());
    }
}
