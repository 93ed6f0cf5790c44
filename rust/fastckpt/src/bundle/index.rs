//! The `.index` file of a V2 checkpoint: a table whose key `""` holds the `BundleHeaderProto` and whose other
//! keys, sorted, hold each tensor's (or stored slice's) `BundleEntryProto`. Decoded here for the reader and for
//! merges, and written here for the writer and merges.
use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;

use super::data::Location;
use super::naming::index_path;
use crate::dtype::DType;
use crate::error::{Error, Result, ResultExt};
use crate::proto::{BundleEntryProto, BundleHeaderProto};
use crate::slices::TensorSlice;
use crate::storage::Storage;
use crate::table::{Table, TableOptions, TableWriter};
use crate::tensor::{shape_from_proto, TensorInfo};

/// The bundle format version written in headers, and the newest one the reader accepts.
pub const BUNDLE_VERSION: i32 = 1;

type Entries = BTreeMap<Vec<u8>, BundleEntryProto>;

/// Reads the header and the entries of `prefix.index`.
pub(crate) fn read_index(storage: &dyn Storage, prefix: &Path) -> Result<(BundleHeaderProto, Entries)> {
    let index = index_path(prefix);
    let bytes = storage.read(&index)?;
    parse_index(bytes).in_file(&index)
}

fn parse_index(bytes: Vec<u8>) -> Result<(BundleHeaderProto, Entries)> {
    // Keys come sorted from the table, which lets the map be built in bulk rather than insert by insert.
    let mut entries = Vec::new();
    let header = walk_index(bytes, |key, entry| {
        entries.push((key.to_vec(), entry));
        Ok(())
    })?;
    Ok((header, entries.into_iter().collect()))
}

/// Decodes an index: calls `visit` with each entry in key order, and returns the header. The one decoding of
/// an index, for the reader and for merges.
fn walk_index(
    bytes: Vec<u8>,
    mut visit: impl FnMut(&[u8], BundleEntryProto) -> Result<()>,
) -> Result<BundleHeaderProto> {
    let table = Table::open(bytes)?;
    let mut header = None;
    table.for_each(|key, value| {
        if key.is_empty() {
            let parsed = BundleHeaderProto::decode(value)
                .map_err(|e| Error::data_loss(format!("unparsable bundle header: {e}")))?;
            header = Some(parsed);
            return Ok(());
        }
        visit(key, decode_entry(key, value)?)
    })?;
    header.ok_or_else(|| Error::data_loss("no header entry: not a V2 checkpoint index"))
}

fn decode_entry(key: &[u8], value: &[u8]) -> Result<BundleEntryProto> {
    BundleEntryProto::decode(value)
        .map_err(|e| Error::data_loss(format!("unparsable entry: {e}")).for_tensor(&String::from_utf8_lossy(key)))
}

/// The index as a reader holds it.
pub(crate) struct ReaderIndex {
    pub(crate) header: BundleHeaderProto,
    pub(crate) tensors: Vec<(Vec<u8>, TensorInfo)>,
    pub(crate) locations: Vec<Location>,
    pub(crate) slice_entries: Vec<(Vec<u8>, BundleEntryProto)>,
}

/// Decodes an index in one pass. Keys of slices begin with a 0 byte (their ordered code starts with the
/// number 0), so they sort before every tensor name that does not: entries with such keys are set aside
/// until all the slices partitioned tensors list are known, and those not listed are tensors after all.
pub(crate) fn parse_reader_index(bytes: Vec<u8>) -> Result<ReaderIndex> {
    let mut leading = Vec::new();
    let mut slice_keys = std::collections::HashSet::new();
    let mut tensors = Vec::new();
    let mut locations = Vec::new();
    let header = walk_index(bytes, |key, entry| {
        for slice in &entry.slices {
            slice_keys.insert(TensorSlice::from_proto(slice).key(key));
        }
        if key[0] == 0 {
            leading.push((key.to_vec(), entry));
        } else {
            tensors.push((key.to_vec(), entry_info(&entry).for_key(key)?));
            locations.push(Location::from(entry));
        }
        Ok(())
    })?;
    let mut slice_entries = Vec::new();
    let mut first_tensors = Vec::new();
    let mut first_locations = Vec::new();
    for (key, entry) in leading {
        if slice_keys.contains(&key) {
            slice_entries.push((key, entry));
        } else {
            let info = entry_info(&entry).for_key(&key)?;
            first_tensors.push((key, info));
            first_locations.push(Location::from(entry));
        }
    }
    if !first_tensors.is_empty() {
        first_tensors.append(&mut tensors);
        first_locations.append(&mut locations);
        (tensors, locations) = (first_tensors, first_locations);
    }
    Ok(ReaderIndex { header, tensors, locations, slice_entries })
}

/// The dtype and shape an entry declares, checked.
pub(crate) fn entry_info(entry: &BundleEntryProto) -> Result<TensorInfo> {
    Ok(TensorInfo { dtype: DType::from_proto(entry.dtype)?, shape: shape_from_proto(entry.shape.as_ref())? })
}

/// Writes `prefix.index` at once ([`Storage::write`]); `durable` makes it survive a power loss.
pub(crate) fn write_index(
    storage: &dyn Storage,
    prefix: &Path,
    header: &BundleHeaderProto,
    entries: &BTreeMap<Vec<u8>, BundleEntryProto>,
    durable: bool,
) -> Result<()> {
    let mut table = TableWriter::new(TableOptions::default());
    table.add(b"", &header.encode_to_vec());
    for (key, entry) in entries {
        table.add(key, &entry.encode_to_vec());
    }
    storage.write(&index_path(prefix), &table.finish(), durable)
}
