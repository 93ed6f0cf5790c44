//! Bundles built by hand: byte order, partitioned tensors, and hostile entries that must give errors, not
//! panics or huge allocations.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fastckpt::bundle::{
    data_path, encode_strings, index_path, BundleReader, BundleWriter, NewTensor, TensorData, WriteOptions,
};
use fastckpt::proto::{
    bundle_header_proto::Endianness, tensor_shape_proto::Dim, tensor_slice_proto::extent::HasLength,
    tensor_slice_proto::Extent, BundleEntryProto, BundleHeaderProto, TensorShapeProto, TensorSliceProto,
};
use fastckpt::slices::{Extent as SliceExtent, TensorSlice};
use fastckpt::storage::{LocalStorage, Storage};
use fastckpt::table::{TableOptions, TableWriter};
use fastckpt::{checksum, Checkpoint, DType, DimSelection, ErrorKind, Selection, TensorRef};
use prost::Message;

fn local() -> Arc<dyn Storage> {
    Arc::new(LocalStorage)
}

fn shape(dims: &[i64]) -> Option<TensorShapeProto> {
    Some(TensorShapeProto {
        dim: dims.iter().map(|&size| Dim { size, name: String::new() }).collect(),
        unknown_rank: false,
    })
}

fn entry(dtype: i32, dims: &[i64], offset: i64, data: &[u8]) -> BundleEntryProto {
    BundleEntryProto {
        dtype,
        shape: shape(dims),
        shard_id: 0,
        offset,
        size: data.len() as i64,
        crc32c: checksum::mask(checksum::value(data)),
        slices: vec![],
    }
}

/// Writes `prefix.index` with the given header and entries (sorted here) and one data file.
fn write_bundle(prefix: &Path, header: BundleHeaderProto, mut entries: Vec<(Vec<u8>, BundleEntryProto)>, data: &[u8]) {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut table = TableWriter::new(TableOptions::default());
    table.add(b"", &header.encode_to_vec());
    for (key, entry) in &entries {
        table.add(key, &entry.encode_to_vec());
    }
    std::fs::write(index_path(prefix), table.finish()).unwrap();
    std::fs::write(data_path(prefix, 0, 1), data).unwrap();
}

fn header(endianness: Endianness) -> BundleHeaderProto {
    BundleHeaderProto { num_shards: 1, endianness: endianness as i32, version: None }
}

fn prefix(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("ckpt")
}

fn read_all(reader: &BundleReader, name: &str) -> fastckpt::Result<Vec<u8>> {
    let info = reader.tensors().iter().find(|(n, _)| n == name.as_bytes()).unwrap().1.clone();
    let sel = Selection::full(&info.shape);
    let mut out = vec![0u8; sel.num_elements() as usize * info.dtype.size().unwrap()];
    reader.read_selection(reader.find(name.as_bytes())?, &sel, true, &mut out)?;
    Ok(out)
}

/// Every numeric tensor of `reader`, read in one `read_whole` call.
fn read_every_tensor(reader: &BundleReader) -> fastckpt::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut buffers: Vec<(Vec<u8>, Vec<u8>)> = reader
        .tensors()
        .iter()
        .filter_map(|(name, info)| {
            let len = Selection::full(&info.shape).num_elements() as usize * info.dtype.size()?;
            Some((name.clone(), vec![0u8; len]))
        })
        .collect();
    let mut jobs: Vec<(TensorRef, &mut [u8])> =
        buffers.iter_mut().map(|(name, out)| (reader.find(name).unwrap(), out.as_mut_slice())).collect();
    reader.read_whole(&mut jobs, true)?;
    Ok(buffers)
}

#[test]
fn big_endian_bundles_are_swapped() {
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<f32> = vec![1.5, -2.0, 3.25];
    let stored: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let complex: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    let mut data = stored.clone();
    data.extend_from_slice(&complex);
    let entries = vec![
        (b"f".to_vec(), entry(1, &[3], 0, &stored)),
        (b"c".to_vec(), entry(18, &[], stored.len() as i64, &complex)),
    ];
    write_bundle(&prefix(&dir), header(Endianness::Big), entries, &data);
    let reader = BundleReader::open(local(), prefix(&dir)).unwrap();
    let native: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    assert_eq!(read_all(&reader, "f").unwrap(), native);
    let native: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|v| v.to_ne_bytes()).collect();
    assert_eq!(read_all(&reader, "c").unwrap(), native);
    for (name, bytes) in read_every_tensor(&reader).unwrap() {
        assert_eq!(bytes, read_all(&reader, std::str::from_utf8(&name).unwrap()).unwrap());
    }
}

