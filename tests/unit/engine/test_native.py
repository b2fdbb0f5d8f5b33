"""The compiled engine is real, importable and agrees with the reference BLAKE3 digests."""

from __future__ import annotations

from pathlib import Path

import pytest

import perago
from perago.engine import native_version
from perago.engine import snapshot as engine

# Official BLAKE3 test vector for the empty input.
EMPTY_BLAKE3 = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def test_native_version_matches_package() -> None:
    assert native_version() == perago.__version__


def test_hash_file_empty_matches_test_vector(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.write_bytes(b"")
    assert engine.hash_file(target) == EMPTY_BLAKE3


def test_hash_file_small_and_large_paths_agree(tmp_path: Path) -> None:
    # 3 MiB goes through the mmap + rayon path; its prefix through the read path.
    data = bytes(range(256)) * (3 * 4096)
    big, small = tmp_path / "big", tmp_path / "small"
    big.write_bytes(data)
    small.write_bytes(data[:1000])
    assert engine.hash_file(big) != engine.hash_file(small)
    assert len(engine.hash_file(big)) == 64


def test_hash_file_missing_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        engine.hash_file(tmp_path / "missing")
