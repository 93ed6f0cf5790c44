//! The element types a checkpoint can hold, and how they are laid out: one table, from which the Python
//! package takes its own (`fastckpt.dtypes`).
use crate::error::{Error, Result};

/// A TensorFlow `DataType` that can be stored in a checkpoint; its discriminant is the `DataType` number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum DType {
    /// TensorFlow's `float32`.
    Float32 = 1,
    /// TensorFlow's `float64`.
    Float64 = 2,
    /// TensorFlow's `int32`.
    Int32 = 3,
    /// TensorFlow's `uint8`.
    UInt8 = 4,
    /// TensorFlow's `int16`.
    Int16 = 5,
    /// TensorFlow's `int8`.
    Int8 = 6,
    /// TensorFlow's `string`.
    String = 7,
    /// TensorFlow's `complex64`.
    Complex64 = 8,
    /// TensorFlow's `int64`.
    Int64 = 9,
    /// TensorFlow's `bool`.
    Bool = 10,
    /// TensorFlow's `qint8`.
    QInt8 = 11,
    /// TensorFlow's `quint8`.
    QUInt8 = 12,
    /// TensorFlow's `qint32`.
    QInt32 = 13,
    /// TensorFlow's `bfloat16`.
    BFloat16 = 14,
    /// TensorFlow's `qint16`.
    QInt16 = 15,
    /// TensorFlow's `quint16`.
    QUInt16 = 16,
    /// TensorFlow's `uint16`.
    UInt16 = 17,
    /// TensorFlow's `complex128`.
    Complex128 = 18,
    /// TensorFlow's `float16`.
    Float16 = 19,
    /// Handles to resources: listed when a checkpoint holds them, never readable.
    Resource = 20,
    /// Arbitrary C++ objects (such as dataset iterator state): listed, not readable.
    Variant = 21,
    /// TensorFlow's `uint32`.
    UInt32 = 22,
    /// TensorFlow's `uint64`.
    UInt64 = 23,
    /// TensorFlow's `float8_e5m2`.
    Float8E5M2 = 24,
    /// TensorFlow's `float8_e4m3fn`.
    Float8E4M3FN = 25,
    /// TensorFlow's `float8_e4m3fnuz`.
    Float8E4M3FNUZ = 26,
    /// TensorFlow's `float8_e4m3b11fnuz`.
    Float8E4M3B11FNUZ = 27,
    /// TensorFlow's `float8_e5m2fnuz`.
    Float8E5M2FNUZ = 28,
    /// TensorFlow's `int4`.
    Int4 = 29,
    /// TensorFlow's `uint4`.
    UInt4 = 30,
}

/// One dtype's facts.
#[derive(Debug)]
pub struct Row {
    /// The dtype.
    pub dtype: DType,
    /// TensorFlow's name (`tf.DType.name`).
    pub name: &'static str,
    /// Bytes per element in a data file; `None` for strings, variants and resources, whose elements vary.
    pub size: Option<usize>,
    /// The numpy type of arrays of it, as TensorFlow's reader returns them: a numpy type name, `object`, or
    /// `ml_dtypes.<name>`. Quantized types read as their underlying integers.
    pub numpy: &'static str,
}

