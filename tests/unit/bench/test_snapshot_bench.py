"""`perago bench snapshot|diff` produce the shared row format (no timing is asserted)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perago.bench import baselines
from perago.bench.cli import parse_size
from perago.bench.report import Row, ratio, rows_to_json
from perago.cli.app import app

KEYS = {"scenario", "tool", "median_s", "mb_per_s", "files_per_s", "peak_rss_mb", "note"}


def test_row_json_and_ratio() -> None:
    rows = [
        Row.measured("s", "perago", 0.5, total_bytes=10**6, files=10, peak_rss_kb=2048),
        Row.measured("s", "b3sum", 1.0, total_bytes=10**6, files=10, peak_rss_kb=None),
        Row.skipped_baseline("t", "b3sum", "b3sum not found on PATH"),
    ]
    data = json.loads(rows_to_json(rows))
    assert [set(row) for row in data] == [KEYS, KEYS, {*KEYS, "skipped"}]
    assert data[2]["note"] == "b3sum baseline skipped: b3sum not found on PATH"
    assert data[2]["skipped"] == "b3sum not found on PATH"
    assert data[0]["mb_per_s"] == pytest.approx(2.0)
    assert data[0]["files_per_s"] == pytest.approx(20.0)
    assert data[0]["peak_rss_mb"] == pytest.approx(2.0)
    assert data[2]["median_s"] is None
    assert ratio(rows, ("s", "perago"), ("s", "b3sum")) == pytest.approx(0.5)
    assert ratio(rows, ("t", "perago"), ("t", "b3sum")) is None


@pytest.mark.parametrize(("text", "size"), [("4096", 4096), ("4K", 4096), ("1MiB", 1 << 20)])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_bench_snapshot_and_diff_json_on_a_tiny_tree(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--files", "300", "--size", "1K", "--repeat", "1", "--work-dir", str(tmp_path)]
    result = runner.invoke(app, ["bench", "snapshot", *args, "--large-files", "0", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["scenario"], r["tool"]) for r in rows] == [
        ("snapshot-small", "perago"),
        ("snapshot-small", "b3sum"),
        ("snapshot-small", "python-sha256"),
    ]
    b3sum = rows[1]
    if shutil.which("b3sum") is None:
        assert b3sum["note"] == f"b3sum baseline skipped: {baselines.B3SUM_MISSING}"
        assert b3sum["skipped"] == baselines.B3SUM_MISSING
        assert f"b3sum baseline skipped: {baselines.B3SUM_MISSING}" in result.stderr
    else:
        assert b3sum["median_s"] > 0
    assert "snapshot-small" in result.stderr  # the table, on stderr beside the JSON
    assert rows[0]["files_per_s"] > 0
    result = runner.invoke(app, ["bench", "diff", *args, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["scenario"] for r in rows] == [
        "diff-unchanged-small",
        "statwalk-small",
        "diff-1pct-small",
    ]
    assert rows[0]["note"] == "rehashed 0"
    assert rows[2]["note"] == "rehashed 3 of 3 modified"


def test_bench_bad_dir_is_one_error_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "snapshot", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: {tmp_path / 'none'}: not a directory"]
