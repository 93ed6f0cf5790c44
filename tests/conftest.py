"""Shared fixtures: the object-store test servers and a copy of a committed fixture. What the tests share
besides fixtures is in tests/helpers/."""

import shutil

import pytest
from helpers.checkpoints import FIXTURES, Expected

# The object-store test servers' fixtures (s3_server, s3_bucket, s3_proxy, make_proxy).
pytest_plugins = ["helpers.object_stores"]


@pytest.fixture
def copy_fixture(tmp_path):
    """Copies a fixture directory to a temporary place (to corrupt or move it) and returns its Expected."""

    def copy(kind: str) -> Expected:
        shutil.copytree(FIXTURES / kind, tmp_path / kind)
        return Expected(kind, tmp_path)

    return copy
