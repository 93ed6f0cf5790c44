//! Errors of the core: every error says what went wrong, and in which file and tensor.
use std::fmt;
use std::path::{Path, PathBuf};

/// What kind of failure an [`Error`] is; the Python layer maps each kind to an exception class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A file or a tensor does not exist.
    NotFound,
    /// Nothing at a path is a checkpoint: it does not exist, or is a file of something else (the message
    /// says what). A kind of [`ErrorKind::NotFound`] that Python also raises as a `ValueError`, as
    /// TensorFlow does there.
    NotACheckpoint,
    /// The bytes on disk are corrupt, truncated or inconsistent.
    DataLoss,
    /// The caller asked for something that cannot be done (a bad slice, a wrong dtype).
    InvalidArgument,
    /// The file uses a feature this library does not read, or the storage cannot do what was asked.
    Unimplemented,
    /// The storage refused the credentials, or access with them.
    PermissionDenied,
    /// The storage could not be reached, or failed, after retries; or a request timed out.
    Unavailable,
    /// Another writer changed what this one was replacing (a conditional write failed).
    Aborted,
    /// The operating system refused an operation for another reason.
    Io,
}

/// An error with the file and tensor it concerns.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    /// What kind of failure this is, which decides the Python exception class.
    pub kind: ErrorKind,
    /// What went wrong, without the file and tensor: `Display` appends those.
    pub message: String,
    /// The file the error concerns; the innermost one named wins (see [`Error::in_file`]).
    pub file: Option<PathBuf>,
    /// The tensor the error concerns, its stored name decoded as UTF-8 (lossily); the innermost one wins.
    pub tensor: Option<String>,
    /// The operating system's error, for the errors made by [`Error::io`].
    #[source]
    pub source: Option<std::io::Error>,
}

/// The result of every fallible operation of the core.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind`, naming no file or tensor yet.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), file: None, tensor: None, source: None }
    }

    /// A missing file or tensor ([`ErrorKind::NotFound`]); a missing tensor has [`Error::tensor_not_found`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Nothing at a path is a checkpoint; see [`ErrorKind::NotACheckpoint`].
    pub fn not_a_checkpoint(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotACheckpoint, message)
    }

    /// The one error for a tensor that is not in a checkpoint, in TensorFlow's words (its tests match them).
    pub fn tensor_not_found(key: &[u8]) -> Self {
        Self::not_found(format!("Key {} not found in checkpoint", String::from_utf8_lossy(key))).for_key(key)
    }

    /// Corrupt, truncated or inconsistent stored bytes ([`ErrorKind::DataLoss`]).
    pub fn data_loss(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::DataLoss, message)
    }

    /// A request that cannot be met, whatever the file holds ([`ErrorKind::InvalidArgument`]).
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// A stored feature this library does not read ([`ErrorKind::Unimplemented`]).
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unimplemented, message)
    }

    /// An I/O error on `path`; a missing file becomes [`ErrorKind::NotFound`], and a read past the end of a
    /// file (a truncated one) [`ErrorKind::DataLoss`].
    pub fn io(err: std::io::Error, path: &Path) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::UnexpectedEof => ErrorKind::DataLoss,
            _ => ErrorKind::Io,
        };
        Error { kind, message: err.to_string(), file: Some(path.to_path_buf()), tensor: None, source: Some(err) }
    }

    /// Names the file, unless a more precise one is named already.
    pub fn in_file(mut self, path: &Path) -> Self {
        if self.file.is_none() {
            self.file = Some(path.to_path_buf());
        }
        self
    }

    /// Names the tensor, unless one is named already.
    pub fn for_tensor(mut self, name: &str) -> Self {
        if self.tensor.is_none() {
            self.tensor = Some(name.to_owned());
        }
        self
    }

    /// `for_tensor` with the name as stored (bytes, decoded for the message).
    pub fn for_key(self, key: &[u8]) -> Self {
        self.for_tensor(&String::from_utf8_lossy(key))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (&self.tensor, &self.file) {
            (Some(tensor), Some(file)) => write!(f, " (tensor {tensor:?} in {})", file.display()),
            (Some(tensor), None) => write!(f, " (tensor {tensor:?})"),
            (None, Some(file)) => write!(f, " (in {})", file.display()),
            (None, None) => Ok(()),
        }
    }
}

/// Adds file and tensor context to the error of a `Result`.
pub trait ResultExt<T> {
    /// [`Error::in_file`] on an error; an `Ok` passes through.
    fn in_file(self, path: &Path) -> Result<T>;
    /// [`Error::for_tensor`] on an error; an `Ok` passes through.
    fn for_tensor(self, name: &str) -> Result<T>;
    /// `for_tensor` with the name as stored, decoded only on error.
    fn for_key(self, key: &[u8]) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn in_file(self, path: &Path) -> Result<T> {
        self.map_err(|e| e.in_file(path))
    }

    fn for_tensor(self, name: &str) -> Result<T> {
        self.map_err(|e| e.for_tensor(name))
    }

    fn for_key(self, key: &[u8]) -> Result<T> {
        self.map_err(|e| e.for_key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_file_and_tensor() {
        let err = Error::data_loss("checksum mismatch").for_tensor("v1").in_file(Path::new("/m/ckpt.data"));
        assert_eq!(err.to_string(), "checksum mismatch (tensor \"v1\" in /m/ckpt.data)");
        // The innermost context wins.
        let err = err.for_tensor("outer").in_file(Path::new("/other"));
        assert_eq!(err.tensor.as_deref(), Some("v1"));
        assert_eq!(err.file.as_deref(), Some(Path::new("/m/ckpt.data")));
    }

    #[test]
    fn missing_file_is_not_found() {
        let err = Error::io(std::io::Error::from(std::io::ErrorKind::NotFound), Path::new("x"));
        assert_eq!(err.kind, ErrorKind::NotFound);
    }
}
