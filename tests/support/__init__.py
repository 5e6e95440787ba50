"""What the tests share: SAFE trees from the real ESA fixtures, fake servers (bucket, CDSE, SRTM,
ESA-CCI), config builders, stand-ins for the container build, the infrastructure-test groups, and
the paths and process helpers below.

Nothing outside ``tests/`` (and the demo, benchmarks and docs scripts that reuse these builders)
imports it. The Sen2Cor test double stays at ``tests/sen2cor_double/bin/L2A_Process``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["FIXTURES", "REPO", "TESTS", "alive"]

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
FIXTURES = REPO / "data" / "fixtures"


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (PID 1 here may never reap orphans)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return data[data.rindex(b")") + 2 : data.rindex(b")") + 3] not in (b"Z", b"X")
