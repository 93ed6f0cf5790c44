"""Protocol buffer message classes, built from the project's ``protos/`` directory.

The definitions are compiled into the extension module; this module builds the message classes from them in a
private descriptor pool, so that they never clash with TensorFlow's own classes in the same process. The pool
is built, and each class made, the first time one is asked for (``fastckpt.protos.GraphDef``, ``from
fastckpt.protos import GraphDef``), not when this module is imported. fastckpt's own modules refer to the
classes as ``protos.GraphDef`` and import ``google.protobuf`` inside the functions that use it, so that
``import fastckpt`` does not import protobuf.

>>> from fastckpt.protos import CheckpointState
>>> CheckpointState(model_checkpoint_path="model.ckpt-10").model_checkpoint_path
'model.ckpt-10'
"""

from __future__ import annotations

import threading
from typing import Any, Iterator, List, Tuple

from . import _fastckpt

__all__ = [
    "AttrValue",
    "BundleEntryProto",
    "BundleHeaderProto",
    "CheckpointState",
    "DataType",
    "GraphDef",
    "MetaGraphDef",
    "NodeDef",
    "OpDef",
    "OpList",
    "SavedModel",
    "SavedObjectGraph",
    "SavedTensorSlices",
    "SaverDef",
    "SignatureDef",
    "TensorInfo",
    "TensorProto",
    "TensorShapeProto",
    "TensorSliceProto",
    "TrackableObjectGraph",
    "VariableDef",
    "VersionDef",
]

# Module attributes made on first use (see __getattr__): every message class of __all__, DataType and POOL.
_LAZY = set(__all__) | {"POOL"}
_lock = threading.RLock()


def _length_delimited(data: bytes) -> Iterator[Tuple[int, bytes]]:
    """The (field number, bytes) of each length-delimited field of a serialized message; other fields are
    skipped. Enough of the wire format to order the files of a FileDescriptorSet without descriptor_pb2."""
    position, end = 0, len(data)

    def varint() -> int:
        nonlocal position
        value, shift = 0, 0
        while True:
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    while position < end:
        key = varint()
        wire_type = key & 7
        if wire_type == 0:
            varint()
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        elif wire_type == 2:
            length = varint()
            yield key >> 3, data[position : position + length]
            position += length
        else:
            raise ValueError(f"unexpected wire type {wire_type} in the compiled descriptors")


def _files() -> List[Tuple[str, List[str], bytes]]:
    """(name, dependencies, serialized FileDescriptorProto) of each file of the compiled descriptor set."""
    files = []
    for number, file in _length_delimited(_fastckpt.descriptor_set()):
        if number != 1:  # FileDescriptorSet.file
            continue
        name, dependencies = "", []
        for field, value in _length_delimited(file):
            if field == 1:  # FileDescriptorProto.name
                name = value.decode()
            elif field == 3:  # FileDescriptorProto.dependency
                dependencies.append(value.decode())
        files.append((name, dependencies, file))
    return files


def _build_pool():
    from google.protobuf import descriptor_pool

    files = {name: (dependencies, serialized) for name, dependencies, serialized in _files()}
    pool = descriptor_pool.DescriptorPool()
    added: set = set()

    def add(name: str) -> None:  # dependencies first, as the pool requires
        if name in added:
            return
        dependencies, serialized = files[name]
        for dependency in dependencies:
            add(dependency)
        pool.AddSerializedFile(serialized)
        added.add(name)

    for name in files:
        add(name)
    return pool


def _pool():
    with _lock:
        pool = globals().get("POOL")
        if pool is None:
            pool = globals()["POOL"] = _build_pool()
        return pool


def message_class(full_name: str):
    """The message class of ``full_name`` (e.g. ``"tensorflow.CheckpointState"``)."""
    from google.protobuf import message_factory

    pool = _pool()
    with _lock:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))


def as_message(value, message_type):
    """``value`` as fastckpt's ``message_type``: the same object when it is one, else a message of the same type
    from another descriptor pool (TensorFlow's ``tf.compat.v1.MetaGraphDef``, ...) converted through its bytes.

    >>> from fastckpt.protos import CheckpointState, SaverDef
    >>> state = CheckpointState(model_checkpoint_path="model.ckpt-10")
    >>> as_message(state, CheckpointState) is state
    True
    >>> as_message(state, SaverDef)
    Traceback (most recent call last):
    ...
    fastckpt.errors.InvalidTypeError: expected a tensorflow.SaverDef, got CheckpointState

    Raises:
        fastckpt.errors.InvalidTypeError: ``value`` is no message of that type (also a ``TypeError``).
    """
    from . import errors

    if isinstance(value, message_type):
        return value
    descriptor = getattr(value, "DESCRIPTOR", None)
    if getattr(descriptor, "full_name", None) != message_type.DESCRIPTOR.full_name:
        raise errors.InvalidTypeError(f"expected a {message_type.DESCRIPTOR.full_name}, got {type(value).__name__}")
    return message_type.FromString(value.SerializeToString())


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        if name in globals():
            return globals()[name]
        if name == "POOL":
            return _pool()
        if name == "DataType":
            from google.protobuf.internal import enum_type_wrapper

            value = enum_type_wrapper.EnumTypeWrapper(_pool().FindEnumTypeByName("tensorflow.DataType"))
        else:
            value = message_class("tensorflow." + name)
        globals()[name] = value
        return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | _LAZY)
