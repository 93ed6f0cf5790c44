//! Slices of tensors: the stored pieces of partitioned tensors, and the regions callers read.
//!
//! Everything is in elements, row-major. A stored slice is a box (start and length per dimension) of the full
//! tensor; a [`Selection`] is a strided region (start, count and step per dimension). Copying intersects the two.
use crate::error::{Error, Result};
use crate::ordered_code;
use crate::proto;

/// One dimension of a stored slice as TensorFlow records it: `length` is `None` for the whole dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// The first index of the slice in this dimension. As stored, any number: [`TensorSlice::resolve`] checks
    /// it, and ignores it where `length` is `None` (TensorFlow writes 0 there; the slice's key holds it).
    pub start: i64,
    /// How many indices from `start` the slice holds; `None` for all of them.
    pub length: Option<i64>,
}

/// A stored slice of a partitioned tensor, as recorded in the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSlice {
    /// One extent per dimension of the full tensor, outermost first; none for a scalar.
    pub extents: Vec<Extent>,
}

impl TensorSlice {
    /// The slice a `TensorSliceProto` records, unchecked: [`TensorSlice::resolve`] checks it against a shape.
    pub fn from_proto(proto: &proto::TensorSliceProto) -> TensorSlice {
        let extents = proto
            .extent
            .iter()
            .map(|e| Extent {
                start: e.start,
                length: e.has_length.map(|proto::tensor_slice_proto::extent::HasLength::Length(l)| l),
            })
            .collect();
        TensorSlice { extents }
    }

    /// The `TensorSliceProto` recording this slice, as the entry of a partitioned tensor lists its slices.
    pub fn to_proto(&self) -> proto::TensorSliceProto {
        use proto::tensor_slice_proto::{extent::HasLength, Extent as ProtoExtent};
        let extent = self
            .extents
            .iter()
            .map(|e| ProtoExtent { start: e.start, has_length: e.length.map(HasLength::Length) })
            .collect();
        proto::TensorSliceProto { extent }
    }

    /// Parses TensorFlow's slice spec: per dimension `start,length` or `-` (all of it), separated by `:`;
    /// `""` is the slice of a scalar.
    pub fn parse(spec: &str) -> Result<TensorSlice> {
        if spec.is_empty() {
            return Ok(TensorSlice { extents: Vec::new() });
        }
        let bad = || Error::invalid_argument(format!("invalid slice spec {spec:?}: expected e.g. \"0,3:-\""));
        let extents = spec
            .split(':')
            .map(|dim| {
                if dim == "-" {
                    return Ok(Extent { start: 0, length: None });
                }
                let (start, length) = dim.split_once(',').ok_or_else(bad)?;
                let start: i64 = start.trim().parse().map_err(|_| bad())?;
                let length: i64 = length.trim().parse().map_err(|_| bad())?;
                if start < 0 || length < 0 {
                    return Err(bad());
                }
                Ok(Extent { start, length: Some(length) })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TensorSlice { extents })
    }

    /// The slice as a box of `shape`: `(start, length)` per dimension, checked to lie inside it.
    pub fn resolve(&self, shape: &[u64]) -> Result<Vec<(u64, u64)>> {
        if self.extents.len() != shape.len() {
            return Err(Error::data_loss(format!(
                "slice of rank {} for a tensor of rank {}",
                self.extents.len(),
                shape.len()
            )));
        }
        self.extents
            .iter()
            .zip(shape)
            .map(|(extent, &dim)| {
                let (start, length) = match extent.length {
                    None => (0, dim),
                    Some(length) => {
                        let start = u64::try_from(extent.start).ok();
                        let length = u64::try_from(length).ok();
                        match start.zip(length) {
                            Some((s, l)) if s.checked_add(l).is_some_and(|end| end <= dim) => (s, l),
                            _ => {
                                return Err(Error::data_loss(format!(
                                    "slice [{}, +{}) lies outside a dimension of size {dim}",
                                    extent.start,
                                    extent.length.unwrap_or(-1)
                                )))
                            }
                        }
                    }
                };
                Ok((start, length))
            })
            .collect()
    }

    /// The table key under which this slice of tensor `name` is stored.
    pub fn key(&self, name: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(name.len() + 4 + 4 * self.extents.len());
        ordered_code::write_num_increasing(&mut key, 0);
        ordered_code::write_string(&mut key, name);
        ordered_code::write_num_increasing(&mut key, self.extents.len() as u64);
        for extent in &self.extents {
            ordered_code::write_signed_num_increasing(&mut key, extent.start);
            ordered_code::write_signed_num_increasing(&mut key, extent.length.unwrap_or(-1));
        }
        key
    }
}

/// The number of elements of a shape, or `None` on overflow.
pub fn num_elements(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// One dimension of a [`Selection`]: the indices `start + k * step` for `k` in `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DimSelection {
    /// The first index selected.
    pub start: u64,
    /// How many indices are selected; 0 selects nothing (then `start` may equal the dimension's size).
    pub count: u64,
    /// The distance between consecutive selected indices; at least 1, as [`Selection::new`] checks.
    pub step: u64,
}

/// A strided region of a tensor, checked against its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    dims: Vec<DimSelection>,
}

