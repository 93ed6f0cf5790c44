//! The one way fastckpt replaces a file: write it under a temporary name beside its target, then rename it
//! into place, so that readers see the old file or the new one, never a part. Data files, indexes, state
//! files, `.meta` files and SavedModel files all go through here.
//!
//! A temporary name is `<target>.tempstate.<pid>.<random>`: the process id of the writer lets a later writer
//! remove what a killed one left behind ([`leftover_writer`]) without touching files still being written.
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The marker between a target's name and the writer's process id in a temporary name.
const TEMP_MARKER: &str = ".tempstate.";

/// A file being written under a temporary name. It is removed when dropped, unless [`TempFile::commit`]
/// renamed it into place.
///
/// Ownership: it holds the two paths, not the file: [`TempFile::create`] hands the open file to the caller,
/// who writes and flushes it (and fsyncs it, where the commit must be durable) before `commit`. Each
/// temporary name has one writer: the process id and a random number make it unique, and `create` refuses
/// a file that exists.
///
/// Thread safety: `Send` and `Sync`, holding only paths; `commit` takes `&mut self`.
///
/// Verification: none of the contents. `commit` is a rename, which replaces the target atomically on POSIX
/// filesystems: that is what lets readers see the old file or the new one.
#[derive(Debug)]
pub struct TempFile {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl TempFile {
    /// A temporary name beside `target`; nothing is created yet (see [`TempFile::create`]). The target's
    /// directory, and its parents, are created if missing.
    pub fn new(target: PathBuf) -> Result<TempFile> {
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(e, dir))?;
        }
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let mut temp = target.clone().into_os_string();
        temp.push(format!("{TEMP_MARKER}{}.{random:016x}", std::process::id()));
        Ok(TempFile { temp: PathBuf::from(temp), target, committed: false })
    }

    /// The temporary path, which errors about writes name.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// Creates the temporary file, failing if it exists.
    pub fn create(&self) -> Result<File> {
        OpenOptions::new().write(true).create_new(true).open(&self.temp).map_err(|e| Error::io(e, &self.temp))
    }

    /// Renames the file into place. The caller fsyncs the file first where the commit must be durable, and
    /// the directory after ([`sync_parent`]).
    pub fn commit(&mut self) -> Result<()> {
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

/// Replaces `target` with `data` atomically; with `durable`, the file and then its directory are fsynced,
/// so that the new contents survive a power loss.
pub fn write_file(target: &Path, data: &[u8], durable: bool) -> Result<()> {
    let mut temp = TempFile::new(target.to_path_buf())?;
    let mut file = temp.create()?;
    file.write_all(data).map_err(|e| Error::io(e, temp.path()))?;
    if durable {
        file.sync_all().map_err(|e| Error::io(e, temp.path()))?;
    }
    drop(file);
    temp.commit()?;
    if durable {
        sync_parent(target)?;
    }
    Ok(())
}

/// Makes renames into the directory of `path` durable.
pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(e, dir))
}

/// For the name of a temporary file this module made, the target's name and the writer's process id; None
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
    fn write_file_replaces_and_names_its_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("new").join("dir").join("checkpoint");
        write_file(&target, b"one", false).unwrap();
        write_file(&target, b"two", true).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
        let temp = TempFile::new(target.clone()).unwrap();
        let name = temp.path().file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(leftover_writer(&name), Some(("checkpoint", std::process::id())));
        assert_eq!(leftover_writer("checkpoint"), None);
        assert_eq!(leftover_writer("model.ckpt.tempstate.12.notrandom"), None);
        // Dropped uncommitted: nothing stays.
        drop(temp.create().unwrap());
        drop(temp);
        assert_eq!(std::fs::read_dir(target.parent().unwrap()).unwrap().count(), 1);
    }
}
