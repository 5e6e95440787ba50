"""The s2kit test suite (a package, so ``tests.support`` is importable without sys.path edits)."""