impl Selection {
    /// The whole tensor.
    pub fn full(shape: &[u64]) -> Selection {
        Selection { dims: shape.iter().map(|&d| DimSelection { start: 0, count: d, step: 1 }).collect() }
    }

    /// A region of a tensor of `shape`; every selected index must lie inside it.
    pub fn new(shape: &[u64], dims: Vec<DimSelection>) -> Result<Selection> {
        if dims.len() != shape.len() {
            return Err(Error::invalid_argument(format!(
                "selection of rank {} for a tensor of rank {}",
                dims.len(),
                shape.len()
            )));
        }
        for (d, (sel, &size)) in dims.iter().zip(shape).enumerate() {
            let last = (sel.count > 0).then(|| {
                sel.count.checked_sub(1).and_then(|k| k.checked_mul(sel.step)).and_then(|o| o.checked_add(sel.start))
            });
            let inside = match last {
                None => sel.start <= size,
                Some(last) => last.is_some_and(|last| last < size),
            };
            if sel.step == 0 || !inside {
                return Err(Error::invalid_argument(format!(
                    "selection start={} count={} step={} lies outside dimension {d} of size {size}",
                    sel.start, sel.count, sel.step
                )));
            }
        }
        Ok(Selection { dims })
    }

    /// The number of elements selected, the size of the row-major output. At most the tensor's element count,
    /// since [`Selection::new`] keeps every count within its dimension's size.
    pub fn num_elements(&self) -> u64 {
        self.dims.iter().map(|d| d.count).product()
    }

    /// Whether this selects all of a tensor of `shape`.
    pub fn is_full(&self, shape: &[u64]) -> bool {
        self.dims.iter().zip(shape).all(|(d, &size)| d.start == 0 && d.count == size && (d.step == 1 || size <= 1))
    }

    /// Whether any selected element lies inside the box `block`.
    pub fn intersects(&self, block: &[(u64, u64)]) -> bool {
        self.dims.iter().zip(block).all(|(sel, &(block_start, block_len))| {
            if sel.count == 0 || block_len == 0 {
                return false;
            }
            // The first selected index at or after block_start.
            let first_k = if sel.start >= block_start { 0 } else { (block_start - sel.start).div_ceil(sel.step) };
            first_k < sel.count && sel.start + first_k * sel.step < block_start + block_len
        })
    }

