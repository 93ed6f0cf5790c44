//! Merging checkpoints written separately into one, as TensorFlow's `MergeV2Checkpoints` does.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::index::{read_index, write_index};
use super::naming::{data_path, index_path};
use super::writer::WriteOptions;
use crate::error::{Error, Result};
use crate::proto::{BundleEntryProto, BundleHeaderProto};
use crate::storage::Storage;

/// Merges checkpoints written separately (by several processes or hosts) into one at `merged_prefix`, as
/// TensorFlow's MergeV2Checkpoints does: the data files are renamed to the merged prefix, a merged index is
/// written, and the source indexes are deleted. Partitioned tensors may have slices in several sources.
pub fn merge_bundles(
    storage: &dyn Storage,
    prefixes: &[PathBuf],
    merged_prefix: &Path,
    options: WriteOptions,
) -> Result<()> {
    let mut entries: BTreeMap<Vec<u8>, BundleEntryProto> = BTreeMap::new();
    let mut data_files: Vec<PathBuf> = Vec::new();
    let mut first_header: Option<BundleHeaderProto> = None;
    for prefix in prefixes {
        let index = index_path(prefix);
        let (header, source_entries) = read_index(storage, prefix)?;
        match &first_header {
            None => first_header = Some(header.clone()),
            Some(first) if first.endianness != header.endianness || first.version != header.version => {
                return Err(
                    Error::invalid_argument("merging checkpoints of different byte orders or versions").in_file(&index)
                );
            }
            Some(_) => {}
        }
        let num_shards = u32::try_from(header.num_shards)
            .map_err(|_| Error::data_loss(format!("invalid shard count {}", header.num_shards)).in_file(&index))?;
        for (key, mut entry) in source_entries {
            let name = String::from_utf8_lossy(&key).into_owned();
            if let Some(existing) = entries.get_mut(&key) {
                if existing.slices.is_empty() || entry.slices.is_empty() {
                    return Err(Error::invalid_argument("tensor present in two checkpoints being merged")
                        .for_tensor(&name)
                        .in_file(&index));
                }
                if existing.dtype != entry.dtype || existing.shape != entry.shape {
                    return Err(Error::invalid_argument("slices of one tensor disagree on its dtype or shape")
                        .for_tensor(&name)
                        .in_file(&index));
                }
                existing.slices.append(&mut entry.slices);
                continue;
            }
            if entry.slices.is_empty() {
                let shard = u32::try_from(entry.shard_id)
                    .ok()
                    .filter(|&s| s < num_shards)
                    .ok_or_else(|| Error::data_loss("entry names a missing shard").for_tensor(&name).in_file(&index))?;
                let file = data_path(prefix, shard, num_shards);
                let new_id = match data_files.iter().position(|f| *f == file) {
                    Some(i) => i,
                    None => {
                        data_files.push(file);
                        data_files.len() - 1
                    }
                };
                entry.shard_id = new_id as i32;
            }
            entries.insert(key, entry);
        }
    }
    let Some(mut header) = first_header else {
        return Err(Error::invalid_argument("no checkpoints to merge"));
    };
    let total = data_files.len() as u32;
    for (shard, file) in data_files.iter().enumerate() {
        storage.rename(file, &data_path(merged_prefix, shard as u32, total))?;
    }
    header.num_shards = total as i32;
    write_index(storage, merged_prefix, &header, &entries, options.durable)?;
    // The merged checkpoint is complete: a source index left behind is untidy, not an error.
    for prefix in prefixes {
        let _ = storage.delete(&index_path(prefix));
    }
    Ok(())
}