#[test]
fn big_endian_strings_verify() {
    let dir = tempfile::tempdir().unwrap();
    // Lengths are varints either way; the checksum covers them in the writer's byte order.
    let strings: [&[u8]; 2] = [b"ab", b"cde"];
    let mut crc = 0;
    let mut data = vec![2u8, 3];
    for len in [2u32, 3] {
        crc = checksum::extend(crc, &len.to_be_bytes());
    }
    let masked = checksum::mask(crc).to_be_bytes();
    data.extend_from_slice(&masked);
    crc = checksum::extend(crc, &masked);
    for s in strings {
        data.extend_from_slice(s);
        crc = checksum::extend(crc, s);
    }
    let mut e = entry(7, &[2], 0, &data);
    e.crc32c = checksum::mask(crc);
    write_bundle(&prefix(&dir), header(Endianness::Big), vec![(b"s".to_vec(), e)], &data);
    let reader = BundleReader::open(local(), prefix(&dir)).unwrap();
    assert_eq!(
        reader.read_strings(reader.find(b"s").unwrap(), &Selection::full(&[2])).unwrap(),
        vec![b"ab".to_vec(), b"cde".to_vec()]
    );
}

#[test]
fn partitioned_tensor_is_assembled_and_read_in_part() {
    let dir = tempfile::tempdir().unwrap();
    // A 3x4 int32 tensor 0..12 stored as rows [0,2) and [2,3).
    let all: Vec<u8> = (0..12i32).flat_map(|v| v.to_le_bytes()).collect();
    let (top, bottom) = all.split_at(32);
    let slice = |start: i64, len: i64| TensorSliceProto {
        extent: vec![Extent { start, has_length: Some(HasLength::Length(len)) }, Extent { start: 0, has_length: None }],
    };
    let key = |start, len| {
        TensorSlice { extents: vec![SliceExtent { start, length: Some(len) }, SliceExtent { start: 0, length: None }] }
            .key(b"w")
    };
    let mut full = BundleEntryProto { dtype: 3, shape: shape(&[3, 4]), ..Default::default() };
    full.slices = vec![slice(0, 2), slice(2, 1)];
    let entries =
        vec![(b"w".to_vec(), full), (key(0, 2), entry(3, &[2, 4], 0, top)), (key(2, 1), entry(3, &[1, 4], 32, bottom))];
    write_bundle(&prefix(&dir), header(Endianness::Little), entries, &all);
    let ckpt = Checkpoint::open(prefix(&dir), &Default::default()).unwrap();
    assert_eq!(ckpt.tensors().len(), 1, "slice entries are not listed");
    let reader = match &ckpt {
        Checkpoint::Bundle(r) => r,
        _ => unreachable!(),
    };
    assert_eq!(read_all(reader, "w").unwrap(), all);
    assert_eq!(read_every_tensor(reader).unwrap(), vec![(b"w".to_vec(), all.clone())]);
    // Column 1 of rows 1 and 2: crosses both slices.
    let sel = Selection::new(
        &[3, 4],
        vec![DimSelection { start: 1, count: 2, step: 1 }, DimSelection { start: 1, count: 1, step: 1 }],
    )
    .unwrap();
    let mut out = vec![0u8; 8];
    ckpt.read_selection(ckpt.find(b"w").unwrap(), &sel, true, &mut out).unwrap();
    assert_eq!(out, [5i32, 9].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
}

#[test]
fn hostile_entries_are_errors() {
    let data = vec![0u8; 16];
    let cases: Vec<(&str, BundleEntryProto, ErrorKind)> = vec![
        ("offset past the end", entry(1, &[4], 8, &data), ErrorKind::DataLoss),
        ("negative offset", entry(1, &[4], -8, &data), ErrorKind::DataLoss),
        ("size not matching shape", entry(1, &[5], 0, &data), ErrorKind::DataLoss),
        ("huge shape", entry(1, &[1 << 40, 1 << 40], 0, &data), ErrorKind::DataLoss),
        ("negative dimension", entry(1, &[-1], 0, &data), ErrorKind::DataLoss),
        ("unknown dtype", entry(99, &[4], 0, &data), ErrorKind::DataLoss),
        ("shard out of range", BundleEntryProto { shard_id: 7, ..entry(1, &[4], 0, &data) }, ErrorKind::DataLoss),
        ("string count beyond the bytes", entry(7, &[1 << 40], 0, &data), ErrorKind::DataLoss),
        ("variant", entry(21, &[1], 0, &data), ErrorKind::Unimplemented),
    ];
    for (what, bad, kind) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_bundle(&prefix(&dir), header(Endianness::Little), vec![(b"t".to_vec(), bad)], &data);
        let err = match Checkpoint::open(prefix(&dir), &Default::default()) {
            Err(err) => err,
            Ok(ckpt) => {
                let t = ckpt.find(b"t").unwrap();
                let info = ckpt.tensor(t).1.clone();
                let sel = Selection::full(&info.shape);
                if info.dtype == fastckpt::DType::String {
                    ckpt.read_strings(t, &sel).unwrap_err()
                } else if let Some(size) = info.dtype.size() {
                    let mut out = vec![0u8; (sel.num_elements() as usize) * size];
                    ckpt.read_selection(t, &sel, true, &mut out).unwrap_err()
                } else {
                    ckpt.read_selection(t, &sel, true, &mut []).unwrap_err()
                }
            }
        };
        assert_eq!(err.kind, kind, "{what}: {err}");
        assert!(err.file.is_some(), "{what}: {err}");
    }
}

