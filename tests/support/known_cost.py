"""A batch of scenes of KNOWN cost on the Sen2Cor test double's ``burn:`` mode (issue 19), and
the check that the worker's ``resources`` match it within a tolerance.

Scene 0 is the baseline (``burn:cpu=0,mem=0`` with the same number of children): what the
double itself, its interpreters and the forked children's shared pages cost. The truth of a
costed scene is ``children x cpu`` seconds of CPU and ``children x mem`` MB of summed RSS, plus
that baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from s2kit.config import BatchConfig
from s2kit.runs import RunDir

from .configs import batch_config

CHILDREN = 2
#: (CPU seconds, MB) per child of scenes 1.. (scene 0 is the baseline)
COSTS = ((1.5, 150), (1.0, 250))


def known_cost_batch(root: Path, **scheduler: Any) -> BatchConfig:
    faults = {0: f"burn:cpu=0,mem=0,children={CHILDREN}"}
    for k, (cpu, mem) in enumerate(COSTS, start=1):
        faults[k] = f"burn:cpu={cpu},mem={mem},children={CHILDREN}"
    return batch_config(root, 1 + len(COSTS), faults, **scheduler)


def known_cost_errors(rd: RunDir, tolerance: float = 0.10) -> list[str]:
    """One line per scene whose measured CPU or peak memory is off by more than *tolerance*."""
    scenes = rd.read_batch("all")[: 1 + len(COSTS)]  # scenes after these are the caller's own
    states = [rd.read_state(s) for s in scenes]
    res = [st.resources if st is not None else None for st in states]
    if any(r is None for r in res):
        return [f"no resources recorded: {[s.state if s else None for s in states]}"]
    base = res[0]
    assert base is not None
    errors = []
    for k, (cpu, mem) in enumerate(COSTS, start=1):
        r = res[k]
        assert r is not None
        truth_cpu = CHILDREN * cpu + base["cpu_s"]
        truth_mem = CHILDREN * mem + base["peak_rss_mb"]
        for what, got, truth in (
            ("cpu_s", r["cpu_s"], truth_cpu),
            ("peak_rss_mb", r["peak_rss_mb"], truth_mem),
        ):
            if got is None or abs(got - truth) > tolerance * truth:
                errors.append(f"scene {k}: {what} {got} vs truth {truth:.2f} (baseline {base})")
    return errors
