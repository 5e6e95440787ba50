"""The `demo` marker: `make demo` run end to end (tests/demo/run_demo.py)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "demo: runs `make demo` end to end (tests/demo/run_demo.py), < 60 s")
