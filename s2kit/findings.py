"""What a check found: the one finding record the aux-data checks share.

(``s2kit.validate`` and ``s2kit.gipp`` carry richer findings: a product path, or
an element and a line; they keep their own records but use the same ``Severity``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Severity", "Finding"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "code": self.code, "message": self.message}
