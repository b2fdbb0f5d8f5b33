"""The host's content cache of lakeFS objects (Rust engine) behind a small typed API.

One cache directory serves every worker slot and supervisor of a host. Objects are keyed by what
lakeFS says of them (physical address, checksum, size) and stored once with their BLAKE3; a
download materialises what the cache holds and fetches only the rest. Workspace files never
share an inode with an entry: they are reflinked (copy-on-write extents) where the file system
offers it, and copied, hashed as read, elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from perago import _native
from perago.errors import RuntimeConfigError

ContentCache = _native.ContentCache

# (done, total) entries, called from the calling thread.
CacheProgress = Callable[[int, int], object]

__all__ = [
    "CacheProgress",
    "CacheStatus",
    "ContentCache",
    "FetchStats",
    "PruneResult",
    "VerifyResult",
    "open_cache",
    "prune",
    "status",
    "verify",
]


@dataclass(frozen=True)
class FetchStats:
    """Where a download's bytes came from (``hit_bytes`` are the bytes the cache saved)."""

    hits: int = 0
    hit_bytes: int = 0
    fetched: int = 0
    fetched_bytes: int = 0
    inserted: int = 0
    waited: int = 0
    corrupt: int = 0
    evicted: int = 0

    @classmethod
    def from_counters(cls, counters: Mapping[str, int]) -> FetchStats:
        return cls(**{name: int(counters.get(name, 0)) for name in cls.__dataclass_fields__})

    def as_log_fields(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class CacheStatus:
    directory: str
    mode: str
    max_size: int
    entries: int
    bytes: int
    partials: int
    partial_bytes: int


@dataclass(frozen=True)
class PruneResult:
    evicted: int
    evicted_bytes: int
    partials_removed: int
    entries: int
    bytes: int


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    bytes: int
    corrupt: int


def open_cache(directory: str | os.PathLike[str], max_size: int) -> ContentCache:
    """Open (creating) the cache; a directory that cannot hold one is a one-line
    :class:`RuntimeConfigError` naming it."""
    try:
        return ContentCache(directory, max_size)
    except (OSError, ValueError) as exc:
        raise RuntimeConfigError(f"content cache {os.fspath(directory)}: {exc}") from None


def status(cache: ContentCache) -> CacheStatus:
    counts = cache.status()
    return CacheStatus(
        directory=str(cache.dir),
        mode=cache.mode,
        max_size=cache.max_size,
        entries=counts["entries"],
        bytes=counts["bytes"],
        partials=counts["partials"],
        partial_bytes=counts["partial_bytes"],
    )


def prune(
    cache: ContentCache, target: int | None = None, *, progress: CacheProgress | None = None
) -> PruneResult:
    """Evict least recently used entries down to ``target`` bytes (default: the size limit)."""
    result = cache.prune(target, progress=progress)
    return PruneResult(
        evicted=result["evicted"],
        evicted_bytes=result["evicted_bytes"],
        partials_removed=result["partials_removed"],
        entries=result["entries"],
        bytes=result["bytes"],
    )


def verify(
    cache: ContentCache, *, threads: int | None = None, progress: CacheProgress | None = None
) -> VerifyResult:
    """Re-hash every entry; entries whose bytes changed are evicted (fetched again when next
    needed)."""
    result = cache.verify(threads=threads, progress=progress)
    return VerifyResult(checked=result["checked"], bytes=result["bytes"], corrupt=result["corrupt"])
