//! What a path names: the one place that decides whether a path is a V2 checkpoint, a V1 checkpoint or
//! neither, and that says what a file is when users pass one that is not a checkpoint.
//!
//! Users pass what they see in a directory listing: the prefix `model.ckpt`, but also `model.ckpt.index`,
//! `model.ckpt.data-00000-of-00001`, `model.ckpt.meta`, the `checkpoint` state file, or a file of another
//! format altogether. The bundle's own files lead to their checkpoint; any other file that is not a
//! checkpoint gets an error that says what it is and what to pass instead, so that "corrupt" and
//! "truncated" are said only of files that are.
//!
//! Directories (state files, SavedModels) are resolved by the caller before it asks here.
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::bundle::index_path;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{parent_dir, FileKind, Storage};
use crate::table::TABLE_MAGIC;

/// The files of a checkpoint, as found from a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A V2 checkpoint: `prefix.index` and its data files.
    Bundle(PathBuf),
    /// A V1 checkpoint: one file, or the shards of a sharded save (`model.ckpt-?????-of-00004`).
    V1 {
        /// The path as given (a file or a pattern).
        path: PathBuf,
        /// Its files, sorted.
        files: Vec<PathBuf>,
    },
}

impl Location {
    /// The name of the checkpoint: the V2 prefix, or the V1 path as given.
    pub fn path(&self) -> &Path {
        match self {
            Location::Bundle(prefix) => prefix,
            Location::V1 { path, .. } => path,
        }
    }
}

/// Finds the checkpoint `path` names in `storage`, without opening it.
///
/// `path` may be a V2 prefix, a V2 checkpoint's `.index` or `.data-NNNNN-of-NNNNN` file (which name their
/// prefix), a V1 file, or a V1 file pattern (a glob, or `path` whose shards are `path-NNNNN-of-NNNNN`).
///
/// Errors: [`crate::ErrorKind::NotACheckpoint`] when nothing there is a checkpoint, with a message that says
/// what the file is, if it is something else, and what to pass instead. Errors of the storage itself (a
/// directory that cannot be read) are its own.
pub fn locate(storage: &dyn Storage, path: &Path) -> Result<Location> {
    let is_file = |path: &Path| -> Result<bool> { Ok(storage.kind(path)? == Some(FileKind::File)) };
    if is_file(&index_path(path))? {
        return Ok(Location::Bundle(path.to_path_buf()));
    }
    let kind = storage.kind(path)?;
    if let Some(prefix) = bundle_prefix_of(path) {
        if is_file(&index_path(&prefix))? {
            return Ok(Location::Bundle(prefix));
        }
        if kind == Some(FileKind::File) {
            let message = format!(
                "this is a data file of checkpoint {}, whose index {} is missing: the checkpoint is incomplete",
                prefix.display(),
                index_path(&prefix).display()
            );
            return Err(Error::not_a_checkpoint(message).in_file(path));
        }
    }
    if kind == Some(FileKind::File) {
        if let Some(what) = identify(storage, path) {
            return Err(Error::not_a_checkpoint(what).in_file(path));
        }
        return Ok(Location::V1 { path: path.to_path_buf(), files: vec![path.to_path_buf()] });
    }
    if kind == Some(FileKind::Directory) {
        let message = "this is a directory: pass a checkpoint prefix inside it, or open the directory through its \
                       'checkpoint' state file (load_checkpoint, latest_checkpoint)";
        return Err(Error::not_a_checkpoint(message).in_file(path));
    }
    let shards = v1_shards(storage, path)?;
    if !shards.is_empty() {
        return Ok(Location::V1 { path: path.to_path_buf(), files: shards });
    }
    Err(Error::not_a_checkpoint(missing_message(storage, path)).in_file(path))
}

