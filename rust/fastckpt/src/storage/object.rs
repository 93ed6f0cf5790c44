//! Object stores: Amazon S3 (and servers speaking its API), Google Cloud Storage, Azure Blob Storage and
//! plain HTTP(S) servers (read-only), through the `object_store` crate, which signs requests, retries them
//! with backoff and uploads large objects in parts.
//!
//! Files are named by URLs (`s3://bucket/key`); the store of a bucket is made once per configuration and
//! shared. Requests run on one runtime of the core's own; callers block on them (the Python layer does so
//! without the GIL).
//!
//! Reads are range requests: many ranges at once are coalesced where neighbours are close, cut into pieces,
//! and fetched concurrently, each response copied into its destination as it arrives. One small read alone (a
//! loop of them) is served from a cache of larger blocks ([`super::blocks`]), and what HEAD requests say of an
//! object is kept for a few seconds ([`super::stats`]). Writes of large files
//! are multipart uploads whose parts are sent in parallel while the writer goes on; an object appears only
//! when its upload completes, and one dropped uncommitted is aborted.
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig, UpdateVersion, WriteMultipart,
};

use super::blocks::{BlockCache, BlockId, BLOCK, DEFAULT_CAPACITY, ONE_REQUEST};
use super::stats::{StatCache, DEFAULT_MAX_AGE};
use super::uploads::{S3Uploads, Upload};
use super::{Expected, FileKind, ReadFile, Storage, StorageOptions, WriteFile};
use crate::checksum;
use crate::error::{Error, ErrorKind, Result};

/// The URL schemes of object stores.
const SCHEMES: &[&str] = &["s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "adl", "http", "https"];

/// Range requests are at most this long: large reads are cut into pieces fetched concurrently.
const PIECE: u64 = 8 << 20;

/// A read alone of at most this many bytes is served from blocks ([`super::blocks`]); a larger one takes from
/// blocks only what they hold of its ends.
const SMALL_READ: u64 = 2 << 20;

/// Ranges closer than this are fetched in one request (the bytes between are read and dropped).
const COALESCE_GAP: u64 = 1 << 20;

/// Multipart uploads send parts of this size (S3 allows 10,000 parts: objects up to 160 GB).
const PART: usize = 16 << 20;

/// Parts being uploaded at once, per file.
const PARTS_IN_FLIGHT: usize = 8;

/// Requests in flight at once per read, unless the `concurrency` option says otherwise.
const DEFAULT_CONCURRENCY: usize = 16;

/// Whether `path` is the URL of an object (a scheme of [`SCHEMES`] and `://`).
pub(super) fn is_url(path: &Path) -> bool {
    let Some(text) = path.to_str() else { return false };
    text.split_once("://").is_some_and(|(scheme, _)| SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

/// A duration given in seconds (`"30"`, `"2.5"`, `"30s"`), as the options take them.
fn seconds(value: &str) -> Option<Duration> {
    Duration::try_from_secs_f64(value.trim_end_matches('s').parse().ok()?).ok()
}

/// The runtime every request runs on. Its threads only wait on the network.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("fastckpt-io")
            .enable_all()
            .build()
            .expect("the I/O runtime starts")
    })
}

/// Makes ring the process's TLS crypto provider, which the HTTPS client of every store needs (reqwest is built
/// without one: see the workspace's Cargo.toml). A provider installed before, by another user of rustls in the
/// library, stays.
fn install_tls_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The storage of the bucket (container, server) `path` names, made once per configuration: its options
/// and the environment variables the clouds' builders read (a test, or a program, that changes them gets a
/// storage made anew).
pub(super) fn for_url(path: &Path, options: &StorageOptions) -> Result<Arc<dyn Storage>> {
    type Stores = Mutex<HashMap<(String, StorageOptions, Vec<(String, String)>), Arc<ObjectStorage>>>;
    static STORES: OnceLock<Stores> = OnceLock::new();
    let (root, _) = split_url(path)?;
    let cloud_variables = std::env::vars()
        .filter(|(name, _)| ["AWS_", "GOOGLE_", "AZURE_"].iter().any(|prefix| name.starts_with(prefix)))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let key = (root.to_owned(), options.clone(), cloud_variables);
    let mut stores = STORES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(store) = stores.get(&key) {
        return Ok(Arc::clone(store) as Arc<dyn Storage>);
    }
    let store = Arc::new(ObjectStorage::new(root, options).map_err(|e| e.in_file(path))?);
    stores.insert(key, Arc::clone(&store));
    Ok(store)
}

/// `scheme://authority` of the URL of an object store; None for a local path (or a URL that names no bucket,
/// which [`for_url`] reports).
pub(super) fn root_of(path: &Path) -> Option<&str> {
    if !is_url(path) {
        return None;
    }
    split_url(path).ok().map(|(root, _)| root)
}

