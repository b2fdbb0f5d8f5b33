"""Typed facade over the Rust engine: the only module that imports ``perago._native``.

Everything else in perago calls these functions, so the native boundary (argument
conversion, GIL release, error mapping) has exactly one Python-side entry point.
"""

from __future__ import annotations

import os

from perago import _native


def native_version() -> str:
    """Version of the compiled engine (equals the package version)."""
    return _native.__version__


def hash_file(path: str | os.PathLike[str]) -> str:
    """BLAKE3 hex digest of one file, computed in Rust with the GIL released."""
    return _native.hash_file(path)
