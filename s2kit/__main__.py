"""The ``s2kit`` console script, and ``python -m s2kit``.

``s2kit worker ...`` (what every array task runs) goes to :mod:`s2kit.worker_cli` before the
Typer CLI is imported: a task starts without Typer, Rich or pydantic (issue 17 item 4). Every
other command is :func:`s2kit.cli.main`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        from .worker_cli import main as worker_main

        worker_main(sys.argv[2:])
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