/// `scheme://authority` and the key after it.
fn split_url(path: &Path) -> Result<(&str, &str)> {
    let text = path.to_str().ok_or_else(|| Error::invalid_argument("a URL that is not UTF-8").in_file(path))?;
    let (_, rest) = text.split_once("://").unwrap_or((text, ""));
    let root_len = text.len() - rest.len() + rest.find('/').unwrap_or(rest.len());
    let (root, key) = text.split_at(root_len);
    if root.len() == text.len() - rest.len() {
        return Err(Error::invalid_argument("the URL names no bucket").in_file(path));
    }
    Ok((root, key.trim_start_matches('/')))
}

/// The buckets, containers or servers of one configuration.
///
/// Thread safety, ownership: those of [`Storage`]; it holds a client (its connection pool and credentials),
/// shared by every file opened through it.
#[derive(Debug)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    /// `scheme://authority`, which paths start with.
    root: String,
    /// Requests in flight at once per read.
    concurrency: usize,
    /// HTTP servers are read-only and cannot list.
    http: bool,
    /// What HEAD requests said, for a few seconds.
    stats: Arc<StatCache>,
    /// Blocks of objects read a small piece at a time.
    blocks: Arc<BlockCache>,
    /// The multipart uploads of an S3 bucket (other stores' are not listed).
    uploads: Option<S3Uploads>,
}

impl ObjectStorage {
    fn new(root: &str, options: &StorageOptions) -> Result<ObjectStorage> {
        use object_store::aws::AmazonS3Builder;
        use object_store::azure::MicrosoftAzureBuilder;
        use object_store::gcp::GoogleCloudStorageBuilder;
        use object_store::http::HttpBuilder;

        let mut concurrency = DEFAULT_CONCURRENCY;
        let mut cache_bytes = DEFAULT_CAPACITY;
        let mut max_age = DEFAULT_MAX_AGE;
        let mut retry = RetryConfig { max_retries: 5, retry_timeout: Duration::from_secs(60), ..Default::default() };
        let mut config = Vec::new();
        for (key, value) in options {
            let invalid = || Error::invalid_argument(format!("storage option {key}={value:?}: not a number"));
            match key.as_str() {
                "concurrency" => concurrency = value.parse().ok().filter(|&n| n > 0).ok_or_else(invalid)?,
                "max_retries" => retry.max_retries = value.parse().map_err(|_| invalid())?,
                "retry_timeout" => retry.retry_timeout = seconds(value).ok_or_else(invalid)?,
                "block_cache_bytes" => cache_bytes = value.parse().map_err(|_| invalid())?,
                "cache_max_age" => max_age = seconds(value).ok_or_else(invalid)?,
                _ => config.push((key.to_ascii_lowercase(), value.clone())),
            }
        }
        install_tls_provider();
        let client =
            ClientOptions::new().with_timeout(Duration::from_secs(30)).with_connect_timeout(Duration::from_secs(5));
        let scheme = root.split_once("://").map_or("", |(scheme, _)| scheme).to_ascii_lowercase();
        // The clouds' own variables, as each builder's `from_env` reads them, but applied after the client
        // options above (which `with_client_options` would replace whole) and before the caller's options.
        let (prefix, http) = match scheme.as_str() {
            "s3" | "s3a" => ("AWS_", false),
            "gs" => ("GOOGLE_", false),
            "http" | "https" => ("", true),
            _ => ("AZURE_", false),
        };
        let variables: Vec<(String, String)> = std::env::vars()
            .filter(|(name, _)| !prefix.is_empty() && name.starts_with(prefix))
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let unknown = |key: &str| Error::invalid_argument(format!("unknown storage option {key:?} for {scheme}://"));
        macro_rules! build {
            ($builder:expr) => {{
                let mut builder = $builder.with_client_options(client).with_retry(retry);
                for (key, value) in variables {
                    if let Ok(key) = key.parse() {
                        builder = builder.with_config(key, value);
                    }
                }
                builder = builder.with_url(root);
                for (key, value) in config {
                    builder = builder.with_config(key.parse().map_err(|_| unknown(&key))?, value);
                }
                Arc::new(builder.build().map_err(|e| store_error(e, root))?)
            }};
        }
        let (listing_options, listing_retry) = (client.clone(), retry.clone());
        let (store, uploads): (Arc<dyn ObjectStore>, _) = match scheme.as_str() {
            "s3" | "s3a" => {
                let s3 = build!(AmazonS3Builder::new());
                (Arc::clone(&s3) as _, Some(S3Uploads::new(s3, listing_options, listing_retry)))
            }
            "gs" => (build!(GoogleCloudStorageBuilder::new()), None),
            "http" | "https" => (build!(HttpBuilder::new()), None),
            _ => (build!(MicrosoftAzureBuilder::new()), None),
        };
        Ok(ObjectStorage {
            store,
            root: root.to_owned(),
            concurrency,
            http,
            stats: Arc::new(StatCache::new(max_age)),
            blocks: Arc::new(BlockCache::new(cache_bytes)),
            uploads,
        })
    }

    /// The key of `path` in this storage.
    fn key(&self, path: &Path) -> Result<Key> {
        let (root, key) = split_url(path)?;
        if root != self.root {
            return Err(Error::invalid_argument(format!("not in {}", self.root)).in_file(path));
        }
        Key::parse(key).map_err(|e| Error::invalid_argument(format!("not a valid object key: {e}")).in_file(path))
    }

