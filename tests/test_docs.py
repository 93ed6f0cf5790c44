"""The examples in the package's docstrings run as written."""
import doctest

import pytest

import fastckpt
import fastckpt.checkpoint_state
import fastckpt.dtypes
import fastckpt.protos
import fastckpt.reader

MODULES = [fastckpt, fastckpt.reader, fastckpt.dtypes, fastckpt.protos, fastckpt.checkpoint_state]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
