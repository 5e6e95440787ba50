"""Element-level differences of a GIPP file from the pristine template of its Sen2Cor version."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError
from ..text import escaped
from ..versions import SUPPORTED_VERSIONS, normalize_version
from .detect import GippAsVersion, _detect
from .templates import GippSource, _kind_of, _load, _template_root
from .tree import GippChange, _diff_changes


@dataclass(frozen=True)
class GippDiff(GippAsVersion):
    """Result of :func:`diff_gipp`: the changes against the pristine Sen2Cor template."""

    version: str
    version_source: Literal["flag", "document"]
    changes: tuple[GippChange, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self._head(), "changes": [c.to_dict() for c in self.changes]}


def diff_gipp(source: GippSource, version: str | None = None, *, name: str | None = None) -> GippDiff:
    """Element-level differences of a GIPP file from the pristine template of its Sen2Cor version."""
    forced = normalize_version(version) if version is not None else None
    root, label = _load(source, name)
    kind = _kind_of(root, label)
    if forced is not None:
        used, used_source = forced, "flag"
    else:
        guess = _detect(root, kind)
        supported = [c for c in guess.candidates if c in SUPPORTED_VERSIONS]
        if not supported:
            what = f"Sen2Cor {guess.version}" if guess.version else "an unknown Sen2Cor version"
            raise ConfigError(
                f"expected a GIPP of Sen2Cor {', '.join(SUPPORTED_VERSIONS)}, found {what} "
                f"({guess.evidence}); pass --sen2cor to diff against one of those templates",
                label,
            )
        used, used_source = supported[0], "document"
    changes = _diff_changes(root, _template_root(used, kind))
    return GippDiff(label, kind, used, used_source, tuple(changes))  # type: ignore[arg-type]


def iter_diff_lines(diff: GippDiff) -> Iterator[str]:
    """Human-readable lines for one diff (used by the CLI)."""
    how = "from --sen2cor" if diff.version_source == "flag" else "detected"
    n = len(diff.changes)
    # control characters of a file name or value escaped: one line each, nothing for the terminal
    yield escaped(
        f"{diff.source}: {diff.kind} vs pristine Sen2Cor {diff.version} template ({how}): "
        f"{n} difference{'s' * (n != 1)}"
    )
    if not diff.changes:
        return
    width = max(len(c.element) for c in diff.changes)
    for c in diff.changes:
        yield escaped(f"  {c.change:<8} {c.element:<{width}}  {_show(c.template)} -> {_show(c.file)}")


def _show(value: str | None) -> str:
    if value is None:
        return "-"
    return repr(value) if value != value.strip() or not value else value