/// When the checkpoint `path` names was completed: the modification time of a V2 checkpoint's index (its
/// last file written) or of a V1 checkpoint's first file; None where no checkpoint is there.
pub fn checkpoint_modified(storage: &dyn Storage, path: &Path) -> Result<Option<SystemTime>> {
    match locate(storage, path) {
        Ok(Location::Bundle(prefix)) => storage.modified(&index_path(&prefix)),
        Ok(Location::V1 { files, .. }) => files.first().map_or(Ok(None), |file| storage.modified(file)),
        Err(err) if err.kind == ErrorKind::NotACheckpoint => Ok(None),
        Err(err) => Err(err),
    }
}

/// Deletes the checkpoint `prefix` from one listing of its directory (`listing`, the names in it, when the
/// caller has listed it already, else listed here): its index first, so that a deletion cut short leaves no
/// checkpoint half there, then every data file named after it (whatever their count: a sharded save's, or
/// those a killed save left), and a V1 checkpoint's file or shards. What is already gone is no error. Returns
/// the files deleted, in that order.
pub fn delete_checkpoint(storage: &dyn Storage, prefix: &Path, listing: Option<Vec<String>>) -> Result<Vec<PathBuf>> {
    let listing = match listing {
        Some(names) => names,
        None => storage.list(&parent_dir(prefix))?,
    };
    let mut deleted = vec![index_path(prefix)];
    storage.delete(&deleted[0])?;
    let v1 = v1_pattern(prefix);
    for entry in listing {
        let file = prefix.with_file_name(&entry);
        let data_file = !entry.ends_with(".index") && bundle_prefix_of(&file).as_deref() == Some(prefix);
        let v1_file = v1.as_ref().is_some_and(|pattern| pattern.matches(&entry))
            || (file == prefix && storage.kind(&file)? == Some(FileKind::File));
        if data_file || v1_file {
            storage.delete(&file)?;
            deleted.push(file);
        }
    }
    Ok(deleted)
}

/// The meta graph file TensorFlow's Saver writes beside the checkpoint `path`: `P.<suffix>` for the prefix `P`;
/// for a sharded V1 checkpoint named by its shard pattern (`P-?????-of-00002`) or one shard
/// (`P-00000-of-00002`), `P.<suffix>` too.
pub fn meta_graph_path(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().and_then(OsStr::to_str).unwrap_or_default();
    let base = name
        .rsplit_once("-of-")
        .filter(|(_, count)| !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|(head, _)| head.rsplit_once('-'))
        .filter(|(_, shard)| !shard.is_empty() && shard.bytes().all(|b| b.is_ascii_digit() || b == b'?'))
        .map_or(name, |(base, _)| base);
    path.with_file_name(format!("{base}.{suffix}"))
}

/// The prefix of `path` if its name is that of a bundle's own file: `P.index` or `P.data-NNNNN-of-NNNNN`.
pub fn bundle_prefix_of(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".index").or_else(|| {
        let (stem, shard) = name.rsplit_once(".data-")?;
        let (number, count) = shard.split_once("-of-")?;
        let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
        (digits(number) && digits(count)).then_some(stem)
    })?;
    (!stem.is_empty()).then(|| path.with_file_name(stem))
}

/// The V2 checkpoints a directory listing shows: the prefixes (as names in that directory) whose index is among
/// `names`, in their order.
pub fn listed_checkpoints<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    names
        .into_iter()
        .filter_map(|name| {
            let prefix = bundle_prefix_of(Path::new(name))?;
            (index_path(&prefix) == Path::new(name)).then(|| prefix.to_string_lossy().into_owned())
        })
        .collect()
}

