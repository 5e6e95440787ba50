"""The ``s2kit`` command line: a thin Typer layer over the library.

Heavy modules are imported inside the commands so ``s2kit --help`` stays fast.
Every deliberate error is an :class:`s2kit.errors.S2kitError`; it is printed as
one line on stderr (``s2kit: error: ...``) with a non-zero exit code. Nothing else
reaches a user as a traceback either: :func:`main` turns an escaping ``OSError`` into
one error line and any other exception into one ``s2kit: internal error: ...`` line
plus a crash log (exit 70); ``S2KIT_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

from . import __version__, worker_cli
from .crash import EX_SOFTWARE as EX_SOFTWARE  # the failure policy of every entry point: s2kit.crash
from .crash import crash_dirs as _crash_dirs  # noqa: F401 - these names stay importable from here
from .crash import first_line as _one_line  # noqa: F401
from .crash import printable as _printable
from .crash import write_crash_log as write_crash_log
from .exitcodes import ExitCode


# --------------------------------------------------------------------------- help placeholders (issue 15)
class _Argument(TyperArgument):
    """An argument shown by its metavar alone: ``PATH...``, not ``{paths}... <list[Path]>``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _rich_display_name(self) -> str:
        return str(self.metavar or self.name) + ("..." if self.nargs != 1 else "")

    def _usage_display_name(self) -> str:
        if self.hidden:
            return ""
        name = str(self.metavar or self.name)
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")


# option -> what its value is, where the option's own name does not say it
_METAVARS = {
    "config": "FILE", "json": "FILE", "def": "FILE", "lock": "FILE", "ca-bundle": "FILE", "compare": "FILE",
    "expect-sen2cor": "VERSION", "sen2cor-version": "VERSION", "sen2cor": "VERSION",
    "start": "YYYY-MM-DD", "end": "YYYY-MM-DD", "interval": "SECONDS", "timeout": "SECONDS",
    "jobs": "N", "retries": "N", "index": "N", "offset": "N", "thumb-size": "PX", "max-cloud": "PERCENT",
    "margin-m": "METRES", "resolution": "METRES", "installer-sha256": "SHA256", "esacci": "FILE_OR_URL",
    "installer": "FILE_OR_URL", "apptainer": "COMMAND", "cache": "DIR", "dest": "AUX_DATA_DIR",
    "check": "AUX_DATA_DIR", "schemas": "DIR", "base-url": "URL", "mirror": "URL", "from": "IMAGE",
    "bootstrap": "AGENT", "out": "PATH", "max-baseline": "BASELINE",
}  # fmt: skip


def _metavar(param: Any) -> str:
    """NAME of an option value / argument: --run-dir RUN_DIR, --tile TILE, paths -> PATH."""
    if isinstance(param, TyperArgument):
        name = str(param.name)
        if param.nargs != 1 and name.endswith("s"):
            name = name[:-1]
    else:
        name = max(param.opts, key=len).lstrip("-")
        if name in _METAVARS:
            return _METAVARS[name]
    return name.upper().replace("-", "_")


class _Group(TyperGroup):
    """Every command of the group gets a proper metavar where it declares none (no ``<str>``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            for param in command.params:
                if isinstance(param, TyperArgument):
                    param.__class__ = _Argument
                elif not isinstance(param, TyperOption) or param.is_flag or param.count:
                    continue
                if param.metavar is None:
                    param.metavar = _metavar(param)


app = typer.Typer(
    cls=_Group,
    name="s2kit",
    help="Reproducible Sentinel-2 L1C -> L2A processing with ESA Sen2Cor on HPC clusters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"s2kit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],  # noqa: UP045 - typer needs Optional on 3.10
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = None,
) -> None:
    """s2kit: plan, run, watch and validate Sen2Cor batches."""


@contextlib.contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn an S2kitError into one stderr line and its exit code."""
    from .errors import S2kitError

    try:
        yield
    except S2kitError as exc:
        typer.echo(f"s2kit: error: {_printable(str(exc))}", err=True)
        raise typer.Exit(exc.exit_code) from None


@contextlib.contextmanager
def run_dir_errors() -> Iterator[None]:
    """:func:`errors_to_exit`, and an OSError (run dir full, read-only, not permitted) as one line too."""
    from .errors import display_path
    from .runs import NOT_WRITABLE

    with errors_to_exit():
        try:
            yield
        except OSError as exc:
            where = display_path(exc.filename) if exc.filename else "the run dir"
            why = exc.strerror or type(exc).__name__
            if exc.errno in NOT_WRITABLE:
                msg = f"expected a writable run dir, found {why} writing {where}"
            else:
                msg = f"expected a readable and writable run dir, found {why} at {where}"
            typer.echo(f"s2kit: error: {msg}", err=True)
            raise typer.Exit(1) from None


def _check_batch(batch: str) -> None:
    """``--batch`` must be a plain name: it becomes a file name and goes into job scripts."""
    from .config import batch_name_problem
    from .errors import UsageError

    problem = batch_name_problem(batch)
    if problem:
        raise UsageError(f"--batch: {problem}")


def _dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=str)


def _plain_text(ctx: Any, param: Any, value: Any) -> Any:
    """Option callback: a path or name with a control character is refused at parse (issue 12, 11).

    A newline in ``--out``/``--run-dir``/... would end a job-script line or split a log line.
    """
    from .errors import UsageError
    from .text import control_character

    values = value if isinstance(value, (list, tuple)) else [value]
    for item in values:
        if item is None:
            continue
        problem = control_character(os.fspath(item) if isinstance(item, os.PathLike) else str(item))
        if problem:
            raise UsageError(f"{param.opts[0]}: {problem}")
    return value


def _number(low: float, high: float, *, low_open: bool = False, unit: str = "") -> Any:
    """An option callback refusing nan, inf and values outside [*low*, *high*] (issue 12, finding 4)."""

    def check(ctx: Any, param: Any, value: Any) -> Any:
        from .errors import UsageError

        if value is None:
            return value
        above = value > low if low_open else value >= low
        if not (math.isfinite(value) and above and value <= high):
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            finite = "finite, " if isinstance(value, float) else ""
            raise UsageError(f"expected {param.opts[0]} {finite}{bound} and <= {high:g}{unit}, found {value}")
        return value

    return check


# --------------------------------------------------------------------------- options shared by commands
# One declaration per option that several commands take with the same meaning and help text.
_JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
_JsonStableOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document (stable keys).")]
_TilesOpt = Annotated[
    list[str],
    typer.Option("--tile", callback=_plain_text, help="MGRS tile, e.g. 17SQV or T17SQV. Repeatable."),
]
_HttpTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        callback=_number(0, 86400, low_open=True, unit=" seconds"),
        help="HTTP read timeout, seconds.",
    ),
]
_HttpRetriesOpt = Annotated[
    int, typer.Option("--retries", callback=_number(0, 100), help="HTTP retries per request.")
]


