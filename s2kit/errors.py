"""One exception root for everything s2kit raises on purpose.

Every message says what was expected, what was found, and where, so the CLI can
print it as one line (``s2kit: error: <message>``) and exit non-zero.
"""

from __future__ import annotations

import os
from pathlib import Path


def display_path(path: str | os.PathLike[str]) -> str:
    """A printable form of *path*, also for names that are not valid UTF-8."""
    text = os.fspath(path)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class S2kitError(Exception):
    """Root of every error s2kit raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.message = message
        super().__init__(f"{display_path(path)}: {message}" if path is not None else message)


class InputError(S2kitError):
    """The input is not what the command expects (wrong kind, missing, not a product)."""


class MetadataError(S2kitError):
    """A metadata file could not be read or lacks a value that must be there."""


class UnsafeXMLError(MetadataError):
    """An XML document with a DOCTYPE/entity declarations (refused, never expanded)."""


class MetadataTooLargeError(MetadataError):
    """A metadata document above ``s2kit.xmlsafe.MAX_METADATA_BYTES`` (refused before parsing)."""


class ConfigError(S2kitError):
    """A configuration value is invalid; the message names the key."""


class UsageError(S2kitError):
    """Bad command-line usage that click did not catch itself."""

    exit_code = 2
