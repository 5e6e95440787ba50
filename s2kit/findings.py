"""What a check found: the one finding record every check shares.

A :class:`Finding` is ``code`` (stable, per check), ``severity`` and a one-line ``message``.
Checks that can say more about where add fields in a subclass: ``s2kit.gipp`` an element and a
line (:class:`s2kit.gipp.GippFinding`), ``s2kit.validate`` a product path
(:class:`s2kit.validate.ProductFinding`). The DEM and aux-data checks use this record as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Severity", "Finding"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "code": self.code, "message": self.message}
