"""``s2kit report RUN_DIR``: one self-contained HTML page about a finished (or running) batch.

Everything comes from the run directory (:mod:`s2kit.runs`); the scheduler is not asked.

* summary: counts per state and per tile from :func:`s2kit.status.status` (not recounted here),
  and per L1C processing baseline (plan.jsonl x status);
* provenance: the worker's ``provenance/<scene>.json`` (schema ``s2kit-provenance/1``) of every
  done scene; a scene is flagged when its Sen2Cor version, its GIPP *settings* or the image
  sha256 differs from the batch's majority. The GIPP settings are ``gipp.settings_sha256``, the
  digest of every value of the four GIPPs that decides the science, normalised by the worker
  (:func:`s2kit.sen2cor.gipp_science_settings`: the per-task scratch DEM path replaced by
  ``<dem_dir>/<tile>/`` or ``NONE``, Nr_Threads left out: it sets parallelism only), so a
  consistent batch shows no difference and a changed setting (aerosol type, baseline, ...) is
  named. Provenance of an older s2kit has no settings digest: those scenes fall back to the
  GIPP file hashes (``L2A_GIPP.xml`` within the scenes of the same threads and DEM dir; it holds
  the per-task DEM path, so it may differ falsely) and the report says so. Scenes processed
  with ``sen2cor.dem = "none"`` are listed as "no DEM: flat terrain". A done scene without
  readable provenance is listed as "provenance missing" (not counted as a difference: there is
  nothing to compare), its flat-terrain flag taken from the config.json snapshot;
* a routed batch (``sen2cor.route``: several Sen2Cor versions): counts per version, the
  version of every scene (its provenance, else the plan's choice), and the provenance
  comparison made within each version (GIPP settings of two versions differ by design); a
  scene made by another version than the plan chose for it is flagged;
* time per scene: wall time from the state file, Sen2Cor's own seconds from the provenance;
* resources: what the scenes used (:mod:`s2kit.resources`: wall, CPU, peak memory, CPU
  efficiency per tile and overall, core-hours and GB-hours charged, an estimate for what is left);
* failures (failed and stale) with reason, exit code and the tail of the attempt's log;
* a quicklook per produced L2A (:mod:`s2kit.quicklook`, cached in ``RUN_DIR/quicklooks``), or
  "no quicklook: <reason>";
* comparisons with ESA's L2A: every ``RUN_DIR/compare/*.json`` written by ``s2kit compare``.

The page has no script and no external reference (CSP ``default-src 'none'``; images are
``data:`` URIs), so it opens anywhere without a network. :func:`build_report` returns the same
facts as a JSON-able dict (``s2kit report --json``).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .errors import InputError, MetadataError, S2kitError, display_path
from .fsutil import atomic_write_text
from .provenance import Provenance
from .resources import parse_time, run_resources
from .runs import RunDir, writing
from .safe.names import baseline_key
from .status import STATUSES, run_status
from .versions import BASELINE_GATE, version_label

__all__ = [
    "REPORT_SCHEMA",
    "build_report",
    "log_excerpt",
    "provenance_checks",
    "render_html",
    "write_report",
]

REPORT_SCHEMA = "s2kit-report/1"
#: nothing may load but inline CSS and data: images; no script at all
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
LOG_TAIL_LINES = 25
LOG_TAIL_BYTES = 16 * 1024
PER_TASK_GIPP = "L2A_GIPP.xml"
SETTINGS_DIM = "GIPP settings sha256"
NO_DEM_NOTE = "no DEM: flat terrain"  # = s2kit.plan.NO_DEM_NOTE, provenance dem.note
PROVENANCE_MISSING = "provenance missing"
_SHOWN_SETTINGS = 5


# --------------------------------------------------------------------------- helpers


def log_excerpt(path: str | None, lines: int = LOG_TAIL_LINES) -> str | None:
    """The last *lines* lines (at most 16 KB) of a log file; None when it cannot be read."""
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - LOG_TAIL_BYTES))
            data = fh.read()
    except OSError:
        return None
    text = data.decode("utf-8", "replace")
    if size > LOG_TAIL_BYTES:
        text = text.split("\n", 1)[-1]  # drop the partial first line
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _stats(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "total": round(sum(values), 3),
    }


#: a 's2kit compare' JSON is a few kB; --compare names a user path, read through the capped reader
MAX_COMPARE_BYTES = 4 * 1024 * 1024


def _read_comparison(path: Path) -> dict[str, Any] | None:
    """A JSON object from *path*; a FIFO, device or oversized file is refused, never read (issue 12)."""
    from .xmlsafe import read_capped_file

    try:
        data = read_capped_file(path, path, limit=MAX_COMPARE_BYTES, what="JSON comparison file")
    except MetadataError as exc:
        raise InputError(exc.message, path) from None
    except OSError:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


# --------------------------------------------------------------------------- provenance
def snapshot_dem_mode(rd: RunDir) -> str | None:
    """``sen2cor.dem`` ("srtm" / "none") of the run dir's config.json snapshot; None when the
    snapshot is unreadable or has no such key (written before it existed)."""
    try:
        data = rd.config_data()
    except S2kitError:
        return None
    mode = _dict(data.get("sen2cor")).get("dem")
    return mode if mode in ("srtm", "none") else None


def _majority(values: Mapping[str, str]) -> tuple[str, int, bool]:
    """Most common value, its count, and whether another value is as common (a tie: the
    smallest value is taken, so the choice is stable, and the report says it is a tie)."""
    counts = Counter(values.values())
    top = max(counts.values())
    best = sorted(v for v, n in counts.items() if n == top)
    return best[0], top, len(best) > 1


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _settings_difference(mine: Mapping[str, Any], majority: Mapping[str, Any]) -> str:
    """``file:path = value (majority: value)`` for the first settings that differ."""
    keys = sorted(k for k in set(mine) | set(majority) if mine.get(k) != majority.get(k))
    shown = [f"{k} = {mine.get(k, 'missing')} (majority: {majority.get(k, 'missing')})" for k in keys]
    more = f"; +{len(keys) - _SHOWN_SETTINGS} more" if len(keys) > _SHOWN_SETTINGS else ""
    return "; ".join(shown[:_SHOWN_SETTINGS]) + more


def provenance_checks(provenance: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Majority values of the batch and every scene that differs from them.

    Also ``notes`` (how the comparison was made, when it had to fall back) and
    ``flat_terrain`` (scenes whose provenance says ``"dem": {"mode": "none"}``).
    """
    dims: dict[str, dict[str, str]] = {"sen2cor version": {}, "image sha256": {}}
    per_task: dict[str, dict[str, str]] = {}  # group -> scene -> L2A_GIPP.xml hash (old provenance)
    settings: dict[str, Mapping[str, Any]] = {}  # scene -> normalised GIPP settings
    legacy: list[str] = []
    flat: list[str] = []
    for scene, doc in provenance.items():
        prov = Provenance.of(doc)
        sc = prov.sen2cor
        dims["sen2cor version"][scene] = (
            f"{sc.get('version') or '?'} (metadata: {sc.get('version_in_metadata') or '?'})"
        )
        cont = prov.container
        if cont is not None:
            dims["image sha256"][scene] = str(cont.get("sha256") or f"not hashed: {cont.get('note', '?')}")
        else:
            dims["image sha256"][scene] = "none (native runtime)"
        if prov.dem_mode == "none":
            flat.append(scene)
        gipp = prov.gipp
        digest, values = prov.settings_sha256, prov.settings
        if digest is not None and values is not None:
            dims.setdefault(SETTINGS_DIM, {})[scene] = digest
            settings[scene] = values
            continue
        legacy.append(scene)
        for name, file_digest in _dict(gipp.get("files")).items():
            if name == PER_TASK_GIPP:
                group = f"threads {gipp.get('threads')}, DEM dir {prov.dem.get('dir') or 'none'}"
                per_task.setdefault(group, {})[scene] = str(file_digest)
            else:
                dims.setdefault(f"GIPP {name} sha256", {})[scene] = str(file_digest)
    majority: dict[str, Any] = {}
    deviations: list[dict[str, str]] = []
    for dim, values in sorted(dims.items()):
        if not values:
            continue
        value, count, tie = _majority(values)
        majority[dim] = {"value": value, "scenes": count, "of": len(values), "tie": tie}
        for scene, v in sorted(values.items()):
            if v != value:
                shown = v
                if dim == SETTINGS_DIM:
                    reference = next(settings[s] for s, d in sorted(values.items()) if d == value)
                    shown = f"{v[:12]}: {_settings_difference(settings[scene], reference)}"
                deviations.append({"scene": scene, "what": dim, "value": shown, "majority": value})
    for group, values in sorted(per_task.items()):
        dim = f"GIPP {PER_TASK_GIPP} sha256 ({group})"
        value, count, tie = _majority(values)
        majority[dim] = {"value": value, "scenes": count, "of": len(values), "tie": tie}
        for scene, v in sorted(values.items()):
            if v != value:
                deviations.append({"scene": scene, "what": dim, "value": v, "majority": value})
    # old-provenance scenes missing a GIPP file the others have
    names = {k for k in dims if k.startswith("GIPP ") and k != SETTINGS_DIM}
    for dim in sorted(names):
        for scene in sorted(set(legacy) - set(dims[dim])):
            deviations.append(
                {"scene": scene, "what": dim, "value": "missing", "majority": majority[dim]["value"]}
            )
    notes: list[str] = []
    if settings:
        notes.append(
            f"{len(settings)} scene(s) compared by their normalised GIPP settings (gipp.settings_sha256: "
            "per-task DEM path as <dem_dir>/<tile>/, Nr_Threads left out as it sets parallelism only)"
        )
    if legacy:
        notes.append(
            f"{len(legacy)} scene(s) have provenance without gipp.settings_sha256 (an older s2kit): "
            f"fell back to GIPP file hashes, {PER_TASK_GIPP} within the same threads and DEM dir "
            "(it holds the per-task DEM path: differences there may be false)"
        )
    return {
        "majority": majority,
        "deviations": deviations,
        "notes": notes,
        "flat_terrain": sorted(flat),
    }


