"""Run dirs with measured scenes for the resources / advise / extend-walltime tests.

A run is written the way ``s2kit plan`` and the workers leave it (config.json snapshot,
plan.jsonl, state/<scene>.json with a ``resources`` record, jobs.jsonl), without running a
worker: the values are the test's own, so every statistic can be checked by hand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from s2kit.config import BatchConfig
from s2kit.runs import JobRecord, PlanEntry, RunDir, SceneState

from .configs import DOUBLE


@dataclass
class Scene:
    """One planned scene: its state (None: not started) and its resources record."""

    tile: str = "46RER"
    state: str | None = "done"
    resources: Any = None
    reason: str | None = None
    started: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # more PlanEntry fields (e.g. routing)


def res(wall_s: float, cpu_s: float, peak_mb: float, cores: int = 1, **more: Any) -> dict[str, Any]:
    """A resources record with the contract's keys (issue 19)."""
    return {
        "wall_s": wall_s,
        "cpu_user_s": cpu_s * 0.9,
        "cpu_sys_s": cpu_s * 0.1,
        "cpu_s": cpu_s,
        "peak_rss_mb": peak_mb,
        "rss_samples": 10,
        "cores": cores,
        "node": "node01",
        "max_rss_child_mb": peak_mb * 0.8,
        **more,
    }


def ago(minutes: float) -> str:
    t = datetime.now(timezone.utc) - timedelta(minutes=minutes)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def run_config(root: Path, *, sen2cor: Mapping[str, Any] | None = None, **scheduler: Any) -> BatchConfig:
    """A config whose paths lie under *root* (nothing is created: the workers never run)."""
    sched: dict[str, Any] = {"kind": "lsf", "memory_per_task_gb": 4, "walltime": "02:00", **scheduler}
    return BatchConfig.model_validate(
        {
            "paths": {
                "l1c_dirs": [str(root / "l1c")],
                "l2a_dir": str(root / "l2a"),
                "scratch_dir": str(root / "scratch"),
                "run_dir": str(root / "run"),
            },
            "sen2cor": {"runtime": "native", "install_dir": str(DOUBLE), **(sen2cor or {})},
            "scheduler": sched,
        }
    )


def scene_name(k: int, tile: str) -> str:
    return f"S2A_MSIL1C_2021{k // 28 + 1:02d}{k % 28 + 1:02d}T042701_N0301_R133_T{tile}_20210908T070248"


def measured_run(
    root: Path,
    scenes: Sequence[Scene],
    *,
    jobs: Sequence[JobRecord] = (),
    raw_states: Mapping[int, str] | None = None,
    sen2cor: Mapping[str, Any] | None = None,
    **scheduler: Any,
) -> tuple[BatchConfig, RunDir, list[str]]:
    """A planned run of *scenes* (batch ``all`` in plan order) with their states written.

    *raw_states*: scene index -> the state file's text as given (hostile files).
    """
    cfg = run_config(root, sen2cor=sen2cor, **scheduler)
    rd = RunDir(cfg.paths.run_dir)
    rd.path.mkdir(parents=True)
    rd.config_file.write_text(json.dumps(cfg.to_json_dict()), encoding="utf-8")
    names = [scene_name(k, s.tile) for k, s in enumerate(scenes)]
    entries = []
    for name, s in zip(names, scenes, strict=True):
        doc = {
            "scene": name,
            "l1c_path": str(root / "l1c" / f"{name}.SAFE"),
            "decision": "todo",
            "mgrs_tile": s.tile,
            **s.extra,
        }
        entries.append(json.dumps(doc))
    rd.plan_file.write_text("".join(e + "\n" for e in entries), encoding="utf-8")
    assert [PlanEntry.from_dict(json.loads(e)).scene for e in entries] == names
    rd.write_batch("all", names)
    for k, (name, s) in enumerate(zip(names, scenes, strict=True)):
        if raw_states and k in raw_states:
            rd.state_file(name).parent.mkdir(parents=True, exist_ok=True)
            rd.state_file(name).write_text(raw_states[k], encoding="utf-8")
            continue
        if s.state is None:
            continue
        rd.write_state(
            SceneState(
                scene=name,
                state=s.state,  # type: ignore[arg-type]
                attempt=1,
                reason=s.reason,
                started=s.started or ago(60),
                ended=None if s.state == "running" else ago(1),
                resources=s.resources,
            )
        )
    for rec in jobs:
        rd.append_job(rec)
    return cfg, rd, names


def job(job_id: str, count: int, scheduler: str = "lsf", first: int = 0) -> JobRecord:
    return JobRecord(
        scheduler=scheduler,
        job_id=job_id,
        batch="all",
        first_index=first,
        count=count,
        script="/x/s2kit-all.lsf",
        submitted=ago(90),
    )