#[test]
fn a_data_file_shorter_than_its_index_needs_fails_the_open() {
    let data: Vec<u8> = (0..12i32).flat_map(|v| v.to_le_bytes()).collect();
    let entries =
        || vec![(b"a".to_vec(), entry(3, &[8], 0, &data[..32])), (b"b".to_vec(), entry(3, &[4], 32, &data[32..]))];
    let dir = tempfile::tempdir().unwrap();
    write_bundle(&prefix(&dir), header(Endianness::Little), entries(), &data[..47]);
    let err = Checkpoint::open(prefix(&dir), &Default::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::DataLoss);
    assert_eq!(err.file.as_deref(), Some(data_path(&prefix(&dir), 0, 1).as_path()));
    assert_eq!(err.tensor.as_deref(), Some("b"), "the tensor at the end");
    assert!(err.message.contains("holds 47 bytes, but the index needs 48"), "{err}");
    // Whole, or longer than needed, it opens.
    for data in [&data[..], &[&data[..], b"tail"].concat()] {
        write_bundle(&prefix(&dir), header(Endianness::Little), entries(), data);
        assert_eq!(read_all(&BundleReader::open(local(), prefix(&dir)).unwrap(), "b").unwrap(), &data[32..48]);
    }
    // The slice at the end names its partitioned tensor.
    let row = |start| TensorSlice { extents: vec![SliceExtent { start, length: Some(1) }] };
    let full = BundleEntryProto {
        dtype: 3,
        shape: shape(&[2]),
        slices: vec![row(0).to_proto(), row(1).to_proto()],
        ..Default::default()
    };
    let entries = vec![
        (b"w".to_vec(), full),
        (row(0).key(b"w"), entry(3, &[1], 0, &data[..4])),
        (row(1).key(b"w"), entry(3, &[1], 4, &data[4..8])),
    ];
    write_bundle(&prefix(&dir), header(Endianness::Little), entries, &data[..6]);
    let err = Checkpoint::open(prefix(&dir), &Default::default()).unwrap_err();
    assert_eq!((err.kind, err.tensor.as_deref()), (ErrorKind::DataLoss, Some("w")), "{err}");
    assert!(err.message.contains("a slice of the last tensor"), "{err}");
}

#[test]
fn huge_shard_count_allocates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = vec![1u8; 4];
    let header = BundleHeaderProto { num_shards: i32::MAX, endianness: 0, version: None };
    write_bundle(&prefix(&dir), header, vec![(b"t".to_vec(), entry(1, &[1], 0, &data))], &data);
    let reader = BundleReader::open(local(), prefix(&dir)).unwrap();
    assert_eq!(read_all(&reader, "t").unwrap_err().kind, ErrorKind::NotFound);
}

