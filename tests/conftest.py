"""Shared fixtures: the object-store test servers, a copy of a committed fixture, and TensorFlow. What the tests
share besides fixtures is in tests/helpers/."""

import shutil

import pytest

# The helpers' assertions report the values they compared, as the tests' own do.
pytest.register_assert_rewrite("helpers")

from helpers.checkpoints import FIXTURES, Expected  # noqa: E402
from helpers.tensorflow_oracle import tensorflow_or_skip  # noqa: E402

# The object-store test servers' fixtures (s3_server, s3_bucket, s3_proxy, gcs_server, gcs_bucket, gcs_proxy,
# make_proxy).
pytest_plugins = ["helpers.object_stores"]


@pytest.fixture
def copy_fixture(tmp_path):
    """Copies a fixture directory to a temporary place (to corrupt or move it) and returns its Expected."""

    def copy(kind: str) -> Expected:
        shutil.copytree(FIXTURES / kind, tmp_path / kind)
        return Expected(kind, tmp_path)

    return copy


@pytest.fixture(scope="module")
def tf():
    """TensorFlow, imported; the test skips without it (fails in CI)."""
    return tensorflow_or_skip()
