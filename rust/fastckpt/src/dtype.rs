//! The element types a checkpoint can hold, and how they are laid out.
use crate::error::{Error, Result};

/// A TensorFlow `DataType` that can be stored in a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    Float32,
    Float64,
    Int32,
    UInt8,
    Int16,
    Int8,
    String,
    Complex64,
    Int64,
    Bool,
    QInt8,
    QUInt8,
    QInt32,
    BFloat16,
    QInt16,
    QUInt16,
    UInt16,
    Complex128,
    Float16,
    UInt32,
    UInt64,
    Float8E5M2,
    Float8E4M3FN,
    Float8E4M3FNUZ,
    Float8E4M3B11FNUZ,
    Float8E5M2FNUZ,
    Int4,
    UInt4,
    /// Handles to resources: listed when a checkpoint holds them, never readable.
    Resource,
    /// Arbitrary C++ objects (such as dataset iterator state): listed, not readable.
    Variant,
}

impl DType {
    /// Every dtype, in the order of their `DataType` numbers.
    pub const ALL: [DType; 30] = [
        DType::Float32,
        DType::Float64,
        DType::Int32,
        DType::UInt8,
        DType::Int16,
        DType::Int8,
        DType::String,
        DType::Complex64,
        DType::Int64,
        DType::Bool,
        DType::QInt8,
        DType::QUInt8,
        DType::QInt32,
        DType::BFloat16,
        DType::QInt16,
        DType::QUInt16,
        DType::UInt16,
        DType::Complex128,
        DType::Float16,
        DType::UInt32,
        DType::UInt64,
        DType::Float8E5M2,
        DType::Float8E4M3FN,
        DType::Float8E4M3FNUZ,
        DType::Float8E4M3B11FNUZ,
        DType::Float8E5M2FNUZ,
        DType::Int4,
        DType::UInt4,
        DType::Resource,
        DType::Variant,
    ];

    /// The `DataType` enum value TensorFlow stores.
    pub fn as_proto(self) -> i32 {
        match self {
            DType::Float32 => 1,
            DType::Float64 => 2,
            DType::Int32 => 3,
            DType::UInt8 => 4,
            DType::Int16 => 5,
            DType::Int8 => 6,
            DType::String => 7,
            DType::Complex64 => 8,
            DType::Int64 => 9,
            DType::Bool => 10,
            DType::QInt8 => 11,
            DType::QUInt8 => 12,
            DType::QInt32 => 13,
            DType::BFloat16 => 14,
            DType::QInt16 => 15,
            DType::QUInt16 => 16,
            DType::UInt16 => 17,
            DType::Complex128 => 18,
            DType::Float16 => 19,
            DType::UInt32 => 22,
            DType::UInt64 => 23,
            DType::Float8E5M2 => 24,
            DType::Float8E4M3FN => 25,
            DType::Float8E4M3FNUZ => 26,
            DType::Float8E4M3B11FNUZ => 27,
            DType::Float8E5M2FNUZ => 28,
            DType::Int4 => 29,
            DType::UInt4 => 30,
            DType::Resource => 20,
            DType::Variant => 21,
        }
    }

    /// The dtype of a stored `DataType` value.
    pub fn from_proto(value: i32) -> Result<DType> {
        DType::ALL
            .into_iter()
            .find(|d| d.as_proto() == value)
            .ok_or_else(|| Error::data_loss(format!("unknown or invalid dtype {value}")))
    }

    /// TensorFlow's name of the dtype (`tf.DType.name`).
    pub fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Int32 => "int32",
            DType::UInt8 => "uint8",
            DType::Int16 => "int16",
            DType::Int8 => "int8",
            DType::String => "string",
            DType::Complex64 => "complex64",
            DType::Int64 => "int64",
            DType::Bool => "bool",
            DType::QInt8 => "qint8",
            DType::QUInt8 => "quint8",
            DType::QInt32 => "qint32",
            DType::BFloat16 => "bfloat16",
            DType::QInt16 => "qint16",
            DType::QUInt16 => "quint16",
            DType::UInt16 => "uint16",
            DType::Complex128 => "complex128",
            DType::Float16 => "float16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Float8E5M2 => "float8_e5m2",
            DType::Float8E4M3FN => "float8_e4m3fn",
            DType::Float8E4M3FNUZ => "float8_e4m3fnuz",
            DType::Float8E4M3B11FNUZ => "float8_e4m3b11fnuz",
            DType::Float8E5M2FNUZ => "float8_e5m2fnuz",
            DType::Int4 => "int4",
            DType::UInt4 => "uint4",
            DType::Resource => "resource",
            DType::Variant => "variant",
        }
    }

    /// Bytes per element in a data file; `None` for strings, variants and resources, whose elements vary.
    pub fn size(self) -> Option<usize> {
        Some(match self {
            DType::String | DType::Resource | DType::Variant => return None,
            DType::Int8
            | DType::UInt8
            | DType::Bool
            | DType::QInt8
            | DType::QUInt8
            | DType::Float8E5M2
            | DType::Float8E4M3FN
            | DType::Float8E4M3FNUZ
            | DType::Float8E4M3B11FNUZ
            | DType::Float8E5M2FNUZ
            | DType::Int4
            | DType::UInt4 => 1,
            DType::Int16 | DType::UInt16 | DType::QInt16 | DType::QUInt16 | DType::Float16 | DType::BFloat16 => 2,
            DType::Int32 | DType::UInt32 | DType::QInt32 | DType::Float32 => 4,
            DType::Int64 | DType::UInt64 | DType::Float64 | DType::Complex64 => 8,
            DType::Complex128 => 16,
        })
    }

    /// The unit a byte swap reverses: the element, or each half of a complex number.
    pub fn swap_unit(self) -> usize {
        match self {
            DType::Complex64 => 4,
            DType::Complex128 => 8,
            other => other.size().unwrap_or(1),
        }
    }
}

/// Reverses the byte order of every `unit`-byte value in `data`.
pub fn byte_swap(data: &mut [u8], unit: usize) {
    if unit > 1 {
        for value in data.chunks_exact_mut(unit) {
            value.reverse();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_numbers_round_trip() {
        for dtype in DType::ALL {
            assert_eq!(DType::from_proto(dtype.as_proto()).unwrap(), dtype);
        }
        assert!(DType::from_proto(0).is_err());
        assert!(DType::from_proto(34).is_err());
        assert!(DType::from_proto(101).is_err());
        assert!(DType::from_proto(-1).is_err());
    }

    #[test]
    fn swaps_complex_halves() {
        let mut data = [1u8, 2, 3, 4, 5, 6, 7, 8];
        byte_swap(&mut data, DType::Complex64.swap_unit());
        assert_eq!(data, [4, 3, 2, 1, 8, 7, 6, 5]);
    }
}
