"""The optional frameworks (torch, jax, keras), each installed by the extra of its name (``pip install
'fastckpt[torch]'``): ``require`` imports one where it is needed, with an error that says how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

from . import errors

__all__ = ["require"]


def require(framework: str, purpose: str, filename: "str | None" = None) -> ModuleType:
    """The module ``framework``, imported for ``purpose`` (what needs it, as a phrase: ``"writing model.pt, a
    torch state dict,"``); ``filename`` is the file concerned, for the error.

    Raises:
        fastckpt.errors.MissingDependencyError: it cannot be imported; the message names the extra that
            installs it.
    """
    try:
        return importlib.import_module(framework)
    except ImportError as err:
        raise errors.MissingDependencyError(
            f"{purpose} needs {framework}, which cannot be imported ({err}): pip install 'fastckpt[{framework}]'",
            filename,
        ) from err