# --------------------------------------------------------------------------- many inputs (issue 17)
# inspect, validate and gipp check take many paths in one process: s2kit.inputs expands them
# (patterns the shell did not expand, '-' = a list on stdin), _Stream writes one record per input.
_NullOpt = Annotated[
    bool,
    typer.Option(
        "--null",
        "-0",
        help="The list on stdin ('-') is NUL-separated (find -print0): paths may hold newlines.",
    ),
]
_JsonlOpt = Annotated[
    bool,
    typer.Option(
        "--jsonl",
        help="Print JSON Lines: one object per input as it is done; an unreadable input is "
        '{"path", "error"}.',
    ),
]
EXIT_PIPE = 141  # 128 + SIGPIPE: the reader closed the pipe (| head), as a shell tool ends
# characters str.splitlines() (and some JSON Lines readers) break a line on, and lone surrogates
# (undecodable file names): written as \uXXXX escapes, so one record is one line on any reader
_JSONL_ESCAPE_RE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _jsonl(obj: Any) -> str:
    """*obj* as one JSON Lines record: no line break and nothing unencodable inside."""
    text = json.dumps(obj, ensure_ascii=False, default=str)
    return _JSONL_ESCAPE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _write_out(text: str) -> None:
    """*text* and a newline on stdout, flushed; a closed pipe (``| head``) ends with exit 141.

    A stdout that cannot encode the text (``PYTHONIOENCODING=ascii``, a Latin-1 locale) gets
    it as UTF-8, as ``click.echo`` does; a lone surrogate as its ``\\udcXX`` escape.
    """
    try:
        try:
            sys.stdout.write(text + "\n")
        except UnicodeEncodeError:
            buffer = getattr(sys.stdout, "buffer", None)
            if buffer is None:
                raise
            sys.stdout.flush()
            buffer.write((text + "\n").encode("utf-8", "backslashreplace"))
        sys.stdout.flush()
    except BrokenPipeError:
        with contextlib.suppress(OSError):  # nothing more reaches the closed pipe, not even at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(EXIT_PIPE) from None


class _Stream:
    """The output of a command over many inputs: the one place of the streaming rules (issue 17).

    Inputs are processed in order; each gives its record (a JSON Lines object or text), written
    and flushed at once. An input that cannot be read is an error record
    (``{"path": ..., "error": ...}`` with ``jsonl``, else one ``s2kit: error:`` line on stderr)
    and the stream goes on; :attr:`failed` counts them for the exit code (1). A reader that
    closes the pipe (``| head``) ends the command quietly with exit 141.
    """

    def __init__(self, jsonl: bool, key: str = "path") -> None:
        self.jsonl = jsonl
        self.key = key  # the name of the input in a record: "path", or "file" for GIPP files
        self.failed = 0

    def write(self, text: str) -> None:
        _write_out(text)

    def record(self, obj: Any) -> None:
        self.write(_jsonl(obj))

    def error(self, path: str, message: str) -> None:
        from .errors import display_path

        self.failed += 1
        if self.jsonl:
            self.record({self.key: display_path(path), "error": message})
        else:
            typer.echo(f"s2kit: error: {_printable(message)}", err=True)

    @contextlib.contextmanager
    def item(self, path: str) -> Iterator[None]:
        """Run the work of one input; its failure (an input error, an OSError) is its error record."""
        from .errors import S2kitError, display_path

        try:
            yield
        except (S2kitError, OSError) as exc:
            if isinstance(exc, S2kitError) and exc.exit_code != 1:
                raise  # usage (2), interrupted (130): not about this input
            if isinstance(exc, S2kitError):
                self.error(path, str(exc))
            else:
                where = exc.filename2 if exc.filename2 is not None else exc.filename
                shown = f": {display_path(os.fsdecode(where))}" if isinstance(where, (str, bytes)) else ""
                self.error(path, f"{exc.strerror or type(exc).__name__}{shown}")

    def inputs(self, paths: list[str], null: bool, *, check: bool = True) -> Iterator[Any]:
        """The :class:`s2kit.inputs.InputItem` of *paths* (``-``: stdin; patterns expanded)."""
        from .errors import UsageError
        from .inputs import expand_inputs

        if null and "-" not in paths:
            raise UsageError("expected --null with '-' (a list of paths on stdin), found no '-'")
        stdin = getattr(sys.stdin, "buffer", None)
        return expand_inputs(paths, stdin=stdin, null=null, check=check)


def _one_path(paths: list[str]) -> bool:
    """Whether *paths* is one plain path (not '-', not a pattern to expand): today's single output."""
    from .inputs import has_magic

    return len(paths) == 1 and paths[0] != "-" and not (has_magic(paths[0]) and not os.path.lexists(paths[0]))


_MANY_PATHS = "; several, a quoted pattern ('/store/**/*.SAFE') or '-' (a list on stdin, one a line)"


# --------------------------------------------------------------------------- inspect / validate
@app.command()
def inspect(
    paths: Annotated[
        list[str],  # not Path: click turns '' into '.', and an empty path is not the current directory
        typer.Argument(
            metavar="PATH",
            help="A .SAFE dir, .SAFE.zip, MTD_*.xml, MTD_TL.xml or manifest.safe" + _MANY_PATHS + ".",
        ),
    ],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON object (stable keys); several inputs: one per line (JSON Lines)."
        ),
    ] = False,
    jsonl: _JsonlOpt = False,
    null: _NullOpt = False,
) -> None:
    """Show the facts that decide how a product is processed.

    Several inputs are read in one process and streamed in order; exit 1 if any could not be read.
    """
    from . import safe
    from .errors import UsageError

    if _one_path(paths) and not jsonl and not null:  # one path: today's output, exactly
        with errors_to_exit():
            if not paths[0]:
                raise UsageError("expected a product path, found an empty string (not the current directory)")
            record = safe.inspect_path(paths[0])
        _write_out(_dump_json(record) if as_json else safe.record_table(record))
        return
    out = _Stream(jsonl=as_json or jsonl)
    first = True
    with errors_to_exit():
        for item in out.inputs(paths, null):
            if item.error is not None:
                out.error(item.path, str(item.error))
                continue
            with out.item(item.path):
                record = safe.inspect_path(item.path)
                if out.jsonl:
                    out.record(record)
                else:
                    out.write(("" if first else "\n") + safe.record_table(record))
                    first = False
    raise typer.Exit(1 if out.failed else 0)


