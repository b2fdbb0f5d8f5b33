"""A baseline that cannot run is said, never silently dropped: ``lakectl`` is found where
``perago dev`` built it when it is not on PATH, and without any lakectl (or b3sum) stderr gets
one ``<tool> baseline skipped: <why>`` line and the rows keep an unmeasured row saying why."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from perago.bench import baselines, cache, transfer
from perago.bench.baselines import Baseline
from perago.bench.report import rows_to_json
from perago.devservers import provision

SKIPPED = "lakectl baseline skipped: lakectl not found on PATH or in the perago dev cache"


def _program(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No lakectl or b3sum on PATH, no PERAGO_LAKECTL_BIN, an empty perago dev cache."""
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    monkeypatch.setenv("PATH", str(empty_path))
    monkeypatch.delenv(baselines.LAKECTL_ENV, raising=False)
    cache_root = tmp_path / "dev-cache"
    monkeypatch.setenv("PERAGO_DEV_CACHE_DIR", str(cache_root))
    return cache_root


def test_without_any_lakectl_the_baseline_says_why(nowhere: Path) -> None:
    found = baselines.lakectl()
    assert found == Baseline("lakectl", None, baselines.LAKECTL_MISSING)
    assert found.skipped_line == SKIPPED
    lines: list[str] = []
    assert found.announce(lines.append) is found
    assert lines == [SKIPPED]


def test_lakectl_falls_back_to_the_perago_dev_cache(nowhere: Path) -> None:
    bin_dir = nowhere / "servers" / "lakefs" / provision.LAKEFS_VERSIONS[-1] / "bin"
    _program(bin_dir / "lakefs")
    lakectl = _program(bin_dir / "lakectl")
    found = baselines.lakectl()
    assert found == Baseline("lakectl", str(lakectl))
    lines: list[str] = []
    found.announce(lines.append)
    assert lines == []


def test_lakectl_on_path_comes_before_the_cache(nowhere: Path, tmp_path: Path) -> None:
    bin_dir = nowhere / "servers" / "lakefs" / provision.LAKEFS_VERSIONS[0] / "bin"
    _program(bin_dir / "lakefs")
    _program(bin_dir / "lakectl")
    on_path = _program(tmp_path / "bin" / "lakectl")
    assert baselines.lakectl().path == str(on_path)


def test_perago_lakectl_bin_wins_and_must_be_executable(
    nowhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _program(tmp_path / "bin" / "lakectl")
    chosen = _program(tmp_path / "mine" / "lakectl")
    monkeypatch.setenv(baselines.LAKECTL_ENV, str(chosen))
    assert baselines.lakectl().path == str(chosen)
    chosen.chmod(0o644)
    found = baselines.lakectl()
    assert found.path is None
    assert found.why == f"{baselines.LAKECTL_ENV}={chosen} is not an executable file"


def test_no_lakectl_is_a_skipped_baseline_too(nowhere: Path) -> None:
    found = baselines.lakectl(enabled=False)
    assert found.path is None
    assert found.skipped_line == "lakectl baseline skipped: turned off (--no-lakectl)"


def test_without_b3sum_the_baseline_says_why(nowhere: Path) -> None:
    found = baselines.b3sum()
    assert found.path is None
    assert found.skipped_line == f"b3sum baseline skipped: {baselines.B3SUM_MISSING}"
    row = json.loads(rows_to_json([found.skipped_row("snapshot-small")]))[0]
    assert (row["tool"], row["median_s"], row["skipped"]) == ("b3sum", None, found.why)
    assert row["note"] == found.skipped_line


# --- the benches keep the skipped baseline's rows -----------------------------------------------


class _Control:
    """Just enough of perago's lakeFS client for the upload bench's bookkeeping."""

    def create_repository(self, name: str, namespace: str) -> None:
        pass

    def delete_repository(self, name: str) -> None:
        pass

    def create_branch(self, repository: str, branch: str, source: str) -> None:
        pass

    def commit(self, repository: str, branch: str, message: str, metadata: Any) -> str:
        return "c1"


@pytest.mark.parametrize("enabled", [True, False])
def test_upload_without_lakectl_lists_its_rows_and_says_why(
    nowhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    server = transfer.Server("http://127.0.0.1:1", "AKIA", "s")
    server.__dict__["control"] = _Control()  # the cached_property, filled in ahead
    monkeypatch.setattr(transfer, "measure", lambda *_: transfer.Measurement(0.25, 12.0))
    load = transfer.Workload(
        files=2, size=16, large_files=1, large_size=32, repeat=2, concurrency=None,
        namespace_root="local://perago-bench", topology="s3", lakectl=enabled,
    )  # fmt: skip
    lines: list[str] = []
    rows = transfer.run_upload(server, tmp_path / "work", load, log=lines.append)
    assert [(row.scenario, row.tool) for row in rows] == [
        ("upload-small", "perago"),
        ("upload-small", "lakectl"),
        ("upload-large", "perago"),
        ("upload-large", "lakectl"),
    ]
    why = baselines.LAKECTL_MISSING if enabled else baselines.TURNED_OFF
    decoded = json.loads(rows_to_json(rows))
    for row in decoded[1::2]:
        assert (row["median_s"], row["skipped"], row["topology"]) == (None, why, "s3")
        assert row["note"] == f"lakectl baseline skipped: {why}"
    assert all(row["median_s"] == 0.25 for row in decoded[::2])
    assert lines.count(f"lakectl baseline skipped: {why}") == 1  # once, not per data set


def test_the_cache_bench_lists_the_clone_without_lakectl(tmp_path: Path) -> None:
    data = transfer.DataSet("small", tmp_path, files=100, bytes=100 * 10)
    missing = Baseline("lakectl", None, baselines.LAKECTL_MISSING)
    one = cache._DataSetBench(
        server=transfer.Server("http://x", "k", "s"), repo="bench-1", seed="c0", data=data,
        work=tmp_path, concurrency=None, lakectl=missing, log=lambda _: None,
    )  # fmt: skip
    run = cache._Run(transfer.Measurement(0.5, 10.0), {"fetched_bytes": 1000})
    for case in cache.CASES[1:]:
        one.runs[case] = [run]
    rows = one.rows("local")
    clone = rows[0].as_json()
    assert (clone["tool"], clone["case"], clone["median_s"]) == ("lakectl", "clone", None)
    assert clone["skipped"] == baselines.LAKECTL_MISSING
    assert clone["note"] == SKIPPED
    assert [row.case for row in rows] == list(cache.CASES)


def test_a_found_baseline_is_not_announced() -> None:
    lines: list[str] = []
    Baseline("b3sum", os.devnull).announce(lines.append)
    assert lines == []
