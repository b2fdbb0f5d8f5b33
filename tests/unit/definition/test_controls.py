"""Control models, their defaults, constraints and messages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from perago import ExecutionLimits, PublishBudget, RetryPolicy, TaskControls, TimeoutPolicy

BUDGET: dict[str, int] = {
    "observed_merge_p99_seconds": 20,
    "safety_margin_seconds": 25,
    "lakefs_merge_timeout_seconds": 45,
    "conductor_completion_timeout_seconds": 15,
    "worker_shutdown_grace_seconds": 30,
    "heartbeat_interval_seconds": 10,
}


def test_retry_defaults() -> None:
    retry = RetryPolicy()
    assert (retry.count, retry.logic, retry.delay_seconds) == (3, "FIXED", 60)
    assert (retry.max_delay_seconds, retry.jitter_ms) == (0, 0)


def test_timeout_defaults() -> None:
    timeout = TimeoutPolicy()
    assert timeout.policy == "TIME_OUT_WF"
    assert (timeout.seconds, timeout.response_seconds) == (0, 600)
    assert (timeout.poll_seconds, timeout.total_seconds) == (0, 0)


def test_limits_default_to_unset() -> None:
    limits = ExecutionLimits()
    assert limits.concurrent_exec_limit is None
    assert limits.rate_limit_frequency_in_seconds is None
    assert limits.rate_limit_per_frequency is None


@pytest.mark.parametrize("count", [0, 10])
def test_retry_count_bounds_are_inclusive(count: int) -> None:
    assert RetryPolicy(count=count).count == count


@pytest.mark.parametrize("count", [-1, 11])
def test_retry_count_outside_0_to_10_is_rejected(count: int) -> None:
    with pytest.raises(ValidationError, match="count"):
        RetryPolicy(count=count)


@pytest.mark.parametrize("logic", ["FIXED", "EXPONENTIAL_BACKOFF", "LINEAR_BACKOFF"])
def test_retry_logic_values(logic: str) -> None:
    assert RetryPolicy.model_validate({"logic": logic}).logic == logic


def test_unknown_retry_logic_is_rejected() -> None:
    with pytest.raises(ValidationError, match="logic"):
        RetryPolicy.model_validate({"logic": "RANDOM"})


@pytest.mark.parametrize("policy", ["RETRY", "TIME_OUT_WF", "ALERT_ONLY"])
def test_timeout_policy_values(policy: str) -> None:
    assert TimeoutPolicy.model_validate({"policy": policy}).policy == policy


def test_unknown_timeout_policy_is_rejected() -> None:
    with pytest.raises(ValidationError, match="policy"):
        TimeoutPolicy.model_validate({"policy": "IGNORE"})


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (RetryPolicy, "delay_seconds"),
        (RetryPolicy, "max_delay_seconds"),
        (RetryPolicy, "jitter_ms"),
        (TimeoutPolicy, "seconds"),
        (TimeoutPolicy, "response_seconds"),
        (TimeoutPolicy, "poll_seconds"),
        (TimeoutPolicy, "total_seconds"),
        (ExecutionLimits, "concurrent_exec_limit"),
    ],
)
def test_negative_durations_and_limits_are_rejected(model: type[Any], field: str) -> None:
    assert getattr(model.model_validate({field: 0}), field) == 0
    with pytest.raises(ValidationError, match=field):
        model.model_validate({field: -1})


def test_numeric_fields_use_lax_integers() -> None:
    assert RetryPolicy.model_validate({"count": "4"}).count == 4
    with pytest.raises(ValidationError):
        RetryPolicy.model_validate({"count": 1.5})


@pytest.mark.parametrize(
    "model", [RetryPolicy, TimeoutPolicy, ExecutionLimits, PublishBudget, TaskControls]
)
def test_control_models_reject_unknown_fields(model: type[Any]) -> None:
    data: dict[str, Any] = dict(BUDGET) if model is PublishBudget else {}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model.model_validate({**data, "retry_count": 3})


@pytest.mark.parametrize(
    "fields",
    [{"rate_limit_frequency_in_seconds": 60}, {"rate_limit_per_frequency": 3}],
)
def test_rate_limit_fields_must_come_together(fields: dict[str, int]) -> None:
    message = (
        "rate_limit_frequency_in_seconds and rate_limit_per_frequency must be configured together"
    )
    with pytest.raises(ValidationError, match=re.escape(message)):
        ExecutionLimits.model_validate(fields)


def test_rate_limit_fields_together_are_accepted() -> None:
    limits = ExecutionLimits(rate_limit_frequency_in_seconds=60, rate_limit_per_frequency=3)
    assert (limits.rate_limit_frequency_in_seconds, limits.rate_limit_per_frequency) == (60, 3)


def test_publish_budget_derives_response_timeout() -> None:
    assert PublishBudget(**BUDGET).response_timeout_seconds == 45 + 15 + 30 + 10


def test_publish_budget_is_frozen() -> None:
    budget = PublishBudget(**BUDGET)
    with pytest.raises(ValidationError, match="frozen"):
        budget.heartbeat_interval_seconds = 1  # type: ignore[misc]


@pytest.mark.parametrize("field", sorted(BUDGET))
def test_publish_budget_fields_are_required(field: str) -> None:
    data = {key: value for key, value in BUDGET.items() if key != field}
    with pytest.raises(ValidationError, match=field):
        PublishBudget.model_validate(data)


@pytest.mark.parametrize(
    ("field", "minimum"),
    [
        ("observed_merge_p99_seconds", 0),
        ("safety_margin_seconds", 0),
        ("lakefs_merge_timeout_seconds", 1),
        ("conductor_completion_timeout_seconds", 1),
        ("worker_shutdown_grace_seconds", 1),
        ("heartbeat_interval_seconds", 1),
    ],
)
def test_publish_budget_minimums(field: str, minimum: int) -> None:
    low = {**BUDGET, "observed_merge_p99_seconds": 0, "safety_margin_seconds": 0}
    assert getattr(PublishBudget.model_validate({**low, field: minimum}), field) == minimum
    with pytest.raises(ValidationError, match=field):
        PublishBudget.model_validate({**low, field: minimum - 1})


def test_merge_timeout_must_cover_p99_plus_margin() -> None:
    message = (
        "lakefs_merge_timeout_seconds must cover observed_merge_p99_seconds plus "
        "safety_margin_seconds"
    )
    with pytest.raises(ValidationError, match=re.escape(message)):
        PublishBudget.model_validate({**BUDGET, "lakefs_merge_timeout_seconds": 44})
    assert PublishBudget.model_validate({**BUDGET, "lakefs_merge_timeout_seconds": 45})


def test_task_controls_defaults() -> None:
    controls = TaskControls()
    assert controls.retry == RetryPolicy()
    assert controls.timeout == TimeoutPolicy()
    assert controls.limits == ExecutionLimits()
    assert controls.publish_budget is None


def test_task_controls_response_timeout_is_never_overridden_by_budget() -> None:
    controls = TaskControls(
        timeout=TimeoutPolicy(response_seconds=30), publish_budget=PublishBudget(**BUDGET)
    )
    assert controls.response_timeout_seconds == 30


def test_task_controls_accept_nested_dicts() -> None:
    controls = TaskControls.model_validate({"retry": {"count": 0}, "publish_budget": BUDGET})
    assert controls.retry.count == 0
    assert controls.publish_budget == PublishBudget(**BUDGET)