@app.command()
def validate(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH", help="L2A products (.SAFE dirs or .SAFE.zip)" + _MANY_PATHS + "."),
    ],
    expect_sen2cor: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--expect-sen2cor", callback=_plain_text, help="Require this Sen2Cor version, e.g. 2.9."
        ),
    ] = None,
    consistency: Annotated[
        bool, typer.Option("--consistency", help="Also require one baseline and one Sen2Cor version.")
    ] = False,
    json_out: Annotated[
        Optional[str],  # noqa: UP045 - str, not Path: Path drops the './' of './--name'
        typer.Option(
            "--json",
            metavar="FILE",
            callback=_plain_text,
            help="Write the JSON report to FILE ('-' for stdout).",
        ),
    ] = None,
    jsonl: Annotated[
        bool,
        typer.Option(
            "--jsonl",
            help="Print JSON Lines: one product report per line as it is done, then one line with "
            "the summary and the set findings.",
        ),
    ] = False,
    null: _NullOpt = False,
    config: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--config",
            "-c",
            callback=_plain_text,
            help="With --consistency: the batch config whose sen2cor.route says which versions may mix.",
        ),
    ] = None,
    run_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--run-dir",
            callback=_plain_text,
            help="With --consistency: the run dir whose config.json says it.",
        ),
    ] = None,
) -> None:
    """Validate L2A products; exit 0 when clean, 1 on any error finding, 2 on usage errors.

    Products are reported as they are validated; a path with no product there is a
    missing-metadata finding and the others go on.
    """
    from .errors import InputError, UsageError, display_path
    from .fsutil import atomic_write_text
    from .validate import (
        ProductReport,
        ValidationReport,
        add_consistency,
        format_product,
        format_summary,
        normalise_sen2cor_version,
        validate_product,
    )

    to_stdout = json_out == "-"
    out = _Stream(jsonl=jsonl)
    with errors_to_exit():
        if jsonl and json_out is not None:
            raise UsageError("expected --json FILE or --jsonl, found both")
        if json_out is not None and (json_out == "" or json_out.startswith("-") and json_out != "-"):
            # `--json --consistency` took the option as the report's file name: no check, a stray file
            raise UsageError(
                f"--json: expected a report FILE or '-', found {json_out!r}"
                + (f" (an option?); write ./{json_out} for a file of that name" if json_out else "")
            )
        if expect_sen2cor is not None:  # "" too: a check is never silently turned off
            normalise_sen2cor_version(expect_sen2cor)  # usage error before any work
        routes = None
        if config is not None or run_dir is not None:
            from .batch import load_target

            routes = load_target(config, run_dir)[0].sen2cor.route_groups()
        reports = []
        for item in out.inputs(paths, null):
            if item.error is not None:
                product = ProductReport(path=display_path(item.path))
                product.add("missing-metadata", "error", item.error.message, item.path)
            else:
                product = validate_product(item.path, expect_sen2cor)
            reports.append(product)
            if jsonl:
                out.record(product.to_dict())
            elif not to_stdout:
                for line in format_product(product):
                    out.write(line)
        report = ValidationReport(products=reports)
        if consistency:
            add_consistency(report, routes)
        if jsonl:
            doc = report.to_dict()
            out.record(
                {
                    "summary": doc["summary"],
                    "set_findings": doc["set_findings"],
                    **({"notes": doc["notes"]} if doc.get("notes") else {}),
                    "valid": doc["valid"],
                }
            )
        elif to_stdout:
            out.write(_dump_json(report.to_dict()))
        else:
            for line in format_summary(report):
                out.write(line)
            if json_out is not None:
                try:
                    atomic_write_text(json_out, _dump_json(report.to_dict()) + "\n")
                except OSError as exc:  # full, read-only: the one line names the report
                    why = exc.strerror or type(exc).__name__
                    raise InputError(f"expected to write the JSON report, found {why}", json_out) from exc
    raise typer.Exit(0 if report.valid else 1)


# --------------------------------------------------------------------------- plan (issue 5)
@app.command()
def plan(
    config: Annotated[
        Path, typer.Option("--config", "-c", callback=_plain_text, help="The batch config (s2kit.toml).")
    ],
    run_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--run-dir", callback=_plain_text, help="Run directory (default: paths.run_dir of the config)."
        ),
    ] = None,
    no_preflight: Annotated[
        bool, typer.Option("--no-preflight", help="Skip the free-disk and node-memory checks.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Find every L1C, decide todo/done/skipped, check resources, write the plan."""
    from .config import check_for_plan, load_config
    from .plan import make_plan

    with run_dir_errors():
        cfg = load_config(config)
        check_for_plan(cfg, run_dir)
        result = make_plan(cfg, run_dir=run_dir, check_resources=not no_preflight)
    if as_json:
        typer.echo(
            _dump_json(
                {
                    "run_dir": str(result.run_dir),
                    "counts": result.counts,
                    "skipped_reasons": result.reasons,
                    "todo_bytes": result.todo_bytes,
                    "preflight": result.preflight,
                    **({"series": result.series} if result.series else {}),  # routed / consistent
                }
            )
        )
    else:
        typer.echo(result.summary())
        if not result.entries:
            typer.echo(_empty_plan_hint(cfg))


def _short_path(path: Path) -> str:
    """*path* relative to the working directory when it lies below it (what a user would type)."""
    import os
    import shlex

    from .errors import display_path

    try:
        text = str(path.resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        text = os.fspath(path)
    return shlex.quote(display_path(text))


def _empty_plan_hint(cfg: Any) -> str:
    """What to type when the L1C folders hold no product: the `s2kit fetch` that fills them."""
    dirs = ", ".join(_short_path(d) for d in cfg.paths.l1c_dirs)
    where = f" of {_short_path(cfg.source)}" if cfg.source else ""
    sel = cfg.select
    tiles = " ".join(f"--tile {t}" for t in sel.tiles) or "--tile TILE"
    start = sel.start.isoformat() if sel.start else "YYYY-MM-DD"
    end = sel.end.isoformat() if sel.end else "YYYY-MM-DD"
    return (
        f"plan: no L1C product in {dirs} (paths.l1c_dirs{where}); fill it with: "
        f"s2kit fetch {tiles} --start {start} --end {end} --out {_short_path(cfg.paths.l1c_dirs[0])}"
    )


# --------------------------------------------------------------------------- worker (issue 5)
_WORKER = {o.dest: o for o in worker_cli.OPTIONS}  # the one definition of the worker's options


@app.command(help=worker_cli.DESCRIPTION)
def worker(
    run_dir: Annotated[Path, typer.Option("--run-dir", callback=_plain_text, help=_WORKER["run_dir"].help)],
    batch: Annotated[str, typer.Option("--batch", help=_WORKER["batch"].help)] = "all",
    index: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--index", callback=_number(0, worker_cli.COUNT_MAX), help=_WORKER["index"].help),
    ] = None,
    offset: Annotated[
        int, typer.Option("--offset", callback=_number(0, worker_cli.COUNT_MAX), help=_WORKER["offset"].help)
    ] = 0,
) -> None:
    # `s2kit worker` is normally parsed by s2kit.worker_cli before Typer is imported (the console
    # script, s2kit.__main__); this command is what `s2kit --help`, the CLI reference and the old
    # entry point s2kit.cli:main see. Both run worker_cli.run_worker.
    with errors_to_exit():
        code = worker_cli.run_worker(run_dir, batch, index, offset)
    raise typer.Exit(code)


# --------------------------------------------------------------------------- gipp (issue 4)
gipp_app = typer.Typer(
    cls=_Group, help="Render, check and diff Sen2Cor GIPP configuration files.", no_args_is_help=True
)
app.add_typer(gipp_app, name="gipp")


def _absolute_dem_dir(path: str | None) -> str | None:
    """Make a usable --dem-dir absolute (Sen2Cor would resolve it against SEN2COR_HOME)."""
    import os

    if path is None or not path.strip() or path != path.strip() or path.upper() == "NONE":
        return path  # the library refuses these with a clear message
    return os.path.abspath(path)


@gipp_app.command("render")
def gipp_render(
    out: Annotated[
        Path,
        typer.Option(
            "--out", callback=_plain_text, help="Directory for the four GIPP files, e.g. $SEN2COR_HOME/cfg."
        ),
    ],
    sen2cor: Annotated[
        str, typer.Option("--sen2cor", callback=_plain_text, help="Sen2Cor version: 2.9, 2.10, 2.11 or 2.12.")
    ] = "2.9",
    dem_dir: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--dem-dir",
            callback=_plain_text,
            help="Folder with the tile's DEM (srtm_XX_YY.zip tiles; Copernicus DEM for 2.12): "
            "DEM_Directory and DEM_Reference.",
        ),
    ] = None,
    dem: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--dem",
            metavar="KIND",
            callback=_plain_text,
            help="DEM in --dem-dir: srtm (2.9-2.11), cop-dem-glo30 or cop-dem-glo90 (2.12; DEM_Reference "
            "CDSE-GLO-30/90), none. Default: srtm up to 2.11, cop-dem-glo30 for 2.12.",
        ),
    ] = None,
    threads: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--threads",
            metavar="N|AUTO",
            callback=_plain_text,
            help="Nr_Threads. Default: the cores LSF/Slurm allocated (capped to the version's maximum), "
            "1 outside a job.",
        ),
    ] = None,
    baseline: Annotated[
        str, typer.Option("--baseline", callback=_plain_text, help="Baseline_Version of the PB GIPP.")
    ] = "03.00",
    force_exit: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option(
            "--force-exit-on-dem-error/--no-force-exit-on-dem-error",
            help="Force_Exit_On_DEM_Error. Default: on when --dem-dir is given.",
        ),
    ] = None,
    set_: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--set",
            metavar="NAME=VALUE",
            callback=_plain_text,
            help="Set one element, addressed by tag name or XPath (must match exactly one). Repeatable.",
        ),
    ] = None,
) -> None:
    """Write the four GIPP files of a Sen2Cor version with the lab's edits, XSD-validated."""
    from .gipp import write_gipp_dir

    with errors_to_exit():
        result = write_gipp_dir(
            out,
            sen2cor=sen2cor,
            dem_dir=_absolute_dem_dir(dem_dir),
            dem_kind=dem,
            threads=threads,
            baseline=baseline,
            force_exit_on_dem_error=force_exit,
            sets=set_ or (),
        )
    for line in result.lines():
        typer.echo(line)
    for name, finding in result.notes:
        typer.echo(f"s2kit: note: {name}: {finding.severity} {finding.code}: {finding.message}", err=True)


