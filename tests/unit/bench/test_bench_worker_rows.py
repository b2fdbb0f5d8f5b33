"""``perago bench worker`` rows use the shared bench Row (same JSON shape, plus tasks_per_s)."""

from __future__ import annotations

import json

from perago.bench.report import Row, rows_to_json
from perago.bench.worker import WorkerBenchResult, throughput_ratio


def test_worker_row_is_a_shared_row_with_tasks_per_second() -> None:
    row = WorkerBenchResult("perago", tasks=300, seconds=12.5, peak_rss_mb=61.234).row()
    assert isinstance(row, Row)
    assert row.as_json() == {
        "scenario": "worker-noop",
        "tool": "perago",
        "median_s": 12.5,
        "mb_per_s": None,
        "files_per_s": None,
        "peak_rss_mb": 61.2,
        "note": "",
        "tasks_per_s": 24.0,
    }


def test_worker_json_has_the_keys_of_every_other_bench_row() -> None:
    other = Row.measured("tree", "perago", 1.0, total_bytes=10, files=1, peak_rss_kb=None)
    worker = WorkerBenchResult("conductor-python", 10, 2.0, None).row()
    decoded = json.loads(rows_to_json([other, worker]))
    assert set(decoded[0]) <= set(decoded[1])
    assert set(decoded[1]) - set(decoded[0]) == {"tasks_per_s"}
    assert "tasks_per_s" not in decoded[0]


def test_throughput_ratio_compares_tasks_per_second() -> None:
    rows = [
        WorkerBenchResult("perago", 100, 10.0, None).row(),
        WorkerBenchResult("conductor-python", 100, 9.0, None).row(),
    ]
    ratio = throughput_ratio(rows)
    assert ratio is not None
    assert abs(ratio - (10.0 / 11.11)) < 1e-3
    assert throughput_ratio(rows[:1]) is None
