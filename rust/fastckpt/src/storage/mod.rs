//! Where checkpoint files live: the one interface through which the core reads and writes every byte.
//!
//! A [`Storage`] opens files for positional reads ([`ReadFile`], mapped where the bytes are local), writes
//! files that appear under their names only when complete ([`WriteFile`]), and lists, renames and deletes
//! them. Readers, writers, merges and [`locate`](crate::locate()) take one, so that a second kind of storage
//! is a second implementation of this interface, not a second path through the formats.
//!
//! Files are named by paths: local paths for [`LocalStorage`], URLs (`s3://bucket/key`) for [`ObjectStorage`].
//! Error messages name them as given.
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::checksum;
use crate::error::{Error, Result};

mod blocks;
mod local;
mod object;
mod stats;
mod uploads;

pub use local::{leftover_writer, LocalStorage};
pub use object::ObjectStorage;

/// The configuration of object stores, by key: `object_store`'s keys (`aws_region`, `aws_endpoint`,
/// `google_service_account`, `azure_storage_account_name`, `timeout`, ...), besides the environment's
/// variables, and the core's own: `concurrency` (requests in flight per read), `max_retries` and
/// `retry_timeout` (seconds). Local files take none.
pub type StorageOptions = BTreeMap<String, String>;

/// What a conditional write ([`Storage::write_if`]) expects to find at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected<'a> {
    /// Nothing: the file must not exist.
    Absent,
    /// The file at the version [`Storage::read_versioned`] or `write_if` returned.
    Version(&'a str),
}

/// What a path names, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A file, which [`Storage::open`] opens.
    File,
    /// A directory, whose entries [`Storage::list`] names.
    Directory,
}

/// Files that can be read, written, listed and deleted.
///
/// Thread safety: `Send` and `Sync`; every method takes `&self`, so one storage serves any number of readers
/// and writers at once.
///
/// Ownership: a storage holds no file open itself; [`ReadFile`]s and [`WriteFile`]s hold what they need.
///
/// Errors name the path (or the temporary path being written). A missing file is
/// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound).
pub trait Storage: Send + Sync + fmt::Debug {
    /// Opens the file at `path` for reading.
    fn open(&self, path: &Path) -> Result<Arc<dyn ReadFile>>;

    /// The whole file at `path`.
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        match FileBytes::of(self.open(path)?)? {
            FileBytes::Mapped(file) => Ok(file.mapped().unwrap_or_default().to_vec()),
            FileBytes::Read(bytes) => Ok(bytes),
        }
    }

    /// What `path` names; `None` when nothing is there.
    fn kind(&self, path: &Path) -> Result<Option<FileKind>>;

    /// When the file `path` was last written; `None` when it does not exist.
    fn modified(&self, path: &Path) -> Result<Option<SystemTime>>;

    /// The names of the entries directly inside the directory `dir`, sorted; empty when it does not exist (or
    /// is a file).
    fn list(&self, dir: &Path) -> Result<Vec<String>>;

    /// Starts writing the file `path`: what is written stays invisible under `path` until
    /// [`WriteFile::commit`]; a `WriteFile` dropped uncommitted leaves nothing behind. Missing parent
    /// directories are created.
    fn create(&self, path: &Path) -> Result<Box<dyn WriteFile>>;

    /// Replaces the file `path` with `data` at once: readers see the old contents or the new, never a part.
    /// `durable` makes the new contents survive a power loss before this returns.
    fn write(&self, path: &Path, data: &[u8], durable: bool) -> Result<()> {
        let mut file = self.create(path)?;
        file.write_all(data).map_err(|e| Error::io(e, file.path()))?;
        file.commit(durable)
    }

    /// The contents of the file `path` and their version, an opaque token that changes with every write, for
    /// [`Storage::write_if`]; `None` where the storage keeps no versions (local files).
    fn read_versioned(&self, path: &Path) -> Result<(Vec<u8>, Option<String>)> {
        Ok((self.read(path)?, None))
    }

    /// [`Storage::write`], only if what is at `path` is still what `expected` says; returns the version
    /// written. A different file there is [`ErrorKind::Aborted`](crate::ErrorKind::Aborted): another writer
    /// replaced it. Storage that keeps no versions (local files) writes unconditionally and returns `None`.
    fn write_if(&self, path: &Path, data: &[u8], durable: bool, expected: Expected<'_>) -> Result<Option<String>> {
        let _ = expected;
        self.write(path, data, durable)?;
        Ok(None)
    }

    /// Moves the complete file `from` to `to`, replacing what is there.
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;

    /// Deletes the file `path`; a file already gone is not an error.
    fn delete(&self, path: &Path) -> Result<()>;

    /// The unfinished multipart uploads of files whose paths begin with `prefix` (a directory and the start of
    /// a file name): each file's path and the upload's id. A writer killed mid-upload leaves one, whose parts
    /// the store keeps (and bills) until it is aborted. Empty where the storage keeps no such uploads or cannot
    /// list them: local files, object stores other than S3, an S3 credential not allowed to list them.
    fn uploads(&self, prefix: &Path) -> Result<Vec<(PathBuf, String)>> {
        let _ = prefix;
        Ok(Vec::new())
    }

    /// Aborts the upload `id` of the file `path` (one [`Storage::uploads`] listed), deleting its parts; one
    /// already gone is not an error.
    fn abort_upload(&self, path: &Path, id: &str) -> Result<()> {
        let _ = id;
        Err(Error::unimplemented("this storage keeps no uploads to abort").in_file(path))
    }
}