@gipp_app.command("check")
def gipp_check(
    files: Annotated[
        list[str],
        typer.Argument(
            metavar="FILE",
            help="GIPP files: L2A_GIPP, L2A_PB/CAL_SC/CAL_AC_GIPP; a quoted pattern ('RUN/**/cfg/*.xml') "
            "or '-' (a list on stdin, one a line).",
        ),
    ],
    sen2cor: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--sen2cor",
            callback=_plain_text,
            help="Check as this Sen2Cor version (default: detect from the file).",
        ),
    ] = None,
    as_json: _JsonOpt = False,
    jsonl: Annotated[
        bool,
        typer.Option(
            "--jsonl",
            help="Print JSON Lines: one file report per line as it is checked (a file that is no GIPP: "
            '{"file", "error"}), then one line with the summary; the other files go on.',
        ),
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    null: _NullOpt = False,
) -> None:
    """Validate GIPP files against the Sen2Cor XSD and lint them; exit 1 on error findings.

    Without --jsonl a file that is no GIPP at all refuses the command before anything is printed.
    """
    from .errors import UsageError
    from .gipp import check_gipp, iter_report_lines

    out = _Stream(jsonl=jsonl, key="file")
    with errors_to_exit():
        if jsonl and as_json:
            raise UsageError("expected --json or --jsonl, found both")
        reports = []
        # check_gipp itself refuses what is not a regular file (a FIFO never blocks)
        for item in out.inputs(files, null, check=False):
            # without --jsonl: all or nothing, as before (the one error line, nothing printed)
            with out.item(item.path) if jsonl else contextlib.nullcontext():
                if item.error is not None:
                    raise item.error
                report = check_gipp(item.path, version=sen2cor)
                reports.append(report)
                if jsonl:
                    out.record(report.to_dict())
    failed = any(r.failed(strict) for r in reports)
    errors = sum(len(r.errors) for r in reports)
    warnings = sum(len(r.warnings) for r in reports)
    summary = {"files": len(reports), "errors": errors, "warnings": warnings, "strict": strict}
    if jsonl:
        out.record({"summary": {**summary, "unreadable": out.failed}, "failed": failed or bool(out.failed)})
    elif as_json:
        document = {"files": [r.to_dict() for r in reports], "summary": summary, "failed": failed}
        out.write(_dump_json(document))
    else:
        for report in reports:
            for line in iter_report_lines(report):
                out.write(line)
        if len(reports) > 1:
            out.write(f"{len(reports)} files: {errors} errors, {warnings} warnings")
    raise typer.Exit(1 if failed or out.failed else 0)


@gipp_app.command("diff")
def gipp_diff(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A GIPP file.")],  # str: click makes '' '.'
    sen2cor: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--sen2cor", callback=_plain_text, help="Diff against this version's template (default: detect)."
        ),
    ] = None,
    as_json: _JsonOpt = False,
) -> None:
    """Show the element-level edits of a GIPP file against the pristine Sen2Cor template."""
    from .gipp import diff_gipp, iter_diff_lines

    with errors_to_exit():
        diff = diff_gipp(file, version=sen2cor)
    if as_json:
        _write_out(_dump_json(diff.to_dict()))
    else:
        for line in iter_diff_lines(diff):
            _write_out(line)


# --------------------------------------------------------------------------- submit/status/resubmit (issue 5)
_ConfigOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--config",
        "-c",
        callback=_plain_text,
        help="The batch config (s2kit.toml); its paths.run_dir is the run dir.",
    ),
]
_RunDirOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option(
        "--run-dir",
        callback=_plain_text,
        help="Run directory written by 's2kit plan' (uses its config.json snapshot).",
    ),
]


def _echo_err(msg: str) -> None:
    typer.echo(msg, err=True)


@app.command()
def submit(
    config: _ConfigOpt = None,
    run_dir: _RunDirOpt = None,
    batch: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--batch",
            help="Batch file batches/<NAME>.txt to submit (default: the latest plan's batch).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Render the job scripts and show the commands; submit nothing.")
    ] = False,
) -> None:
    """Render job scripts into the run dir and submit the batch's not-done scenes as job arrays.

    With scheduler kind "local" the tasks run here (at most max_concurrent at a time) and the
    command returns when all are finished: exit 1 if any scene failed.
    """
    from .batch import load_target, submit_batch

    with run_dir_errors():
        if batch is not None:
            _check_batch(batch)
        cfg, rd = load_target(config, run_dir)
        result = submit_batch(cfg, rd, batch=batch, dry_run=dry_run, echo=_echo_err)
    typer.echo(result.summary())
    if any(rc not in (ExitCode.DONE, ExitCode.LOCKED) for rc in result.exit_codes.values()):
        raise typer.Exit(1)


@app.command()
def status(
    config: _ConfigOpt = None,
    run_dir: _RunDirOpt = None,
    as_json: _JsonStableOpt = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Refresh with a progress bar until nothing is pending/running.")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            callback=_number(0, 86400, low_open=True, unit=" seconds"),
            help="Seconds between --watch refreshes.",
        ),
    ] = 5.0,
    resources: Annotated[
        bool,
        typer.Option(
            "--resources",
            help="Also what the scenes used: wall, CPU, peak memory (median/p95/max), CPU efficiency, "
            "core-hours used and left, running tasks against their walltime.",
        ),
    ] = False,
) -> None:
    """Counts per state and tile, failures with reasons and logs, jobs and their scheduler state."""
    from .batch import load_target
    from .status import format_status, run_status

    with run_dir_errors():
        cfg, rd = load_target(config, run_dir)
        report = run_status(cfg, rd)
        if watch and report.active:
            report = _watch(lambda: run_status(cfg, rd), report, interval)
        used = None
        if resources:
            from .resources import run_resources

            used = run_resources(rd, cfg, report)
    if as_json:
        doc = report.to_dict()
        if used is not None:
            doc["resources"] = used.to_dict()
        typer.echo(_dump_json(doc))
        return
    typer.echo(format_status(report))
    if used is not None:
        from .resources import format_resources

        typer.echo(format_resources(used))


