//! What the object stores said of each object (its size, ETag and modification time, from a HEAD request), kept
//! for a short while: opening the same checkpoint again (a `load_variable` loop, `list_variables` then
//! `load_variable`) then costs no request. After [`DEFAULT_MAX_AGE`] (the `cache_max_age` storage option, in
//! seconds; 0 turns it off) an object is asked about again, and a replaced one (another ETag) is read afresh:
//! blocks are kept by version ([`super::blocks`]). Writes, renames and deletions through the same storage forget
//! what they change at once; a change by another process is seen within the maximum age, as with TensorFlow's
//! own stat cache for GCS.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use object_store::ObjectMeta;

/// How long what a HEAD said is trusted when the `cache_max_age` option does not say.
pub(super) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5);

/// The metadata of objects, by key, each with when it was asked for.
///
/// Thread safety: `Send` and `Sync`; every method takes `&self`.
#[derive(Debug)]
pub(super) struct StatCache {
    max_age: Duration,
    stats: Mutex<HashMap<String, (ObjectMeta, Instant)>>,
}

impl StatCache {
    /// A cache that trusts what it holds for `max_age` (zero: nothing is kept).
    pub(super) fn new(max_age: Duration) -> StatCache {
        StatCache { max_age, stats: Mutex::default() }
    }

    /// The metadata of `key` if it was asked for less than the maximum age ago.
    pub(super) fn get(&self, key: &str) -> Option<ObjectMeta> {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let (meta, asked) = stats.get(key)?;
        (asked.elapsed() < self.max_age).then(|| meta.clone())
    }

    /// Keeps what a HEAD of `key` just said.
    pub(super) fn insert(&self, key: &str, meta: ObjectMeta) {
        if self.max_age.is_zero() {
            return;
        }
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.retain(|_, (_, asked)| asked.elapsed() < self.max_age);
        stats.insert(key.to_owned(), (meta, Instant::now()));
    }

    /// Forgets `key`: this process has just changed it.
    pub(super) fn forget(&self, key: &str) {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}
