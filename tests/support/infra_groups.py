"""Infrastructure the suite can use but a plain machine lacks, as named GROUPS (issue 15).

* :func:`require_tool` -- a Debian tool a test needs: skip with the reason on a plain machine,
  fail in CI (``S2KIT_CI=1``). Nothing is ever installed from a test: ``.ci/run`` and
  ``make test-infra`` install the infrastructure (tests/infra/install.sh).
* :func:`skip_group` -- which group a skipped test belongs to (its marker, else its reason).
* :func:`pytest_terminal_summary` -- at the end of a run, one line per skipped group and the one
  command that runs them (``make test-infra``).
* :func:`run_with_progress` -- run a long command (the ~6 min image build) and print progress
  to the terminal whatever the capture mode: a line per build stage and a heartbeat.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

import pytest

INFRA_COMMAND = "make test-infra"

# group -> (what it is, markers that put a test in it, words of a skip reason that do)
GROUPS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "slurm": ("a real Slurm controller", ("slurm",), ("slurm",)),
    "apptainer": ("real Apptainer (the image build)", ("apptainer",), ("apptainer",)),
    "image-tools": ("makeself and shellcheck", (), ("makeself", "shellcheck")),
    "gdal": ("the GDAL command-line tools", (), ("gdal",)),
    "chromium": ("headless chromium (the HTML report)", (), ("chromium",)),
}


def in_ci() -> bool:
    return os.environ.get("S2KIT_CI") == "1"


def require_tool(tool: str, package: str | None = None) -> str:
    """The path of *tool*; skip (fail in CI) with how to get it when it is not installed."""
    path = shutil.which(tool)
    if path is None:
        msg = f"{tool} is not installed (Debian package {package or tool}; `{INFRA_COMMAND}` installs it)"
        if in_ci():
            pytest.fail(f"required in CI: {msg}")
        pytest.skip(msg)
    return path


def skip_group(markers: set[str], reason: str) -> str | None:
    """The infrastructure group of a skipped test, or None for an ordinary skip."""
    for name, (_what, marks, _words) in GROUPS.items():
        if markers & set(marks):
            return name
    low = reason.lower()
    for name, (_what, _marks, words) in GROUPS.items():
        if any(w in low for w in words):
            return name
    return None


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Generator[None]:
    """After the short summary (-ra), just above the final counts: the skipped groups and the
    command that runs them."""
    result = yield
    _skipped_groups(terminalreporter)
    return result


def _skipped_groups(terminalreporter: pytest.TerminalReporter) -> None:
    counts: dict[str, int] = {}
    other = 0
    for report in terminalreporter.stats.get("skipped", []):
        markers = set(getattr(report, "keywords", {}) or {})
        group = skip_group(markers, _reason(report))
        if group is None:
            other += 1
        else:
            counts[group] = counts.get(group, 0) + 1
    if not counts:
        return
    terminalreporter.section("skipped infrastructure tests", sep="-")
    for name, n in sorted(counts.items()):
        terminalreporter.write_line(f"  {name}: {n} test(s) skipped (needs {GROUPS[name][0]})")
    if other:
        terminalreporter.write_line(f"  other: {other} test(s) skipped (see the reasons above)")
    who = "" if os.geteuid() == 0 else "as root (sudo) "
    terminalreporter.write_line(
        f"run them {who}with: {INFRA_COMMAND}   (installs them like .ci/run; in CI, S2KIT_CI=1 makes them required)"
    )


# --------------------------------------------------------------------------- progress
def say(config: pytest.Config, line: str) -> None:
    """One line on the terminal now, even while pytest captures output (with or without -s)."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    capman = config.pluginmanager.getplugin("capturemanager")
    if reporter is None:
        return
    if capman is not None:
        with capman.global_and_fixture_disabled():
            reporter.write_line(line)
    else:
        reporter.write_line(line)


@dataclass
class Progress:
    stdout: str
    stderr: str
    returncode: int
    seconds: float
    lines: list[str] = field(default_factory=list)  # what was printed as progress


def run_with_progress(
    argv: Sequence[str],
    config: pytest.Config,
    label: str,
    *,
    stage_prefixes: tuple[str, ...] = ("INFO:", "s2kit: building", "+ "),
    every: float = 30.0,
    timeout: float = 1500.0,
    cwd: str | os.PathLike[str] | None = None,
) -> Progress:
    """Run *argv*; print each stage line of its stderr and a heartbeat every *every* seconds."""
    printed: list[str] = []

    def show(line: str) -> None:
        printed.append(line)
        say(config, line)

    start = time.monotonic()
    proc = subprocess.Popen(
        list(argv), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
    )
    out_chunks: list[str] = []
    err_lines: list[str] = []
    stages: queue.Queue[str] = queue.Queue()  # printed by this thread only: the terminal is not thread-safe

    def read_out() -> None:
        assert proc.stdout is not None
        out_chunks.append(proc.stdout.read())

    def read_err() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            err_lines.append(raw)
            line = raw.rstrip("\n")
            if line.startswith(stage_prefixes):
                stages.put(f"{label}: {time.monotonic() - start:4.0f} s  {line[:160]}")

    def drain() -> None:
        while True:
            try:
                show(stages.get_nowait())
            except queue.Empty:
                return

    threads = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for t in threads:
        t.start()
    show(f"{label}: started (a line per stage, else every {every:.0f} s): {' '.join(argv)[:200]}")
    next_beat = start + every
    while proc.poll() is None:
        now = time.monotonic()
        if now - start > timeout:
            proc.kill()
            break
        drain()
        if now >= next_beat:
            last = err_lines[-1].rstrip() if err_lines else ""
            show(f"{label}: {now - start:4.0f} s  still running; last line: {last[:120]}")
            next_beat += every
        time.sleep(min(0.2, every / 4))
    proc.wait()
    for t in threads:
        t.join()
    drain()
    seconds = time.monotonic() - start
    show(f"{label}: finished in {seconds:.0f} s (exit {proc.returncode})")
    return Progress("".join(out_chunks), "".join(err_lines), proc.returncode, seconds, printed)