def _watch(refresh: Any, report: Any, interval: float) -> Any:
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    def text(r: Any) -> str:
        c = r.counts
        return f"{c['done']} done, {c['failed']} failed, {c['running']} running, {c['pending']} pending"

    columns = (TextColumn("scenes"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"))
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(text(report), total=len(report.scenes), completed=report.finished)
        while report.active:
            time.sleep(max(0.2, interval))
            report = refresh()
            bar.update(task, completed=report.finished, description=text(report))
    return report


@app.command()
def resubmit(
    config: _ConfigOpt = None,
    run_dir: _RunDirOpt = None,
    failed: Annotated[
        bool,
        typer.Option(
            "--failed",
            help="Accepted for old scripts: the failed and stale scenes are what resubmit sends.",
            show_default=False,
        ),
    ] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Render and show; submit nothing.")] = False,
) -> None:
    """Write batches/resubmit-<n>.txt with the failed and stale scenes and submit it."""
    from .batch import load_target, resubmit_failed

    del failed  # the only mode: --failed is optional (issue 15) and still accepted
    with run_dir_errors():
        cfg, rd = load_target(config, run_dir)
        result = resubmit_failed(cfg, rd, dry_run=dry_run, echo=_echo_err)
    if result is None:
        typer.echo("resubmit: no failed or stale scenes")
        return
    typer.echo(result.summary())
    if any(rc not in (ExitCode.DONE, ExitCode.LOCKED) for rc in result.exit_codes.values()):
        raise typer.Exit(1)


# --------------------------------------------------------------------------- sizing (issue 19)
@app.command()
def advise(
    config: _ConfigOpt = None,
    run_dir: _RunDirOpt = None,
    margin: Annotated[
        float,
        typer.Option(
            "--margin",
            callback=_number(0, 10),
            help="Added on top of the measured p95 (0.2 = 20 %).",
        ),
    ] = 0.2,
    min_scenes: Annotated[
        int,
        typer.Option(
            "--min-scenes",
            callback=_number(1, 1_000_000),
            help="Done scenes with measurements needed before they replace the defaults.",
        ),
    ] = 10,
    as_json: _JsonStableOpt = False,
) -> None:
    """Propose memory, cores, walltime and the Sen2Cor timeout from what the done scenes used.

    Prints a [scheduler] / [sen2cor] snippet ready to paste, how much of the current request
    went unused, and WARN lines when a request is below the observed p95.
    """
    from .advise import advise_run, format_advice
    from .batch import load_target

    with run_dir_errors():
        cfg, rd = load_target(config, run_dir)
        advice = advise_run(cfg, rd, margin=margin, min_scenes=min_scenes)
    typer.echo(_dump_json(advice.to_dict()) if as_json else format_advice(advice))


@app.command("extend-walltime")
def extend_walltime(
    walltime: Annotated[
        str,
        typer.Option("--walltime", callback=_plain_text, metavar="HH:MM", help="The new time limit."),
    ],
    config: _ConfigOpt = None,
    run_dir: _RunDirOpt = None,
    job: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--job", callback=_plain_text, metavar="ID", help="Only this job of the run."),
    ] = None,
    as_json: _JsonStableOpt = False,
) -> None:
    """Raise the walltime of the run's queued and running arrays (LSF bmod -W, Slurm scontrol update).

    Finished jobs are never touched. Exit 1 when a scheduler refused (raising a limit is often
    for administrators only) or could not be asked.
    """
    from pydantic import ValidationError

    from .advise import FAILED_OUTCOMES, extend_run_walltime, format_extensions
    from .batch import load_target
    from .config import SchedulerConfig
    from .errors import UsageError

    with run_dir_errors():
        try:
            minutes = SchedulerConfig(walltime=walltime).walltime_minutes
        except ValidationError as exc:
            msg = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise UsageError(f"--walltime: {msg}") from None
        cfg, rd = load_target(config, run_dir)
        results = extend_run_walltime(cfg, rd, minutes, job=job)
    if as_json:
        typer.echo(_dump_json([r.to_dict() for r in results]))
    else:
        typer.echo(format_extensions(results))
    if any(r.outcome in FAILED_OUTCOMES for r in results):
        raise typer.Exit(1)


# --------------------------------------------------------------------------- dem / aux (issue 6)
dem_app = typer.Typer(
    cls=_Group,
    help="DEM sets per Sentinel-2 tile: SRTM (with the lab's fix for Sen2Cor 2.9's SRTM merging) "
    "and the Copernicus DEM cells Sen2Cor 2.12 reads.",
    no_args_is_help=True,
)
app.add_typer(dem_app, name="dem")
aux_app = typer.Typer(cls=_Group, help="Sen2Cor auxiliary data (ESACCI-LC).", no_args_is_help=True)
app.add_typer(aux_app, name="aux")

_CGIAR_SRTM_URL = "http://srtm.csi.cgiar.org/wp-content/uploads/files/srtm_5x5/TIFF/"  # = s2kit.dem


@dem_app.command("prepare")
def dem_prepare(
    tiles: _TilesOpt,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            callback=_plain_text,
            help="Folder for the sets (paths.dem_dir): <out>/<tile>/srtm_XX_YY.zip, or "
            "<out>/<kind>/<tile>/ for the Copernicus DEM.",
        ),
    ],
    source: Annotated[
        str,
        typer.Option(
            "--source",
            callback=_plain_text,
            help="SRTM: a folder (or mirror folder) of srtm_XX_YY.zip files, or a base URL "
            "(default: the CGIAR URL of Sen2Cor 2.9's L2A_GIPP.xml). Copernicus DEM for Sen2Cor 2.12: "
            "cop-dem-glo30 or cop-dem-glo90 (cells from --from).",
        ),
    ] = _CGIAR_SRTM_URL,
    from_: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--from",
            callback=_plain_text,
            help="With --source cop-dem-*: a mirror folder, a base URL of the AWS layout, or an s3:// or "
            "gs:// bucket (default: the kind's public AWS bucket).",
        ),
    ] = None,
    margin_m: Annotated[
        float,
        typer.Option(
            "--margin-m",
            callback=_number(0, 100_000, unit=" m"),
            help="Margin around the 109.8 km tile, metres.",
        ),
    ] = 2000.0,
    cache: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--cache",
            callback=_plain_text,
            help="Download cache with manifest.json (default: <out>/.cache/srtm or <out>/.cache/<kind>).",
        ),
    ] = None,
    allow_missing: Annotated[
        bool,
        typer.Option(
            "--allow-missing",
            help="SRTM: fill tiles the source lacks (all-ocean) with nodata. Copernicus DEM: accept cells "
            "a mirror folder lacks (sea), recorded as absent.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Prepare again even if the set is up to date.")
    ] = False,
    timeout: _HttpTimeoutOpt = 120.0,
    retries: _HttpRetriesOpt = 5,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Report each source tile on stderr.")
    ] = False,
) -> None:
    """SRTM: merge the tiles each tile needs; write the merged DEM under every srtm_XX_YY.zip name.
    Copernicus DEM (--source cop-dem-glo30|cop-dem-glo90): stage the 1°x1° cells each tile needs,
    named as Sen2Cor 2.12 reads them, in <out>/<kind>/<tile>/.

    Exit codes: 0 prepared or up to date, 1 error, 2 usage, 3 source unreachable (the host name
    does not resolve or the connection is refused: offline, or a wrong --source URL; nothing is
    retried).
    """
    from .dem import COPDEM_KINDS, prepare_copdem, prepare_dem
    from .errors import UsageError
    from .http import HttpClient

    log = (lambda msg: typer.echo(msg, err=True)) if verbose else None
    copdem = source.strip() in COPDEM_KINDS
    with errors_to_exit(), HttpClient(timeout=(15.0, timeout), retries=retries) as client:
        if not copdem and from_ is not None:
            raise UsageError(
                f"expected --from only with --source {' or '.join(COPDEM_KINDS)}, found --source {source}"
            )
        if copdem:
            cop = prepare_copdem(
                tiles,
                source.strip(),
                out,
                source=from_,
                margin_m=margin_m,
                cache_dir=cache,
                allow_missing=allow_missing,
                force=force,
                client=client,
                log=log,
            )
        else:
            results = prepare_dem(
                tiles,
                source,
                out,
                margin_m=margin_m,
                cache_dir=cache,
                allow_missing=allow_missing,
                force=force,
                client=client,
                log=log,
            )
    if copdem:
        from .dem.copdem import copdem_spec

        for done in cop:
            typer.echo(done.summary())
        kind = source.strip()
        typer.echo(
            f"Sen2Cor 2.12: DEM_Directory = {cop[0].path}, DEM_Reference = {copdem_spec(kind).reference} "
            f'(one DEM_Directory per tile; sen2cor.dem = "{kind}")'
        )
        return
    for result in results:
        typer.echo(result.summary())
    example = results[0].path
    typer.echo(f"GIPP: s2kit gipp render --dem-dir {example} (one DEM_Directory per tile)")


