"""Removing a bench repository's local-blockstore namespace never reaches outside the block
directory, and the dev server's block directory is found only from what ``perago dev up`` recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perago.devservers import blockstore, state
from perago.devservers.state import DevState, ServerRecord


@pytest.fixture
def block(tmp_path: Path) -> Path:
    root = tmp_path / "block"
    (root / "perago-bench" / "bench-1" / "data").mkdir(parents=True)
    (root / "perago-bench" / "bench-1" / "data" / "obj").write_bytes(b"x")
    (root / "perago-bench" / "bench-2").mkdir()
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    victim = tmp_path / "x"
    victim.mkdir()
    (victim / "precious").write_bytes(b"keep me")
    return victim


def test_removes_only_the_namespace_directory(block: Path) -> None:
    assert blockstore.remove_namespace(block, "local://perago-bench/bench-1") is True
    assert not (block / "perago-bench" / "bench-1").exists()
    assert (block / "perago-bench" / "bench-2").is_dir()
    assert blockstore.remove_namespace(block, "local://perago-bench/bench-1/") is False


@pytest.mark.parametrize(
    "namespace",
    [
        "local://../x",
        "local://perago-bench/../../x",
        "local://perago-bench/./bench-1",
        "local://",
        "local:///",
        "local:///x",
        "local://perago-bench//bench-1",
        "s3://bucket/x",
        "mem://x",
    ],
)
def test_refuses_namespaces_that_are_not_plain_paths_inside(
    block: Path, outside: Path, namespace: str
) -> None:
    with pytest.raises(ValueError, match="storage namespace"):
        blockstore.remove_namespace(block, namespace)
    assert (outside / "precious").read_bytes() == b"keep me"
    assert (block / "perago-bench" / "bench-1" / "data" / "obj").is_file()


def test_refuses_a_symlinked_directory_on_the_way(block: Path, outside: Path) -> None:
    (block / "link").symlink_to(outside)
    (outside / "bench-3").mkdir()
    with pytest.raises(ValueError, match="symlink"):
        blockstore.remove_namespace(block, "local://link/bench-3")
    assert (outside / "bench-3").is_dir()
    assert (outside / "precious").is_file()


def test_refuses_a_symlinked_namespace_directory(block: Path, outside: Path) -> None:
    (block / "perago-bench" / "bench-4").symlink_to(outside)
    with pytest.raises(ValueError, match="symlink"):
        blockstore.remove_namespace(block, "local://perago-bench/bench-4")
    assert (outside / "precious").is_file()
    assert (block / "perago-bench" / "bench-4").is_symlink()


def _record(state_dir: Path, url: str, key: str) -> None:
    lakefs = ServerRecord("lakefs", 1, 8000, url, "lakefs.log", "1")
    conductor = ServerRecord("conductor", 2, 8080, "http://127.0.0.1:8080", "c.log", "1")
    state.save(state_dir, DevState(lakefs, conductor, "http://127.0.0.1:8080/api", key, "s"))


def test_finds_the_block_dir_of_a_recorded_dev_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERAGO_DEV_CACHE_DIR", str(tmp_path))
    state_dir = tmp_path / "state" / "mine"
    _record(state_dir, "http://127.0.0.1:8000", "AKIA1")
    block = state_dir / "lakefs" / "block"
    block.mkdir(parents=True)
    for endpoint in (
        "http://127.0.0.1:8000",
        "http://localhost:8000/",
        "http://127.0.0.1:8000/api/v1",
    ):
        assert blockstore.known_block_dir(endpoint, "AKIA1") == block
    assert blockstore.known_block_dir("http://127.0.0.1:8001", "AKIA1") is None
    assert blockstore.known_block_dir("http://127.0.0.1:8000", "AKIA2") is None


def test_no_block_dir_without_a_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERAGO_DEV_CACHE_DIR", str(tmp_path))
    assert blockstore.known_block_dir("http://127.0.0.1:8000", "AKIA1") is None
    (tmp_path / "state" / "broken").mkdir(parents=True)
    (tmp_path / "state" / "broken" / state.STATE_FILE).write_text("{not json")
    assert blockstore.known_block_dir("http://127.0.0.1:8000", "AKIA1") is None
    _record(tmp_path / "state" / "noblock", "http://127.0.0.1:8000", "AKIA1")
    assert blockstore.known_block_dir("http://127.0.0.1:8000", "AKIA1") is None
