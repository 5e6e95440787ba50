"""CLI options: numbers out of range and control characters are refused at parse, in one line.

Issue 12, findings 4 and 11 (hostile review): ``fetch --timeout nan`` was an internal error (exit
70), ``status --watch --interval inf`` an OverflowError, ``report --thumb-size -5`` exited 0 with
every quicklook failed; ``fetch --out $'a\\nb'`` and ``plan --run-dir`` with a newline were
accepted; a newline in XDG_STATE_HOME or in a validated path split a line.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from s2kit import cli, safe
from s2kit.text import escaped
from s2kit.validate import Finding, ProductReport, ValidationReport, format_report


def _main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> tuple[int, list[str]]:
    monkeypatch.setattr("sys.argv", ["s2kit", *args])
    monkeypatch.delenv("S2KIT_DEBUG", raising=False)
    with pytest.raises(SystemExit) as info:
        cli.main()
    code = info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err.splitlines()


def _fetch(tmp: Path, *extra: str) -> list[str]:
    return [
        "fetch",
        "--tile",
        "17SQV",
        "--start",
        "2021-06-01",
        "--end",
        "2021-06-02",
        "--out",
        str(tmp / "l1c"),
        *extra,
    ]


NUMBERS = [
    ("fetch", "--timeout", ["nan", "inf", "1e308", "0", "-1"]),
    ("dem", "--timeout", ["nan", "inf", "1e308", "0", "-1"]),
    ("status", "--interval", ["nan", "inf", "1e308", "0", "-5"]),
    ("report", "--thumb-size", ["-5", "0", "7", "999999999"]),
    ("report", "--jobs", ["0", "-1", "100000"]),
    ("fetch", "--jobs", ["0", "-3"]),
    ("fetch", "--retries", ["-1", "1000"]),
    ("dem", "--margin-m", ["nan", "-1", "inf"]),
]


def _command(tmp: Path, cmd: str, option: str, value: str) -> list[str]:
    if cmd == "fetch":
        return _fetch(tmp, option, value)
    if cmd == "dem":
        return ["dem", "prepare", "--tile", "17SQV", "--out", str(tmp / "dem"), option, value]
    if cmd == "status":
        return ["status", "--run-dir", str(tmp / "run"), "--watch", option, value]
    return ["report", str(tmp / "run"), option, value]


@pytest.mark.parametrize(("cmd", "option", "value"), [(c, o, v) for c, o, values in NUMBERS for v in values])
def test_number_option_out_of_range_or_nan_is_refused_at_parse(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cmd: str,
    option: str,
    value: str,
) -> None:
    code, err = _main(monkeypatch, capsys, _command(tmp_path, cmd, option, value))
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith(f"s2kit: error: expected {option} "), err
    number = float(value) if option in ("--timeout", "--interval", "--margin-m") else int(value)
    finite = "finite, " if isinstance(number, float) else ""
    assert err[0].startswith(f"s2kit: error: expected {option} {finite}")
    assert err[0].endswith(f", found {number}")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    "args",
    [
        ["fetch", "--tile", "17SQV", "--start", "2021-06-01", "--end", "2021-06-02", "--out", "{d}/a\nb"],
        ["dem", "prepare", "--tile", "17SQV", "--out", "{d}/a\nb"],
        ["plan", "--config", "{d}/s2kit.toml", "--run-dir", "{d}/r\ntouch PWNED #"],
        ["gipp", "render", "--out", "{d}/cfg", "--dem-dir", "{d}/dem\x1b[31m"],
        ["report", "{d}/run", "--out", "{d}/r\u2028.html"],
    ],
    ids=["fetch-out", "dem-out", "plan-run-dir", "gipp-dem-dir", "report-out"],
)
def test_control_character_in_path_option_is_refused_at_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, err = _main(monkeypatch, capsys, [a.replace("{d}", str(tmp_path)) for a in args])
    assert code == 2, err
    assert len(err) == 1 and "expected no control characters, found" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


def test_crash_line_with_newline_in_xdg_state_home_stays_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state\nsplit"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def boom(path: object) -> dict[str, object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(safe, "inspect_path", boom)
    code, err = _main(monkeypatch, capsys, ["inspect", str(tmp_path)])
    assert code == 70 and len(err) == 1, err
    assert "state\\nsplit" in err[0]
    assert (tmp_path / "state\nsplit" / "s2kit").is_dir()  # the log is where the line says


def test_validate_finding_line_with_newline_in_path_stays_one_line() -> None:
    path = "/data/l2a/a\nFAKE OK line.SAFE"
    finding = Finding("unparseable-metadata", "error", "expected x\nfound y", path)
    report = ValidationReport(products=[ProductReport(path=path, findings=[finding])])
    text = format_report(report)
    assert len(text.splitlines()) == 3, text
    assert "a\\nFAKE OK line.SAFE" in text and escaped("x\ny") == "x\\ny"


def test_hostile_dir_without_control_characters_is_accepted(
    hostile_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = hostile_dir / "cfg"
    monkeypatch.setattr("sys.argv", ["s2kit", "gipp", "render", "--out", str(out)])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code in (0, None), capsys.readouterr().err
    assert os.path.isdir(out)