@dem_app.command("check")
def dem_check(
    paths: Annotated[
        list[Path], typer.Argument(help="Prepared sets: <out>/<tile> or <out>/<kind>/<tile> folders.")
    ],
    as_json: _JsonOpt = False,
) -> None:
    """Verify prepared DEM sets, SRTM or Copernicus DEM (checksums, members, rasters, tile coverage);
    exit 1 on errors."""
    from .dem import check_dem

    with errors_to_exit():
        reports = [check_dem(path) for path in paths]
    if as_json:
        typer.echo(_dump_json({"sets": [r.to_dict() for r in reports], "ok": all(r.ok for r in reports)}))
    else:
        for report in reports:
            for line in report.lines():
                typer.echo(line)
    raise typer.Exit(0 if all(r.ok for r in reports) else 1)


@dem_app.command("footprint")
def dem_footprint(
    tile: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--tile", callback=_plain_text, help="MGRS tile, e.g. 17SQV or T17SQV. Repeatable."),
    ] = None,
    old_tiles: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(metavar="TILE", help="Deprecated: tiles as arguments; use --tile.", hidden=True),
    ] = None,
    margin_m: Annotated[
        float,
        typer.Option(
            "--margin-m",
            callback=_number(0, 100_000, unit=" m"),
            help="Margin around the 109.8 km tile, metres.",
        ),
    ] = 2000.0,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            callback=_plain_text,
            help="srtm (SRTM 5°x5° tiles) or cop-dem-glo30 / cop-dem-glo90 (the 1°x1° Copernicus DEM "
            "cells Sen2Cor 2.12 reads).",
        ),
    ] = "srtm",
    as_json: _JsonOpt = False,
) -> None:
    """Show a tile's footprint (lon/lat, with margin) and the SRTM tiles or Copernicus DEM cells it needs."""
    from .dem import COPDEM_KINDS, copdem_footprint
    from .dem.copdem import copdem_spec
    from .errors import UsageError
    from .tiles import tile_geometry

    with errors_to_exit():
        if old_tiles:
            typer.echo(
                f"s2kit: note: tiles as arguments are deprecated; use "
                f"`s2kit dem footprint {' '.join('--tile ' + t for t in old_tiles)}`",
                err=True,
            )
        tiles = [*(tile or ()), *(old_tiles or ())]
        if not tiles:
            raise UsageError(
                "expected --tile TILE (repeatable), found none; e.g. s2kit dem footprint --tile 17SQV"
            )
        if source in COPDEM_KINDS:
            spec = copdem_spec(source)
            cops = [copdem_footprint(t, margin_m) for t in tiles]
        elif source != "srtm":
            raise UsageError(f"expected --source srtm, {' or '.join(COPDEM_KINDS)}, found {source!r}")
        else:
            geometries = [tile_geometry(t, margin_m) for t in tiles]
    if source in COPDEM_KINDS:
        if as_json:
            docs = [{**f.to_dict(), "files": [c.dged_name(spec) for c in f.cells]} for f in cops]
            typer.echo(_dump_json(docs))
            return
        for f in cops:
            w, s, e, n = f.lonlat_bounds
            typer.echo(
                f"{f.tile}  EPSG:{f.epsg}  lon {w:.4f}..{e:.4f}  lat {s:.4f}..{n:.4f}"
                f"{'  (crosses the antimeridian)' if f.crosses_antimeridian else ''}  "
                f"{' '.join(c.dged_name(spec) for c in f.cells)}"
            )
        return
    if as_json:
        typer.echo(_dump_json([g.to_dict() for g in geometries]))
        return
    for g in geometries:
        w, s, e, n = g.lonlat_bounds
        typer.echo(
            f"{g.tile}  EPSG:{g.epsg}  lon {w:.4f}..{e:.4f}  lat {s:.4f}..{n:.4f}"
            f"{'  (crosses the antimeridian)' if g.crosses_antimeridian else ''}  {' '.join(g.srtm_tiles)}"
        )


@aux_app.command("esacci")
def aux_esacci(
    source: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--source",
            callback=_plain_text,
            help="ESACCI-LC-L4-ALL-FOR-SEN2COR.zip: a file or an http(s) URL.",
        ),
    ] = None,
    dest: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--dest", callback=_plain_text, help="Sen2Cor's aux_data folder to install into."),
    ] = None,
    check: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--check", callback=_plain_text, help="Only verify this aux_data folder; exit 1 on errors."
        ),
    ] = None,
    deep: Annotated[bool, typer.Option("--deep", help="--check: also compare SHA-256 checksums.")] = False,
    cache: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--cache",
            callback=_plain_text,
            help="Keep the downloaded archive here (default: deleted after install).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Install again even if up to date.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="--check: print one JSON document.")] = False,
) -> None:
    """Install the ESACCI-LC maps Sen2Cor 2.9 expects into aux_data (--source/--dest), or --check."""
    from .errors import UsageError
    from .esacci import check_esacci, install_esacci

    with errors_to_exit():
        if check is not None:
            if source is not None or dest is not None:
                raise UsageError(
                    "expected either --check AUX_DATA_DIR or --source FILE_OR_URL --dest AUX_DATA_DIR"
                )
            report = check_esacci(check, deep=deep)
        elif source is None or dest is None:
            raise UsageError(
                "expected --source FILE_OR_URL with --dest AUX_DATA_DIR (or --check AUX_DATA_DIR)"
            )
        else:
            result = install_esacci(source, dest, cache_dir=cache, force=force)
            for line in result.lines():
                typer.echo(line)
            return
    if as_json:
        typer.echo(_dump_json(report.to_dict()))
    else:
        for line in report.lines():
            typer.echo(line)
    raise typer.Exit(0 if report.ok else 1)


# --------------------------------------------------------------------------- container (issue 7)
container_app = typer.Typer(
    cls=_Group,
    help="The Sen2Cor Apptainer image: build it, read its labels, pin its installer.",
    no_args_is_help=True,
)
app.add_typer(container_app, name="container")

_ApptainerOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--apptainer",
        help="The apptainer command, split like a shell (default: $S2KIT_APPTAINER, else 'apptainer').",
    ),
]


def _apptainer_cmd(value: str | None) -> tuple[str, ...]:
    import os
    import shlex

    text = value if value is not None else os.environ.get("S2KIT_APPTAINER", "") or "apptainer"
    return tuple(shlex.split(text))


