"""``perago bench fleet``'s plans and rows (the servers part runs in tests/e2e/test_fleet.py)."""

from __future__ import annotations

from perago.bench.fleet import Plan, RoundResult, combine, plans, speedups


def test_plans_compare_one_supervisor_with_two() -> None:
    assert plans(2) == [Plan(1, 2), Plan(2, 1), Plan(2, 2)]
    assert plans(3) == [Plan(1, 3), Plan(2, 3)]  # no even split of 3 workers
    assert plans(1) == [Plan(1, 1), Plan(2, 1)]
    assert Plan(2, 1).scenario == "fleet-2x1"


def test_rows_carry_throughput_and_verification() -> None:
    rounds = [
        RoundResult(Plan(2, 1), 10, 2.0, 10, (), 10),
        RoundResult(Plan(2, 1), 10, 4.0, 9, ("w3: FAILED",), 10),
        RoundResult(Plan(2, 1), 10, 5.0, 10, (), 10),
    ]
    combined = combine(rounds)
    assert (combined.workflows, combined.verified, combined.seconds) == (30, 29, 4.0)
    row = combined.row().as_json()
    assert row["scenario"] == "fleet-2x1"
    assert row["tool"] == "perago"
    assert row["median_s"] == 4.0
    assert row["tasks_per_s"] == 2.5  # 10 workflows per round in the median window
    assert (row["workflows"], row["verified"]) == (30, 29)
    assert row["note"] == "29/30 published exactly once; 2 supervisors x 1 workers"


def test_speedups_against_the_single_supervisor() -> None:
    rows = [
        RoundResult(Plan(1, 2), 10, 2.0, 10, (), 10).row(),
        RoundResult(Plan(2, 1), 10, 2.0, 10, (), 10).row(),
        RoundResult(Plan(2, 2), 10, 1.0, 10, (), 10).row(),
    ]
    assert speedups(rows, 2) == [
        ("fleet-2x1 / fleet-1x2 throughput", 1.0),
        ("fleet-2x2 / fleet-1x2 throughput", 2.0),
    ]
