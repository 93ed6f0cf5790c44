"""Properties over random inputs (hypothesis): what is written reads back, however it is sliced, and a
randomly damaged file gives an error or the original values, nothing else."""

import os

import fastckpt
import ml_dtypes
import numpy as np
from fastckpt import errors
from helpers.checkpoints import NUMPY_DTYPES, assert_same_value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = NUMPY_DTYPES
NAMES = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=30)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def arrays():
    numeric = st.sampled_from(DTYPES).flatmap(
        lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    )
    bfloat16 = hnp.arrays(np.uint16, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)).map(
        lambda a: a.view(ml_dtypes.bfloat16)
    )
    strings = st.lists(st.binary(max_size=300), max_size=6).map(lambda items: np.array(items + [b""], dtype=object))
    return st.one_of(numeric, bfloat16, strings)


@SETTINGS
@given(st.dictionaries(NAMES, arrays(), min_size=1, max_size=6))
def test_write_then_read(tmp_path, tensors):
    prefix = str(tmp_path / f"ckpt{abs(hash(tuple(tensors)))}")
    with fastckpt.CheckpointWriter(prefix) as writer:
        for name, value in tensors.items():
            writer.add(name, value)
    reader = fastckpt.load_checkpoint(prefix)
    assert set(reader) == set(tensors)
    for name, value in tensors.items():
        assert_same_value(reader.get_tensor(name), value, name)


@SETTINGS
@given(
    hnp.arrays(np.int32, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)),
    st.data(),
)
def test_any_partition_reassembles(tmp_path, full, data):
    """A tensor cut along one axis into random pieces, each stored as a slice."""
    axis = data.draw(st.integers(0, full.ndim - 1))
    cuts = sorted(
        set(data.draw(st.lists(st.integers(1, full.shape[axis] - 1), max_size=3)) if full.shape[axis] > 1 else [])
    )
    bounds = [0, *cuts, full.shape[axis]]
    prefix = str(tmp_path / f"part{abs(hash((full.tobytes(), axis, tuple(cuts))))}")
    with fastckpt.CheckpointWriter(prefix) as writer:
        for start, stop in zip(bounds, bounds[1:]):
            spec = ":".join(f"{start},{stop - start}" if d == axis else "-" for d in range(full.ndim))
            writer.add_slice("w", full.shape, spec, np.take(full, range(start, stop), axis=axis))
    reader = fastckpt.load_checkpoint(prefix)
    np.testing.assert_array_equal(reader.get_tensor("w"), full)
    index = tuple(data.draw(st.integers(0, n - 1)) for n in full.shape)
    assert reader.get_slice("w")[index] == full[index]


@SETTINGS
@given(st.data())
def test_random_damage_is_an_error_or_harmless(tmp_path, data):
    prefix = str(tmp_path / "victim")
    if not os.path.exists(prefix + ".index"):
        with fastckpt.CheckpointWriter(prefix) as writer:
            writer.add("a", np.arange(40, dtype=np.float32))
            writer.add("s", np.array([b"x", b"yy"], dtype=object))
            writer.add_slice("p", [4, 2], "0,2:-", np.ones((2, 2), np.int64))
            writer.add_slice("p", [4, 2], "2,2:-", np.zeros((2, 2), np.int64))
    originals = fastckpt.load_checkpoint(prefix).get_tensors()
    path = prefix + data.draw(st.sampled_from([".index", ".data-00000-of-00001"]))
    original = open(path, "rb").read()
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    try:
        with open(path, "wb") as f:
            f.write(damaged)
        try:
            reader = fastckpt.load_checkpoint(prefix)
            for name in originals:
                try:
                    assert_same_value(reader.get_tensor(name), originals[name], name)
                except errors.OpError:
                    pass
        except errors.OpError:
            pass
    finally:
        with open(path, "wb") as f:
            f.write(original)
