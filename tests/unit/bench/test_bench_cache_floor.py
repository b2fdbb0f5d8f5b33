"""``perago bench cache``'s ``1pct-floor``: it writes exactly the files the 1 % case takes from
the cache (the data set's paths and sizes), and a failed write fails it instead of shortening
the time it reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from perago.bench.cache import changed_indices, kept_indices, write_from_memory
from perago.bench.sizes import MIB


def _written(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*.bin")}


def test_the_floor_writes_every_file_the_cache_would_give_and_no_other(tmp_path: Path) -> None:
    kept = kept_indices(300)
    assert sorted(kept + changed_indices(300)) == list(range(300))
    assert write_from_memory(tmp_path / "small", kept, 4096, 2) > 0
    assert _written(tmp_path / "small") == {f"d{i % 100:03d}/f{i:06d}.bin": 4096 for i in kept}


def test_a_large_file_is_written_whole_from_a_bounded_block(tmp_path: Path) -> None:
    size = 4 * MIB + 3  # more than the block: written in several pieces
    write_from_memory(tmp_path / "large", kept_indices(2), size, 2)
    assert _written(tmp_path / "large") == {"d001/f000001.bin": size}


def test_a_failed_write_fails_the_floor(tmp_path: Path) -> None:
    write_from_memory(tmp_path / "twice", [1], 10, 1)
    with pytest.raises(FileExistsError):
        write_from_memory(tmp_path / "twice", [1], 10, 1)
