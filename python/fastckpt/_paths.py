"""Paths that may be URLs. Local paths go through ``os.path``; the URLs of object stores (``s3://``,
``gs://``, ``https://``, ...: the core decides which are) are already absolute and are compared as written,
since ``os.path`` would fold their ``//``."""

from __future__ import annotations

import os
from typing import Mapping, Union

from . import _fastckpt, errors


def is_absolute(path: str) -> bool:
    return _fastckpt.is_url(path) or os.path.isabs(path)


def absolute(path: str) -> str:
    return path if _fastckpt.is_url(path) else os.path.abspath(path)


def real(path: str) -> str:
    """The path with symbolic links resolved, to tell whether two paths name one file."""
    return path.rstrip("/") if _fastckpt.is_url(path) else os.path.realpath(path)


def normalized(path: str) -> str:
    return path if _fastckpt.is_url(path) else os.path.normpath(path)


def relative(path: str, start: str) -> str:
    """``path`` relative to the directory ``start``; a URL outside ``start`` stays whole."""
    if _fastckpt.is_url(path) or _fastckpt.is_url(start):
        inside = start.rstrip("/") + "/"
        return path[len(inside) :] if path.startswith(inside) else path
    return os.path.relpath(path, start)


def stores(options: "Union[None, Mapping[str, str], _fastckpt.Stores]") -> "_fastckpt.Stores":
    """The storages of a user's ``storage_options``, made once per reader, writer, Saver or conversion and passed
    to everything that touches its files: a mapping of option names to strings (values ``str()``'d, booleans as
    ``"true"``/``"false"``), None for the environment's configuration alone, or ``Stores`` already made (passed
    on as they are)."""
    if isinstance(options, _fastckpt.Stores):
        return options
    if options is None:
        return _fastckpt.Stores()
    if not isinstance(options, Mapping):
        raise errors.InvalidArgumentError(
            f"storage_options must be a mapping of option names to strings, not {type(options).__name__}"
        )
    return _fastckpt.Stores(
        {str(key): str(value).lower() if isinstance(value, bool) else str(value) for key, value in options.items()}
    )
