"""The typed layer over the Rust engine (``perago._native``): :mod:`.snapshot` (snapshots and
change sets) and :mod:`.transfer` (lakeFS bulk transfers) call the native module directly and
are, with this file, its only importers. Every native call releases the GIL, runs on an
explicitly sized, fork-safe pool (``threads=None`` means all cores) and turns Ctrl-C into
``KeyboardInterrupt`` promptly."""

from __future__ import annotations

from perago import _native

# Defined once, in Rust (perago-core), and read from there.
ATTEMPT_MARKER: str = _native.ATTEMPT_MARKER
DEFAULT_CONCURRENCY: int = _native.DEFAULT_CONCURRENCY
UPLOAD_CONCURRENCY: int = _native.UPLOAD_CONCURRENCY
DEFAULT_PART_SIZE: int = _native.DEFAULT_PART_SIZE
REMOTE_RANGED_THRESHOLD: int = _native.REMOTE_RANGED_THRESHOLD
LAKEFS_PAGE_SIZE: int = _native.LAKEFS_PAGE_SIZE


def native_version() -> str:
    """Version of the compiled engine (equals the package version)."""
    return _native.__version__