#[test]
fn string_tensor_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let strings: Vec<&[u8]> = vec![b"", b"x", &[0xff; 200]];
    let (data, crc) = encode_strings(&strings);
    let mut e = entry(7, &[3], 0, &data);
    e.crc32c = checksum::mask(crc);
    write_bundle(&prefix(&dir), header(Endianness::Little), vec![(b"s".to_vec(), e)], &data);
    let reader = BundleReader::open(local(), prefix(&dir)).unwrap();
    assert_eq!(reader.read_strings(reader.find(b"s").unwrap(), &Selection::full(&[3])).unwrap(), strings);
}

/// Tensors of several sizes (some past the writer's buffer), as (name, shape, bytes).
fn sample_tensors() -> Vec<(Vec<u8>, Vec<u64>, Vec<u8>)> {
    [("a", 1usize), ("big", 300_000), ("c", 7), ("d", 70_000), ("e", 3)]
        .iter()
        .map(|&(name, n)| {
            let bytes = (0..n * 4).map(|i| (i * 13 + name.len()) as u8).collect();
            (name.as_bytes().to_vec(), vec![n as u64], bytes)
        })
        .collect()
}

fn new_tensors(tensors: &[(Vec<u8>, Vec<u64>, Vec<u8>)]) -> Vec<NewTensor<'_>> {
    tensors
        .iter()
        .map(|(key, shape, bytes)| NewTensor { key, dtype: DType::Float32, shape, data: TensorData::Bytes(bytes) })
        .collect()
}

fn files(prefix: &Path, num_shards: u32) -> Vec<Vec<u8>> {
    let mut paths = vec![index_path(prefix)];
    paths.extend((0..num_shards).map(|shard| data_path(prefix, shard, num_shards)));
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn a_batch_writes_the_bytes_of_one_add_per_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = sample_tensors();
    for num_shards in [1, 2, 3] {
        let options = WriteOptions { num_shards, ..Default::default() };
        let one_by_one = dir.path().join(format!("one-{num_shards}"));
        let mut writer = BundleWriter::create(local(), &one_by_one, options).unwrap();
        for t in new_tensors(&tensors) {
            writer.add(t.key, t.dtype, t.shape, t.data).unwrap();
        }
        writer.finish().unwrap();
        let batched = dir.path().join(format!("batch-{num_shards}"));
        let mut writer = BundleWriter::create(local(), &batched, options).unwrap();
        writer.add_tensors(&new_tensors(&tensors)).unwrap();
        writer.finish().unwrap();
        assert_eq!(files(&one_by_one, num_shards), files(&batched, num_shards));

        let reader = BundleReader::open(local(), &batched).unwrap();
        assert!(data_path(&batched, num_shards - 1, num_shards).is_file());
        for (key, _, bytes) in &tensors {
            assert_eq!(&read_all(&reader, std::str::from_utf8(key).unwrap()).unwrap(), bytes);
        }
    }
}

#[test]
fn a_batch_with_strings_places_them_as_add_would() {
    let dir = tempfile::tempdir().unwrap();
    let long = vec![b'x'; 70_000];
    let strings: Vec<&[u8]> = vec![b"a", &long, b""];
    // The strings take 70,010 bytes, the floats 70,020: "g" goes after the strings only if their size is exact.
    let (floats, small) = (vec![1u8; 70_020], vec![2u8; 8]);
    let tensors = [
        NewTensor { key: b"s", dtype: DType::String, shape: &[3], data: TensorData::Strings(&strings) },
        NewTensor { key: b"f", dtype: DType::Float32, shape: &[17_505], data: TensorData::Bytes(&floats) },
        NewTensor { key: b"g", dtype: DType::Float32, shape: &[2], data: TensorData::Bytes(&small) },
    ];
    let options = WriteOptions { num_shards: 2, ..Default::default() };
    let one_by_one = dir.path().join("one");
    let mut writer = BundleWriter::create(local(), &one_by_one, options).unwrap();
    for t in &tensors {
        writer.add(t.key, t.dtype, t.shape, t.data).unwrap();
    }
    writer.finish().unwrap();
    let batched = dir.path().join("batch");
    let mut writer = BundleWriter::create(local(), &batched, options).unwrap();
    writer.add_tensors(&tensors).unwrap();
    writer.finish().unwrap();
    assert_eq!(files(&one_by_one, 2), files(&batched, 2));
}

