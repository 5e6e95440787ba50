"""What ``fetch`` did: one :class:`FetchedProduct` per product and the run's :class:`FetchReport`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import Decision, RemoteProduct, Selection


@dataclass
class FetchedProduct:
    name: str
    decision: Decision
    reason: str | None = None
    tile: str | None = None
    sensing_date: str | None = None
    processing_baseline: str | None = None
    cloud_cover: float | None = None
    size: int | None = None
    files: int | None = None
    path: str | None = None
    files_downloaded: int = 0
    files_resumed: int = 0
    files_reused: int = 0
    created_dirs: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, p: RemoteProduct, decision: Decision, reason: str | None = None) -> FetchedProduct:
        n = p.parsed
        return cls(
            name=p.target_name,
            decision=decision,
            reason=reason,
            tile=p.tile,
            sensing_date=n.sensing_start.date().isoformat() if n is not None else None,
            processing_baseline=n.processing_baseline if n is not None else None,
            cloud_cover=p.cloud_cover,
            size=p.total_size,
            files=len(p.objects) if p.objects is not None else None,
        )

    @property
    def reason_code(self) -> str:
        return (self.reason or "").split(":", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "decision": self.decision,
            "reason": self.reason,
            "tile": self.tile,
            "sensing_date": self.sensing_date,
            "processing_baseline": self.processing_baseline,
            "cloud_cover": self.cloud_cover,
            "size": self.size,
            "files": self.files,
            "path": self.path,
            "files_downloaded": self.files_downloaded,
            "files_resumed": self.files_resumed,
            "files_reused": self.files_reused,
            "created_dirs": self.created_dirs,
        }


@dataclass
class FetchReport:
    source: str
    base_url: str
    out: Path
    selection: Selection
    dry_run: bool
    products: list[FetchedProduct] = field(default_factory=list)
    not_selected: int = 0  # candidates outside the tiles / dates (not listed one by one)
    notes: list[str] = field(default_factory=list)
    bytes_transferred: int = 0
    seconds: float = 0.0

    def by(self, *decisions: Decision) -> list[FetchedProduct]:
        return [p for p in self.products if p.decision in decisions]

    @property
    def ok(self) -> bool:
        return not self.by("failed")

    def summary_dict(self) -> dict[str, Any]:
        todo = self.by("download", "downloaded")
        return {
            "download" if self.dry_run else "downloaded": len(todo),
            "complete": len(self.by("complete")),
            "skipped": dict(sorted(Counter(p.reason_code for p in self.by("skipped")).items())),
            "failed": len(self.by("failed")),
            "not_selected": self.not_selected,
            "bytes": sum(p.size or 0 for p in todo),
            "files": sum(p.files or 0 for p in todo),
            "bytes_transferred": self.bytes_transferred,
            "seconds": round(self.seconds, 3),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "base_url": self.base_url,
            "out": str(self.out),
            "dry_run": self.dry_run,
            "selection": self.selection.to_dict(),
            "products": [p.to_dict() for p in self.products],
            "summary": self.summary_dict(),
            "notes": self.notes,
        }

    def lines(self) -> Iterator[str]:
        """The human report: one line per product, then the summary."""
        label = {"download": "get", "downloaded": "got", "complete": "have", "skipped": "skip"}
        label["failed"] = "FAIL"
        width = max((len(p.name) for p in self.products), default=0)
        for p in self.products:
            detail: list[str] = []
            if p.decision in ("download", "downloaded", "complete") and p.size is not None:
                detail.append(f"{human_bytes(p.size):>9}  {p.files or 0:>3} files")
            if p.cloud_cover is not None and p.decision != "skipped":
                detail.append(f"cloud {p.cloud_cover:.1f} %")
            if p.decision == "downloaded":
                parts = [f"{p.files_downloaded} fetched"]
                if p.files_resumed:
                    parts.append(f"{p.files_resumed} resumed")
                if p.files_reused:
                    parts.append(f"{p.files_reused} kept")
                if p.created_dirs:
                    parts.append(f"{len(p.created_dirs)} empty folders recreated")
                detail.append(", ".join(parts))
            if p.reason:
                detail.append(p.reason)
            yield f"{label[p.decision]:<4}  {p.name:<{width}}  {'  '.join(detail)}".rstrip()
        s = self.summary_dict()
        todo_word = "to download" if self.dry_run else "downloaded"
        todo_n = s["download" if self.dry_run else "downloaded"]
        skipped = s["skipped"]
        skip_text = f"{sum(skipped.values())} skipped" + (
            f" ({', '.join(f'{n} {k}' for k, n in skipped.items())})" if skipped else ""
        )
        parts = [
            f"{todo_n} {todo_word} ({human_bytes(s['bytes'])} in {s['files']} files)",
            f"{s['complete']} already complete",
            skip_text,
        ]
        if s["failed"]:
            parts.append(f"{s['failed']} failed")
        if self.not_selected:
            parts.append(f"{self.not_selected} outside tiles/dates")
        tail = (
            "dry run: nothing written"
            if self.dry_run
            else f"{human_bytes(self.bytes_transferred)} transferred in {self.seconds:.1f} s"
        )
        yield f"fetch: {', '.join(parts)}; {tail}"


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


#: the former name of :class:`FetchedProduct` (kept for callers of the library)
ProductReport = FetchedProduct
