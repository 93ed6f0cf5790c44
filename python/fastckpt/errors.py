"""Exceptions raised by fastckpt, named after TensorFlow's ``tf.errors``.

Every error says which file (and, where one is concerned, which tensor) it is about::

    try:
        reader.get_tensor("embedding")
    except fastckpt.errors.DataLossError as err:
        print(err.filename, err.tensor_name)
"""

from __future__ import annotations

from typing import Optional

__all__ = [
    "OpError",
    "NotFoundError",
    "DataLossError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "UnimplementedError",
    "PermissionDeniedError",
    "UnavailableError",
    "AbortedError",
    "NotACheckpointError",
    "InvalidCheckpointStateError",
    "MissingFileError",
    "UnparsableFileError",
    "MetaGraphNotFoundError",
    "BuilderMisuseError",
    "MissingDependencyError",
]


class OpError(Exception):
    """Base class of fastckpt's errors.

    Attributes:
        message: what went wrong, including the file and tensor.
        filename: the file concerned, if any.
        tensor_name: the tensor concerned, if any.
    """

    def __init__(self, message: str, filename: Optional[str] = None, tensor_name: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.tensor_name = tensor_name

    def __reduce__(self):
        return (type(self), (self.message, self.filename, self.tensor_name))


class NotFoundError(OpError):
    """A file or a tensor does not exist."""


class DataLossError(OpError):
    """A file is corrupt or truncated: a checksum mismatch, an entry pointing outside its file, bad framing."""


class InvalidArgumentError(OpError, ValueError):
    """A request that cannot be served: a slice outside the tensor, a dtype that does not fit, nothing to
    save. Also a ``ValueError``, which TensorFlow raises for several of these (``Saver`` with no variables)."""


class InvalidTypeError(InvalidArgumentError, TypeError):
    """A value of a type that cannot be what was asked for (a dict as an element of a string tensor): also a
    ``TypeError``, which Python raises for these."""


class UnimplementedError(OpError):
    """The file uses a feature fastckpt does not read (variant tensors, a newer format version), or the
    storage cannot do what was asked (writing to an ``https://`` server)."""


class PermissionDeniedError(OpError):
    """An object store refused the credentials, or access with them."""


class UnavailableError(OpError):
    """An object store could not be reached, or kept failing, after retries with backoff; or a request
    timed out."""


class AbortedError(OpError):
    """Another writer changed a file while this one was replacing it (a conditional write failed)."""


# Where TensorFlow raises ValueError rather than an OpError, fastckpt's error is both, so that code written for
# TensorFlow (``except ValueError``) keeps catching it.


class NotACheckpointError(NotFoundError, ValueError):
    """No usable checkpoint where one was asked for: ``Saver.restore`` of a path that is no checkpoint
    (TensorFlow: "The passed save_path is not a valid checkpoint"), ``load_checkpoint`` of a directory
    without one."""


class InvalidCheckpointStateError(DataLossError, ValueError):
    """A ``checkpoint`` state file that names no checkpoint (empty, or without ``model_checkpoint_path``)."""


# Graph files and SavedModels: where TensorFlow's loader, builder or import_meta_graph raises OSError, RuntimeError
# or AssertionError, fastckpt's error is that too. OSError's own str() shows an errno and the filename instead of
# the message, so the OSError ones keep Exception's.


class MissingFileError(NotFoundError, FileNotFoundError):
    """A file asked for does not exist: a ``.meta`` or GraphDef file (TensorFlow: OSError "File does not exist"),
    a SavedModel directory without ``saved_model.pb`` or ``.pbtxt`` ("SavedModel file does not exist at"). Also
    an ``OSError`` (a ``FileNotFoundError``), as TensorFlow raises."""

    __str__ = BaseException.__str__


class UnparsableFileError(DataLossError, OSError):
    """A file that does not parse as the message it holds: a ``.meta`` neither a binary nor a text
    MetaGraphDef, a ``saved_model.pb`` or ``.pbtxt`` no SavedModel (TensorFlow: OSError "Cannot parse file")."""

    __str__ = BaseException.__str__


class MetaGraphNotFoundError(NotFoundError, RuntimeError):
    """No meta graph of a SavedModel has the tags asked for (TensorFlow: RuntimeError "MetaGraphDef associated
    with tags ... could not be found in SavedModel")."""


class BuilderMisuseError(InvalidArgumentError, AssertionError):
    """A SavedModel Builder call that TensorFlow's builder refuses with an AssertionError: ``add_meta_graph``
    before ``add_meta_graph_and_variables``, the variables added twice, an export directory that exists and is
    not empty, a SignatureDef with a TensorInfo without a name or a dtype."""


class MissingDependencyError(OpError, ImportError):
    """What was asked needs a framework that is not installed (torch to write a ``.pt`` file); the message says
    which extra installs it (``pip install 'fastckpt[torch]'``). Also an ``ImportError``, which importing the
    framework raised."""
