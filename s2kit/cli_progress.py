"""Progress display of the CLI: the rich progress bar ``s2kit fetch`` shows on a terminal.

It implements :class:`s2kit.fetch.Progress`; the library itself never imports rich for it.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["RichProgress"]


class RichProgress:
    """A rich progress bar on stderr: bytes, rate, files, products, ETA."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichBar

        self._bar = RichBar(
            TextColumn("fetch"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[files]} files, {task.fields[products]} products"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task: Any = None
        self._files = [0, 0]
        self._products = [0, 0]
        self._lock = threading.Lock()

    def _files_text(self) -> str:
        return f"{self._files[0]}/{self._files[1]}"

    def _products_text(self) -> str:
        return f"{self._products[0]}/{self._products[1]}"

    def start(self, total_bytes: int, done_bytes: int, files: int, products: int) -> None:
        self._files, self._products = [0, files], [0, products]
        self._bar.start()
        self._task = self._bar.add_task(
            "fetch",
            total=total_bytes,
            completed=done_bytes,
            files=self._files_text(),
            products=self._products_text(),
        )

    def advance(self, nbytes: int) -> None:
        self._bar.advance(self._task, nbytes)

    def file_done(self) -> None:
        with self._lock:
            self._files[0] += 1
            self._bar.update(self._task, files=self._files_text(), products=self._products_text())

    def product_done(self) -> None:
        with self._lock:
            self._products[0] += 1
            self._bar.update(self._task, files=self._files_text(), products=self._products_text())

    def stop(self) -> None:
        self._bar.stop()