    /// What a HEAD of `path` says (or said less than the maximum age ago); None when there is no such object.
    fn head(&self, key: &Key, path: &Path) -> Result<Option<ObjectMeta>> {
        if let Some(meta) = self.stats.get(key.as_ref()) {
            return Ok(Some(meta));
        }
        match block_on(self.store.head(key)) {
            Ok(meta) => {
                self.stats.insert(key.as_ref(), meta.clone());
                Ok(Some(meta))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(e, path)),
        }
    }

    /// `path` opened for range reads.
    fn open_object(&self, path: &Path) -> Result<ObjectFile> {
        let key = self.key(path)?;
        let missing = || Error::new(ErrorKind::NotFound, "no such object (or bucket)").in_file(path);
        let meta = self.head(&key, path)?.ok_or_else(missing)?;
        // The version blocks are kept under: a replaced object is another version.
        let version = meta.e_tag.clone().or(meta.version.clone()).unwrap_or_else(|| {
            let modified = meta.last_modified.timestamp_nanos_opt().unwrap_or_default();
            format!("{} bytes at {modified}", meta.size)
        });
        Ok(ObjectFile {
            store: Arc::clone(&self.store),
            key,
            path: path.to_path_buf(),
            size: meta.size,
            concurrency: self.concurrency,
            e_tag: meta.e_tag,
            version,
            blocks: Arc::clone(&self.blocks),
        })
    }

    fn read_only(&self, path: &Path) -> Result<()> {
        if self.http {
            return Err(Error::unimplemented("HTTP servers are read-only: write to an object store").in_file(path));
        }
        Ok(())
    }
}

/// The error of a request about `path` (a URL).
fn store_error(err: object_store::Error, path: impl AsRef<Path>) -> Error {
    use object_store::Error as E;
    let (kind, message) = match &err {
        E::NotFound { .. } => (ErrorKind::NotFound, "no such object (or bucket)".to_owned()),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => (ErrorKind::PermissionDenied, err.to_string()),
        E::AlreadyExists { .. } | E::Precondition { .. } => (ErrorKind::Aborted, err.to_string()),
        E::NotSupported { .. } | E::NotImplemented { .. } => (ErrorKind::Unimplemented, err.to_string()),
        E::InvalidPath { .. } | E::UnknownConfigurationKey { .. } => (ErrorKind::InvalidArgument, err.to_string()),
        // Some requests (S3's listing) report a missing bucket or refused credentials only in their status.
        E::Generic { .. } if http_status(&err) == Some(404) => {
            (ErrorKind::NotFound, "no such object (or bucket)".to_owned())
        }
        E::Generic { .. } if http_status(&err) == Some(403) => (ErrorKind::PermissionDenied, err.to_string()),
        E::Generic { .. } if http_status(&err) == Some(416) => {
            (ErrorKind::DataLoss, "the object ends before the bytes asked for (truncated or replaced?)".to_owned())
        }
        // A request the store refused (client errors are not retried): not a store that is unavailable.
        E::Generic { .. } if http_status(&err).is_some_and(|status| (400..500).contains(&status) && status != 429) => {
            (ErrorKind::Io, format!("the store refused the request: {err}"))
        }
        // What is left failed after the retries: the network, the server, a timeout.
        _ => (ErrorKind::Unavailable, with_causes(&err)),
    };
    Error::new(kind, message).in_file(path.as_ref())
}

/// `err`'s message followed by those of its causes that it does not repeat: a failed request says only "error
/// sending request", its causes why (a certificate no trusted authority signed, a refused connection).
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut cause = err.source();
    while let Some(error) = cause {
        let text = error.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        cause = error.source();
    }
    message
}

