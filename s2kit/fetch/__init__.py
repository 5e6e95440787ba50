"""``s2kit fetch``: get L1C products from a source, verified, resumable, never half-present.

Steps (one :func:`fetch_products` call):

1. **find** candidates at the source (:mod:`s2kit.fetch.gcs` lists ``tiles/UU/L/SS/`` of Google's public
   bucket or reads its ``index.csv.gz``; :mod:`s2kit.fetch.cdse` searches the CDSE STAC catalogue);
2. **select** (:func:`select_products`, pure): tile and date window, L1C only, ``--max-baseline``,
   the duplicate policy shared with the planner (:func:`s2kit.dedupe.dedupe`), ``--max-cloud``
   when the cloud cover is already known (index, STAC);
3. **list** each selected product's objects (name, size, MD5, generation) and skip the products
   whose **completion manifest** matches; read the cloud cover from ``MTD_MSIL1C.xml`` when only
   the product's own metadata has it (the bytes are kept and reused, not fetched twice);
4. **download** the missing files in parallel (``--jobs``) through one
   :class:`~s2kit.http.HttpClient` (retries, back-off, timeouts, ``.part`` files resumed with
   HTTP ``Range``, size and MD5 checked while the bytes arrive, atomic rename) into a staging
   folder ``OUT/.s2kit-fetch/staging/<product>``; a journal there records every verified file,
   so an interrupted run (killed, network gone) continues where it stopped and no file is fetched
   twice in full (a file an earlier run verified is checked again - size, MD5 - before it is
   reused: it may not have reached the disk before that run stopped);
5. **finish** a product: recreate the empty folders the bucket does not store (``_$folder$``
   placeholders, then :func:`s2kit.safe.repair_empty_dirs`: ``AUX_DATA``, ``HTML``, ``rep_info``,
   ``GRANULE/*/AUX_DATA``, ``DATASTRIP/*/QI_DATA`` - without them Sen2Cor stops with "Error in
   creating L2A User Product"), flush the product's files and folders to disk (fsync, once per
   product, not per file), write the completion manifest
   ``OUT/.s2kit-fetch/complete/<product>.json`` (every file with size and MD5), then rename the
   staging folder to ``OUT/<product>``. A ``.SAFE`` folder therefore appears in ``OUT`` only
   complete, and a product counts as present only when its manifest exists and matches the
   source's listing and the sizes on disk.

A ``.SAFE`` already in ``OUT`` without a manifest (an older gsutil download, maybe interrupted) is
checked file by file (size, MD5): complete ones are adopted (manifest written, folders repaired),
incomplete ones are moved to staging and completed - only the missing or wrong files are fetched.
One ``fetch`` at a time writes into an ``OUT`` (a lock file). Every error is one line
(:class:`FetchError`); ``--dry-run`` writes nothing.

Nothing is written outside ``OUT``: a product's folder name must be exactly one product name
(:func:`product_folder_problem`; the sources apply it to the listing's folder and to CDSE item
ids, and :func:`select_products` again to every candidate), object paths must stay inside the
product (no ``..``, no absolute path, no control character), and every destination is checked,
after resolving, to lie under ``OUT``. A source that cannot be reached at all
(:class:`~s2kit.http.SourceUnreachable`: the name does not resolve, the connection is refused)
stops the run at once.

Layout: :mod:`.model` (selection, remote products, the Source protocol, errors), :mod:`.select`
(step 2, pure), :mod:`.store` (manifests, journal, path checks, the OUT lock), :mod:`.run`
(steps 3-5), :mod:`.report`, and the sources :mod:`.gcs` and :mod:`.cdse`, opened by
:func:`open_source`. The progress bar the CLI shows is :class:`s2kit.cli_progress.RichProgress`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..http import HttpClient
from .model import (
    STATE_DIR,
    FetchError,
    FetchInterrupted,
    RemoteObject,
    RemoteProduct,
    Selection,
    Source,
    normalize_tile,
    printable,
    product_folder_problem,
)
from .report import FetchedProduct, FetchReport, ProductReport, human_bytes
from .run import Progress, fetch, fetch_products
from .select import select_products
from .store import manifest_matches

__all__ = [
    "FetchError",
    "FetchInterrupted",
    "FetchReport",
    "FetchedProduct",
    "ProductReport",
    "Progress",
    "RemoteObject",
    "RemoteProduct",
    "SOURCE_KINDS",
    "Selection",
    "Source",
    "fetch",
    "fetch_products",
    "human_bytes",
    "manifest_matches",
    "normalize_tile",
    "open_source",
    "printable",
    "product_folder_problem",
    "select_products",
    "STATE_DIR",
]

#: the sources :func:`open_source` knows
SOURCE_KINDS = ("gcs", "cdse")


def open_source(
    kind: str,
    client: HttpClient,
    *,
    base_url: str | None = None,
    index: str | None = None,
    out: Path | None = None,
) -> Source:
    """The source *kind* (``gcs``: Google's public bucket, ``cdse``: Copernicus Data Space).

    *base_url* replaces the source's server (a mirror, a test server); *index* (gcs only) selects
    from ``index.csv.gz`` (``bucket``, a file or a URL), cached under ``out/.s2kit-fetch``.
    """
    if kind not in SOURCE_KINDS:
        raise UsageError(f"expected --source gcs or cdse, found {kind!r}")
    if index is not None and kind != "gcs":
        raise UsageError("expected --index only with --source gcs")
    if kind == "gcs":
        from .gcs import GcsSource

        return GcsSource(
            client, base_url, index=index, state_dir=out / STATE_DIR if out is not None else None
        )
    from .cdse import CdseSource

    return CdseSource(client, base_url)


def __getattr__(name: str) -> Any:
    # RichProgress moved to the CLI layer; the old import path keeps working without making
    # the library import rich.
    if name == "RichProgress":
        from ..cli_progress import RichProgress

        return RichProgress
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