/// What a file that is not a checkpoint is, and what to pass instead; None when it may be a V1 checkpoint
/// (a table file, or one too damaged to tell, which the V1 reader then reports as corrupt).
fn identify(storage: &dyn Storage, path: &Path) -> Option<String> {
    let mut head = [0u8; 64];
    let mut tail = [0u8; 8];
    let (head_len, size) = {
        let file = storage.open(path).ok()?;
        let size = file.size();
        let head_len = head.len().min(size as usize);
        file.read_at(0, &mut head[..head_len]).ok()?;
        if size >= 8 {
            file.read_at(size - 8, &mut tail).ok()?;
        }
        (head_len, size)
    };
    if size >= 8 && u64::from_le_bytes(tail) == TABLE_MAGIC {
        return None;
    }
    let head = &head[..head_len];
    let name = path.file_name().and_then(OsStr::to_str).unwrap_or("");
    let extension = path.extension().and_then(OsStr::to_str).unwrap_or("").to_ascii_lowercase();
    let beside = |stem: &Path| -> String {
        match locate(storage, stem) {
            Ok(location) => format!(": pass the checkpoint {} beside it", location.path().display()),
            Err(_) => String::new(),
        }
    };
    let what = if head.starts_with(b"\x89HDF\r\n\x1a\n") {
        "an HDF5 file (Keras .h5 weights or model), not a TensorFlow checkpoint".to_owned()
    } else if head.starts_with(b"PK\x03\x04") {
        match extension.as_str() {
            "keras" => "a Keras .keras archive, not a TensorFlow checkpoint".to_owned(),
            "npz" => "a numpy .npz archive, not a TensorFlow checkpoint: read it with numpy.load".to_owned(),
            "pt" | "pth" | "bin" => "a PyTorch file (a zip archive), not a TensorFlow checkpoint".to_owned(),
            _ => "a zip archive, not a TensorFlow checkpoint".to_owned(),
        }
    } else if head.starts_with(b"\x93NUMPY") {
        "a numpy .npy file, not a TensorFlow checkpoint: read it with numpy.load".to_owned()
    } else if is_safetensors(head, size) {
        "a safetensors file, not a TensorFlow checkpoint: `fastckpt convert` turns it into one".to_owned()
    } else if name == "checkpoint" || trimmed(head).starts_with(b"model_checkpoint_path") {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        format!(
            "a checkpoint state file, which names checkpoints but holds none: pass its directory {} (for the \
             latest checkpoint) or a checkpoint prefix",
            dir.display()
        )
    } else if extension == "meta" {
        let stem = path.with_extension("");
        format!("a MetaGraphDef (.meta), the graph of a checkpoint, not its values{}", beside(&stem))
    } else if name == "saved_model.pb" || name == "saved_model.pbtxt" {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        format!("the graph of a SavedModel, not its variables: pass the SavedModel directory {}", dir.display())
    } else if extension == "pb" || extension == "pbtxt" {
        "a protocol buffer file (a GraphDef or MetaGraphDef), not a checkpoint: read it with read_graph or \
         read_meta_graph"
            .to_owned()
    } else if let Some(text) = text_beginning(head) {
        format!("a text file, not a TensorFlow checkpoint (it begins {text:?})")
    } else if extension == "h5" || extension == "hdf5" || extension == "keras" {
        // Named as one of these but without its magic number: a damaged file of that format.
        format!("a .{extension} file (not a TensorFlow checkpoint), and not even a valid one")
    } else {
        return None;
    };
    Some(format!("this is {what}"))
}