/// The HTTP status a failed request's error reports (`object_store` keeps it only in its message).
fn http_status(err: &object_store::Error) -> Option<u16> {
    let message = err.to_string();
    let (_, after) = message.split_once("status code: ").or_else(|| message.split_once("status "))?;
    after.get(..3)?.parse().ok()
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

impl Storage for ObjectStorage {
    fn open(&self, path: &Path) -> Result<Arc<dyn ReadFile>> {
        Ok(Arc::new(self.open_object(path)?))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        if self.blocks.enabled() {
            // Small files (an index, a state file) are read through the blocks, kept for the next open.
            let file = self.open_object(path)?;
            if file.served_by_blocks(0, file.size as usize) {
                let mut bytes = vec![0; file.size as usize];
                file.read_blocks(0, &mut bytes)?;
                return Ok(bytes);
            }
        }
        let key = self.key(path)?;
        let bytes = block_on(async { self.store.get(&key).await?.bytes().await }).map_err(|e| store_error(e, path))?;
        Ok(bytes.to_vec())
    }

    fn kind(&self, path: &Path) -> Result<Option<FileKind>> {
        let key = self.key(path)?;
        if key.as_ref().is_empty() {
            return Ok(Some(FileKind::Directory));
        }
        match self.head(&key, path)? {
            Some(_) => return Ok(Some(FileKind::File)),
            None if self.http => return Ok(None),
            None => {}
        }
        let listed = block_on(self.store.list_with_delimiter(Some(&key))).map_err(|e| store_error(e, path))?;
        let empty = listed.objects.is_empty() && listed.common_prefixes.is_empty();
        Ok((!empty).then_some(FileKind::Directory))
    }

    fn modified(&self, path: &Path) -> Result<Option<SystemTime>> {
        let key = self.key(path)?;
        Ok(self.head(&key, path)?.map(|meta| meta.last_modified.into()))
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>> {
        if self.http {
            return Ok(Vec::new()); // HTTP servers have no listing to ask for
        }
        let key = self.key(dir)?;
        let prefix = (!key.as_ref().is_empty()).then_some(&key);
        let listed = block_on(self.store.list_with_delimiter(prefix)).map_err(|e| store_error(e, dir))?;
        let objects = listed.objects.into_iter().map(|meta| meta.location);
        let mut names: Vec<String> =
            objects.chain(listed.common_prefixes).filter_map(|k| k.filename().map(str::to_owned)).collect();
        names.sort();
        Ok(names)
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WriteFile>> {
        self.read_only(path)?;
        Ok(Box::new(ObjectWriteFile {
            store: Arc::clone(&self.store),
            stats: Arc::clone(&self.stats),
            key: self.key(path)?,
            path: path.to_path_buf(),
            buffer: Vec::new(),
            upload: None,
        }))
    }

    fn write(&self, path: &Path, data: &[u8], _durable: bool) -> Result<()> {
        self.read_only(path)?;
        let key = self.key(path)?;
        let payload = PutPayload::from(data.to_vec());
        self.stats.forget(key.as_ref());
        block_on(self.store.put(&key, payload)).map_err(|e| store_error(e, path))?;
        Ok(())
    }

    fn read_versioned(&self, path: &Path) -> Result<(Vec<u8>, Option<String>)> {
        let key = self.key(path)?;
        let (bytes, e_tag, version) = block_on(async {
            let got = self.store.get(&key).await?;
            let (e_tag, version) = (got.meta.e_tag.clone(), got.meta.version.clone());
            Ok::<_, object_store::Error>((got.bytes().await?, e_tag, version))
        })
        .map_err(|e| store_error(e, path))?;
        Ok((bytes.to_vec(), version_token(e_tag, version)))
    }

    fn write_if(&self, path: &Path, data: &[u8], _durable: bool, expected: Expected<'_>) -> Result<Option<String>> {
        self.read_only(path)?;
        let key = self.key(path)?;
        let mode = match expected {
            Expected::Absent => PutMode::Create,
            Expected::Version(token) => {
                let (e_tag, version) = token.split_once('\n').unwrap_or((token, ""));
                let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
                PutMode::Update(UpdateVersion { e_tag: some(e_tag), version: some(version) })
            }
        };
        let options = PutOptions { mode, ..Default::default() };
        self.stats.forget(key.as_ref());
        let written = block_on(self.store.put_opts(&key, PutPayload::from(data.to_vec()), options));
        let written = written.map_err(|e| match e {
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
                Error::new(ErrorKind::Aborted, "another writer replaced this file since it was read").in_file(path)
            }
            e => store_error(e, path),
        })?;
        Ok(version_token(written.e_tag, written.version))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.read_only(from)?;
        let (from_key, to_key) = (self.key(from)?, self.key(to)?);
        self.stats.forget(from_key.as_ref());
        self.stats.forget(to_key.as_ref());
        block_on(self.store.rename(&from_key, &to_key)).map_err(|e| store_error(e, from))
    }

    fn delete(&self, path: &Path) -> Result<()> {
        self.read_only(path)?;
        let key = self.key(path)?;
        self.stats.forget(key.as_ref());
        match block_on(self.store.delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e, path)),
        }
    }

    fn uploads(&self, prefix: &Path) -> Result<Vec<(PathBuf, String)>> {
        let Some(uploads) = &self.uploads else { return Ok(Vec::new()) };
        let key = self.key(prefix)?;
        let listed = block_on(uploads.list(key.as_ref())).map_err(|e| e.in_file(prefix))?.unwrap_or_default();
        Ok(listed
            .into_iter()
            .map(|upload| (PathBuf::from(format!("{}/{}", self.root, upload.key)), upload.id))
            .collect())
    }

    fn abort_upload(&self, path: &Path, id: &str) -> Result<()> {
        let Some(uploads) = &self.uploads else {
            return Err(Error::unimplemented("this store's uploads are not aborted by fastckpt").in_file(path));
        };
        let upload = Upload { key: self.key(path)?.to_string(), id: id.to_owned() };
        block_on(uploads.abort(&upload)).map_err(|e| store_error(e, path))
    }
}

/// The version token of an object: its ETag and version, one per line.
fn version_token(e_tag: Option<String>, version: Option<String>) -> Option<String> {
    (e_tag.is_some() || version.is_some())
        .then(|| format!("{}\n{}", e_tag.unwrap_or_default(), version.unwrap_or_default()))
}

