//! File names of a bundle with prefix `P`: `P.index` and `P.data-00000-of-00001`.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(prefix.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// `P.index`, the index of the checkpoint with prefix `P`: the file whose appearing makes it exist.
pub fn index_path(prefix: &Path) -> PathBuf {
    with_suffix(prefix, ".index")
}

/// `P.data-SSSSS-of-NNNNN`, data file `shard` (from 0) of the `num_shards` of the checkpoint with prefix `P`,
/// both numbers zero-padded to five digits, as TensorFlow names them.
pub fn data_path(prefix: &Path, shard: u32, num_shards: u32) -> PathBuf {
    with_suffix(prefix, &format!(".data-{shard:05}-of-{num_shards:05}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let prefix = Path::new("/tmp/model.ckpt-100");
        assert_eq!(index_path(prefix), Path::new("/tmp/model.ckpt-100.index"));
        assert_eq!(data_path(prefix, 0, 1), Path::new("/tmp/model.ckpt-100.data-00000-of-00001"));
        assert_eq!(data_path(prefix, 12, 345), Path::new("/tmp/model.ckpt-100.data-00012-of-00345"));
    }
}
