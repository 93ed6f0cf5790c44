"""Conversion between TensorFlow checkpoints and the files other frameworks load: ``.safetensors`` (one file, or a
directory of shards as Hugging Face writes them), ``.npz``, torch's ``.pt`` / ``.bin``, and checkpoints.

>>> import os, tempfile, fastckpt
>>> out = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> fastckpt.convert(fastckpt.examples.model_path(), out, rename=[("^v", "var_")])
2
>>> sorted(fastckpt.conversion.open_source(out).tensors())
['var_1', 'var_2']

Tensors go one batch at a time, and a tensor larger than a batch in parts of rows, so a conversion needs memory
for about ``PART_BYTES`` of tensors at once, not for the model: safetensors files are written header first, then
the tensors' bytes as they come. Names are chosen and rules applied as ``fastckpt.mapping`` says (the rules
``fastckpt.torch.load_into`` applies).

What a format cannot hold is decided in ``destinations``: string tensors go into the safetensors metadata (and
come back); dtypes a format lacks are skipped with a warning (safetensors, torch) or widened exactly (bfloat16 to
float32 in ``.npz``). The modules: ``pipeline`` (``convert``), ``sources``, ``destinations``, ``tensors``.
"""

from .pipeline import PART_BYTES, NoProgress, convert, parse_size
from .sources import open_source
from .tensors import STRING_METADATA_PREFIX, tensor_sizes

__all__ = [
    "PART_BYTES",
    "STRING_METADATA_PREFIX",
    "NoProgress",
    "convert",
    "open_source",
    "parse_size",
    "tensor_sizes",
]