/// An object opened for range reads; its size is that of open.
#[derive(Debug)]
struct ObjectFile {
    store: Arc<dyn ObjectStore>,
    key: Key,
    path: PathBuf,
    size: u64,
    concurrency: usize,
    /// Its ETag as opened: block requests ask for this version only.
    e_tag: Option<String>,
    /// Its version as opened, which names its blocks.
    version: String,
    blocks: Arc<BlockCache>,
}

/// One range request, and where its bytes go: destinations sorted by offset, inside `range`.
struct Request<'a> {
    range: std::ops::Range<u64>,
    targets: Vec<Target<'a>>,
}

/// Where part of a response goes: piece `piece` of the ranges asked for, at `offset` in the object.
struct Target<'a> {
    offset: u64,
    buf: &'a mut [u8],
    piece: usize,
}

/// The requests that read `ranges`: each cut into pieces of at most [`PIECE`], and neighbours closer than
/// [`COALESCE_GAP`] joined while the request stays within [`PIECE`]. Also, for each piece in the order of
/// `ranges`, the range it belongs to and its length.
fn plan(ranges: Vec<(u64, &mut [u8])>) -> (Vec<Request<'_>>, Vec<(usize, usize)>) {
    let mut pieces: Vec<Target> = Vec::new();
    let mut owners = Vec::new();
    for (range, (offset, buf)) in ranges.into_iter().enumerate() {
        let mut at = offset;
        for buf in buf.chunks_mut(PIECE as usize) {
            let len = buf.len();
            pieces.push(Target { offset: at, buf, piece: owners.len() });
            owners.push((range, len));
            at += len as u64;
        }
    }
    pieces.sort_by_key(|target| target.offset);
    let mut requests: Vec<Request> = Vec::new();
    for target in pieces {
        let (offset, end) = (target.offset, target.offset + target.buf.len() as u64);
        if let Some(last) = requests.last_mut() {
            if offset >= last.range.end && offset - last.range.end <= COALESCE_GAP && end - last.range.start <= PIECE {
                last.range.end = end;
                last.targets.push(target);
                continue;
            }
        }
        requests.push(Request { range: offset..end, targets: vec![target] });
    }
    (requests, owners)
}

impl ObjectFile {
    /// Fetches one request, copying each part of the response into its destinations as it arrives (and, with
    /// `checksums`, checksumming it there while in cache). Returns each destination's piece and CRC32C.
    async fn fetch(&self, request: Request<'_>, checksums: bool) -> Result<Vec<(usize, u32)>> {
        let Request { range, mut targets } = request;
        let options = GetOptions { range: Some(GetRange::Bounded(range.clone())), ..Default::default() };
        let fail = |e| store_error(e, &self.path);
        let mut stream = self.store.get_opts(&self.key, options).await.map_err(fail)?.into_stream();
        let mut crcs = vec![0; targets.len()];
        let mut at = range.start;
        let mut next = 0;
        while let Some(chunk) = stream.try_next().await.map_err(fail)? {
            let (chunk_start, chunk_end) = (at, at + chunk.len() as u64);
            while next < targets.len() {
                let target = &mut targets[next];
                let (start, end) = (target.offset, target.offset + target.buf.len() as u64);
                if start >= chunk_end {
                    break;
                }
                let (from, to) = (start.max(chunk_start), end.min(chunk_end));
                if from < to {
                    let dst = &mut target.buf[(from - start) as usize..(to - start) as usize];
                    dst.copy_from_slice(&chunk[(from - chunk_start) as usize..(to - chunk_start) as usize]);
                    if checksums {
                        crcs[next] = checksum::extend(crcs[next], dst);
                    }
                }
                if end > chunk_end {
                    break;
                }
                next += 1;
            }
            at = chunk_end;
        }
        if at != range.end {
            let message = format!("the object ended at byte {at}, not {} (truncated or replaced?)", range.end);
            return Err(Error::data_loss(message).in_file(&self.path));
        }
        Ok(targets.iter().map(|target| target.piece).zip(crcs).collect())
    }

    /// Whether a read alone of `len` bytes at `offset` is served from blocks: a small one (a batch of reads, or
    /// a large one, is fetched as asked).
    fn served_by_blocks(&self, offset: u64, len: usize) -> bool {
        self.blocks.enabled() && len > 0 && len as u64 <= SMALL_READ && offset.saturating_add(len as u64) <= self.size
    }

    /// The name of block `index` of this object's version.
    fn block_id(&self, index: u64) -> BlockId {
        (self.key.to_string(), self.version.clone(), index)
    }

    /// The block `index` of this object's version, if it is kept.
    fn block(&self, index: u64) -> Option<bytes::Bytes> {
        self.blocks.get(&self.block_id(index))
    }

