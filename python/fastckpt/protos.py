"""Protocol buffer message classes, built from the project's ``protos/`` directory.

The definitions are compiled into the extension module; this module builds the message classes from them in a
private descriptor pool, so that they never clash with TensorFlow's own classes in the same process.

>>> from fastckpt.protos import CheckpointState
>>> CheckpointState(model_checkpoint_path="model.ckpt-10").model_checkpoint_path
'model.ckpt-10'
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal import enum_type_wrapper

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


def _build_pool() -> descriptor_pool.DescriptorPool:
    files = descriptor_pb2.FileDescriptorSet.FromString(_fastckpt.descriptor_set()).file
    by_name = {f.name: f for f in files}
    pool = descriptor_pool.DescriptorPool()
    added: set = set()

    def add(name: str) -> None:
        if name in added:
            return
        for dependency in by_name[name].dependency:
            add(dependency)
        pool.Add(by_name[name])
        added.add(name)

    for name in by_name:
        add(name)
    return pool


POOL = _build_pool()


def message_class(full_name: str):
    """The message class of ``full_name`` (e.g. ``"tensorflow.CheckpointState"``)."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


AttrValue = message_class("tensorflow.AttrValue")
BundleEntryProto = message_class("tensorflow.BundleEntryProto")
BundleHeaderProto = message_class("tensorflow.BundleHeaderProto")
CheckpointState = message_class("tensorflow.CheckpointState")
GraphDef = message_class("tensorflow.GraphDef")
MetaGraphDef = message_class("tensorflow.MetaGraphDef")
NodeDef = message_class("tensorflow.NodeDef")
SavedModel = message_class("tensorflow.SavedModel")
SavedObjectGraph = message_class("tensorflow.SavedObjectGraph")
SavedTensorSlices = message_class("tensorflow.SavedTensorSlices")
SaverDef = message_class("tensorflow.SaverDef")
SignatureDef = message_class("tensorflow.SignatureDef")
TensorInfo = message_class("tensorflow.TensorInfo")
TensorProto = message_class("tensorflow.TensorProto")
TensorShapeProto = message_class("tensorflow.TensorShapeProto")
TensorSliceProto = message_class("tensorflow.TensorSliceProto")
TrackableObjectGraph = message_class("tensorflow.TrackableObjectGraph")
VariableDef = message_class("tensorflow.VariableDef")
VersionDef = message_class("tensorflow.VersionDef")
DataType = enum_type_wrapper.EnumTypeWrapper(POOL.FindEnumTypeByName("tensorflow.DataType"))
