"""Former home of :mod:`s2kit.fetch.cdse` (kept so ``from s2kit.cdse import ...`` keeps working)."""

from __future__ import annotations

from .fetch.cdse import *  # noqa: F403
from .fetch.cdse import __all__  # noqa: F401
