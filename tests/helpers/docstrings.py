"""The examples in a module's docstrings, run as written."""

import doctest


def assert_docstring_examples_pass(module) -> None:
    """Runs the examples of ``module``'s docstrings (``...`` in an output matches anything): it has some, and
    every one gives what its docstring says."""
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