/// An open file, read at any offset.
///
/// Thread safety: `Send` and `Sync`: reads take `&self` and share no file position, so any number of threads
/// read one file at once.
///
/// Ownership: keeps what it needs to read (a descriptor and a memory map, or a connection's address) until
/// the last `Arc` to it is dropped; a local file deleted after open is still read.
pub trait ReadFile: Send + Sync + fmt::Debug {
    /// The path it was opened at, which errors name.
    fn path(&self) -> &Path;

    /// Its size in bytes, as of open.
    fn size(&self) -> u64;

    /// Fills `buf` with the bytes at `offset`; a range past the end is [`ErrorKind::DataLoss`]
    /// (a truncated file).
    ///
    /// [`ErrorKind::DataLoss`]: crate::ErrorKind::DataLoss
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// Fills each buffer with the bytes at its offset, as many [`ReadFile::read_at`] calls would; remote
    /// storage fetches them concurrently.
    fn read_ranges(&self, ranges: Vec<(u64, &mut [u8])>) -> Result<()> {
        ranges.into_iter().try_for_each(|(offset, buf)| self.read_at(offset, buf))
    }

    /// Fills each buffer as [`ReadFile::read_ranges`] does and returns the CRC32C of each, in order, computed
    /// as the bytes arrive (while they are in cache).
    fn read_ranges_checksummed(&self, ranges: Vec<(u64, &mut [u8])>) -> Result<Vec<u32>> {
        ranges
            .into_iter()
            .map(|(offset, buf)| checksum::fill_with_checksum(buf, |at, part| self.read_at(offset + at as u64, part)))
            .collect()
    }

    /// All of its bytes, mapped into memory, where the file is local: reads of parts and views use them
    /// without copying. `None` for storage that is not.
    fn mapped(&self) -> Option<&[u8]>;

    /// Says which ranges of the file are each read whole when read (a checkpoint's tensors, from its index):
    /// remote storage then reads ahead of a small read only up to the next large one, which its own read
    /// fetches, rather than into it. Nothing else depends on it.
    fn expect_whole_reads(&self, ranges: &[std::ops::Range<u64>]) {
        let _ = ranges;
    }
}

/// A file being written, invisible under its name until committed.
///
/// Thread safety: `Send`: one thread writes it at a time.
///
/// Ownership: dropped without [`WriteFile::commit`], it removes what it wrote, and nothing at its path
/// changes.
pub trait WriteFile: Write + Send {
    /// The path errors about writing it name (a local file's temporary name).
    fn path(&self) -> &Path;

