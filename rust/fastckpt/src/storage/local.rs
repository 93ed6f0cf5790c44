//! Local files: positional reads (`pread`) and read-only memory maps; writes under a temporary name beside
//! the target, renamed into place when complete, so that readers see the old file or the new one, never a
//! part.
//!
//! A temporary name is `<target>.tempstate.<pid>.<random>`: the process id of the writer lets a later writer
//! remove what a killed one left behind ([`leftover_writer`]) without touching files still being written.
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use memmap2::Mmap;

use super::{parent_dir, FileKind, ReadFile, Storage, WriteFile};
use crate::error::{Error, Result};

/// The marker between a target's name and the writer's process id in a temporary name.
const TEMP_MARKER: &str = ".tempstate.";

/// The local filesystem.
///
/// Thread safety, ownership: those of [`Storage`]; it holds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalStorage;

impl Storage for LocalStorage {
    fn open(&self, path: &Path) -> Result<Arc<dyn ReadFile>> {
        let file = File::open(path).map_err(|e| Error::io(e, path))?;
        // Safety: checkpoint files are written under temporary names and renamed into place, never modified
        // in place; a file truncated by someone else while mapped is outside what any reader can defend
        // against.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(e, path))?;
        Ok(Arc::new(LocalFile { path: path.to_path_buf(), file, map }))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| Error::io(e, path))
    }

    fn kind(&self, path: &Path) -> Result<Option<FileKind>> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Ok(Some(FileKind::Directory)),
            Ok(_) => Ok(Some(FileKind::File)),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => Ok(None),
            Err(e) => Err(Error::io(e, path)),
        }
    }

    fn modified(&self, path: &Path) -> Result<Option<SystemTime>> {
        match std::fs::metadata(path) {
            Ok(meta) => meta.modified().map(Some).map_err(|e| Error::io(e, path)),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => Ok(None),
            Err(e) => Err(Error::io(e, path)),
        }
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(Error::io(e, dir)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(e, dir))?;
            // Names that are not UTF-8 cannot be checkpoint files fastckpt names.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WriteFile>> {
        let temp = TempFile::new(path.to_path_buf())?;
        let file = temp.create()?;
        Ok(Box::new(LocalWriteFile { temp, file, reserved: 0 }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(e, dir))?;
        }
        std::fs::rename(from, to).map_err(|e| Error::io(e, from))
    }

    fn delete(&self, path: &Path) -> Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(e, path)),
            _ => Ok(()),
        }
    }
}

/// An open local file: read with `pread`, and mapped whole, read-only.
///
/// Ownership: keeps the file open and mapped until dropped, so that a file deleted after open (by a Saver's
/// `max_to_keep`) is still read. The map relies on the file not changing while mapped: fastckpt replaces
/// checkpoint files by rename, never in place.
#[derive(Debug)]
struct LocalFile {
    path: PathBuf,
    file: File,
    map: Mmap,
}

impl ReadFile for LocalFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn size(&self) -> u64 {
        self.map.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        read_exact_at(&self.file, buf, offset).map_err(|e| Error::io(e, &self.path))
    }

    fn mapped(&self) -> Option<&[u8]> {
        Some(&self.map)
    }
}

/// Fills `buf` from `file` at `offset`, moving no shared file position.
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// A local file being written under its temporary name.
struct LocalWriteFile {
    temp: TempFile,
    file: File,
    /// The end of the disk space allocated ahead of the writes (see `reserve`).
    reserved: u64,
}

impl Write for LocalWriteFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl WriteFile for LocalWriteFile {
    fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Allocates the disk space up to `end`. Writes into allocated space skip the filesystem's per-page block
    /// reservation (ext4's delayed allocation), which makes a 1 GiB buffered write about a third faster. The
    /// file's size is left alone, so an unfinished file holds only what was written.
    fn reserve(&mut self, end: u64) -> Result<()> {
        if end <= self.reserved {
            return Ok(());
        }
        let start = std::mem::replace(&mut self.reserved, end);
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::{fallocate, FallocateFlags};
            use rustix::io::Errno;

            // Other errors mean the filesystem cannot preallocate: the file is then written as it is.
            let reserved = fallocate(&self.file, FallocateFlags::KEEP_SIZE, start, end - start);
            if let Err(e @ (Errno::NOSPC | Errno::DQUOT | Errno::FBIG)) = reserved {
                return Err(Error::io(e.into(), self.temp.path()));
            }
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>, durable: bool) -> Result<()> {
        if durable {
            self.file.sync_all().map_err(|e| Error::io(e, self.temp.path()))?;
        }
        self.temp.commit()?;
        if durable {
            sync_parent(&self.temp.target)?;
        }
        Ok(())
    }
}