def _version_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Sen2Cor version -> counts per state of the scenes that have one (plan or provenance)."""
    out: dict[str, Counter[str]] = {}
    for r in rows:
        if r.get("sen2cor"):
            out.setdefault(str(r["sen2cor"]), Counter())[str(r["status"])] += 1
    return {v: {k: c[k] for k in STATUSES if c[k]} for v, c in sorted(out.items(), key=_version_key)}


def _version_key(item: tuple[str, Any]) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in item[0].split("."))


def _gate_deviations(checks: dict[str, Any], provenance: Mapping[str, Provenance]) -> dict[str, Any]:
    """A deviation for every scene made by a Sen2Cor version past its baseline gate (2.9 on an L1C
    >= 04.00 writes no -1000 offset and validates clean), whatever the plan said (a plan.jsonl
    edited to that version agrees with it)."""
    for scene, p in sorted(provenance.items()):
        version = str(p.sen2cor.get("version") or "")
        gate = BASELINE_GATE.get(version_label(version) or "")
        pb = str(p.l1c.get("processing_baseline") or "")
        if gate is not None and re.fullmatch(r"[0-9]{2}\.[0-9]{2}", pb) and baseline_key(pb) >= gate:
            checks["deviations"].append(
                {
                    "scene": scene,
                    "what": f"sen2cor version on L1C baseline {pb} (it ignores the offset of >= "
                    f"{gate[0]:02d}.{gate[1]:02d}; reprocess with 2.10 or later)",
                    "value": version,
                    "majority": "2.10 or later",
                }
            )
    return checks


def _checks_per_version(
    provenance: Mapping[str, Provenance], planned: Mapping[str, str | None]
) -> dict[str, Any]:
    """:func:`provenance_checks`, made within each Sen2Cor version when the plan routed scenes to
    several (the GIPP settings and images of two versions differ by design), plus a deviation for
    every scene made by another version than the plan chose for it (*planned*: scene -> version)."""
    made = {scene: str(p.sen2cor.get("version") or "?") for scene, p in provenance.items()}
    versions = sorted(set(made.values()))
    if len({v for v in planned.values() if v}) <= 1:
        return _gate_deviations(provenance_checks(provenance), provenance)  # one version: as before
    if len(versions) <= 1:
        checks = provenance_checks(provenance)
    else:
        checks = {"majority": {}, "deviations": [], "notes": [], "flat_terrain": []}
        for v in versions:
            part = provenance_checks({sc: p for sc, p in provenance.items() if made[sc] == v})
            tag = f" [Sen2Cor {v}]"
            checks["majority"].update({dim + tag: m for dim, m in part["majority"].items()})
            checks["deviations"] += [{**d, "what": d["what"] + tag} for d in part["deviations"]]
            checks["notes"] += [n + tag for n in part["notes"]]
            checks["flat_terrain"] = sorted({*checks["flat_terrain"], *part["flat_terrain"]})
        counts = ", ".join(f"{v}: {sum(1 for x in made.values() if x == v)}" for v in versions)
        checks["notes"].insert(
            0, f"several Sen2Cor versions ({counts}): compared within each version (sen2cor.route)"
        )
    for scene, version in sorted(made.items()):
        want = planned.get(scene)
        if want and version != want:
            checks["deviations"].append(
                {"scene": scene, "what": "sen2cor version (plan's route)", "value": version, "majority": want}
            )
    return _gate_deviations(checks, provenance)


# --------------------------------------------------------------------------- quicklooks
def _quicklook_job(args: tuple[str, str, int]) -> dict[str, Any]:
    from .quicklook import QuicklookError, cached_quicklook

    l2a, cache, size = args
    try:
        ql = cached_quicklook(l2a, Path(cache), size)
    except QuicklookError as exc:
        return {"ok": False, "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one bad product must not break the report
        return {"ok": False, "reason": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    return {
        "ok": True,
        "method": ql.method,
        "width": ql.width,
        "height": ql.height,
        "png_base64": base64.b64encode(ql.png).decode("ascii"),
    }


def _quicklooks(l2a: Mapping[str, str], cache: Path, size: int, jobs: int) -> dict[str, dict[str, Any]]:
    tasks = [(scene, (path, str(cache), size)) for scene, path in sorted(l2a.items())]
    if jobs <= 1 or len(tasks) < 8:
        return {scene: _quicklook_job(a) for scene, a in tasks}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = pool.map(_quicklook_job, [a for _, a in tasks], chunksize=16)
        return {scene: res for (scene, _), res in zip(tasks, results, strict=True)}


# --------------------------------------------------------------------------- the report data
def build_report(
    run_dir: str | os.PathLike[str],
    *,
    quicklooks: bool = True,
    size: int = 128,
    jobs: int = 1,
    compare_files: Iterable[Path] = (),
) -> dict[str, Any]:
    """Everything the report shows, as a JSON-able dict (schema ``s2kit-report/1``)."""
    rd = RunDir(os.path.abspath(run_dir)).require()
    rep = run_status(None, rd, query=False)
    plan = {e.scene: e for e in rd.read_plan()}
    states = rd.read_states()

    baselines: dict[str, Counter[str]] = {}
    scenes: list[dict[str, Any]] = []
    provenance: dict[str, Provenance] = {}
    missing_prov: list[str] = []
    l2a_dirs: dict[str, str] = {}
    walls: list[float] = []
    sen2cor_secs: list[float] = []
    for s in rep.scenes:
        entry = plan.get(s.scene)
        st = states.get(s.scene)
        bl = (entry.processing_baseline if entry else None) or "?"
        baselines.setdefault(bl, Counter())[s.status] += 1
        row: dict[str, Any] = {
            "scene": s.scene,
            "tile": s.tile,
            "status": s.status,
            "l1c_baseline": bl,
            "sen2cor": s.sen2cor,  # the plan's choice; the provenance's version once done
            "attempt": s.attempt,
            "started": st.started if st else None,
            "ended": st.ended if st else None,
            "wall_seconds": None,
            "sen2cor_seconds": None,
            "l2a": None,
        }
        t0, t1 = parse_time(row["started"]), parse_time(row["ended"])
        if t0 and t1 and s.status in ("done", "failed"):
            row["wall_seconds"] = round((t1 - t0).total_seconds(), 3)
            walls.append(row["wall_seconds"])
        if s.status == "done" and st is not None and st.state == "done":
            row["l2a"] = st.l2a
            prov = Provenance.read(rd.provenance_file(s.scene))
            if prov is None:
                missing_prov.append(s.scene)
            else:
                provenance[s.scene] = prov
                row["sen2cor"] = str(prov.sen2cor.get("version") or "") or row["sen2cor"]
                if prov.dem_mode == "none":
                    row["dem"] = NO_DEM_NOTE
                seconds = prov.sen2cor_seconds
                if seconds is not None:
                    row["sen2cor_seconds"] = seconds
                    sen2cor_secs.append(seconds)
            if st.l2a:
                l2a_dirs[s.scene] = st.l2a
        scenes.append(row)

    checks = _checks_per_version(provenance, {sc: e.sen2cor for sc, e in plan.items() if e.sen2cor})
    checks["scenes_with_provenance"] = len(provenance)
    # done in the run dir, provenance missing or unreadable: said as such, not counted as a
    # difference (nothing to compare); flat terrain from the config.json snapshot
    checks["missing"] = missing_prov
    if missing_prov:
        dem_mode = snapshot_dem_mode(rd)
        checks["missing_dem_mode"] = dem_mode
        for row in scenes:
            if row["scene"] in missing_prov:
                row["provenance"] = PROVENANCE_MISSING
                if dem_mode == "none":
                    row["dem"] = NO_DEM_NOTE
        if dem_mode == "none":
            checks["flat_terrain"] = sorted({*checks["flat_terrain"], *missing_prov})

    failures = []
    for s in rep.by_status("failed", "stale"):
        failures.append(
            {
                "scene": s.scene,
                "status": s.status,
                "tile": s.tile,
                "reason": s.reason,
                "attempt": s.attempt,
                "exit_code": s.exit_code,
                "log": s.log,
                "log_excerpt": log_excerpt(s.log),
            }
        )

    qls: dict[str, dict[str, Any]] = {}
    if quicklooks and l2a_dirs:
        qls = _quicklooks(l2a_dirs, rd.path / "quicklooks", size, jobs)
    for row in scenes:
        if row["scene"] in qls:
            row["quicklook"] = qls[row["scene"]]

    comparisons = []
    files = sorted((rd.path / "compare").glob("*.json")) + [Path(f) for f in compare_files]
    for f in dict.fromkeys(files):
        doc = _read_comparison(f)
        if doc is None or doc.get("schema") != "s2kit-compare/1":
            raise InputError("expected a JSON comparison written by 's2kit compare', found something else", f)
        doc = dict(doc)
        doc["file"] = str(f)
        comparisons.append(doc)

    return {
        "schema": REPORT_SCHEMA,
        "run_dir": str(rd.path),
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "s2kit_version": __version__,
        "total": len(rep.scenes),
        "counts": rep.counts,
        "tiles": rep.tiles,
        "l1c_baselines": {bl: {k: c[k] for k in STATUSES if c[k]} for bl, c in sorted(baselines.items())},
        "sen2cor_versions": _version_counts(scenes),
        "times": {"wall_seconds": _stats(walls), "sen2cor_seconds": _stats(sen2cor_secs)},
        "resources": run_resources(rd, report=rep).to_dict(),
        "provenance": checks,
        "failures": failures,
        "scenes": scenes,
        "comparisons": comparisons,
    }


# --------------------------------------------------------------------------- HTML
_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2329;
background:#f6f7f9}
header{background:#17324d;color:#fff;padding:16px 24px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;opacity:.85}main{padding:8px 24px 40px;max-width:1400px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:12px 16px;margin:16px 0}
h2{font-size:17px;margin:0 0 8px}table{border-collapse:collapse;margin:4px 0}
th,td{border:1px solid #dde2e8;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.badges span{display:inline-block;margin:2px 6px 2px 0;padding:3px 10px;border-radius:12px;background:#eef1f5}
.s-done{color:#135f1f}.s-failed,.s-stale{color:#a3161b}.s-skipped{color:#6b7280}
pre{background:#111820;color:#e6edf3;padding:8px;overflow:auto;max-height:22em;font-size:12px;margin:4px 0}
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:150px;border:1px solid #dde2e8;border-radius:4px;padding:6px;background:#fafbfc}
figure img{display:block;max-width:100%;image-rendering:auto;background:#ccc}
figcaption{font-size:11px;word-break:break-all}
.noql{height:120px;display:flex;align-items:center;justify-content:center;text-align:center;
font-size:11px;color:#6b5b00;background:#fff8db;padding:4px;word-break:break-word}
.ok{color:#135f1f}.warn{color:#a3161b}small{color:#5b6570}
details summary{cursor:pointer}
"""


