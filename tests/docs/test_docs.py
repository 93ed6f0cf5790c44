"""The examples in the package's docstrings run as written."""

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
from helpers.docstrings import assert_docstring_examples_pass

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
    assert_docstring_examples_pass(module)
