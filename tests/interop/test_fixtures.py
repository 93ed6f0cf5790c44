"""Every committed TensorFlow-written checkpoint reads back exactly as TensorFlow's reader read it."""

import fastckpt
import numpy as np
import pytest
from helpers.checkpoints import Expected, assert_same_value, check_against_expected, fixture_kinds

KINDS = fixture_kinds()


def test_fixtures_exist():
    assert len(KINDS) >= 10, KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_dtypes_and_values_match_tensorflow(kind):
    check_against_expected(Expected(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_slices_match_numpy_indexing(kind):
    expected = Expected(kind)
    reader = fastckpt.load_checkpoint(expected.path)
    rng = np.random.default_rng(0)
    for name, info in expected.tensors.items():
        full = np.asarray(expected.value(name))
        view = reader.get_slice(name)
        assert view.shape == tuple(info["shape"])
        assert_same_value(view[...], full, name)
        if full.ndim == 0:
            continue
        for _ in range(5):
            index = []
            for size in full.shape:
                kind_of_index = rng.integers(3)
                if kind_of_index == 0 and size > 0:
                    index.append(int(rng.integers(-size, size)))
                else:
                    start, stop = sorted(rng.integers(-size - 1, size + 2, size=2).tolist())
                    step = int(rng.choice([1, 2, 3, -1, -2]))
                    index.append(slice(start, stop, step) if step > 0 else slice(stop, start, step))
            index = tuple(index)
            assert_same_value(view[index], full[index], f"{name}{index}")


def test_list_and_load_variable():
    expected = Expected("tf1_saver_resource")
    listed = fastckpt.list_variables(expected.path)
    assert listed == sorted((n, t["shape"]) for n, t in expected.tensors.items())
    assert_same_value(fastckpt.load_variable(expected.path, "v1:0"), expected.value("v1"))
