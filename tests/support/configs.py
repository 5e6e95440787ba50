"""Config builders the tests share: a native batch on the Sen2Cor test double, and its TOML.

(:func:`batch_config` builds real-metadata L1C scenes; ``config_data`` is the bare dict the
smaller builders in test_container, test_image_def, test_plan and test_sen2cor start from.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from s2kit.config import BatchConfig

from . import TESTS
from .safe_trees import build_l1c_tree

DOUBLE = TESTS / "sen2cor_double"


def config_data(
    base: str | os.PathLike[str],
    *,
    runtime: str = "native",
    image: str | os.PathLike[str] | None = None,
    install_dir: str | os.PathLike[str] | None = None,
    l1c: tuple[str, ...] = ("l1c",),
    dem: str | None = "dem",
    run: str = "run",
    **sections: Mapping[str, Any],
) -> dict[str, Any]:
    """A config as a dict: every path under *base* (joined as text, so odd names stay as they are).

    With runtime ``apptainer`` the config gets *image*, else *install_dir*; each of *sections*
    (``paths=``, ``sen2cor=``, ``scheduler=`` ...) is merged into its section last.
    """
    root = os.fspath(base)
    paths: dict[str, Any] = {
        "l1c_dirs": [f"{root}/{d}" for d in l1c],
        "l2a_dir": f"{root}/l2a",
        **({"dem_dir": f"{root}/{dem}"} if dem is not None else {}),
        "scratch_dir": f"{root}/scratch",
        "run_dir": f"{root}/{run}",
    }
    sen2cor: dict[str, Any] = {"runtime": runtime}
    where = image if runtime == "apptainer" else install_dir
    if where is not None:
        sen2cor["image" if runtime == "apptainer" else "install_dir"] = os.fspath(where)
    data: dict[str, Any] = {"paths": paths, "sen2cor": sen2cor}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


def batch_config(
    root: Path,
    n: int,
    faults: Mapping[int, str] | None = None,
    *,
    l1c: Path | None = None,
    l2a: Path | None = None,
    scratch: Path | None = None,
    run: Path | None = None,
    sen2cor: Mapping[str, Any] | None = None,
    **scheduler: Any,
) -> BatchConfig:
    """n real-metadata L1C scenes (day_offset 0..n-1) and a native config on the Sen2Cor double.

    Built with BatchConfig.model_validate (paths are absolute already), so hostile
    paths with '$' stay literal.
    """
    l1c = l1c or root / "l1c"
    l1c.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        p = build_l1c_tree(l1c, "03.01", day_offset=k)
        if faults and k in faults:
            (p / "S2KIT_DOUBLE_FAULT").write_text(faults[k])
    sched: dict[str, Any] = {"kind": "local", "max_concurrent": 2, "memory_per_task_gb": 0.5}
    sched.update(scheduler)
    dem = root / "dem"  # the DEM folder of tile 46RER (placeholder zip; sen2cor.dem = "srtm")
    (dem / "46RER").mkdir(parents=True, exist_ok=True)
    (dem / "46RER" / "srtm_55_07.zip").write_bytes(b"PK placeholder, not a DEM")
    return BatchConfig.model_validate(
        {
            "paths": {
                "l1c_dirs": [str(l1c)],
                "l2a_dir": str(l2a or root / "l2a"),
                "dem_dir": str(dem),
                "scratch_dir": str(scratch or root / "scratch"),
                "run_dir": str(run or root / "run"),
            },
            "sen2cor": {
                "runtime": "native",
                "install_dir": str(DOUBLE),
                "retries": 0,
                "timeout_minutes": 1,
                **(sen2cor or {}),
            },
            "scheduler": sched,
        }
    )


def toml_value(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return str(v)


def write_toml(cfg: BatchConfig, path: Path) -> Path:
    """The config as s2kit.toml (for CLI tests; paths must not contain '$')."""
    data = cfg.model_dump(mode="json", exclude_none=True, exclude={"source"})
    lines: list[str] = []
    for section, values in data.items():
        if not isinstance(values, dict) or not values:
            continue
        lines.append(f"[{section}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in values.items() if v != []]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
