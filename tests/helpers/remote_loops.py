"""Loops of small reads from an object store, each run in a fresh process (its caches empty) while a test proxy
counts its requests: what tests/stores/test_remote_loops.py (S3) and test_gcs.py (gs://) share."""

import hashlib
import json

import numpy as np

from helpers.processes import run_python

# Reads a checkpoint as argv[2] says and prints {name: sha256 of the value's bytes}.
READ = """
import hashlib, json, random, sys
import fastckpt
prefix, how = sys.argv[1], sys.argv[2]
options = json.loads(sys.argv[3])
digest = lambda value: hashlib.sha256(value.tobytes()).hexdigest()
reader = fastckpt.NewCheckpointReader(prefix, storage_options=options)
names = sorted(reader.get_variable_to_shape_map())
if how == "batch":
    values = reader.get_tensors()
elif how in ("loop", "random"):
    if how == "random":
        random.Random(0).shuffle(names)
    values = {name: reader.get_tensor(name) for name in names}
elif how == "load_variable":
    names = [name for name, _ in fastckpt.list_variables(prefix, storage_options=options)][:400]
    values = {name: fastckpt.load_variable(prefix, name, storage_options=options) for name in names}
elif how == "rows":
    table = reader.get_slice("table")
    values = {"table": __import__("numpy").stack([table[row] for row in range(table.shape[0])])}
print(json.dumps({name: digest(value) for name, value in values.items()}))
"""


def digests(values):
    return {name: hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest() for name, value in values.items()}


def many_small_tensors():
    """3,000 tensors of 1 to 16 KiB (about 25 MB), as a checkpoint of a model's many small variables holds them."""
    rng = np.random.default_rng(0)
    return {
        f"layer_{i:04d}/w": rng.standard_normal(int(rng.integers(256, 4096))).astype(np.float32) for i in range(3000)
    }


def bert_like(layers=3):
    """A small BERT-like checkpoint: each layer's vectors of 3-12 KiB beside its 768x768 and 768x3072 kernels
    (2.25 and 9 MiB, too large to be served from blocks), in the order the names sort in (about 35 MB)."""
    rng = np.random.default_rng(1)

    def values(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    tensors = {}
    for i in range(layers):
        tensors |= {
            f"layer_{i}/attention/bias": values(768),
            f"layer_{i}/attention/kernel": values(768, 768),
            f"layer_{i}/intermediate/bias": values(3072),
            f"layer_{i}/intermediate/kernel": values(768, 3072),
            f"layer_{i}/output/LayerNorm/beta": values(768),
            f"layer_{i}/output/LayerNorm/gamma": values(768),
        }
    return tensors


def requests_of(proxy, prefix, how, options=None):
    """The requests a fresh process makes to read ``prefix`` as ``how`` says ("batch": ``get_tensors``; "loop",
    "random": ``get_tensor`` of each name, sorted or shuffled; "load_variable": of the first 400 names; "rows":
    ``get_slice("table")`` row by row), and the digests it read."""
    proxy.reset()
    read = run_python(READ, prefix, how, json.dumps(options or {}))
    return proxy.requests_seen, read


def assert_loops_cost_about_a_batch(proxy, prefix, values):
    """A ``get_tensor`` loop over ``prefix`` (``values`` its tensors), in order and shuffled, reads every value
    exactly and makes at most about twice the requests of one ``get_tensors()``."""
    expected = digests(values)
    batch, read = requests_of(proxy, prefix, "batch")
    assert read == expected
    for how in ("loop", "random"):
        requests, read = requests_of(proxy, prefix, how)
        assert read == expected, how
        # The index and the objects' HEADs besides: a loop reads ahead in blocks, a random one fills the cache.
        assert requests <= 2 * batch + 3, (how, requests, batch, proxy.summary())