def _e(value: Any) -> str:
    return html.escape("-" if value is None else str(value))


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            cls = ' class="n"' if i in numeric else ""
            out.append(f"<td{cls}>{_e(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _histogram_svg(values: Sequence[float], bins: int = 20) -> str:
    if len(values) < 2:
        return ""
    lo, hi = min(values), max(values)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    top = max(counts)
    bars = []
    for i, c in enumerate(counts):
        h = 80 * c / top
        bars.append(
            f'<rect x="{i * 20 + 2}" y="{90 - h:.1f}" width="16" height="{h:.1f}" fill="#3f6e99">'
            f"<title>{lo + i * width:.1f}-{lo + (i + 1) * width:.1f} s: {c}</title></rect>"
        )
    return (
        f'<svg role="img" aria-label="wall time histogram" width="{bins * 20 + 4}" height="110" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(bars)}'
        f'<text x="2" y="105" font-size="10">{lo:.1f} s</text>'
        f'<text x="{bins * 20 - 40}" y="105" font-size="10">{hi:.1f} s</text></svg>'
    )


def _triple(stat: Mapping[str, Any] | None, scale: float, digits: int) -> str:
    if not stat:
        return "-"
    return " / ".join(f"{stat[k] / scale:.{digits}f}" for k in ("median", "p95", "max"))


def _resources_html(r: Mapping[str, Any] | None) -> str:
    """The Resources section: what the done scenes used (s2kit.resources), one small table."""
    if not r:
        return "<p>No resources facts in this report.</p>"
    parts = []
    missing = r.get("done_without_resources") or 0
    overall = r.get("overall")
    if overall:
        rows = [["all", overall]]
        groups = r.get("groups") or {}
        if len(groups) > 1:
            rows += [[label, g] for label, g in groups.items()]
        rows += [[f"tile {t}", g] for t, g in (r.get("tiles") or {}).items()]
        parts.append(
            _table(
                ["group", "done", "wall min", "CPU min", "peak GB", "CPU efficiency", "busy cores"],
                (
                    [
                        name,
                        g["scenes"],
                        _triple(g["wall_s"], 60, 1),
                        _triple(g["cpu_s"], 60, 1),
                        _triple(g["peak_mb"], 1024, 2),
                        "-" if g["cpu_efficiency"] is None else f"{g['cpu_efficiency'] * 100:.0f} %",
                        g["busy_cores"],
                    ]
                    for name, g in rows
                ),
                numeric={1, 6},
            )
        )
        parts.append(f"<p><small>median / p95 / max; percentiles {_e(r['percentiles'])}</small></p>")
    else:
        parts.append("<p>No done scene with a resources record yet.</p>")
    if missing:
        parts.append(f"<p>{missing} done scene(s) without a resources record (an older s2kit).</p>")
    if r.get("ignored_values"):
        parts.append(
            f'<p class="warn">{r["ignored_values"]} value(s) ignored (not a finite number in range).</p>'
        )
    ch = r.get("charged") or {}
    if ch.get("attempts"):
        parts.append(
            f"<p>charged: {ch['core_hours']:.2f} core-hours, {ch['gb_hours_reserved']:.2f} GB-hours reserved "
            f"for {ch['attempts']} attempt(s); used {ch['cpu_hours_used']:.2f} CPU-hours, "
            f"{ch['gb_hours_used']:.2f} GB-hours at peak <small>({_e(ch['what'])})</small></p>"
        )
    left = r.get("left") or {}
    if left.get("estimate"):
        parts.append(f"<p>left: {left['core_hours']:.2f} core-hours <small>({_e(left['what'])})</small></p>")
    kinds = r.get("failure_kinds") or {}
    if kinds:
        shown = ", ".join(f"{n} {k}" for k, n in kinds.items())
        parts.append(f'<p class="warn">failed for size: {_e(shown)} (<code>s2kit advise</code>)</p>')
    return "".join(parts)


def _quicklook_cell(row: Mapping[str, Any]) -> str:
    ql = row.get("quicklook") or {}
    name = Path(str(row.get("l2a") or row["scene"])).name
    if ql.get("ok"):
        img = (
            f'<img alt="quicklook {_e(name)}" width="{ql["width"]}" height="{ql["height"]}" '
            f'src="data:image/png;base64,{ql["png_base64"]}">'
        )
        cap = f"{_e(name)}<br><small>{_e(ql['method'])}</small>"
    else:
        img = f'<div class="noql">no quicklook: {_e(ql.get("reason") or "not made")}</div>'
        cap = _e(name)
    return f'<figure data-scene="{_e(row["scene"])}">{img}<figcaption>{cap}</figcaption></figure>'


def _comparison_html(doc: Mapping[str, Any]) -> str:
    loc, off = doc["local"], doc["official"]
    rows = []
    for band, s in doc["bands"].items():
        if not s.get("pixels"):
            rows.append([band, 0, *["-"] * 9])
            continue
        rows.append(
            [band, s["pixels"], s["mean"], s["std"], s["mean_abs"], s["rmse"], s["p05"], s["p50"], s["p95"],
             s["pearson_r"], f"{s['local_mean']} / {s['official_mean']}"]
        )  # fmt: skip
    parts = [
        f"<h3>{_e(Path(str(loc['path'])).name)} <small>vs</small> {_e(Path(str(off['path'])).name)}</h3>",
        f"<p>local: PB {_e(loc['processing_baseline'])}, Sen2Cor {_e(loc['sen2cor_version'])}, "
        f"BOA quantification {_e(loc['boa_quantification_value'])}, offset "
        f"{_e(_offset_text(loc.get('boa_add_offset')))}; official: PB {_e(off['processing_baseline'])}, "
        f"Sen2Cor {_e(off['sen2cor_version'])}, quantification {_e(off['boa_quantification_value'])}, "
        f"offset {_e(_offset_text(off.get('boa_add_offset')))}. Difference local - official in BOA "
        f"reflectance at {_e(doc['resolution_m'])} m.</p>",
        _table(
            [
                "band",
                "pixels",
                "mean",
                "std",
                "mean |d|",
                "rmse",
                "p05",
                "p50",
                "p95",
                "r",
                "mean local / official",
            ],
            rows,
            numeric=set(range(1, 10)),
        ),
    ]
    scl = doc.get("scl")
    if scl:
        agree = f"{scl['agreement'] * 100:.2f} %" if scl.get("agreement") is not None else "-"
        parts.append(
            f"<p>SCL at {_e(scl['resolution_m'])} m: <b>{_e(agree)}</b> of {_e(scl['valid_pixels'])} "
            "pixels classified in both agree.</p>"
        )
        parts.append(
            _table(
                ["class", "local", "official", "both", "IoU"],
                (
                    [f"{k} {c['name']}", c["local"], c["official"], c["both"], c["iou"]]
                    for k, c in scl["classes"].items()
                ),
                numeric={1, 2, 3, 4},
            )
        )
    for w in doc.get("warnings") or []:
        parts.append(f'<p class="warn">warning: {_e(w)}</p>')
    parts.append(f"<p><small>{_e(doc.get('file'))}</small></p>")
    return "".join(parts)


def _offset_text(offsets: Mapping[str, float] | None) -> str:
    if not offsets:
        return "none"
    vals = set(offsets.values())
    return f"{vals.pop():g}" if len(vals) == 1 else ", ".join(f"{k} {v:g}" for k, v in offsets.items())


def render_html(data: Mapping[str, Any]) -> str:
    """The report page of :func:`build_report`'s data: one file, no script, no network."""
    counts = data["counts"]
    badges = "".join(
        f'<span class="s-{k}">{_e(k)}: <b>{counts[k]}</b></span>' for k in STATUSES if counts.get(k)
    )
    tiles = _table(
        ["tile", *STATUSES],
        ([t, *(c.get(k, 0) for k in STATUSES)] for t, c in data["tiles"].items()),
        numeric=set(range(1, len(STATUSES) + 1)),
    )
    baselines = _table(
        ["L1C baseline", *STATUSES],
        ([b, *(c.get(k, 0) for k in STATUSES)] for b, c in data["l1c_baselines"].items()),
        numeric=set(range(1, len(STATUSES) + 1)),
    )
    versions = data.get("sen2cor_versions") or {}
    if len(versions) > 1:  # a routed batch: one table row per Sen2Cor version
        baselines += "<h3>Per Sen2Cor version (sen2cor.route)</h3>" + _table(
            ["Sen2Cor", *STATUSES],
            ([v, *(c.get(k, 0) for k in STATUSES)] for v, c in versions.items()),
            numeric=set(range(1, len(STATUSES) + 1)),
        )
    prov = data["provenance"]
    maj_rows = [
        [dim, m["value"], f"{m['scenes']} of {m['of']}" + (" (tie: no clear majority)" if m["tie"] else "")]
        for dim, m in prov["majority"].items()
    ]
    if prov["deviations"]:
        dev = (
            f'<p class="warn">{len(prov["deviations"])} difference(s) from the batch majority:</p>'
            + _table(
                ["scene", "what", "value", "majority"],
                ([d["scene"], d["what"], d["value"], d["majority"]] for d in prov["deviations"]),
            )
        )
    else:
        dev = (
            f'<p class="ok">All {prov["scenes_with_provenance"]} produced scene(s) with provenance share '
            "the majority Sen2Cor version, GIPP settings and image digest.</p>"
        )
    missing = prov.get("missing") or []
    if missing:
        dem_mode = prov.get("missing_dem_mode")
        dev += (
            f'<p class="warn">{len(missing)} done scene(s) with {PROVENANCE_MISSING} (no readable '
            f"provenance/&lt;scene&gt;.json; not compared; DEM from config.json: "
            f"{_e(f'sen2cor.dem = {dem_mode}' if dem_mode else 'unknown')}): {_e(', '.join(missing))}</p>"
        )
    flat = prov.get("flat_terrain") or []
    if flat:
        dev += (
            f'<p class="warn">{len(flat)} scene(s) with {NO_DEM_NOTE} (sen2cor.dem = "none"): '
            f"{_e(', '.join(flat))}</p>"
        )
    dev += "".join(f"<p><small>{_e(n)}</small></p>" for n in prov.get("notes") or [])
    times = data["times"]
    wall = times.get("wall_seconds")
    secs = [r["wall_seconds"] for r in data["scenes"] if r.get("wall_seconds") is not None]
    time_rows = sorted(
        (r for r in data["scenes"] if r.get("started")),
        key=lambda r: -(r.get("wall_seconds") or 0.0),
    )
    time_summary = (
        f"<p>wall time per scene: min {wall['min']} s, median {wall['median']} s, max {wall['max']} s, "
        f"total {wall['total']} s</p>"
        if wall
        else "<p>no finished scene with recorded times</p>"
    )
    times_table = _table(
        ["scene", "tile", "state", "attempt", "started", "wall s", "Sen2Cor s"],
        (
            [r["scene"], r["tile"], r["status"], r["attempt"], r["started"], r["wall_seconds"],
             r["sen2cor_seconds"]]
            for r in time_rows
        ),
        numeric={3, 5, 6},
    )  # fmt: skip
    fail_parts = []
    for f in data["failures"]:
        excerpt = (
            f"<pre>{_e(f['log_excerpt'])}</pre>"
            if f.get("log_excerpt")
            else "<p><small>no log to show</small></p>"
        )
        fail_parts.append(
            f'<div class="failure"><h3 class="s-{_e(f["status"])}">{_e(f["scene"])}</h3>'
            f"<p>{_e(f['status'])}, attempt {_e(f['attempt'])}, exit code {_e(f['exit_code'])}: "
            f"<b>{_e(f['reason'])}</b><br><small>log: {_e(f['log'])}</small></p>{excerpt}</div>"
        )
    failures = "".join(fail_parts) or '<p class="ok">No failed or stale scene.</p>'
    ql_rows = [r for r in data["scenes"] if "quicklook" in r]
    quick = (
        '<div class="grid">' + "".join(_quicklook_cell(r) for r in ql_rows) + "</div>"
        if ql_rows
        else "<p>No produced L2A to show (or quicklooks were not asked for).</p>"
    )
    comps = "".join(_comparison_html(c) for c in data["comparisons"]) or (
        "<p>No comparison yet: run <code>s2kit compare LOCAL_L2A OFFICIAL_L2A --out "
        f"{_e(display_path(Path(data['run_dir']) / 'compare' / 'NAME.json'))}</code>.</p>"
    )
    title = f"s2kit report: {Path(data['run_dir']).name}"
    majority_table = _table(["what", "majority value", "scenes"], maj_rows)
    n_ok = sum(1 for r in ql_rows if r["quicklook"].get("ok"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body><header><h1>{_e(title)}</h1>
<p>{_e(data["run_dir"])} &middot; {data["total"]} scene(s) &middot; generated {_e(data["generated"])}
by s2kit {_e(data["s2kit_version"])}</p></header><main>
<section id="summary"><h2>Batch summary</h2><div class="badges">{badges or "no scene planned"}</div>
<h3>Per tile</h3>{tiles}<h3>Per L1C processing baseline</h3>{baselines}</section>
<section id="provenance"><h2>Provenance consistency</h2>{dev}
<details><summary>Batch majority values</summary>{majority_table}</details>
</section>
<section id="failures"><h2>Failures ({len(data["failures"])})</h2>{failures}</section>
<section id="times"><h2>Time per scene</h2>{time_summary}{_histogram_svg(secs)}
<details><summary>All scenes ({len(time_rows)})</summary>{times_table}</details></section>
<section id="resources"><h2>Resources</h2>{_resources_html(data.get("resources"))}</section>
<section id="quicklooks"><h2>Quicklooks ({n_ok} of {len(ql_rows)})</h2>
{quick}</section>
<section id="comparison"><h2>Comparison with ESA's L2A</h2>{comps}</section>
</main></body></html>
"""


@dataclass
class ReportResult:
    html: Path
    data: dict[str, Any]


def write_report(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    quicklooks: bool = True,
    size: int = 128,
    jobs: int = 1,
    compare_files: Iterable[Path] = (),
) -> ReportResult:
    """Build the report of *run_dir* and write its HTML atomically (default ``RUN_DIR/report.html``)."""
    data = build_report(run_dir, quicklooks=quicklooks, size=size, jobs=jobs, compare_files=compare_files)
    target = Path(out) if out is not None else Path(data["run_dir"]) / "report.html"
    with writing(target, "a writable run dir" if out is None else "a writable report file"):
        atomic_write_text(target, render_html(data))
    data["html"] = str(target)
    return ReportResult(target, data)