    /// Fills `buf` with the bytes at `offset` from the blocks that hold them, fetching the window of blocks
    /// from the first not kept yet, and keeping them.
    fn read_blocks(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset + buf.len() as u64;
        let mut blocks: Vec<(u64, bytes::Bytes)> = Vec::new();
        let mut missing = Vec::new();
        for index in offset / BLOCK..end.div_ceil(BLOCK) {
            match self.block(index) {
                Some(bytes) => blocks.push((index, bytes)),
                None => missing.push(index),
            }
        }
        if let (Some(&first), Some(&last)) = (missing.first(), missing.last()) {
            let count = self.size.div_ceil(BLOCK);
            let window = self.blocks.window(self.key.as_ref(), &self.version, first..last + 1, count);
            let fetched = block_on(self.fetch_window(window.clone()))?;
            for (index, bytes) in window.zip(fetched) {
                self.blocks.insert(self.block_id(index), bytes.clone());
                if index <= last {
                    blocks.push((index, bytes));
                }
            }
        }
        copy_from_blocks(offset, buf, &blocks);
        Ok(())
    }

    /// Reads one range alone: a small one from blocks, a large one around them. With `checksums`, returns its
    /// CRC32C (else 0).
    fn read_alone(&self, offset: u64, buf: &mut [u8], checksums: bool) -> Result<u32> {
        if self.served_by_blocks(offset, buf.len()) {
            self.read_blocks(offset, buf)?;
            return Ok(if checksums { checksum::extend(0, buf) } else { 0 });
        }
        self.read_around_blocks(offset, buf, checksums)
    }

    /// Reads one range too large to be served from blocks: what the blocks kept hold of its start and of its
    /// end is copied from them (a loop's read-ahead often holds the start of the large tensor it reaches), the
    /// rest fetched as asked. With `checksums`, returns the range's CRC32C.
    fn read_around_blocks(&self, offset: u64, buf: &mut [u8], checksums: bool) -> Result<u32> {
        let end = offset + buf.len() as u64;
        if !self.blocks.enabled() || end > self.size {
            return Ok(self.fetch_all(vec![(offset, buf)], checksums)?[0]);
        }
        let mut head = Vec::new();
        let mut index = offset / BLOCK;
        while index * BLOCK < end {
            let Some(bytes) = self.block(index) else { break };
            head.push((index, bytes));
            index += 1;
        }
        let head_end = (index * BLOCK).clamp(offset, end);
        let mut tail = Vec::new();
        let mut tail_start = end;
        for index in (head_end / BLOCK..end.div_ceil(BLOCK)).rev() {
            let Some(bytes) = self.block(index) else { break };
            tail.push((index, bytes));
            tail_start = (index * BLOCK).max(head_end);
        }
        let (head_buf, rest) = buf.split_at_mut((head_end - offset) as usize);
        let (middle, tail_buf) = rest.split_at_mut((tail_start - head_end) as usize);
        copy_from_blocks(offset, head_buf, &head);
        copy_from_blocks(tail_start, tail_buf, &tail);
        let middle_len = middle.len();
        let middle_crc = if middle.is_empty() { 0 } else { self.fetch_all(vec![(head_end, middle)], checksums)?[0] };
        self.blocks.read_ended(self.key.as_ref(), &self.version, end);
        if !checksums {
            return Ok(0);
        }
        let crc = checksum::combine(checksum::extend(0, head_buf), middle_crc, middle_len);
        Ok(checksum::combine(crc, checksum::extend(0, tail_buf), tail_buf.len()))
    }

    /// Blocks `indices` of the object, in concurrent requests of [`ONE_REQUEST`] blocks.
    async fn fetch_window(&self, indices: std::ops::Range<u64>) -> Result<Vec<bytes::Bytes>> {
        let requests =
            indices.clone().step_by(ONE_REQUEST as usize).map(|start| start..(start + ONE_REQUEST).min(indices.end));
        let fetches = futures::stream::iter(requests.map(|blocks| self.fetch_blocks(blocks)));
        let fetched: Vec<Vec<bytes::Bytes>> = fetches.buffered(self.concurrency).try_collect().await?;
        Ok(fetched.into_iter().flatten().collect())
    }