/// Every dtype, in the order of their `DataType` numbers (1 to 30).
pub const TABLE: [Row; 30] = [
    Row { dtype: DType::Float32, name: "float32", size: Some(4), numpy: "float32" },
    Row { dtype: DType::Float64, name: "float64", size: Some(8), numpy: "float64" },
    Row { dtype: DType::Int32, name: "int32", size: Some(4), numpy: "int32" },
    Row { dtype: DType::UInt8, name: "uint8", size: Some(1), numpy: "uint8" },
    Row { dtype: DType::Int16, name: "int16", size: Some(2), numpy: "int16" },
    Row { dtype: DType::Int8, name: "int8", size: Some(1), numpy: "int8" },
    Row { dtype: DType::String, name: "string", size: None, numpy: "object" },
    Row { dtype: DType::Complex64, name: "complex64", size: Some(8), numpy: "complex64" },
    Row { dtype: DType::Int64, name: "int64", size: Some(8), numpy: "int64" },
    Row { dtype: DType::Bool, name: "bool", size: Some(1), numpy: "bool" },
    Row { dtype: DType::QInt8, name: "qint8", size: Some(1), numpy: "int8" },
    Row { dtype: DType::QUInt8, name: "quint8", size: Some(1), numpy: "uint8" },
    Row { dtype: DType::QInt32, name: "qint32", size: Some(4), numpy: "int32" },
    Row { dtype: DType::BFloat16, name: "bfloat16", size: Some(2), numpy: "ml_dtypes.bfloat16" },
    Row { dtype: DType::QInt16, name: "qint16", size: Some(2), numpy: "int16" },
    Row { dtype: DType::QUInt16, name: "quint16", size: Some(2), numpy: "uint16" },
    Row { dtype: DType::UInt16, name: "uint16", size: Some(2), numpy: "uint16" },
    Row { dtype: DType::Complex128, name: "complex128", size: Some(16), numpy: "complex128" },
    Row { dtype: DType::Float16, name: "float16", size: Some(2), numpy: "float16" },
    Row { dtype: DType::Resource, name: "resource", size: None, numpy: "object" },
    Row { dtype: DType::Variant, name: "variant", size: None, numpy: "object" },
    Row { dtype: DType::UInt32, name: "uint32", size: Some(4), numpy: "uint32" },
    Row { dtype: DType::UInt64, name: "uint64", size: Some(8), numpy: "uint64" },
    Row { dtype: DType::Float8E5M2, name: "float8_e5m2", size: Some(1), numpy: "ml_dtypes.float8_e5m2" },
    Row { dtype: DType::Float8E4M3FN, name: "float8_e4m3fn", size: Some(1), numpy: "ml_dtypes.float8_e4m3fn" },
    Row { dtype: DType::Float8E4M3FNUZ, name: "float8_e4m3fnuz", size: Some(1), numpy: "ml_dtypes.float8_e4m3fnuz" },
    Row {
        dtype: DType::Float8E4M3B11FNUZ,
        name: "float8_e4m3b11fnuz",
        size: Some(1),
        numpy: "ml_dtypes.float8_e4m3b11fnuz",
    },
    Row { dtype: DType::Float8E5M2FNUZ, name: "float8_e5m2fnuz", size: Some(1), numpy: "ml_dtypes.float8_e5m2fnuz" },
    Row { dtype: DType::Int4, name: "int4", size: Some(1), numpy: "ml_dtypes.int4" },
    Row { dtype: DType::UInt4, name: "uint4", size: Some(1), numpy: "ml_dtypes.uint4" },
];

impl DType {
    fn row(self) -> &'static Row {
        &TABLE[self as usize - 1]
    }

    /// The `DataType` enum value TensorFlow stores.
    pub fn as_proto(self) -> i32 {
        self as i32
    }

    /// The dtype of a stored `DataType` value.
    pub fn from_proto(value: i32) -> Result<DType> {
        usize::try_from(value)
            .ok()
            .and_then(|n| TABLE.get(n.checked_sub(1)?))
            .map(|row| row.dtype)
            .ok_or_else(|| Error::data_loss(format!("unknown or invalid dtype {value}")))
    }

    /// TensorFlow's name of the dtype (`tf.DType.name`).
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// Bytes per element in a data file; `None` for strings, variants and resources, whose elements vary.
    pub fn size(self) -> Option<usize> {
        self.row().size
    }

    /// The numpy type of arrays of it ([`Row::numpy`]): a numpy type name, `object`, or `ml_dtypes.<name>`.
    pub fn numpy_name(self) -> &'static str {
        self.row().numpy
    }

    /// Whether it is a floating-point type (`tf.DType.is_floating`): the IEEE types, bfloat16 and the float8
    /// types.
    pub fn is_floating(self) -> bool {
        matches!(
            self,
            DType::Float16
                | DType::Float32
                | DType::Float64
                | DType::BFloat16
                | DType::Float8E5M2
                | DType::Float8E4M3FN
                | DType::Float8E4M3FNUZ
                | DType::Float8E4M3B11FNUZ
                | DType::Float8E5M2FNUZ
        )
    }

    /// The unit a byte swap reverses: the element, or each half of a complex number.
    pub fn swap_unit(self) -> usize {
        match self {
            DType::Complex64 | DType::Complex128 => self.size().unwrap_or(2) / 2,
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
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.dtype.as_proto() as usize, i + 1, "{}", row.name);
            assert_eq!(DType::from_proto(row.dtype.as_proto()).unwrap(), row.dtype);
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