    /// Calls `copy(src, dst, count, src_step)` for each run of selected elements that lie inside the box
    /// `block` (the stored slice): `count` elements from element `src` of the box (then every `src_step`-th)
    /// to consecutive elements from element `dst` of the selection. Returns the number of elements.
    pub fn for_each_run(&self, block: &[(u64, u64)], mut copy: impl FnMut(usize, usize, usize, usize)) -> u64 {
        let rank = self.dims.len();
        if rank == 0 {
            copy(0, 0, 1, 1);
            return 1;
        }
        // The range of k, per dimension, whose index falls inside the block.
        let mut k_range = Vec::with_capacity(rank);
        for (sel, &(block_start, block_len)) in self.dims.iter().zip(block) {
            let block_end = block_start + block_len;
            let first = if sel.start >= block_start { 0 } else { (block_start - sel.start).div_ceil(sel.step) };
            let end = if block_end <= sel.start { 0 } else { (block_end - sel.start).div_ceil(sel.step) };
            let end = end.min(sel.count);
            if first >= end {
                return 0;
            }
            k_range.push((first, end));
        }
        let mut src_stride = vec![1u64; rank];
        let mut dst_stride = vec![1u64; rank];
        for d in (0..rank - 1).rev() {
            src_stride[d] = src_stride[d + 1] * block[d + 1].1;
            dst_stride[d] = dst_stride[d + 1] * self.dims[d + 1].count;
        }
        let last = rank - 1;
        let run = (k_range[last].1 - k_range[last].0) as usize;
        let mut k: Vec<u64> = k_range.iter().map(|r| r.0).collect();
        let mut total = 0u64;
        loop {
            let (mut src, mut dst) = (0u64, 0u64);
            for d in 0..rank {
                let index = self.dims[d].start + k[d] * self.dims[d].step;
                src += (index - block[d].0) * src_stride[d];
                dst += k[d] * dst_stride[d];
            }
            copy(src as usize, dst as usize, run, self.dims[last].step as usize);
            total += run as u64;
            // Advance the multi-index over all dimensions but the last.
            let mut d = last;
            loop {
                if d == 0 {
                    return total;
                }
                d -= 1;
                k[d] += 1;
                if k[d] < k_range[d].1 {
                    break;
                }
                k[d] = k_range[d].0;
            }
        }
    }

    /// Copies the selected elements of `block` (a box holding `src`, `elem` bytes per element) into `dst`
    /// (the selection, row-major). Returns the number of elements copied.
    pub fn copy_bytes(&self, block: &[(u64, u64)], src: &[u8], elem: usize, dst: &mut [u8]) -> u64 {
        self.for_each_run(block, |s, d, count, step| {
            let (s, d) = (s * elem, d * elem);
            if step == 1 {
                dst[d..d + count * elem].copy_from_slice(&src[s..s + count * elem]);
            } else {
                for i in 0..count {
                    let from = s + i * step * elem;
                    dst[d + i * elem..d + (i + 1) * elem].copy_from_slice(&src[from..from + elem]);
                }
            }
        })
    }
}

/// Reads the selection `sel` of a tensor stored as the disjoint boxes `boxes`, copying from each box that it
/// intersects; `fetch(i)` returns the bytes of box `i` (`elem` bytes per element).
pub fn assemble<'a>(
    sel: &Selection,
    boxes: &[Vec<(u64, u64)>],
    elem: usize,
    out: &mut [u8],
    mut fetch: impl FnMut(usize) -> Result<std::borrow::Cow<'a, [u8]>>,
) -> Result<()> {
    check_disjoint(boxes)?;
    let mut copied = 0u64;
    for (i, block) in boxes.iter().enumerate() {
        if !sel.intersects(block) {
            continue;
        }
        let bytes = fetch(i)?;
        let expected = block.iter().map(|&(_, len)| len).product::<u64>().saturating_mul(elem as u64);
        if bytes.len() as u64 != expected {
            return Err(Error::data_loss(format!("slice holds {} bytes instead of {expected}", bytes.len())));
        }
        copied += sel.copy_bytes(block, &bytes, elem, out);
    }
    check_covered(sel, copied)
}

