"""The ``s2kit`` command line: a thin Typer layer over the library.

Heavy modules are imported inside the commands so ``s2kit --help`` stays fast.
Every deliberate error is an :class:`s2kit.errors.S2kitError`; it is printed as
one line on stderr (``s2kit: error: ...``) with a non-zero exit code.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from . import __version__

app = typer.Typer(
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
        typer.echo(f"s2kit: error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None


def _dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------- inspect / validate
@app.command()
def inspect(
    path: Annotated[
        Path, typer.Argument(help="A .SAFE dir, .SAFE.zip, MTD_*.xml, MTD_TL.xml or manifest.safe.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (stable keys).")] = False,
) -> None:
    """Show the facts that decide how a product is processed."""
    from .safe import inspect_path, record_table

    with errors_to_exit():
        record = inspect_path(path)
    if as_json:
        typer.echo(_dump_json(record))
    else:
        typer.echo(record_table(record))


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="L2A products (.SAFE dirs or .SAFE.zip).")],
    expect_sen2cor: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--expect-sen2cor", help="Require this Sen2Cor version, e.g. 2.9."),
    ] = None,
    consistency: Annotated[
        bool, typer.Option("--consistency", help="Also require one baseline and one Sen2Cor version.")
    ] = False,
    json_out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--json", help="Write the JSON report to FILE ('-' for stdout)."),
    ] = None,
) -> None:
    """Validate L2A products; exit 0 when clean, 1 on any error finding, 2 on usage errors."""
    from .fsutil import atomic_write_text
    from .validate import format_report, validate_products

    with errors_to_exit():
        report = validate_products(paths, expect_sen2cor=expect_sen2cor, consistency=consistency)
        if json_out is not None and str(json_out) == "-":
            typer.echo(_dump_json(report.to_dict()))
        else:
            typer.echo(format_report(report))
            if json_out is not None:
                atomic_write_text(json_out, _dump_json(report.to_dict()) + "\n")
    raise typer.Exit(0 if report.valid else 1)


# --------------------------------------------------------------------------- gipp (issue 4)
gipp_app = typer.Typer(help="Render, check and diff Sen2Cor GIPP configuration files.", no_args_is_help=True)
app.add_typer(gipp_app, name="gipp")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
