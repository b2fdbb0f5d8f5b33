"""The typed layer over the Rust engine (``perago._native``): :mod:`.snapshot` (snapshots and
change sets) and :mod:`.transfer` (lakeFS bulk transfers) call the native module directly and
are, with this file, its only importers. Every native call releases the GIL, runs on an
explicitly sized, fork-safe pool (``threads=None`` means all cores) and turns Ctrl-C into
``KeyboardInterrupt`` promptly."""

from __future__ import annotations

from perago import _native


def native_version() -> str:
    """Version of the compiled engine (equals the package version)."""
    return _native.__version__