/// [`assemble`] for string tensors: `fetch(i)` returns the strings of box `i`.
pub fn assemble_strings(
    sel: &Selection,
    boxes: &[Vec<(u64, u64)>],
    mut fetch: impl FnMut(usize) -> Result<Vec<Vec<u8>>>,
) -> Result<Vec<Vec<u8>>> {
    check_disjoint(boxes)?;
    let mut out = vec![Vec::new(); sel.num_elements() as usize];
    let mut copied = 0u64;
    for (i, block) in boxes.iter().enumerate() {
        if !sel.intersects(block) {
            continue;
        }
        let strings = fetch(i)?;
        let expected = block.iter().map(|&(_, len)| len).product::<u64>();
        if strings.len() as u64 != expected {
            return Err(Error::data_loss(format!("slice holds {} strings instead of {expected}", strings.len())));
        }
        copied += sel.for_each_run(block, |s, d, count, step| {
            for k in 0..count {
                out[d + k] = strings[s + k * step].clone();
            }
        });
    }
    check_covered(sel, copied)?;
    Ok(out)
}

fn check_covered(sel: &Selection, copied: u64) -> Result<()> {
    if copied != sel.num_elements() {
        return Err(Error::data_loss(format!(
            "the stored slices cover {copied} of the {} elements requested",
            sel.num_elements()
        )));
    }
    Ok(())
}

