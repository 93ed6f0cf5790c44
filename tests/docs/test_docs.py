"""The examples in the package's docstrings run as written."""

import doctest

import fastckpt
import fastckpt.batching
import fastckpt.checkpoint_state
import fastckpt.conversion
import fastckpt.dtypes
import fastckpt.freezing
import fastckpt.graphs
import fastckpt.meta_graph
import fastckpt.moving_averages
import fastckpt.protos
import fastckpt.reader
import fastckpt.saved_model
import fastckpt.saver
import fastckpt.saver_graph
import fastckpt.tensor_protos
import fastckpt.writer
import pytest

MODULES = [
    fastckpt,
    fastckpt.batching,
    fastckpt.checkpoint_state,
    fastckpt.conversion,
    fastckpt.dtypes,
    fastckpt.freezing,
    fastckpt.graphs,
    fastckpt.meta_graph,
    fastckpt.moving_averages,
    fastckpt.protos,
    fastckpt.reader,
    fastckpt.saved_model,
    fastckpt.saver,
    fastckpt.saver_graph,
    fastckpt.tensor_protos,
    fastckpt.writer,
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
