"""``s2kit doctor --probe-job`` and ``--sen2cor-smoke``: the checks that run something real."""

from __future__ import annotations

from typing import Any

from .config import BatchConfig
from .doctor import WARN, Check


def probe_job_check(cfg: BatchConfig, runner: Any = None) -> list[Check]:
    return [Check("probe job", WARN, "not implemented yet", "")]


def sen2cor_smoke_checks(cfg: BatchConfig, scene: str) -> list[Check]:
    return [Check("sen2cor smoke", WARN, "not implemented yet", "")]
