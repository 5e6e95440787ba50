"""Old import path of :mod:`s2kit.container.build` (the Sen2Cor image build); kept working."""

from __future__ import annotations

from .container.build import *  # noqa: F403 - the public names, re-exported
from .container.build import (  # noqa: F401 - used by callers of the old path
    LOCK_FORMAT,
    ChecksumRow,
    Section,
    default_ca_bundle,
    missing_labels,
    parse_labels_json,
    read_def,
)
from .container.build import __all__ as __all__
