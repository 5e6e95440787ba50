"""s2kit: reproducible Sentinel-2 L1C -> L2A batch processing with ESA Sen2Cor.

The package is a library first; ``s2kit.cli`` is a thin Typer layer over it.
Import the submodules you need (``s2kit.safe``, ``s2kit.validate`` ...); this
module stays import-free so that ``s2kit --help`` starts fast.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
