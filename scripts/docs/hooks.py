"""mkdocs hook: add the generated reference pages (scripts/docs/reference.py) at build time.

They are never committed, so they cannot go stale: every ``mkdocs build`` renders them from
the code that is checked out (the Typer app, the pydantic config model, the code tables).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference  # noqa: E402


def on_files(files: Files, config: Any) -> Files:
    for rel, text in reference.pages().items():
        existing = files.get_file_from_path(rel)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, rel, content=text))
    return files
