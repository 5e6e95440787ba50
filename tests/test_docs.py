"""The documentation: short README, current transcripts, a reference that covers the code,
and a site that builds with ``mkdocs build --strict`` (issue 15 item 7)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
SCRIPTS = REPO / "scripts" / "docs"
sys.path.insert(0, str(SCRIPTS))

import reference  # noqa: E402
import transcripts  # noqa: E402

FENCE_RE = re.compile(r"(?m)^```(\w*)\n")


def _doc_texts() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]}


def test_readme_is_short_under_8kb_and_points_to_demo_and_docs() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) < 8 * 1024
    for must in ("make test", "make batch", "make demo", "docs/index.md", "docs/tutorial/slurm.md"):
        assert must in text, must


def test_readme_relative_links_exist() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    links = [t for t in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text) if "://" not in t]
    assert links
    missing = [t for t in links if not (REPO / t).exists()]
    assert missing == []


def test_transcripts_no_longer_matching_the_code_fail() -> None:
    """Every ``<!-- transcript: NAME -->`` block equals what its commands print today."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "transcripts.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr


def test_stale_transcript_block_is_detected_and_rewritten() -> None:
    page = "intro\n<!-- transcript: demo-x -->\n```console\n$ old output\n```\nafter\n"
    assert transcripts.marked(page) == ["demo-x"]
    new = transcripts.rewrite(page, {"demo-x": "$ s2kit x\nnew\n"})
    assert new == "intro\n<!-- transcript: demo-x -->\n```console\n$ s2kit x\nnew\n```\nafter\n"


def test_transcript_normalisation_hides_tmp_ports_jobs_and_times(tmp_path: Path) -> None:
    raw = (
        f"plan: written to {tmp_path}/run/plan.jsonl\n"
        "fetch --base-url http://127.0.0.1:46071\n"
        "  local vm:24159:1795624223011: batch all\n"
        "preflight: disk: 0.0 GB planned output, 78.4 GB free at x\n"
        "2.6 MB transferred in 0.3 s\n"
    )
    out = transcripts.normalise(raw, tmp_path, [])
    assert str(tmp_path) not in out and "/tmp/demo/run/plan.jsonl" in out
    assert "127.0.0.1:PORT" in out and "HOST:PID:TIME" in out
    assert "N GB free" in out and "transferred in T s" in out


def test_every_console_block_is_a_transcript_or_says_why_not() -> None:
    """Output shown to readers is regenerated, or marked ``<!-- static: why -->``."""
    unmarked = []
    for path, text in _doc_texts().items():
        for m in FENCE_RE.finditer(text):
            if m[1] != "console":
                continue
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            if not re.fullmatch(r"<!-- (transcript: [a-z0-9-]+|static: .+) -->", before):
                line = text.count("\n", 0, m.start()) + 1
                unmarked.append(f"{path.relative_to(REPO)}:{line}")
    assert unmarked == []


def test_cli_reference_has_every_command_and_option() -> None:
    import typer

    from s2kit.cli import app

    text = reference.cli_markdown()
    root = typer.main.get_command(app)

    def walk(group: object, prefix: str) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        for name, cmd in getattr(group, "commands", {}).items():
            out.append((f"{prefix} {name}", cmd))
            out.extend(walk(cmd, f"{prefix} {name}"))
        return out

    commands = walk(root, "s2kit")
    assert len(commands) >= 20
    for path, cmd in commands:
        assert f"## `{path}`" in text, path
        section = text.split(f"## `{path}`", 1)[1].split("\n## ", 1)[0]
        for param in getattr(cmd, "params", []):
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert f"{opt}" in section, (path, opt)


def test_config_reference_has_every_key_with_type_default_and_meaning() -> None:
    from s2kit.config import BatchConfig

    text = reference.config_markdown()
    keys = reference.config_keys()
    sections = {s for s, _, _ in keys}
    assert sections == {
        name
        for name, f in BatchConfig.model_fields.items()
        if isinstance(f.annotation, type) and name != "source"
    }
    for section, key, _field in keys:
        assert f"## `[{section}]`" in text
        row = next(line for line in text.splitlines() if line.startswith(f"| `{key}` |"))
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 4 and all(cells), row
        assert "no description" not in cells[3], f"{section}.{key} has no meaning"


def test_codes_reference_lists_every_error_class_and_worker_exit_code() -> None:
    import s2kit.worker as worker

    text = reference.codes_markdown()
    for cls in reference.error_classes():
        assert f"`{cls.__module__}.{cls.__name__}`" in text
    for name, value in vars(worker).items():
        if name.startswith("EXIT_"):
            assert f"| {value} | `s2kit.worker.{name}` |" in text
    for reason in worker.RETRYABLE:
        assert f"| `{reason}` | yes |" in text
    assert all(meaning for _, meaning, _ in reference.worker_reasons())
    skips = dict(reference.plan_reasons())
    assert {"duplicate", "baseline-gate", "corrupt", "not-l1c"} <= skips.keys()
    assert "04.00" in skips["baseline-gate"] and all(skips.values())


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        if os.environ.get("S2KIT_CI") == "1":
            pytest.fail("required in CI: mkdocs and mkdocs-material (pip install -e '.[docs]')")
        pytest.skip("mkdocs / mkdocs-material not installed (make docs installs the docs extra)")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "s2kit dem prepare" in cli and "s2kit fetch" in cli
    assert (site / "reference" / "config" / "index.html").is_file()
