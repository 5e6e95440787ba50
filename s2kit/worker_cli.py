"""``s2kit worker``: the entry point every array task runs, started without Typer, Rich or pydantic.

The console script (:func:`s2kit.__main__.main`) sends ``s2kit worker ...`` -- the exact argv of
the golden job scripts -- here before the Typer CLI is imported (issue 17 item 4: a task's
start-up was ~0.4 s of imports before Sen2Cor ran); ``python -m s2kit.worker_cli ARGS`` runs it
too. The Typer command ``s2kit worker`` (:mod:`s2kit.cli`) stays, for ``s2kit --help``, the
generated CLI reference and the old ``s2kit.cli:main`` entry point; both end in
:func:`run_worker`.

:data:`OPTIONS` is the one definition of the options (flag, value name, help, default, bounds);
the Typer command is declared from it, and a test compares the two (every option, default,
help line, the help page, and the exit code and stderr of each way a command line can be wrong).
The command line is read the way click reads it:

* ``--opt VALUE`` or ``--opt=VALUE``; the value is the next word whatever it looks like; the
  last of a repeated option wins; ``--`` ends the options; no abbreviations, no short options;
* a parse error (unknown option, option without its value) is reported before anything else;
  ``--help`` next (help page, exit 0); then each option in the order it was first given, then
  the ones not given: value type, ``[required]``, then the option's own check; words that are
  not options are refused last;
* click's usage errors (exit 2) are printed in click's format (``Usage: ...`` + ``Error: ...``),
  s2kit's own refusals as ``s2kit: error: ...`` (:mod:`s2kit.crash`), exit 2;
* an integer is what Typer (pydantic, lax mode) accepts: surrounding white space, a sign,
  ASCII digits with single ``_`` between them, a ``.0...`` fraction; then ``0 <= N <= 1e8``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple, NoReturn

__all__ = [
    "COMMAND",
    "COUNT_MAX",
    "DESCRIPTION",
    "OPTIONS",
    "Option",
    "WorkerArgs",
    "help_text",
    "main",
    "parse",
    "run_worker",
]

COMMAND = "s2kit worker"
#: the command's help text (the Typer command's docstring)
DESCRIPTION = (
    "Process one scene of a batch (what each array task runs).\n\n"
    "Exit codes: 0 done or already done, 1 failed, 2 usage, 75 scene locked by another worker."
)
#: the largest --index / --offset (the CLI's bound on every count)
COUNT_MAX = 100_000_000


class Option(NamedTuple):  # not a dataclass: `--help` starts without importing dataclasses/inspect
    """One option of ``s2kit worker``: what Typer declares and this parser reads."""

    flag: str
    metavar: str
    help: str
    default: str | int | None = None
    required: bool = False
    #: "path": a Path, no control characters; "text": a str; "count": an int in 0..COUNT_MAX
    kind: Literal["path", "text", "count"] = "text"

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("--run-dir", "RUN_DIR", "Run directory written by 's2kit plan'.", required=True, kind="path"),
    Option("--batch", "BATCH", "Batch file batches/<NAME>.txt.", default="all"),
    Option(
        "--index", "N", "Line of the batch (0-based). Default: $SLURM_ARRAY_TASK_ID, else $LSB_JOBINDEX - 1.",
        kind="count",
    ),
    Option("--offset", "N", "Added to the index (array chunks).", default=0, kind="count"),
)  # fmt: skip
_HELP_FLAG = "--help"
_HELP_HELP = "Show this message and exit."


# --------------------------------------------------------------------------- errors
class _ClickUsage(Exception):
    """A usage error click would print (exit 2); *with_usage*: click prints the usage lines first."""

    def __init__(self, message: str, with_usage: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.with_usage = with_usage


def _refusal(message: str) -> Exception:
    from .errors import UsageError  # s2kit's own refusal: "s2kit: error: ...", exit 2

    return UsageError(message)


# --------------------------------------------------------------------------- values
# White_Space as pydantic-core strips it (Rust str::trim): not Python's str.strip(), which also
# strips the control characters \x1c-\x1f
_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_INT_RE = re.compile(rf"[{_WS}]*([+-]?[0-9]+(?:_[0-9]+)*)(?:\.0+)?[{_WS}]*")


def _count(opt: Option, text: str) -> int:
    """*text* as Typer reads an int option, then the CLI's bounds (``cli._number(0, COUNT_MAX)``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an undecodable byte in argv
        raise _ClickUsage(
            f"Invalid value for {opt.flag!r}: Input should be a valid string, unable to parse raw data as "
            "a unicode string"
        ) from None
    m = _INT_RE.fullmatch(text)
    try:
        value = int(m[1].replace("_", "")) if m else None
    except ValueError:  # beyond int's digit limit (4300)
        raise _ClickUsage(
            f"Invalid value for {opt.flag!r}: Unable to parse input string as an integer, exceeded "
            "maximum size"
        ) from None
    if value is None:
        raise _ClickUsage(
            f"Invalid value for {opt.flag!r}: Input should be a valid integer, unable to parse string as "
            "an integer"
        )
    if not 0 <= value <= COUNT_MAX:
        raise _refusal(f"expected {opt.flag} >= 0 and <= {COUNT_MAX:g}, found {value}")
    return value


def _value(opt: Option, given: str | None) -> Path | str | int | None:
    """Type, ``[required]`` and the option's own check, in click's order."""
    if given is None:
        if opt.required:
            raise _ClickUsage(f"Missing option {opt.flag!r}.")
        return opt.default
    if opt.kind == "count":
        return _count(opt, given)
    if opt.kind == "path":
        from .text import control_character

        problem = control_character(given)  # cli._plain_text
        if problem:
            raise _refusal(f"{opt.flag}: {problem}")
        return Path(given)
    return given


