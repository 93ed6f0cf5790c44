"""Where the tests find what they read: the repository, its committed fixtures, and TensorFlow's test data
beside the checkout."""

from pathlib import Path

HELPERS = Path(__file__).resolve().parent
# The repository: tests/helpers/ is two folders below it.
ROOT = HELPERS.parent.parent
# Checkpoints TensorFlow wrote, with what its reader returned (tests/fixtures/generate.py remakes them).
FIXTURES = ROOT / "tests" / "fixtures"
# TensorFlow's and TensorFlow Serving's committed test data, in ../shared beside the checkout (tests that read
# it skip where it is not).
TF_TESTDATA = ROOT.parent / "shared" / "tf-testdata"