/// Checks that no two stored slices (boxes) overlap, which TensorFlow also forbids; with that, a selection is
/// fully read exactly when the elements copied add up to its size.
pub fn check_disjoint(boxes: &[Vec<(u64, u64)>]) -> Result<()> {
    // Partitioned variables have a few hundred slices at most; the quadratic check stays cheap for those, and
    // the cap bounds the work a hostile file can cause.
    const MAX_SLICES: usize = 1 << 14;
    if boxes.len() > MAX_SLICES {
        return Err(Error::unimplemented(format!("{} slices in one tensor (at most {MAX_SLICES})", boxes.len())));
    }
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let overlap = a.iter().zip(b).all(|(&(s1, l1), &(s2, l2))| s1 < s2 + l2 && s2 < s1 + l1);
            if overlap {
                return Err(Error::data_loss("stored slices of a partitioned tensor overlap"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(spec: &[(u64, u64, u64)]) -> Vec<DimSelection> {
        spec.iter().map(|&(start, count, step)| DimSelection { start, count, step }).collect()
    }

    /// A 4x6 tensor holding 0..24 as bytes.
    fn tensor() -> Vec<u8> {
        (0..24).collect()
    }

    fn select(sel: &Selection, block: &[(u64, u64)], src: &[u8]) -> (Vec<u8>, u64) {
        let mut dst = vec![255u8; sel.num_elements() as usize];
        let n = sel.copy_bytes(block, src, 1, &mut dst);
        (dst, n)
    }

    #[test]
    fn strided_selection_of_a_whole_tensor() {
        let shape = [4, 6];
        let sel = Selection::new(&shape, dims(&[(1, 2, 2), (0, 3, 2)])).unwrap();
        let (out, n) = select(&sel, &[(0, 4), (0, 6)], &tensor());
        assert_eq!(n, 6);
        assert_eq!(out, vec![6, 8, 10, 18, 20, 22]);
    }

    #[test]
    fn assembling_from_slices_covers_everything_once() {
        let shape = [4u64, 6];
        let full = tensor();
        // Three column slices: [0,2), [2,5), [5,6).
        let slices = [(0u64, 2u64), (2, 3), (5, 1)];
        let sel = Selection::new(&shape, dims(&[(0, 4, 1), (1, 5, 1)])).unwrap();
        let mut dst = vec![255u8; 20];
        let mut total = 0;
        for &(start, len) in &slices {
            let block = [(0, 4), (start, len)];
            let src: Vec<u8> = (0..4).flat_map(|r| (start..start + len).map(move |c| (r * 6 + c) as u8)).collect();
            total += sel.copy_bytes(&block, &src, 1, &mut dst);
        }
        assert_eq!(total, 20);
        let expected: Vec<u8> = (0..4).flat_map(|r| (1..6).map(move |c| (r * 6 + c) as u8)).collect();
        assert_eq!(expected[0], full[1]);
        assert_eq!(dst, expected);
    }

    #[test]
    fn scalar_and_empty() {
        let sel = Selection::new(&[], vec![]).unwrap();
        assert_eq!(select(&sel, &[], &[42]), (vec![42], 1));
        let sel = Selection::full(&[3, 0]);
        assert_eq!(sel.num_elements(), 0);
        assert_eq!(select(&sel, &[(0, 3), (0, 0)], &[]).1, 0);
    }

    #[test]
    fn bad_selections_are_rejected() {
        assert!(Selection::new(&[4], dims(&[(4, 1, 1)])).is_err());
        assert!(Selection::new(&[4], dims(&[(0, 3, 2)])).is_err());
        assert!(Selection::new(&[4], dims(&[(0, 1, 0)])).is_err());
        assert!(Selection::new(&[4], dims(&[(0, u64::MAX, u64::MAX)])).is_err());
        assert!(Selection::new(&[4], dims(&[(4, 0, 1)])).is_ok());
        assert!(Selection::new(&[4, 1], dims(&[(0, 1, 1)])).is_err());
    }

    #[test]
    fn slice_specs() {
        let slice = TensorSlice::parse("0,3:-:2,1").unwrap();
        assert_eq!(
            slice.extents,
            vec![
                Extent { start: 0, length: Some(3) },
                Extent { start: 0, length: None },
                Extent { start: 2, length: Some(1) }
            ]
        );
        assert_eq!(TensorSlice::from_proto(&slice.to_proto()), slice);
        assert!(TensorSlice::parse("").unwrap().extents.is_empty());
        for bad in ["0", "a,b", "-1,2", "0,-2", "0,1:", ":", "0,1,2"] {
            assert!(TensorSlice::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn resolve_checks_bounds() {
        let slice =
            TensorSlice { extents: vec![Extent { start: 2, length: Some(3) }, Extent { start: 0, length: None }] };
        assert_eq!(slice.resolve(&[5, 7]).unwrap(), vec![(2, 3), (0, 7)]);
        assert!(slice.resolve(&[4, 7]).is_err());
        assert!(slice.resolve(&[5]).is_err());
        let negative = TensorSlice { extents: vec![Extent { start: -1, length: Some(1) }] };
        assert!(negative.resolve(&[5]).is_err());
        let huge = TensorSlice { extents: vec![Extent { start: i64::MAX, length: Some(i64::MAX) }] };
        assert!(huge.resolve(&[5]).is_err());
    }

    #[test]
    fn intersection() {
        let sel = Selection::new(&[10], dims(&[(1, 3, 4)])).unwrap(); // 1, 5, 9
        assert!(sel.intersects(&[(0, 2)]));
        assert!(!sel.intersects(&[(2, 3)]));
        assert!(sel.intersects(&[(2, 4)]));
        assert!(sel.intersects(&[(9, 1)]));
        assert!(!sel.intersects(&[(0, 0)]));
    }

    #[test]
    fn gaps_are_detected() {
        let sel = Selection::full(&[4]);
        let mut out = vec![0u8; 4];
        let boxes = vec![vec![(0, 2)], vec![(3, 1)]];
        let result =
            assemble(&sel, &boxes, 1, &mut out, |i| Ok(std::borrow::Cow::Owned(vec![7u8; boxes[i][0].1 as usize])));
        assert!(result.is_err());
        let strings = assemble_strings(&sel, &[vec![(0, 4)]], |_| Ok(vec![b"a".to_vec(); 4])).unwrap();
        assert_eq!(strings.len(), 4);
    }

    #[test]
    fn overlaps_are_detected() {
        assert!(check_disjoint(&[vec![(0, 2), (0, 6)], vec![(2, 2), (0, 6)]]).is_ok());
        assert!(check_disjoint(&[vec![(0, 3), (0, 6)], vec![(2, 2), (0, 6)]]).is_err());
    }

    #[test]
    fn slice_keys_match_tensorflow() {
        // EncodeTensorNameSlice("v", [0,3) x full): num(0) "v" sep num(2) signed(0) signed(3) signed(0) signed(-1).
        let slice =
            TensorSlice { extents: vec![Extent { start: 0, length: Some(3) }, Extent { start: 0, length: None }] };
        assert_eq!(slice.key(b"v"), vec![0x00, b'v', 0x00, 0x01, 0x01, 0x02, 0x80, 0x83, 0x80, 0x7f]);
    }
}
