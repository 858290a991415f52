"""The reliability suite's figures are gathered by `tests/conftest.py` (see `figures.py`): its
hooks must run in pytest-xdist's controller, which never loads this folder's conftest."""
