"""``fastckpt.keras.load_model``: a Keras 2 SavedModel as a Keras 3 model; and its ``.keras`` file."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, Mapping, Optional, Union

from .. import _paths, errors, protos, saved_model
from . import config as keras_config
from .weights import assign

PathLike = Union[str, "os.PathLike[str]"]
# The Keras metadata beside saved_model.pb.
KERAS_METADATA_FILENAME = "keras_metadata.pb"


def load_model(
    path: PathLike,
    *,
    custom_objects: Optional[Mapping[str, Any]] = None,
    storage_options: Optional[Mapping[str, str]] = None,
):
    """The Keras 2 SavedModel at ``path`` (``model.save("dir")`` of tf.keras 2; local or a URL) as a Keras 3
    model: built from the Keras 2 config the SavedModel holds (translated where Keras 3's differs, see
    ``fastckpt.keras.config``), filled with its weights as ``load_weights`` fills a model. Not compiled: the
    optimizer's state stays in the SavedModel.

    ``custom_objects``: ``{class name: class}`` of your own layers and models, as Keras' ``load_model`` takes.

    >>> import fastckpt.keras                                    # doctest: +SKIP
    >>> model = fastckpt.keras.load_model("saved_model_dir")    # doctest: +SKIP
    >>> model.predict(x)                                         # doctest: +SKIP

    Raises:
        fastckpt.errors.InvalidArgumentError: the SavedModel holds no Keras config to build the model from (a
            ``tf.Module``, or a subclassed model, whose architecture is Python code): build the model in Keras 3
            and call ``load_weights``; or Keras 3 cannot build the config (the message says why).
        fastckpt.errors.NotFoundError: no SavedModel at ``path``.
    """
    export_dir = os.fspath(path)
    stores = _paths.stores(storage_options)
    loaded = saved_model.load(export_dir, storage_options=stores)
    metadata = _model_metadata(loaded, stores)
    if metadata is None or not isinstance(metadata.get("config"), dict) or "class_name" not in metadata:
        what = (
            "a tf.Module, not a Keras model"
            if metadata is None
            else f"a subclassed Keras model ({metadata.get('class_name')})"
        )
        raise errors.InvalidArgumentError(
            f"{export_dir} holds no Keras config to build a model from ({what}): build the model in Keras 3 and "
            f"fill it with fastckpt.keras.load_weights(model, {export_dir!r})",
            export_dir,
        )
    model = _build(metadata, dict(custom_objects or {}), export_dir)
    if loaded.variables.reader is None:
        raise errors.NotFoundError(f"{export_dir} has no variables to fill the model with", export_dir)
    assign(model, loaded.variables.reader)
    return model


def _build(metadata: Dict[str, Any], custom_objects: Dict[str, Any], export_dir: str):
    """The Keras 3 model of a Keras 2 model's metadata (class name and config), unfilled."""
    import keras

    layer = keras_config.translate({"class_name": metadata["class_name"], "config": metadata["config"]})
    builders = {"Sequential": keras.Sequential, "Functional": keras.Model, "Model": keras.Model}
    builder = custom_objects.get(layer["class_name"]) or builders.get(layer["class_name"])
    if builder is None:
        raise errors.InvalidArgumentError(
            f"{export_dir} holds a {layer['class_name']} model: pass its class as custom_objects="
            f"{{{layer['class_name']!r}: ...}}, or build it in Keras 3 and call fastckpt.keras.load_weights",
            export_dir,
        )
    try:
        with keras.saving.custom_object_scope(custom_objects):
            model = builder.from_config(layer["config"], custom_objects=custom_objects)
    except (TypeError, ValueError) as err:
        raise errors.InvalidArgumentError(
            f"Keras {keras.__version__} cannot build the model {export_dir} holds from its Keras 2 config: {err}",
            export_dir,
        ) from err
    if not model.built and metadata.get("build_input_shape") is not None:
        # A Sequential without an Input (Keras 2 built it on its first call): built on the shape it was.
        model.build(metadata["build_input_shape"])
    return model


def _model_metadata(loaded: "saved_model.LoadedSavedModel", options: Optional[Dict[str, str]]):
    """The decoded Keras metadata of the SavedModel's root object, or None where it is no Keras object."""
    path = os.path.join(loaded.export_dir, KERAS_METADATA_FILENAME)
    if options.file_kind(path) == "file":
        data = options.read_file(path)
        try:
            nodes = protos.message_class("keras.SavedMetadata").FromString(data).nodes
        except Exception as err:  # noqa: BLE001 - protobuf's DecodeError and others: the file is corrupt
            raise errors.DataLossError(f"unparsable Keras metadata {path}: {err}", path) from None
        root = next((node for node in nodes if node.node_id == 0), None)
        if root is not None and root.metadata:
            return _decoded(root.metadata, path)
    graph = loaded.object_graph
    if graph is not None and graph.nodes:
        user_object = graph.nodes[0].user_object
        if user_object.identifier.startswith("_tf_keras") and user_object.metadata:
            return _decoded(user_object.metadata, os.path.join(loaded.export_dir, saved_model.SAVED_MODEL_FILENAME_PB))
    return None


def _decoded(metadata: str, path: str) -> Dict[str, Any]:
    try:
        decoded = keras_config.decode(metadata)
    except (ValueError, RecursionError) as err:
        raise errors.DataLossError(
            f"the Keras metadata of the model in {path} is no JSON object: {err}", path
        ) from None
    if not isinstance(decoded, dict):
        raise errors.DataLossError(f"the Keras metadata of the model in {path} is no JSON object", path)
    return decoded


def save_keras_file(
    src: PathLike,
    dst: PathLike,
    *,
    custom_objects: Optional[Mapping[str, Any]] = None,
    storage_options: Optional[Mapping[str, str]] = None,
) -> int:
    """Writes the Keras 2 SavedModel ``src`` as the ``.keras`` file ``dst`` (either may be a URL), which Keras 3's
    ``keras.saving.load_model`` opens on any backend; returns the number of weights. ``fastckpt.convert(src,
    "model.keras")`` calls this."""
    dst = os.fspath(dst)
    model = load_model(src, custom_objects=custom_objects, storage_options=storage_options)
    stores = _paths.stores(storage_options)
    with tempfile.TemporaryDirectory(prefix="fastckpt-keras-") as scratch:
        local = os.path.join(scratch, "model.keras")
        model.save(local)
        with open(local, "rb") as file:
            stores.write_file(dst, file.read())
    return len(model.weights)
