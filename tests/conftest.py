from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.support import FIXTURES
from tests.support.infra_groups import pytest_terminal_summary  # noqa: F401 - a hook: names the skipped groups
from tests.support.servers import client, connects, fake_server  # noqa: F401 - shared fixtures

REQUIRED_IN_CI = {"slurm", "apptainer"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In CI (S2KIT_CI=1) a test of real infrastructure may not skip: mark it required."""
    config._s2kit_required = {  # type: ignore[attr-defined]
        item.nodeid for item in items if REQUIRED_IN_CI & {m.name for m in item.iter_markers()}
    }


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    required = getattr(item.config, "_s2kit_required", set())
    if os.environ.get("S2KIT_CI") == "1" and report.skipped and item.nodeid in required:
        report.outcome = "failed"
        report.longrepr = f"required in CI but skipped: {report.longrepr}"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def hostile_dir(tmp_path: Path) -> Path:
    """A directory whose name has spaces, quotes, $ and non-ASCII characters."""
    d = tmp_path / "dir with spaces 'quote' \"dq\" $HOME ünïcødé"
    d.mkdir()
    return d


@pytest.fixture
def s2kit_exe() -> str:
    exe = shutil.which("s2kit", path=str(Path(sys.executable).parent)) or shutil.which("s2kit")
    if exe is None:
        pytest.fail("the s2kit console script is not installed (pip install -e .)")
    return exe
