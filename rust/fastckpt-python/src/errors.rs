//! Errors: every error of the core raised as the `fastckpt.errors` exception of its kind, with its message,
//! file and tensor.
use fastckpt::{Error, ErrorKind};
use pyo3::prelude::*;

pyo3::import_exception!(fastckpt.errors, OpError);
pyo3::import_exception!(fastckpt.errors, NotFoundError);
pyo3::import_exception!(fastckpt.errors, NotACheckpointError);
pyo3::import_exception!(fastckpt.errors, DataLossError);
pyo3::import_exception!(fastckpt.errors, InvalidArgumentError);
pyo3::import_exception!(fastckpt.errors, UnimplementedError);
pyo3::import_exception!(fastckpt.errors, PermissionDeniedError);
pyo3::import_exception!(fastckpt.errors, UnavailableError);
pyo3::import_exception!(fastckpt.errors, AbortedError);

/// The `fastckpt.errors` exception of the error's kind, with its message, file and tensor: the only
/// exceptions this module raises.
pub(crate) fn to_py_err(_py: Python<'_>, err: Error) -> PyErr {
    let file = err.file.as_ref().map(|f| f.to_string_lossy().into_owned());
    let args = (err.to_string(), file, err.tensor.clone());
    match err.kind {
        ErrorKind::NotFound => NotFoundError::new_err(args),
        ErrorKind::NotACheckpoint => NotACheckpointError::new_err(args),
        ErrorKind::DataLoss => DataLossError::new_err(args),
        ErrorKind::InvalidArgument => InvalidArgumentError::new_err(args),
        ErrorKind::Unimplemented => UnimplementedError::new_err(args),
        ErrorKind::PermissionDenied => PermissionDeniedError::new_err(args),
        ErrorKind::Unavailable => UnavailableError::new_err(args),
        ErrorKind::Aborted => AbortedError::new_err(args),
        ErrorKind::Io => OpError::new_err(args),
    }
}

/// An `InvalidArgumentError` for a request the binding refuses before the core sees it.
pub(crate) fn invalid_argument(message: impl Into<String>) -> PyErr {
    InvalidArgumentError::new_err((message.into(), None::<String>, None::<String>))
}