    /// Says that the file will grow to at least `end` bytes, so that local storage can allocate them at once
    /// (a full disk is then reported before anything is written).
    fn reserve(&mut self, end: u64) -> Result<()> {
        let _ = end;
        Ok(())
    }

    /// Makes the file appear under its name, complete; with `durable`, its contents and its name survive a
    /// power loss once this returns.
    fn commit(self: Box<Self>, durable: bool) -> Result<()>;
}

/// The storage that holds `path`, and the path in it: an object store for the URL of one (made once per
/// bucket and configuration, and shared), local storage for a local path or a `file://` URL.
pub fn resolve(path: &Path, options: &StorageOptions) -> Result<(Arc<dyn Storage>, PathBuf)> {
    if object::is_url(path) {
        return Ok((object::for_url(path, options)?, path.to_path_buf()));
    }
    let local = match path.to_str().and_then(|p| p.strip_prefix("file://")) {
        Some(rest) => PathBuf::from(rest),
        None => path.to_path_buf(),
    };
    Ok((Arc::new(LocalStorage), local))
}

/// The storages the paths of one configuration lead to: local files, and each object store (bucket, container,
/// server) made on first use and kept, so that a path is resolved without the clouds' environment variables being
/// read again, nor the process-wide map of stores locked. What a reader, writer or saver holds for all its files.
///
/// Thread safety: `Send` and `Sync`; [`Stores::resolve`] takes `&self`.
#[derive(Debug, Default)]
pub struct Stores {
    options: StorageOptions,
    /// The object stores made so far, by `scheme://authority`.
    made: Mutex<HashMap<String, Arc<dyn Storage>>>,
}

impl Stores {
    /// The stores of the configuration `options` (see [`StorageOptions`]).
    pub fn new(options: StorageOptions) -> Stores {
        Stores { options, made: Mutex::default() }
    }

    /// The storage that holds `path`, and the path in it, as [`resolve`] says.
    pub fn resolve(&self, path: &Path) -> Result<(Arc<dyn Storage>, PathBuf)> {
        let Some(root) = object::root_of(path) else {
            return resolve(path, &self.options);
        };
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(storage) = made.get(root) {
            return Ok((Arc::clone(storage), path.to_path_buf()));
        }
        let (storage, in_storage) = resolve(path, &self.options)?;
        made.insert(root.to_owned(), Arc::clone(&storage));
        Ok((storage, in_storage))
    }
}

/// Whether `path` is a URL that names an object store (`s3://`, `gs://`, `az://`, `https://`, ...), not a
/// local path.
pub fn is_url(path: &Path) -> bool {
    object::is_url(path)
}

/// The directory holding `path`, for listing its neighbours: `.` for a bare file name.
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn too_large(path: &Path) -> Error {
    Error::invalid_argument("the file is larger than this machine can address").in_file(path)
}

/// A whole file's bytes: its map where the storage is local, read into memory otherwise.
#[derive(Debug)]
pub enum FileBytes {
    /// A file whose [`ReadFile::mapped`] bytes are all of it.
    Mapped(Arc<dyn ReadFile>),
    /// The bytes of a file read whole.
    Read(Vec<u8>),
}

impl FileBytes {
    /// The bytes of `file`, read only where they are not mapped.
    pub fn of(file: Arc<dyn ReadFile>) -> Result<FileBytes> {
        if file.mapped().is_some() {
            return Ok(FileBytes::Mapped(file));
        }
        let mut bytes = vec![0; usize::try_from(file.size()).map_err(|_| too_large(file.path()))?];
        file.read_at(0, &mut bytes)?;
        Ok(FileBytes::Read(bytes))
    }
}

impl AsRef<[u8]> for FileBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(file) => file.mapped().unwrap_or_default(),
            FileBytes::Read(bytes) => bytes,
        }
    }
}