@container_app.command("build")
def container_build(
    esacci: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--esacci",
            callback=_plain_text,
            help="ESACCI-LC-L4-ALL-FOR-SEN2COR.zip: a file or an http(s) URL (required).",
        ),
    ] = None,
    definition: Annotated[
        Path,
        typer.Option("--def", callback=_plain_text, help="The definition file (inside an s2kit checkout)."),
    ] = Path("containers/sen2cor.def"),
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", callback=_plain_text, help="Image to write (default: sen2cor-<version>.sif)."),
    ] = None,
    sen2cor_version: Annotated[
        str, typer.Option("--sen2cor-version", callback=_plain_text, help="2.9, 2.10, 2.11 or 2.12.")
    ] = "2.9",
    installer: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--installer",
            callback=_plain_text,
            help="Sen2Cor installer: a file or a URL (default: ESA's URL).",
        ),
    ] = None,
    installer_sha256: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--installer-sha256",
            callback=_plain_text,
            help="Expected sha256 of the installer (else checksums.tsv/lock).",
        ),
    ] = None,
    mirror: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--mirror",
            callback=_plain_text,
            help="Debian mirror for debootstrap (e.g. a snapshot.debian.org URL).",
        ),
    ] = None,
    bootstrap: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--bootstrap",
            callback=_plain_text,
            help="Base bootstrap agent: debootstrap (default), docker, localimage.",
        ),
    ] = None,
    from_image: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--from",
            callback=_plain_text,
            help="Base for docker/localimage, e.g. debian:bookworm-slim@sha256:...",
        ),
    ] = None,
    build_arg: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--build-arg",
            metavar="KEY=VALUE",
            callback=_plain_text,
            help="Another build argument of the def. Repeatable.",
        ),
    ] = None,
    apptainer: _ApptainerOpt = None,
    fakeroot: Annotated[bool, typer.Option("--fakeroot", help="Pass --fakeroot to apptainer build.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing image.")] = False,
    lock: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--lock",
            callback=_plain_text,
            help="TOFU lock file (default: containers/sen2cor.lock next to the def).",
        ),
    ] = None,
    no_lock: Annotated[bool, typer.Option("--no-lock", help="Neither read nor write the lock.")] = False,
    ca_bundle: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--ca-bundle",
            callback=_plain_text,
            help="PEM bundle the build's downloads trust (TLS proxies); 'none' for none. "
            "Default: $PIP_CERT, $SSL_CERT_FILE, $REQUESTS_CA_BUNDLE or $CURL_CA_BUNDLE.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the apptainer command; build nothing.")
    ] = False,
) -> None:
    """Build the Sen2Cor image with apptainer; check its labels; record its installer in the lock."""
    from .container.build import ApptainerMissing, BuildOptions, build_image, ca_bundle_choice, plan_build
    from .errors import ConfigError, UsageError

    with errors_to_exit():
        pairs: list[tuple[str, str]] = []
        for item in build_arg or ():
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UsageError(f"expected --build-arg KEY=VALUE, found {item!r}")
            pairs.append((key, value))
        opts = BuildOptions(
            definition=definition,
            out=out,
            sen2cor_version=sen2cor_version,
            installer=installer,
            installer_sha256=installer_sha256,
            esacci=esacci,
            mirror=mirror,
            bootstrap=bootstrap,
            from_image=from_image,
            build_args=tuple(pairs),
            apptainer=_apptainer_cmd(apptainer),
            fakeroot=fakeroot,
            force=force,
            lock=lock,
            use_lock=not no_lock,
            ca_bundle=ca_bundle_choice(ca_bundle),
        )
        if dry_run:
            plan_ = plan_build(opts)
            for note in plan_.notes:
                typer.echo(f"s2kit: {note}", err=True)
            typer.echo(plan_.shell_line())
            return
        try:
            built = build_image(opts, echo=lambda line: typer.echo(line, err=True))
        except ApptainerMissing as exc:
            if esacci:
                raise
            # both missing: say both now, not one error per attempt
            raise ConfigError(
                f"{exc}; then run: s2kit container build --esacci /path/ESACCI-LC-L4-ALL-FOR-SEN2COR.zip "
                "(--esacci is required too)"
            ) from None
    for line in built.summary():
        typer.echo(line)
    warning = built.warning()
    if warning:
        typer.echo(f"s2kit: WARNING: {warning}", err=True)


@container_app.command("labels")
def container_labels(
    image: Annotated[Path, typer.Argument(help="A .sif built by 's2kit container build'.")],
    apptainer: _ApptainerOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print an image's labels; exit 1 when one s2kit requires is missing."""
    from .container.build import missing_labels, read_labels

    with errors_to_exit():
        labels = read_labels(image, _apptainer_cmd(apptainer))
    missing = missing_labels(labels)
    if as_json:
        typer.echo(_dump_json({"labels": labels, "missing": missing}))
    else:
        for key in sorted(labels):
            typer.echo(f"{key}: {labels[key]}")
        for key in missing:
            typer.echo(f"s2kit: error: required label {key} is missing", err=True)
    raise typer.Exit(1 if missing else 0)


@container_app.command("lock")
def container_lock(
    image: Annotated[Path, typer.Argument(help="A .sif built by 's2kit container build'.")],
    lock: Annotated[
        Path, typer.Option("--lock", callback=_plain_text, help="The lock file to update.")
    ] = Path("containers/sen2cor.lock"),
    apptainer: _ApptainerOpt = None,
) -> None:
    """Record the installer sha256 of an existing image in the lock (trust on first use)."""
    from .container.build import read_labels, update_lock

    with errors_to_exit():
        labels = read_labels(image, _apptainer_cmd(apptainer))
        update_lock(lock, labels, image.absolute())
    typer.echo(
        f"{lock}: {labels.get('org.s2kit.sen2cor.installer')} sha256 "
        f"{labels.get('org.s2kit.sen2cor.installer.sha256')}"
    )


# --------------------------------------------------------------------------- fetch (issue 8)
@app.command()
def fetch(
    tiles: _TilesOpt,
    start: Annotated[
        str, typer.Option("--start", callback=_plain_text, help="First sensing date, YYYY-MM-DD.")
    ],
    end: Annotated[
        str, typer.Option("--end", callback=_plain_text, help="Last sensing date, YYYY-MM-DD (inclusive).")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", callback=_plain_text, help="L1C folder: products appear here only complete."),
    ],
    max_cloud: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--max-cloud", help="Skip products with more cloud cover (percent)."),
    ] = None,
    max_baseline: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--max-baseline", callback=_plain_text, help="Skip processing baselines above this, e.g. 03.01."
        ),
    ] = None,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            callback=_plain_text,
            help="gcs (Google's public bucket) or cdse (Copernicus Data Space).",
        ),
    ] = "gcs",
    base_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--base-url",
            callback=_plain_text,
            help="Use this server instead of the source's (a mirror, a test server).",
        ),
    ] = None,
    index: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--index",
            metavar="bucket|FILE|URL",
            callback=_plain_text,
            help="gcs: select from index.csv.gz (tile, date, cloud) instead of listing the tiles; "
            "'bucket' downloads the bucket's own (cached in OUT/.s2kit-fetch).",
        ),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", callback=_number(1, 256), help="Parallel downloads.")
    ] = 8,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show products, total size and what is skipped; write nothing.")
    ] = False,
    as_json: _JsonStableOpt = False,
    timeout: _HttpTimeoutOpt = 120.0,
    retries: _HttpRetriesOpt = 5,
) -> None:
    """Download L1C products (verified, resumable) and recreate the folders Sen2Cor needs.

    A product appears in OUT only complete, with a completion manifest; rerun the same command
    after an interruption to resume. CDSE downloads read the token from $CDSE_ACCESS_TOKEN.
    Exit codes: 0 all fetched or present, 1 a product failed, 2 usage, 3 source unreachable
    (the host name does not resolve or the connection is refused: offline, or a wrong --base-url;
    nothing is retried), 130 interrupted.
    """
    import signal
    import sys

    from .cli_progress import RichProgress
    from .fetch import Selection, fetch_products, open_source
    from .http import HttpClient

    def _sigterm(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    with errors_to_exit():
        sel = Selection.parse(tiles, start, end, max_cloud=max_cloud, max_baseline=max_baseline)
        with HttpClient(timeout=(15.0, timeout), retries=retries, pool_maxsize=max(10, jobs)) as client:
            src = open_source(source, client, base_url=base_url, index=index, out=out)
            bar = RichProgress() if not (dry_run or as_json) and sys.stderr.isatty() else None
            previous = signal.signal(signal.SIGTERM, _sigterm)
            try:
                report = fetch_products(
                    src,
                    sel,
                    out,
                    jobs=jobs,
                    dry_run=dry_run,
                    progress=bar,
                    log=lambda msg: typer.echo(f"s2kit: {msg}", err=True),
                )
            finally:
                signal.signal(signal.SIGTERM, previous)
    if as_json:
        typer.echo(_dump_json(report.to_dict()))
    else:
        for line in report.lines():
            typer.echo(line)
    if not report.ok:
        failed = report.by("failed")
        typer.echo(
            f"s2kit: error: {len(failed)} of {len(failed) + len(report.by('downloaded', 'download'))} "
            f"product(s) failed; first: {failed[0].name}: {failed[0].reason}",
            err=True,
        )
        raise typer.Exit(1)


# ------------------------------------------------------------------------- report / stac / compare (issue 9)
@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory written by 's2kit plan'.")],
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--out", callback=_plain_text, help="HTML file to write (default: RUN_DIR/report.html)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Also print the report's facts as one JSON document.")
    ] = False,
    no_quicklooks: Annotated[bool, typer.Option("--no-quicklooks", help="Make no thumbnails.")] = False,
    size: Annotated[
        int,
        typer.Option(
            "--thumb-size", callback=_number(8, 4096, unit=" px"), help="Longest side of a quicklook, px."
        ),
    ] = 128,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", callback=_number(1, 256), help="Processes rendering quicklooks.")
    ] = 2,
    compare_json: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Option(
            "--compare",
            callback=_plain_text,
            help="A 's2kit compare' JSON to include (RUN_DIR/compare/*.json always are).",
        ),
    ] = None,
) -> None:
    """One self-contained HTML page: counts, provenance consistency, times, failures, quicklooks."""
    from .report import write_report

    with run_dir_errors():
        result = write_report(
            run_dir,
            out,
            quicklooks=not no_quicklooks,
            size=size,
            jobs=jobs,
            compare_files=compare_json or (),
        )
    data = result.data
    if as_json:
        for row in data["scenes"]:
            row.get("quicklook", {}).pop("png_base64", None)
        typer.echo(_dump_json(data))
        return
    c = data["counts"]
    parts = ", ".join(f"{c[k]} {k}" for k in c if c[k])
    devs = len(data["provenance"]["deviations"])
    typer.echo(f"report: {result.html}")
    missing = len(data["provenance"]["missing"])
    typer.echo(
        f"scenes: {data['total']}: {parts or 'none'}; provenance differences: {devs}"
        + (f"; provenance missing: {missing}" if missing else "")
    )