/// The first line of a file that begins as text (`head`, its first bytes, all UTF-8 without control characters
/// other than whitespace), shortened; None for any other. No table (a V1 checkpoint) begins so: its first
/// block's first key has a shared length of 0, a 0 byte within its first bytes, compressed or not.
fn text_beginning(head: &[u8]) -> Option<String> {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // Cut inside a character at the end of `head`: the text before it.
        Err(err) if err.error_len().is_none() => std::str::from_utf8(&head[..err.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    if text.trim().is_empty() || text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return None;
    }
    let line = text.trim_start().lines().next().unwrap_or_default();
    let shown: String = line.chars().take(40).collect();
    Some(if shown.len() < line.len() { format!("{shown}...") } else { shown })
}

fn trimmed(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    &bytes[start..]
}

/// A safetensors file: an 8-byte little-endian header length, then a JSON header that fits in the file.
fn is_safetensors(head: &[u8], size: u64) -> bool {
    head.len() >= 9
        && head[8] == b'{'
        && u64::from_le_bytes(head[..8].try_into().expect("8 bytes")).checked_add(8).is_some_and(|end| end <= size)
}

/// The shards of a V1 checkpoint: the files whose names match the name of `path` as a glob pattern, or else
/// `name-?????-of-?????`, in its directory.
fn v1_shards(storage: &dyn Storage, path: &Path) -> Result<Vec<PathBuf>> {
    let Some(pattern) = v1_pattern(path) else { return Ok(Vec::new()) };
    let mut files = Vec::new();
    for entry in storage.list(&parent_dir(path))?.into_iter().filter(|entry| pattern.matches(entry)) {
        let file = path.with_file_name(entry);
        if storage.kind(&file)? == Some(FileKind::File) {
            files.push(file);
        }
    }
    Ok(files)
}

/// The pattern of the names of a V1 checkpoint's shards: the name of `path` as a glob pattern when it is one,
/// else `name-?????-of-?????` (TensorFlow's sharded V1 saves); None for a name that is neither.
fn v1_pattern(path: &Path) -> Option<glob::Pattern> {
    let name = path.file_name().and_then(OsStr::to_str)?;
    let has_magic = name.contains(['*', '?', '[']);
    let pattern = if has_magic { name.to_owned() } else { format!("{}-?????-of-?????", glob::Pattern::escape(name)) };
    glob::Pattern::new(&pattern).ok()
}

/// Why nothing is at `path`, naming the checkpoints beside it that start with its name. It begins with
/// TensorFlow's words, which code written for TensorFlow matches.
fn missing_message(storage: &dyn Storage, path: &Path) -> String {
    let mut message = format!(
        "Unsuccessful TensorSliceReader constructor: Failed to find any matching files for {}: no checkpoint \
         there (no {} for V2, no V1 checkpoint file)",
        path.display(),
        index_path(path).display()
    );
    let Some(base) = path.file_name().and_then(OsStr::to_str) else { return message };
    let Ok(entries) = storage.list(&parent_dir(path)) else { return message };
    let beside: Vec<String> =
        listed_checkpoints(entries.iter().map(String::as_str)).into_iter().filter(|p| p.starts_with(base)).collect();
    if !beside.is_empty() {
        let shown = beside.len().min(5);
        message.push_str(&format!("; checkpoints beside it: {}", beside[..shown].join(", ")));
        if beside.len() > shown {
            message.push_str(&format!(" and {} more", beside.len() - shown));
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;
    use crate::table::{Compression, TableOptions, TableWriter};
    use crate::ErrorKind;

    fn touch(path: &Path, bytes: &[u8]) {
        std::fs::write(path, bytes).unwrap();
    }

    fn message(path: &Path) -> String {
        let err = locate(&LocalStorage, path).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotACheckpoint, "{err}");
        err.to_string()
    }

    #[test]
    fn bundle_files_name_their_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("model.ckpt");
        touch(&index_path(&prefix), b"");
        touch(&dir.path().join("model.ckpt.data-00000-of-00001"), b"");
        let expected = Location::Bundle(prefix.clone());
        assert_eq!(locate(&LocalStorage, &prefix).unwrap(), expected);
        assert_eq!(locate(&LocalStorage, &index_path(&prefix)).unwrap(), expected);
        assert_eq!(locate(&LocalStorage, &dir.path().join("model.ckpt.data-00000-of-00001")).unwrap(), expected);
        // A data file whose index is gone.
        touch(&dir.path().join("other.data-00000-of-00001"), b"");
        assert!(message(&dir.path().join("other.data-00000-of-00001")).contains("index"));
    }

    #[test]
    fn other_files_say_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("model.ckpt");
        touch(&index_path(&prefix), b"");
        let cases: [(&str, &[u8], &str); 7] = [
            ("model.ckpt.meta", b"\x0a\x02\x08\x01", "MetaGraphDef"),
            ("checkpoint", b"model_checkpoint_path: \"model.ckpt\"\n", "state file"),
            ("weights.h5", b"\x89HDF\r\n\x1a\n\0\0\0\0", "HDF5"),
            ("model.keras", b"PK\x03\x04\0\0\0\0", "Keras"),
            ("arrays.npz", b"PK\x03\x04\0\0\0\0", "numpy"),
            ("model.safetensors", b"\x02\0\0\0\0\0\0\0{}", "safetensors"),
            ("saved_model.pb", b"\x08\x01", "SavedModel"),
        ];
        for (name, bytes, what) in cases {
            touch(&dir.path().join(name), bytes);
            let text = message(&dir.path().join(name));
            assert!(text.contains(what), "{name}: {text}");
        }
        assert!(message(&dir.path().join("model.ckpt.meta")).contains(&prefix.display().to_string()));
    }

    #[test]
    fn table_files_and_damaged_files_are_left_to_the_v1_reader() {
        let dir = tempfile::tempdir().unwrap();
        let mut table = vec![0u8; 40];
        table.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        // Named like a graph, but a table: a V1 checkpoint.
        touch(&dir.path().join("odd.pb"), &table);
        assert!(matches!(locate(&LocalStorage, &dir.path().join("odd.pb")).unwrap(), Location::V1 { .. }));
        // Unrecognizable: the V1 reader will call it corrupt.
        touch(&dir.path().join("model.ckpt"), b"\x00\x17garbage");
        assert!(matches!(locate(&LocalStorage, &dir.path().join("model.ckpt")).unwrap(), Location::V1 { .. }));
        // Truncated anywhere, a table, compressed or not, still begins as no text does.
        for compression in [Compression::None, Compression::Snappy] {
            let mut table = TableWriter::new(TableOptions { compression, ..TableOptions::default() });
            table.add(b"a key of text", "a value of text, ".repeat(20).as_bytes());
            let table = table.finish();
            for length in 1..table.len() {
                touch(&dir.path().join("cut.ckpt"), &table[..length]);
                let location = locate(&LocalStorage, &dir.path().join("cut.ckpt"));
                assert!(matches!(location, Ok(Location::V1 { .. })), "{compression:?}, {length} bytes: {location:?}");
            }
        }
    }

    #[test]
    fn text_files_are_not_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&[u8], &str); 4] = [
            (b"hello world\n", "\"hello world\""),
            (b"\n  {\"weight_map\": {}}\n", "\"{\\\"weight_map\\\": {}}\""),
            ("été, ünïcode\r\n".as_bytes(), "\"été, ünïcode\""),
            (&[b'x'; 100], "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\""),
        ];
        for (bytes, beginning) in cases {
            touch(&dir.path().join("model.ckpt"), bytes);
            let text = message(&dir.path().join("model.ckpt"));
            assert!(
                text.contains(&format!("a text file, not a TensorFlow checkpoint (it begins {beginning})")),
                "{text}"
            );
        }
        // Multi-byte characters cut at the end of the bytes looked at are still text.
        touch(&dir.path().join("model.ckpt"), "é".repeat(40).as_bytes());
        assert!(message(&dir.path().join("model.ckpt")).contains("text file"));
    }

    #[test]
    fn v1_shards_are_found_by_pattern() {
        let dir = tempfile::tempdir().unwrap();
        for shard in ["model.ckpt-00001-of-00002", "model.ckpt-00000-of-00002"] {
            touch(&dir.path().join(shard), b"");
        }
        let location = locate(&LocalStorage, &dir.path().join("model.ckpt")).unwrap();
        let Location::V1 { files, .. } = &location else { panic!("{location:?}") };
        assert_eq!(
            files,
            &[dir.path().join("model.ckpt-00000-of-00002"), dir.path().join("model.ckpt-00001-of-00002")]
        );
        assert_eq!(
            locate(&LocalStorage, &dir.path().join("model.ckpt-?????-of-00002")).unwrap().path(),
            dir.path().join("model.ckpt-?????-of-00002")
        );
    }

    #[test]
    fn a_listing_shows_the_checkpoints_whose_index_it_holds() {
        let names =
            ["model.ckpt-5.index", "model.ckpt-5.data-00000-of-00001", "lost.data-00000-of-00001", "checkpoint"];
        assert_eq!(
            listed_checkpoints(names.into_iter().chain(["b.index", ".index", "x.index.tmp"])),
            ["model.ckpt-5", "b"]
        );
    }

    #[test]
    fn a_meta_graph_is_named_after_the_checkpoint_without_its_shard_pattern() {
        let meta = |path: &str| meta_graph_path(Path::new(path), "meta");
        assert_eq!(meta("dir/model.ckpt-100"), Path::new("dir/model.ckpt-100.meta"));
        assert_eq!(meta("dir/model.ckpt-?????-of-00002"), Path::new("dir/model.ckpt.meta"));
        assert_eq!(meta("model.ckpt-00001-of-00002"), Path::new("model.ckpt.meta"));
        assert_eq!(meta("s3://bucket/run/model-of-x"), Path::new("s3://bucket/run/model-of-x.meta"));
        assert_eq!(meta_graph_path(Path::new("m-5"), "meta.txt"), Path::new("m-5.meta.txt"));
    }

    #[test]
    fn a_checkpoint_is_deleted_index_first_with_all_its_files_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "model.ckpt-5.index",
            "model.ckpt-5.data-00000-of-00002",
            "model.ckpt-5.data-00001-of-00002",
            "model.ckpt-5.data-00000-of-00001", // a killed save's, of another shard count
            "model.ckpt-50.index",
            "model.ckpt-50.data-00000-of-00001",
            "model.ckpt-5.meta",
            "v1.ckpt-00000-of-00002",
            "v1.ckpt-00001-of-00002",
            "v1.ckpt-1",
        ];
        for name in names {
            touch(&dir.path().join(name), b"");
        }
        let deleted = delete_checkpoint(&LocalStorage, &dir.path().join("model.ckpt-5"), None).unwrap();
        assert_eq!(deleted[0], dir.path().join("model.ckpt-5.index"));
        assert_eq!(deleted.len(), 4);
        // From the caller's listing, as a save that listed the directory already deletes.
        let listing = names.iter().map(|name| name.to_string()).collect();
        delete_checkpoint(&LocalStorage, &dir.path().join("v1.ckpt"), Some(listing)).unwrap();
        delete_checkpoint(&LocalStorage, &dir.path().join("v1.ckpt-1"), None).unwrap();
        let mut left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.sort();
        assert_eq!(left, ["model.ckpt-5.meta", "model.ckpt-50.data-00000-of-00001", "model.ckpt-50.index"]);
        // Gone already: nothing to do, no error.
        delete_checkpoint(&LocalStorage, &dir.path().join("model.ckpt-5"), None).unwrap();
    }

    #[test]
    fn a_checkpoint_was_completed_when_its_index_or_v1_file_was_written() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("model.ckpt-5.index"), b"");
        touch(&dir.path().join("v1.ckpt-00000-of-00002"), b"");
        let modified = |name: &str| checkpoint_modified(&LocalStorage, &dir.path().join(name)).unwrap();
        let index_time = std::fs::metadata(dir.path().join("model.ckpt-5.index")).unwrap().modified().unwrap();
        assert_eq!(modified("model.ckpt-5"), Some(index_time));
        assert!(modified("v1.ckpt").is_some());
        assert_eq!(modified("model.ckpt-6"), None);
    }

    #[test]
    fn nothing_there_names_what_is_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("model.ckpt-1000.index"), b"");
        let text = message(&dir.path().join("model.ckpt"));
        let tensorflows_words = format!(
            "Unsuccessful TensorSliceReader constructor: Failed to find any matching files for {}",
            dir.path().join("model.ckpt").display()
        );
        assert!(text.starts_with(&tensorflows_words) && text.contains("model.ckpt-1000"), "{text}");
        assert!(message(dir.path()).contains("directory"));
    }
}