    /// Blocks `indices` of the object, of the version opened, in one request: a replaced object is an error,
    /// never mixed in. Each block is a copy of its own, so that dropping one frees it.
    async fn fetch_blocks(&self, indices: std::ops::Range<u64>) -> Result<Vec<bytes::Bytes>> {
        let range = indices.start * BLOCK..(indices.end * BLOCK).min(self.size);
        let options = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            if_match: self.e_tag.clone(),
            ..Default::default()
        };
        let fail = |e| match e {
            // What the reader found at open (an index's offsets into this file) no longer holds.
            object_store::Error::Precondition { .. } => {
                let message = "the object changed since it was opened (replaced or truncated)";
                Error::data_loss(message).in_file(&self.path)
            }
            e => store_error(e, &self.path),
        };
        let bytes = async { self.store.get_opts(&self.key, options).await?.bytes().await }.await.map_err(fail)?;
        if bytes.len() as u64 != range.end - range.start {
            let got = range.start + bytes.len() as u64;
            let message = format!("the object ended at byte {got}, not {} (truncated or replaced?)", range.end);
            return Err(Error::data_loss(message).in_file(&self.path));
        }
        Ok(bytes.chunks(BLOCK as usize).map(bytes::Bytes::copy_from_slice).collect())
    }

    /// Reads `ranges` by concurrent requests; with `checksums`, returns the CRC32C of each range, combined
    /// from those of its pieces.
    fn fetch_all(&self, ranges: Vec<(u64, &mut [u8])>, checksums: bool) -> Result<Vec<u32>> {
        // An empty range has no piece, no request and the checksum 0.
        let count = ranges.len();
        if let Some((offset, buf)) =
            ranges.iter().find(|(o, b)| !b.is_empty() && o.saturating_add(b.len() as u64) > self.size)
        {
            let message = format!("bytes [{offset}, +{}) lie past the end of the {}-byte object", buf.len(), self.size);
            return Err(Error::data_loss(message).in_file(&self.path));
        }
        let (requests, owners) = plan(ranges);
        let fetched = block_on(async {
            let fetches = futures::stream::iter(requests.into_iter().map(|request| self.fetch(request, checksums)));
            fetches.buffer_unordered(self.concurrency).try_collect::<Vec<_>>().await
        })?;
        let mut piece_crcs = vec![0; owners.len()];
        for (piece, crc) in fetched.into_iter().flatten() {
            piece_crcs[piece] = crc;
        }
        let mut crcs = vec![0; count];
        for ((range, len), crc) in owners.into_iter().zip(piece_crcs) {
            crcs[range] = checksum::combine(crcs[range], crc, len);
        }
        Ok(crcs)
    }
}

/// Copies into `buf`, the bytes at `offset`, what `blocks` (indices and bytes) hold of them.
fn copy_from_blocks(offset: u64, buf: &mut [u8], blocks: &[(u64, bytes::Bytes)]) {
    let end = offset + buf.len() as u64;
    for (index, bytes) in blocks {
        let block_start = index * BLOCK;
        let (from, to) = (offset.max(block_start), end.min(block_start + bytes.len() as u64));
        if from < to {
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&bytes[(from - block_start) as usize..(to - block_start) as usize]);
        }
    }
}

impl ReadFile for ObjectFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.read_ranges(vec![(offset, buf)])
    }

    fn read_ranges(&self, ranges: Vec<(u64, &mut [u8])>) -> Result<()> {
        match <[_; 1]>::try_from(ranges) {
            Ok([(offset, buf)]) => self.read_alone(offset, buf, false).map(drop),
            Err(ranges) => self.fetch_all(ranges, false).map(drop),
        }
    }

    fn read_ranges_checksummed(&self, ranges: Vec<(u64, &mut [u8])>) -> Result<Vec<u32>> {
        match <[_; 1]>::try_from(ranges) {
            Ok([(offset, buf)]) => Ok(vec![self.read_alone(offset, buf, true)?]),
            Err(ranges) => self.fetch_all(ranges, true),
        }
    }

    fn mapped(&self) -> Option<&[u8]> {
        None
    }

    fn expect_whole_reads(&self, ranges: &[std::ops::Range<u64>]) {
        let mut large: Vec<_> =
            ranges.iter().filter(|range| range.end.saturating_sub(range.start) > SMALL_READ).cloned().collect();
        large.sort_unstable_by_key(|range| range.start);
        self.blocks.set_large_reads(self.key.as_ref(), &self.version, large);
    }
}

/// An object being written: kept in memory until it outgrows one part, then uploaded in parts.
struct ObjectWriteFile {
    store: Arc<dyn ObjectStore>,
    /// Told when the object changes.
    stats: Arc<StatCache>,
    key: Key,
    path: PathBuf,
    /// What was written before the upload started.
    buffer: Vec<u8>,
    upload: Option<WriteMultipart>,
}

impl ObjectWriteFile {
    fn to_io(err: Error) -> std::io::Error {
        std::io::Error::other(err)
    }
}

impl Write for ObjectWriteFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.upload.is_none() {
            if self.buffer.len() + buf.len() < PART {
                self.buffer.extend_from_slice(buf);
                return Ok(());
            }
            let started = block_on(self.store.put_multipart(&self.key)).map_err(|e| store_error(e, &self.path));
            let mut upload = WriteMultipart::new_with_chunk_size(started.map_err(Self::to_io)?, PART);
            let _runtime = runtime().enter(); // parts are sent by tasks of the runtime
            upload.write(&std::mem::take(&mut self.buffer));
            self.upload = Some(upload);
        }
        let upload = self.upload.as_mut().expect("started above");
        block_on(upload.wait_for_capacity(PARTS_IN_FLIGHT)).map_err(|e| Self::to_io(store_error(e, &self.path)))?;
        let _runtime = runtime().enter();
        upload.write(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl WriteFile for ObjectWriteFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn commit(mut self: Box<Self>, _durable: bool) -> Result<()> {
        self.stats.forget(self.key.as_ref());
        // Object stores make an object durable before they acknowledge it.
        match self.upload.take() {
            None => {
                let payload = PutPayload::from(std::mem::take(&mut self.buffer));
                block_on(self.store.put(&self.key, payload)).map_err(|e| store_error(e, &self.path))?;
            }
            Some(upload) => {
                block_on(upload.finish()).map_err(|e| store_error(e, &self.path))?;
            }
        }
        Ok(())
    }
}