@app.command()
def stac(
    source: Annotated[Path, typer.Argument(help="A run directory or one L2A .SAFE folder.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            callback=_plain_text,
            help="Folder for collection.json and the Items (OUT/<id>/<id>.json); always the folder "
            "named, also when its name ends in .SAFE.",
        ),
    ],
    schemas: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--schemas",
            callback=_plain_text,
            help="Extra local schema copies, laid out like their URLs "
            "(DIR/stac-extensions.github.io/eo/v1.1.0/schema.json); one there replaces the official "
            "schema s2kit ships for that URL. Default: $S2KIT_STAC_SCHEMAS.",
        ),
    ] = None,
    as_json: _JsonOpt = False,
) -> None:
    """Write a STAC Item per produced L2A and a Collection; validate them offline (official schemas) first."""
    from .stac import stac_for

    with errors_to_exit():
        result = stac_for(source, out, schemas)
    for warning in result.warnings:
        typer.echo(f"s2kit: warning: {warning}", err=True)
    if as_json:
        typer.echo(_dump_json(result.to_dict()))
    else:
        for line in result.lines():
            typer.echo(line)


@app.command()
def compare(
    local: Annotated[Path, typer.Argument(help="Our L2A .SAFE folder.")],
    official: Annotated[Path, typer.Argument(help="ESA's L2A .SAFE folder of the same tile and date.")],
    resolution: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--resolution", help="10, 20 or 60 m (default: the finest both products have)."),
    ] = None,
    band: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--band", callback=_plain_text, help="Compare only this band (B02, B8A, ...). Repeatable."
        ),
    ] = None,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--out",
            callback=_plain_text,
            help="Write the JSON here (RUN_DIR/compare/NAME.json shows it in the report).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON instead of the table.")] = False,
) -> None:
    """Per band statistics of the BOA reflectance difference and SCL agreement of two L2A products."""
    from .compare import compare_products, format_comparison
    from .fsutil import atomic_write_text

    with errors_to_exit():
        doc = compare_products(local, official, resolution=resolution, bands=band)
        if out is not None:
            atomic_write_text(out, _dump_json(doc) + "\n")
    typer.echo(_dump_json(doc) if as_json else format_comparison(doc))


# --------------------------------------------------------------------------- doctor (issue 14)
@app.command()
def doctor(
    config: Annotated[Path, typer.Option("--config", "-c", help="The batch config (s2kit.toml).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
    probe_job: Annotated[
        bool, typer.Option("--probe-job", help="Also run one tiny array job on the scheduler (<= 90 s).")
    ] = False,
    sen2cor_smoke: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--sen2cor-smoke",
            metavar="SCENE",
            help="Also run Sen2Cor --cr_only on this planned L1C scene, exactly as the worker does.",
        ),
    ] = None,
) -> None:
    """Check config, folders, DEM, scheduler and image at this site; exit 1 if any check FAILs."""
    from .doctor import run_doctor

    with errors_to_exit():
        report = run_doctor(config, probe_job=probe_job, smoke_scene=sen2cor_smoke)
    typer.echo(_dump_json(report.to_json_dict()) if as_json else report.table())
    raise typer.Exit(0 if report.ok else 1)


# --------------------------------------------------------------------------- entry point
def _interrupted(exc: SystemExit) -> bool:
    """Whether typer turned a Ctrl-C into this exit (``raise Exit(130) from KeyboardInterrupt``).

    Only that exact chain counts: a command that reports its own interruption (e.g. fetch's
    ``FetchInterrupted``, exit 130) has printed its line already.
    """
    ctx = exc.__context__
    return isinstance(ctx, typer.Exit) and isinstance(ctx.__cause__, KeyboardInterrupt)


def main() -> None:
    """Console-script entry point: every failure is one line on stderr, never a traceback
    (:func:`s2kit.crash.guarded`: an S2kitError, an OSError, Ctrl-C, anything else + crash log).

    ``s2kit worker ...`` normally never gets here: :func:`s2kit.__main__.main` dispatches it to
    :mod:`s2kit.worker_cli` before Typer is imported.
    """
    from .crash import guarded

    def run() -> None:
        try:
            app()
        except SystemExit as exc:
            if exc.code == 130 and _interrupted(exc):
                raise KeyboardInterrupt from None  # -> "s2kit: interrupted", 130
            raise

    guarded(run)


if __name__ == "__main__":  # pragma: no cover
    main()