#[test]
fn data_files_are_balanced_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = prefix(&dir);
    let mut writer =
        BundleWriter::create(local(), &prefix, WriteOptions { num_shards: 2, ..Default::default() }).unwrap();
    writer.add_tensors(&new_tensors(&sample_tensors())).unwrap();
    writer.finish().unwrap();
    // Each tensor goes to the lighter file: "a" to file 0, "big" to file 1, the rest to file 0.
    let sizes: Vec<u64> = (0..2).map(|s| std::fs::metadata(data_path(&prefix, s, 2)).unwrap().len()).collect();
    assert_eq!(sizes, vec![(1 + 7 + 70_000 + 3) * 4, 300_000 * 4]);
}

#[test]
fn a_bad_batch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = prefix(&dir);
    let tensors = sample_tensors();
    let mut writer = BundleWriter::create(local(), &prefix, WriteOptions::default()).unwrap();
    let mut duplicate = new_tensors(&tensors);
    duplicate.push(duplicate[0]);
    let err = writer.add_tensors(&duplicate).unwrap_err();
    assert_eq!((err.kind, err.tensor.as_deref()), (ErrorKind::InvalidArgument, Some("a")));
    let mut wrong_size = new_tensors(&tensors);
    wrong_size[2].shape = &[8];
    assert_eq!(writer.add_tensors(&wrong_size).unwrap_err().tensor.as_deref(), Some("c"));
    writer.add_tensors(&new_tensors(&tensors[..1])).unwrap();
    assert!(writer.add_tensors(&new_tensors(&tensors)).is_err(), "a name added before");
    writer.finish().unwrap();
    assert_eq!(std::fs::metadata(data_path(&prefix, 0, 1)).unwrap().len(), 4);
    assert_eq!(BundleReader::open(local(), &prefix).unwrap().tensors().len(), 1);
}

#[test]
fn no_data_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = WriteOptions { num_shards: 0, ..Default::default() };
    assert_eq!(BundleWriter::create(local(), prefix(&dir), options).err().unwrap().kind, ErrorKind::InvalidArgument);
}

#[test]
fn many_tensors_are_read_at_once_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    // Stored out of name order; "z" spans three of the pieces that are read in parallel, "m" is empty.
    let floats = |n: usize, seed: usize| -> Vec<u8> { (0..n * 4).map(|i| (i * 31 + i / 4099 + seed) as u8).collect() };
    let tensors = [("z", floats(2_359_297, 1)), ("a", floats(3, 2)), ("m", vec![]), ("b", floats(1 << 20, 3))];
    for num_shards in [1, 2] {
        let prefix = dir.path().join(format!("ckpt-{num_shards}"));
        let mut writer =
            BundleWriter::create(local(), &prefix, WriteOptions { num_shards, ..Default::default() }).unwrap();
        for (name, bytes) in &tensors {
            let shape = [bytes.len() as u64 / 4];
            writer.add(name.as_bytes(), DType::Float32, &shape, TensorData::Bytes(bytes)).unwrap();
        }
        writer.finish().unwrap();
        let reader = BundleReader::open(local(), &prefix).unwrap();
        let mut expected: Vec<(Vec<u8>, Vec<u8>)> =
            tensors.iter().map(|(name, bytes)| (name.as_bytes().to_vec(), bytes.clone())).collect();
        expected.sort();
        assert_eq!(read_every_tensor(&reader).unwrap(), expected);
    }

    // A damaged byte in the second piece of "z" fails "z" alone.
    let prefix = dir.path().join("ckpt-1");
    let data = data_path(&prefix, 0, 1);
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[(4 << 20) + 10] ^= 1;
    std::fs::write(&data, bytes).unwrap();
    let reader = BundleReader::open(local(), &prefix).unwrap();
    let err = read_every_tensor(&reader).unwrap_err();
    assert_eq!((err.kind, err.tensor.as_deref(), err.file.as_deref()), (ErrorKind::DataLoss, Some("z"), Some(&*data)));
    assert_eq!(read_all(&reader, "b").unwrap(), tensors[3].1);

    let mut short = vec![0u8; 8];
    let err = reader.read_whole(&mut [(reader.find(b"a").unwrap(), short.as_mut_slice())], true).unwrap_err();
    assert_eq!((err.kind, err.tensor.as_deref()), (ErrorKind::InvalidArgument, Some("a")));
    let err = reader.find(b"nope").unwrap_err();
    assert_eq!((err.kind, err.tensor.as_deref()), (ErrorKind::NotFound, Some("nope")));
    assert_eq!(err.message, "Key nope not found in checkpoint");
}
