"""Tracebacks never reach a user: every failure of the ``s2kit`` entry point is one stderr line.

In-process cases call :func:`s2kit.cli.main` (the console-script entry point) with a
library function monkeypatched to fail; subprocess cases run the real console script
on inputs that fail naturally.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from s2kit import cli, safe
from s2kit.errors import InputError
from tests.support.cli_runs import one_error_line, run_exe
from tests.support.safe_trees import build_l2a_tree

INTERNAL_RE = re.compile(r"s2kit: internal error: (?P<what>.*); details in (?P<log>/.*)")


def _run_main(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> tuple[int, str, list[str]]:
    """Run cli.main() with *args*; return (exit code, stdout, stderr lines)."""
    monkeypatch.setattr("sys.argv", ["s2kit", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err.splitlines()


def _failing_inspect(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def boom(path: object) -> dict[str, object]:
        raise exc

    monkeypatch.setattr(safe, "inspect_path", boom)


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.delenv("S2KIT_DEBUG", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return state


def test_unexpected_exception_is_one_line_exit_70_and_a_crash_log(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state_home: Path, tmp_path: Path
) -> None:
    _failing_inspect(monkeypatch, RuntimeError("boom in the library\nsecond line"))
    code, out, err = _run_main(monkeypatch, capsys, ["inspect", str(tmp_path)])
    assert code == cli.EX_SOFTWARE == 70
    assert out == ""
    assert len(err) == 1, err
    m = INTERNAL_RE.fullmatch(err[0])
    assert m, err[0]
    assert m["what"] == "RuntimeError: boom in the library"
    log = Path(m["log"])
    assert log.parent == state_home / "s2kit"
    assert re.fullmatch(rf"crash-\d{{8}}T\d{{6}}Z-{os.getpid()}\.log", log.name)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: boom in the library\nsecond line" in text
    assert "'inspect'" in text  # argv recorded
    assert [p.name for p in log.parent.iterdir()] == [log.name]  # no temp file left behind


def test_internal_error_message_is_escaped_and_cut_to_200_chars(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state_home: Path, tmp_path: Path
) -> None:
    _failing_inspect(monkeypatch, ValueError("\x1b[31mred\x1b[0m " + "x" * 500))
    code, _, err = _run_main(monkeypatch, capsys, ["inspect", str(tmp_path)])
    assert code == 70 and len(err) == 1
    m = INTERNAL_RE.fullmatch(err[0])
    assert m
    message = m["what"].removeprefix("ValueError: ")
    assert len(message) == 200 and message.endswith("…")
    assert "\x1b" not in err[0] and message.startswith("\\x1b[31mred")


def test_crash_log_falls_back_to_the_temp_dir(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state_home: Path, tmp_path: Path
) -> None:
    state_home.write_text("a file where the state folder should be")  # mkdir fails, also as root
    _failing_inspect(monkeypatch, KeyError("k"))
    code, _, err = _run_main(monkeypatch, capsys, ["inspect", str(tmp_path)])
    m = INTERNAL_RE.fullmatch(err[0])
    assert code == 70 and m, err
    log = Path(m["log"])
    assert log.parent == tmp_path / "tmp" and log.name.startswith("s2kit-crash-")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and "KeyError" in log.read_text()


def test_internal_error_without_any_writable_crash_dir_is_still_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state_home: Path, tmp_path: Path
) -> None:
    state_home.write_text("not a folder")
    monkeypatch.setattr(tempfile, "tempdir", str(state_home / "sub"))  # below a file: never writable
    _failing_inspect(monkeypatch, AttributeError("no attr"))
    code, out, err = _run_main(monkeypatch, capsys, ["inspect", str(tmp_path)])
    assert code == 70 and out == ""
    assert err == [
        "s2kit: internal error: AttributeError: no attr; "
        "no crash log could be written; run with S2KIT_DEBUG=1 for the traceback"
    ]


def test_s2kit_debug_reraises_the_exception(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state_home: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("S2KIT_DEBUG", "1")
    _failing_inspect(monkeypatch, RuntimeError("for developers"))
    monkeypatch.setattr("sys.argv", ["s2kit", "inspect", str(tmp_path)])
    with pytest.raises(RuntimeError, match="for developers"):
        cli.main()
    assert not state_home.exists()  # no crash log in debug mode


def test_keyboard_interrupt_is_one_line_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state_home: Path, tmp_path: Path
) -> None:
    _failing_inspect(monkeypatch, KeyboardInterrupt())
    code, out, err = _run_main(monkeypatch, capsys, ["inspect", str(tmp_path)])
    assert (code, out, err) == (130, "", ["s2kit: interrupted"])
    assert not state_home.exists()


def test_oserror_escaping_a_command_is_one_error_line_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state_home: Path, tmp_path: Path
) -> None:
    _failing_inspect(monkeypatch, PermissionError(13, "Permission denied", "/data/l1c/x\n.SAFE"))
    code, out, err = _run_main(monkeypatch, capsys, ["inspect", str(tmp_path)])
    assert (code, out) == (1, "")
    assert err == ["s2kit: error: Permission denied: /data/l1c/x\\n.SAFE"]
    assert not state_home.exists()  # an OS error is not a crash


def test_s2kit_error_outside_errors_to_exit_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state_home: Path, tmp_path: Path
) -> None:
    def table(rec: object) -> str:
        raise InputError("expected a table, found none", tmp_path)

    monkeypatch.setattr(safe, "inspect_path", lambda p: {"kind": "L1C"})
    monkeypatch.setattr(safe, "record_table", table)
    code, out, err = _run_main(monkeypatch, capsys, ["inspect", str(tmp_path)])
    assert (code, out) == (1, "")
    assert err == [f"s2kit: error: {tmp_path}: expected a table, found none"]


# ----------------------------------------------------------------------------- the real console script
def test_cli_validate_json_into_a_folder_is_one_oserror_line(s2kit_exe: str, hostile_dir: Path) -> None:
    """``--json`` naming an existing folder: the OSError of the write is one line, exit 1."""
    product = build_l2a_tree(hostile_dir)
    target = hostile_dir / "report dir"
    target.mkdir()
    res = run_exe(s2kit_exe, "validate", "--json", target, product, XDG_STATE_HOME=str(hostile_dir / "state"))
    assert res.returncode == 1
    lines = res.stderr.decode("utf-8").splitlines()
    assert lines == [f"s2kit: error: {target}: expected to write the JSON report, found Is a directory"]
    assert not (hostile_dir / "state").exists()
    assert sorted(os.listdir(target)) == []


def test_cli_error_naming_a_path_with_a_newline_is_one_line(s2kit_exe: str, tmp_path: Path) -> None:
    missing = tmp_path / "evil\nname.SAFE"
    assert "evil\\nname.SAFE" in one_error_line(run_exe(s2kit_exe, "inspect", missing))


@pytest.mark.parametrize(
    "make",
    [
        lambda d: os.mkfifo(d / "fifo.SAFE.zip"),
        lambda d: (d / "loop.SAFE").symlink_to("loop.SAFE"),
        lambda d: (d / "MTD_MSIL1C.xml").symlink_to("MTD_MSIL1C.xml"),
    ],
    ids=["fifo-zip", "self-symlink-safe", "self-symlink-mtd"],
)
def test_cli_inspect_hostile_entry_is_one_line(
    s2kit_exe: str, tmp_path: Path, make: Callable[[Path], object]
) -> None:
    make(tmp_path)
    (entry,) = tmp_path.iterdir()
    one_error_line(run_exe(s2kit_exe, "inspect", entry))


def test_command_that_reports_its_own_interruption_prints_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state_home: Path, tmp_path: Path
) -> None:
    """Like fetch's FetchInterrupted (exit 130, raised while handling Ctrl-C): no second line."""

    class Interrupted(InputError):
        exit_code = 130

    def inspect(path: object) -> dict[str, object]:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise Interrupted("interrupted: partial work kept") from None

    monkeypatch.setattr(safe, "inspect_path", inspect)
    code, out, err = _run_main(monkeypatch, capsys, ["inspect", str(tmp_path)])
    assert (code, out, err) == (130, "", ["s2kit: error: interrupted: partial work kept"])