/// A file being written under a temporary name, removed when dropped unless [`TempFile::commit`] renamed it
/// into place. Each temporary name has one writer: the process id and a random number make it unique, and
/// `create` refuses a file that exists.
#[derive(Debug)]
struct TempFile {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl TempFile {
    /// A temporary name beside `target`, whose directory, and its parents, are created if missing.
    fn new(target: PathBuf) -> Result<TempFile> {
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(e, dir))?;
        }
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let mut temp = target.clone().into_os_string();
        temp.push(format!("{TEMP_MARKER}{}.{random:016x}", std::process::id()));
        Ok(TempFile { temp: PathBuf::from(temp), target, committed: false })
    }

    fn path(&self) -> &Path {
        &self.temp
    }

    fn create(&self) -> Result<File> {
        OpenOptions::new().write(true).create_new(true).open(&self.temp).map_err(|e| Error::io(e, &self.temp))
    }

    /// Renames the file into place, which replaces the target atomically on POSIX filesystems.
    fn commit(&mut self) -> Result<()> {
        std::fs::rename(&self.temp, &self.target).map_err(|e| Error::io(e, &self.target))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Makes renames into the directory of `path` durable.
fn sync_parent(path: &Path) -> Result<()> {
    let dir = parent_dir(path);
    File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(e, &dir))
}

/// For the name of a temporary file of a local write, the target's name and the writer's process id; None
/// for any other name.
pub fn leftover_writer(file_name: &str) -> Option<(&str, u32)> {
    let (target, rest) = file_name.rsplit_once(TEMP_MARKER)?;
    let (pid, random) = rest.split_once('.')?;
    let is_hex = random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit());
    (is_hex && !target.is_empty()).then_some(())?;
    Some((target, pid.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_and_names_its_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("new").join("dir").join("checkpoint");
        LocalStorage.write(&target, b"one", false).unwrap();
        LocalStorage.write(&target, b"two", true).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
        let temp = TempFile::new(target.clone()).unwrap();
        let name = temp.path().file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(leftover_writer(&name), Some(("checkpoint", std::process::id())));
        assert_eq!(leftover_writer("checkpoint"), None);
        assert_eq!(leftover_writer("model.ckpt.tempstate.12.notrandom"), None);
        // Dropped uncommitted: nothing stays.
        drop(temp.create().unwrap());
        drop(temp);
        let mut written = LocalStorage.create(&target.with_file_name("other")).unwrap();
        written.write_all(b"lost").unwrap();
        drop(written);
        assert_eq!(LocalStorage.list(target.parent().unwrap()).unwrap(), vec!["checkpoint".to_owned()]);
    }

    #[test]
    fn reads_at_offsets_and_reports_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        LocalStorage.write(&path, b"0123456789", false).unwrap();
        let file = LocalStorage.open(&path).unwrap();
        let mut buf = [0u8; 3];
        file.read_at(4, &mut buf).unwrap();
        assert_eq!(&buf, b"456");
        assert_eq!(file.size(), 10);
        let past_end = file.read_at(9, &mut buf).unwrap_err();
        assert_eq!(past_end.kind, crate::ErrorKind::DataLoss);
        assert_eq!(LocalStorage.kind(&path).unwrap(), Some(FileKind::File));
        assert_eq!(LocalStorage.kind(dir.path()).unwrap(), Some(FileKind::Directory));
        assert_eq!(LocalStorage.kind(&path.join("below")).unwrap(), None);
        LocalStorage.delete(&path).unwrap();
        LocalStorage.delete(&path).unwrap();
        assert_eq!(LocalStorage.kind(&path).unwrap(), None);
    }
}
