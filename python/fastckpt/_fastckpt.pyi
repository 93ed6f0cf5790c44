"""Type stubs of the extension module built from ``rust/fastckpt-python``."""

from os import PathLike
from typing import Dict, List, Optional, Sequence, Tuple, Union, final

import numpy as np
import numpy.typing as npt

__version__: str

__all__ = [
    "BundleFileWriter",
    "CheckpointFile",
    "MappedOwner",
    "decode_tensor_proto",
    "delete_file",
    "modified_time",
    "read_file_versioned",
    "write_file_if",
    "is_url",
    "descriptor_set",
    "dtype_table",
    "file_kind",
    "leftover_writer",
    "list_directory",
    "locate_checkpoint",
    "merge_checkpoints",
    "read_file",
    "write_file",
    "__version__",
]

_Path = Union[str, PathLike[str]]
# One (start, count, step) per dimension, step >= 1.
_Region = Optional[Sequence[Tuple[int, int, int]]]
# A tensor's bytes as a flat uint8 array, or the elements of a string tensor.
_Data = Union[npt.NDArray[np.uint8], List[bytes]]

@final
class CheckpointFile:
    """An open checkpoint (V2 bundle or V1 file)."""

    @staticmethod
    def open(path: _Path, storage_options: Optional[Dict[str, str]] = None) -> "CheckpointFile": ...
    @property
    def path(self) -> str: ...
    @property
    def format(self) -> str: ...
    def tensors(self) -> Tuple[List[str], List[int], List[Tuple[int, ...]]]: ...
    def names(self) -> List[str]: ...
    def __len__(self) -> int: ...
    def dtype_and_shape(self, name: bytes) -> Tuple[int, Tuple[int, ...]]: ...
    def __contains__(self, name: bytes, /) -> bool: ...
    def shape_map(self) -> Dict[str, List[int]]: ...
    def dtype_map(self) -> Dict[str, int]: ...
    def read(self, name: bytes, region: _Region = None, verify: bool = True) -> npt.NDArray[np.uint8]: ...
    def get(self, name: bytes, verify: bool = True) -> np.ndarray: ...
    def read_tensors(self, names: Sequence[bytes], verify: bool = True) -> List[np.ndarray]: ...
    def read_all(self, verify: bool = True) -> Tuple[List[str], List[Optional[np.ndarray]]]: ...
    def read_tensors_into(
        self, names: Sequence[bytes], outs: Sequence[npt.NDArray[np.uint8]], verify: bool = True
    ) -> None: ...
    def mapped(self, name: bytes) -> Optional[npt.NDArray[np.uint8]]: ...
    def read_strings(self, name: bytes, region: _Region = None) -> List[bytes]: ...

@final
class MappedOwner:
    """Keeps a data file mapped while numpy arrays view it."""

@final
class BundleFileWriter:
    """Writes a V2 checkpoint; see ``fastckpt.CheckpointWriter``."""

    def __new__(
        cls,
        prefix: _Path,
        durable: bool = False,
        num_shards: int = 1,
        storage_options: Optional[Dict[str, str]] = None,
    ) -> "BundleFileWriter": ...
    def add(
        self,
        name: bytes,
        dtype: int,
        shape: Sequence[int],
        data: _Data,
        full_shape: Optional[Sequence[int]] = None,
        slice_spec: Optional[str] = None,
    ) -> None: ...
    def add_tensors(
        self, names: Sequence[bytes], dtypes: Sequence[int], shapes: Sequence[Sequence[int]], data: Sequence[_Data]
    ) -> None: ...
    def finish(self) -> None: ...
    def abort(self) -> None: ...

def locate_checkpoint(path: _Path, storage_options: Optional[Dict[str, str]] = None) -> str: ...
def merge_checkpoints(
    prefixes: Sequence[_Path],
    merged_prefix: _Path,
    durable: bool = False,
    storage_options: Optional[Dict[str, str]] = None,
) -> None: ...
def descriptor_set() -> bytes: ...
def dtype_table() -> List[Tuple[str, int, int, str]]: ...
def decode_tensor_proto(serialized: bytes) -> Tuple[int, List[int], Union[npt.NDArray[np.uint8], List[bytes]]]: ...
def read_file(path: _Path, storage_options: Optional[Dict[str, str]] = None) -> bytes: ...
def write_file(
    path: _Path, data: bytes, durable: bool = False, storage_options: Optional[Dict[str, str]] = None
) -> None: ...
def file_kind(path: _Path, storage_options: Optional[Dict[str, str]] = None) -> Optional[str]: ...
def list_directory(path: _Path, storage_options: Optional[Dict[str, str]] = None) -> List[str]: ...
def delete_file(path: _Path, storage_options: Optional[Dict[str, str]] = None) -> None: ...
def modified_time(path: _Path, storage_options: Optional[Dict[str, str]] = None) -> Optional[float]: ...
def is_url(path: _Path) -> bool: ...
def read_file_versioned(
    path: _Path, storage_options: Optional[Dict[str, str]] = None
) -> Tuple[bytes, Optional[str]]: ...
def write_file_if(
    path: _Path,
    data: bytes,
    expected_version: Optional[str],
    durable: bool = False,
    storage_options: Optional[Dict[str, str]] = None,
) -> Optional[str]: ...
def leftover_writer(file_name: str) -> Optional[Tuple[str, int]]: ...
