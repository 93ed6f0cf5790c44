"""What the tests share, each written once. tests/ is on sys.path (pyproject.toml's pytest ``pythonpath``), so
every test, in whichever subject folder, imports these as ``helpers.<module>``; the fixtures are tests/conftest.py's."""
