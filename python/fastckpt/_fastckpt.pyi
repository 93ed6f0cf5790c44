"""Type stubs of the extension module built from ``rust/fastckpt-python``."""
from os import PathLike
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, PathLike[str]]
# One (start, count, step) per dimension, step >= 1.
_Region = Optional[Sequence[Tuple[int, int, int]]]

class CheckpointFile:
    """An open checkpoint (V2 bundle or V1 file)."""

    @staticmethod
    def open(path: _Path) -> "CheckpointFile": ...
    @staticmethod
    def open_v1(paths: Sequence[_Path]) -> "CheckpointFile": ...
    @property
    def format(self) -> str: ...
    def tensors(self) -> Tuple[List[Union[str, bytes]], List[int], List[Tuple[int, ...]]]: ...
    def read(self, name: bytes, region: _Region = None, verify: bool = True) -> npt.NDArray[np.uint8]: ...
    def read_strings(self, name: bytes, region: _Region = None) -> List[bytes]: ...

def descriptor_set() -> bytes: ...