def test_crash_handler_survives_undecodable_and_broken_messages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state_home: Path, tmp_path: Path
) -> None:
    """A message holding a non-UTF-8 path (surrogates), or a __str__ that fails: still one line + log."""

    class Broken(Exception):
        def __str__(self) -> str:
            raise ValueError("no str")

    for exc, shown in (
        (RuntimeError(os.fsdecode(b"/data/caf\xe9.SAFE")), "RuntimeError: /data/caf\\udce9.SAFE"),
        (Broken(), "Broken"),
    ):
        _failing_inspect(monkeypatch, exc)
        code, _, err = _run_main(monkeypatch, capsys, ["inspect", str(tmp_path)])
        m = INTERNAL_RE.fullmatch(err[0]) if len(err) == 1 else None
        assert code == 70 and m, err
        assert m["what"] == shown
        assert Path(m["log"]).is_file()


def test_inspect_empty_path_is_refused_not_the_current_directory(s2kit_exe: str, tmp_path: Path) -> None:
    """Finding 15: `s2kit inspect ''` inspected the current directory (click turns '' into '.')."""
    (tmp_path / "MTD_MSIL1C.xml").write_text("<not-read/>")  # a cwd that would be inspected
    r = subprocess.run([s2kit_exe, "inspect", ""], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (
        "s2kit: error: expected a product path, found an empty string (not the current directory)\n"
    )
