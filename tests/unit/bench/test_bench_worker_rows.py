"""``perago bench worker`` rows use the shared bench Row (same JSON shape, plus tasks_per_s)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from perago.bench import worker
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


# --- warm-up and alternating order (no Conductor: the queue and the rounds are stubbed) ---------


@pytest.fixture
def rounds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every round the bench runs, as (tool, workflows), in order; perago is always 2 s."""
    ran: list[tuple[str, int]] = []
    queue = object()

    @contextlib.contextmanager
    def fake_queue(api_url: str, work_dir: Path | None = None) -> Iterator[object]:
        yield queue

    def fake_round(
        got: object,
        *,
        tool: str,
        workflows: int,
        processes: int,
        timeout: float,
        telemetry_env: dict[str, str] | None = None,
    ) -> WorkerBenchResult:
        assert got is queue  # every round, warm-up included, on the one queue
        ran.append((tool, workflows))
        return WorkerBenchResult(tool, workflows, 2.0 if tool == "perago" else 1.0 + len(ran), 50.0)

    monkeypatch.setattr(worker, "noop_queue", fake_queue)
    monkeypatch.setattr(worker, "run_round", fake_round)
    return ran


def test_a_warm_up_round_comes_first_and_the_order_alternates(
    rounds: list[tuple[str, int]],
) -> None:
    lines: list[str] = []
    rows = worker.worker_rows(
        api_url="http://x/api", workflows=300, processes=2, repeat=3, log=lines.append
    )
    warm = worker.warmup_workflows(300)
    assert 0 < warm < 300
    assert rounds == [
        ("perago", warm),
        ("conductor-python", warm),
        ("perago", 300),
        ("conductor-python", 300),
        ("conductor-python", 300),
        ("perago", 300),
        ("perago", 300),
        ("conductor-python", 300),
    ]
    assert lines[0].startswith("warm-up (not measured): perago")
    assert sum("round 2/3 (conductor-python first)" in line for line in lines) == 2
    perago, bare = rows
    assert (perago.tool, perago.median_s, perago.tasks_per_s) == ("perago", 2.0, 150.0)
    # The bare rounds were the 4th, 5th and 8th round run: 5, 6 and 9 s; the median is 6.
    assert (bare.tool, bare.median_s) == ("conductor-python", 6.0)
    assert bare.note == (
        "median of 3 rounds (300 in 5.00 s, 300 in 6.00 s, 300 in 9.00 s) after a warm-up; "
        "order alternates; tasks counted once every worker process ran"
    )


def test_the_window_opens_when_the_last_worker_process_took_its_first_task() -> None:
    # w1 ran alone from 0 to 1,000 ms while w2 was still starting: not counted.
    tasks = [("w1", 0, 100), ("w1", 500, 600), ("w1", 1000, 1100), ("w2", 1000, 1200)]
    tasks += [("w1", 1100, 1500), ("w2", 1200, 2000)]
    assert worker.steady_window(tasks) == (1.0, 4)
    assert worker.steady_window([("w", 10, 20), ("w", 20, 40)]) == (0.03, 2)


def test_with_telemetry_three_tools_rotate_and_get_the_endpoint(
    rounds: list[tuple[str, int]],
) -> None:
    rows = worker.worker_rows(
        api_url="http://x/api",
        workflows=90,
        processes=1,
        repeat=3,
        log=lambda _line: None,
        telemetry_env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
    )
    measured = [tool for tool, count in rounds if count == 90]
    assert measured == [
        "perago", "perago+telemetry", "conductor-python",
        "perago+telemetry", "conductor-python", "perago",
        "conductor-python", "perago", "perago+telemetry",
    ]  # fmt: skip
    assert [row.tool for row in rows] == ["perago", "perago+telemetry", "conductor-python"]


def test_round_orders_and_warm_up_size() -> None:
    assert worker.round_orders(1) == [("perago", "conductor-python")]
    assert worker.round_orders(2)[1] == ("conductor-python", "perago")
    assert worker.warmup_workflows(5) == 5  # never more than a measured round
    assert worker.warmup_workflows(120) == 50
    assert worker.warmup_workflows(300) == 100
