import os

import pytest


def pytest_configure(config):
    # Verilator builds are cached per configuration; CI starts from an empty cache.
    os.environ.setdefault("PYTHONHASHSEED", "0")
