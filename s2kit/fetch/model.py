"""What ``fetch`` works on: the selection, products and objects at a source, the Source protocol, errors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol

from .. import tile_names
from ..errors import S2kitError, UsageError
from ..http import HttpClient, HttpError
from ..safe import ProductName, parse_baseline, parse_product_name

STATE_DIR = ".s2kit-fetch"


MANIFEST_VERSION = 1


CHECKSUM_ATTEMPTS = 2  # a file whose MD5 does not match is fetched once more, then it is an error


Decision = Literal["download", "downloaded", "complete", "skipped", "failed"]


# a product folder: one path component, letters, digits and "_" (every Sentinel-2 product name,
# compact or legacy) then ".SAFE"; nothing else can name a folder in OUT
_PRODUCT_FOLDER_RE = re.compile(r"[A-Za-z0-9_]{1,250}\.SAFE")


def printable(text: str, limit: int = 200) -> str:
    """*text* for a one-line message: control characters escaped, long text cut with "..."."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def product_folder_problem(folder: str, parse: bool = True) -> str | None:
    """None when *folder* is exactly one product folder name (``<name>.SAFE``, letters, digits
    and ``_``, and with *parse* a name :func:`s2kit.safe.parse_product_name` accepts); else why
    it cannot name a folder in OUT (one line)."""
    if not _PRODUCT_FOLDER_RE.fullmatch(folder):
        return f"expected one folder named <product>.SAFE, found '{printable(folder)}'"
    if parse:
        try:
            parse_product_name(folder)
        except S2kitError:
            return f"expected a Sentinel-2 product name, found '{printable(folder)}'"
    return None


class FetchError(S2kitError):
    """Selecting or downloading products failed; the message says which and why."""


class FetchInterrupted(FetchError):
    """The run was interrupted (Ctrl-C, SIGTERM); what was verified is kept for the next run."""

    exit_code = 130


@dataclass(frozen=True)
class RemoteObject:
    """One file of a product at the source."""

    rel: str  # path inside the product folder (for a zipped product: the zip's own name)
    url: str
    size: int
    md5: str | None  # base64 (GCS md5Hash) or hex; None: only the size can be checked
    generation: str | None = None


@dataclass
class RemoteProduct:
    """A product at the source; *objects* is filled by :meth:`Source.list_objects`."""

    name: str  # "S2A_MSIL1C_..._<generation>.SAFE"
    parsed: ProductName | None
    source: str
    ref: str  # GCS: object prefix "tiles/17/S/QV/<name>/"; CDSE: the product UUID
    packaging: Literal["safe", "zip"] = "safe"
    cloud_cover: float | None = None
    size: int | None = None  # announced by the index / catalogue, before listing
    md5: str | None = None  # announced by the catalogue (zipped products)
    objects: list[RemoteObject] | None = None
    dirs: list[str] = field(default_factory=list)  # folders the listing marks (``_$folder$``, ``x/``)
    prefetched: dict[str, bytes] = field(default_factory=dict)  # verified bytes fetched while selecting
    unsafe: str | None = None  # why the source's folder/id cannot name a folder in OUT (then skipped)

    @property
    def target_name(self) -> str:
        """What appears in OUT: ``X.SAFE`` (a folder) or ``X.SAFE.zip``."""
        return self.name + ".zip" if self.packaging == "zip" else self.name

    @property
    def tile(self) -> str | None:
        return self.parsed.mgrs_tile if self.parsed is not None else None

    @property
    def total_size(self) -> int | None:
        if self.objects is not None:
            return sum(o.size for o in self.objects)
        return self.size


@dataclass(frozen=True)
class Selection:
    """What to fetch: tiles, an inclusive sensing-date window, optional cloud and baseline caps."""

    tiles: tuple[str, ...]
    start: date
    end: date
    max_cloud: float | None = None
    max_baseline: str | None = None

    def __post_init__(self) -> None:
        if not self.tiles:
            raise UsageError("expected at least one tile, found none")
        if self.end < self.start:
            raise UsageError(f"expected --end on or after --start, found {self.start} .. {self.end}")
        if self.max_cloud is not None and not 0 <= self.max_cloud <= 100:
            raise UsageError(f"expected --max-cloud between 0 and 100, found {self.max_cloud:g}")
        if self.max_baseline is not None:
            try:
                object.__setattr__(self, "max_baseline", parse_baseline(self.max_baseline))
            except S2kitError as exc:
                raise UsageError(f"--max-baseline: {exc.message}") from None

    @classmethod
    def parse(
        cls,
        tiles: Iterable[str],
        start: str,
        end: str,
        *,
        max_cloud: float | None = None,
        max_baseline: str | None = None,
    ) -> Selection:
        """A selection from text as a user types it: tiles (``17SQV``, ``T17sqv``; repeats
        dropped), ``YYYY-MM-DD`` dates; every problem is a :class:`~s2kit.errors.UsageError`."""
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError as exc:
            raise UsageError(
                f"expected --start/--end as YYYY-MM-DD, found {start!r}/{end!r} ({exc})"
            ) from None
        normalized = tuple(dict.fromkeys(normalize_tile(t) for t in tiles))
        return cls(normalized, first, last, max_cloud=max_cloud, max_baseline=max_baseline)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tiles": list(self.tiles),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "max_cloud": self.max_cloud,
            "max_baseline": self.max_baseline,
        }


class Source(Protocol):
    """Where products come from (:class:`s2kit.gcs.GcsSource`, :class:`s2kit.cdse.CdseSource`)."""

    name: str
    base_url: str
    client: HttpClient

    def describe(self) -> str: ...

    def check_ready(self, dry_run: bool) -> None: ...

    def candidates(self, sel: Selection) -> list[RemoteProduct]: ...

    def list_objects(self, product: RemoteProduct) -> None: ...

    def cloud_cover(self, product: RemoteProduct) -> float | None: ...

    def explain(self, exc: HttpError) -> str: ...

    def notes(self, sel: Selection) -> list[str]: ...


def normalize_tile(text: str) -> str:
    """:func:`s2kit.tile_names.normalize_tile`, a bad name being a usage error (it was typed)."""
    try:
        return tile_names.normalize_tile(text)
    except tile_names.TileError as exc:
        raise UsageError(exc.message) from None