# --------------------------------------------------------------------------- parse
class WorkerArgs:
    """The parsed command line: what :func:`run_worker` takes."""

    __slots__ = ("run_dir", "batch", "index", "offset")

    def __init__(self, run_dir: Path, batch: str, index: int | None, offset: int) -> None:
        self.run_dir, self.batch, self.index, self.offset = run_dir, batch, index, offset

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"WorkerArgs({shown})"


def parse(argv: Sequence[str]) -> WorkerArgs | None:
    """The options of ``s2kit worker`` from *argv* (the words after ``worker``); None: ``--help``.

    Raises :class:`_ClickUsage` or :class:`~s2kit.errors.UsageError` as described in the module.
    """
    by_flag = {o.flag: o for o in OPTIONS}
    given: dict[str, str] = {}
    order: list[str] = []
    extra: list[str] = []
    want_help = False
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if word == "--":
            extra += rest
            break
        if not word.startswith("-") or len(word) == 1:
            extra.append(word)
            continue
        name, eq, value = word.partition("=")
        if name == _HELP_FLAG:
            if eq:
                raise _ClickUsage(f"Option {name!r} does not take a value.", with_usage=False)
            want_help = True
            continue
        opt = by_flag.get(name)
        if opt is None:
            if not word.startswith("--"):  # click then tries the first letter as a short option
                raise _ClickUsage(f"No such option: {word[:2]}")
            from difflib import get_close_matches

            close = sorted(get_close_matches(name, [*by_flag, _HELP_FLAG]))
            hint = f" (Possible options: {', '.join(close)})" if close else ""
            raise _ClickUsage(f"No such option: {name}{hint}")
        if not eq:
            if not rest:
                raise _ClickUsage(f"Option {name!r} requires an argument.", with_usage=False)
            value = rest.pop(0)
        given[opt.dest] = value
        order.append(opt.dest)
    if want_help:
        return None
    first = {dest: i for i, dest in reversed(list(enumerate(order)))}
    values: dict[str, Path | str | int | None] = {}
    for opt in sorted(OPTIONS, key=lambda o: first.get(o.dest, len(order))):
        values[opt.dest] = _value(opt, given.get(opt.dest))
    if extra:
        raise _ClickUsage(f"Got unexpected extra argument(s) ({' '.join(extra)})")
    run_dir, batch, index, offset = (values[o.dest] for o in OPTIONS)
    assert isinstance(run_dir, Path) and isinstance(batch, str) and isinstance(offset, int)
    assert index is None or isinstance(index, int)
    return WorkerArgs(run_dir, batch, index, offset)


# --------------------------------------------------------------------------- help
def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent) or [indent]


def help_text(width: int | None = None) -> str:
    """The help page, laid out as click lays out the Typer command's (``width``: click's)."""
    if width is None:
        import shutil

        width = max(min(shutil.get_terminal_size().columns, 80) - 2, 50)
    lines = [f"Usage: {COMMAND} [OPTIONS]", ""]
    for i, paragraph in enumerate(DESCRIPTION.split("\n\n")):
        lines += ([""] if i else []) + _wrap(paragraph, width, "  ")
    rows = []
    for o in OPTIONS:
        shown = f"  [default: {o.default}]" if o.default is not None else ""
        extra = "  [required]" if o.required else shown
        rows.append((f"{o.flag} {o.metavar}", o.help + extra))
    rows.append((_HELP_FLAG, _HELP_HELP))
    first_col = min(max(len(r[0]) for r in rows), 30) + 2
    lines += ["", "Options:"]
    for first, second in rows:
        body = _wrap(second, max(width - first_col - 2, 10))
        if len(first) <= first_col - 2:
            lines.append(f"  {first}{' ' * (first_col - len(first))}{body[0]}")
        else:
            lines += [f"  {first}", f"{' ' * (first_col + 2)}{body[0]}"]
        lines += [f"{' ' * (first_col + 2)}{line}" for line in body[1:]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- run
def run_worker(run_dir: Path, batch: str, index: int | None, offset: int) -> int:
    """Process the task's scene (:func:`s2kit.worker.run_task`); print its one line; its exit code."""
    from .text import batch_name_problem

    problem = batch_name_problem(batch)  # it becomes a file name: a plain name only
    if problem:
        raise _refusal(f"--batch: {problem}")
    from .worker import EXIT_DONE, run_task

    outcome = run_task(run_dir, batch=batch, index=index, offset=offset, handle_signals=True)
    stream = sys.stdout if outcome.exit_code == EXIT_DONE else sys.stderr
    stream.write(outcome.message + "\n")
    stream.flush()
    return outcome.exit_code


def _run(argv: Sequence[str]) -> NoReturn:
    try:
        args = parse(argv)
    except _ClickUsage as exc:
        usage = f"Usage: {COMMAND} [OPTIONS]\nTry '{COMMAND} {_HELP_FLAG}' for help.\n\n"
        head = usage if exc.with_usage else ""
        sys.stderr.write(f"{head}Error: {exc.message}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None
    if args is None:
        sys.stdout.write(help_text())
        sys.stdout.flush()
        raise SystemExit(0)
    raise SystemExit(run_worker(args.run_dir, args.batch, args.index, args.offset))


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """``s2kit worker`` with *argv* (the words after ``worker``; default: ``sys.argv[1:]``)."""
    from .crash import guarded

    words = list(sys.argv[1:] if argv is None else argv)
    guarded(lambda: _run(words))


if __name__ == "__main__":  # python -m s2kit.worker_cli ARGS
    main()
