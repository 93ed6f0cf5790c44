"""The examples in the package's docstrings run as written."""

import fastckpt
import fastckpt.arrays
import fastckpt.conversion
import fastckpt.dtypes
import fastckpt.graphs
import fastckpt.graphs.freezing
import fastckpt.graphs.meta_graph
import fastckpt.graphs.op_defs
import fastckpt.graphs.saver_graph
import fastckpt.graphs.tensor_protos
import fastckpt.protos
import fastckpt.reading.batching
import fastckpt.reading.checkpoint_state
import fastckpt.reading.directories
import fastckpt.reading.reader
import fastckpt.saved_model
import fastckpt.saved_model.builder
import fastckpt.saved_model.constants
import fastckpt.saved_model.loader
import fastckpt.saved_model.signatures
import fastckpt.saving.from_meta_graph
import fastckpt.saving.moving_averages
import fastckpt.saving.save_paths
import fastckpt.saving.saver
import fastckpt.saving.var_list
import fastckpt.saving.writer
import pytest
from helpers.docstrings import assert_docstring_examples_pass

MODULES = [
    fastckpt,
    fastckpt.arrays,
    fastckpt.conversion,
    fastckpt.dtypes,
    fastckpt.graphs,
    fastckpt.graphs.freezing,
    fastckpt.graphs.meta_graph,
    fastckpt.graphs.op_defs,
    fastckpt.graphs.saver_graph,
    fastckpt.graphs.tensor_protos,
    fastckpt.protos,
    fastckpt.reading.batching,
    fastckpt.reading.checkpoint_state,
    fastckpt.reading.reader,
    fastckpt.saved_model,
    fastckpt.saved_model.builder,
    fastckpt.saved_model.constants,
    fastckpt.saved_model.loader,
    fastckpt.saved_model.signatures,
    fastckpt.reading.directories,
    fastckpt.saving.from_meta_graph,
    fastckpt.saving.moving_averages,
    fastckpt.saving.save_paths,
    fastckpt.saving.saver,
    fastckpt.saving.var_list,
    fastckpt.saving.writer,
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    assert_docstring_examples_pass(module)