impl Drop for ObjectWriteFile {
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            // Uncommitted: the parts sent so far are discarded, and no object appears.
            let _ = block_on(upload.abort());
        }
    }
}

/// Builds `StorageOptions` from pairs, for tests.
#[cfg(test)]
fn options(pairs: &[(&str, &str)]) -> StorageOptions {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_root_and_key() {
        assert!(is_url(Path::new("s3://bucket/a/b")));
        assert!(is_url(Path::new("GS://bucket")));
        assert!(!is_url(Path::new("/tmp/s3://x")));
        assert!(!is_url(Path::new("model.ckpt")));
        assert_eq!(split_url(Path::new("s3://bucket/a/b.index")).unwrap(), ("s3://bucket", "a/b.index"));
        assert_eq!(split_url(Path::new("s3://bucket")).unwrap(), ("s3://bucket", ""));
        assert_eq!(split_url(Path::new("https://host:8080/x")).unwrap(), ("https://host:8080", "x"));
        assert!(split_url(Path::new("s3:///key")).is_err());
    }

    #[test]
    fn plans_coalesce_neighbours_and_cut_large_reads() {
        let mut a = [0u8; 10];
        let mut b = [0u8; 10];
        let mut large = vec![0u8; (PIECE * 2 + 1) as usize];
        let (requests, owners) = plan(vec![(100, &mut b[..]), (0, &mut a[..]), (PIECE * 4, &mut large[..])]);
        let ranges: Vec<_> = requests.iter().map(|r| r.range.clone()).collect();
        assert_eq!(ranges, vec![0..110, PIECE * 4..PIECE * 5, PIECE * 5..PIECE * 6, PIECE * 6..PIECE * 6 + 1]);
        assert_eq!(requests[0].targets.iter().map(|t| t.piece).collect::<Vec<_>>(), vec![1, 0]);
        let piece = PIECE as usize;
        assert_eq!(owners, vec![(0, 10), (1, 10), (2, piece), (2, piece), (2, 1)]);
    }

    #[test]
    fn stores_make_each_bucket_once() {
        let stores = crate::storage::Stores::new(options(&[("aws_region", "us-east-1")]));
        let (a, key_a) = stores.resolve(Path::new("s3://bucket/a/model.ckpt.index")).unwrap();
        let (b, _) = stores.resolve(Path::new("s3://bucket/b/checkpoint")).unwrap();
        let (other, _) = stores.resolve(Path::new("s3://other/checkpoint")).unwrap();
        assert!(Arc::ptr_eq(&a, &b) && !Arc::ptr_eq(&a, &other));
        assert_eq!(key_a, Path::new("s3://bucket/a/model.ckpt.index"));
        let (_, local) = stores.resolve(Path::new("file:///tmp/model.ckpt")).unwrap();
        assert_eq!(local, Path::new("/tmp/model.ckpt"));
        assert!(stores.resolve(Path::new("s3:///key")).is_err());
    }

    #[test]
    fn refused_requests_are_not_reported_as_an_unavailable_store() {
        let generic = |status: u16| object_store::Error::Generic {
            store: "S3",
            source: format!("Client error with status {status} Bad Request: invalid uploadType").into(),
        };
        assert_eq!(store_error(generic(400), "s3://b/k").kind, ErrorKind::Io);
        assert_eq!(store_error(generic(404), "s3://b/k").kind, ErrorKind::NotFound);
        assert_eq!(store_error(generic(429), "s3://b/k").kind, ErrorKind::Unavailable);
        assert_eq!(store_error(generic(503), "s3://b/k").kind, ErrorKind::Unavailable);
    }

    #[test]
    fn every_clouds_https_client_builds_on_ring() {
        let stores: [(&str, &[(&str, &str)]); 4] = [
            ("s3://bucket", &[("aws_region", "us-east-1")]),
            ("gs://bucket", &[]),
            ("az://container", &[("azure_storage_account_name", "account")]),
            ("https://example.com", &[]),
        ];
        for (root, pairs) in stores {
            ObjectStorage::new(root, &options(pairs)).unwrap_or_else(|e| panic!("{root}: {e}"));
        }
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[test]
    fn failed_requests_say_why() {
        /// What reqwest reports: a message that leaves the reason to its cause.
        #[derive(Debug)]
        struct Sending(std::io::Error);
        impl std::fmt::Display for Sending {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request")
            }
        }
        impl std::error::Error for Sending {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "tcp connect error");
        let err = object_store::Error::Generic { store: "S3", source: Box::new(Sending(refused)) };
        let err = store_error(err, "s3://b/k");
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert_eq!(err.message, "Generic S3 error: error sending request: tcp connect error");
    }

    #[test]
    fn unknown_options_are_refused() {
        let err = ObjectStorage::new("s3://bucket", &options(&[("no_such_option", "1")])).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument, "{err}");
        let err = ObjectStorage::new("s3://bucket", &options(&[("concurrency", "0")])).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument, "{err}");
    }
}
