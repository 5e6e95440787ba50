"""Former home of :mod:`s2kit.fetch.gcs` (kept so ``from s2kit.gcs import ...`` keeps working)."""

from __future__ import annotations

from .fetch.gcs import *  # noqa: F403
from .fetch.gcs import __all__  # noqa: F401
