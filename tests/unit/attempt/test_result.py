"""Result model, reason formatting and the classification table."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from perago.attempt.result import (
    InvalidAttemptInput,
    RuntimeTaskResult,
    completed_result,
    failed_result,
    result_for_exception,
    terminal_failed_result,
)
from perago.errors import (
    PostGuardrailViolation,
    PreGuardrailViolation,
    PublishFenceError,
    StaleAttemptError,
    TaskFailed,
    TaskInputError,
    TaskTerminalError,
)


def test_completed_requires_output_and_forbids_reason() -> None:
    with pytest.raises(ValidationError):
        RuntimeTaskResult(status="COMPLETED")
    with pytest.raises(ValidationError):
        RuntimeTaskResult(status="COMPLETED", output={}, reason_for_incompletion="x")
    assert completed_result({"result": 1}).conductor_payload() == {
        "status": "COMPLETED",
        "output": {"result": 1},
    }


def test_failures_require_reason_and_forbid_output() -> None:
    with pytest.raises(ValidationError):
        RuntimeTaskResult(status="FAILED")
    with pytest.raises(ValidationError):
        RuntimeTaskResult(status="FAILED", output={}, reason_for_incompletion="x")
    assert failed_result("boom").conductor_payload() == {
        "status": "FAILED",
        "reasonForIncompletion": "boom",
    }
    assert terminal_failed_result("no").status == "FAILED_WITH_TERMINAL_ERROR"


def test_result_is_frozen() -> None:
    result = failed_result("x")
    with pytest.raises(ValidationError):
        result.status = "COMPLETED"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("exc", "status", "reason"),
    [
        (
            TaskTerminalError("bad file"),
            "FAILED_WITH_TERMINAL_ERROR",
            "TaskTerminalError: bad file",
        ),
        (
            PreGuardrailViolation("pre x"),
            "FAILED_WITH_TERMINAL_ERROR",
            "PreGuardrailViolation: pre x",
        ),
        (
            InvalidAttemptInput("invalid params: a: bad"),
            "FAILED_WITH_TERMINAL_ERROR",
            "TaskInputError: invalid params: a: bad",
        ),
        (TaskFailed("again"), "FAILED", "TaskFailed: again"),
        (PostGuardrailViolation("post y"), "FAILED", "PostGuardrailViolation: post y"),
        (StaleAttemptError("t1: stale"), "FAILED", "StaleAttemptError: t1: stale"),
        (PublishFenceError("fence"), "FAILED", "PublishFenceError: fence"),
        (TaskInputError("plain"), "FAILED", "TaskInputError: plain"),
        (OSError("disk"), "FAILED", "OSError: disk"),
        (ValueError("v"), "FAILED", "ValueError: v"),
        (RuntimeError(), "FAILED", "RuntimeError"),
        (KeyError("x"), "FAILED", "KeyError: 'x'"),
    ],
)
def test_classification_table(exc: Exception, status: str, reason: str) -> None:
    result = result_for_exception(exc, max_length=500)
    assert result.status == status
    assert result.reason_for_incompletion == reason
    detail = result.failure_detail
    assert detail is not None
    assert detail.exception_type == type(exc).__name__


def test_pydantic_errors_are_condensed_to_one_line() -> None:
    class Model(BaseModel):
        count: int
        name: str

    with pytest.raises(ValidationError) as caught:
        Model.model_validate({"count": "x"})
    reason = result_for_exception(caught.value).reason_for_incompletion
    assert reason is not None
    assert "\n" not in reason
    assert "https://" not in reason
    assert reason.startswith("ValidationError: invalid Model: count: ")
    assert "name: Field required" in reason


def test_multiline_messages_become_one_line() -> None:
    reason = result_for_exception(RuntimeError("a\n  b\tc")).reason_for_incompletion
    assert reason == "RuntimeError: a b c"


def test_reason_is_truncated_to_max_length() -> None:
    result = result_for_exception(ValueError("x" * 100), max_length=20)
    assert result.reason_for_incompletion == "ValueError: xxxxxxxx"
    assert len(result.reason_for_incompletion or "") == 20


@pytest.mark.parametrize("bad", [0, -1])
def test_max_length_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_length must be a positive integer"):
        failed_result("x", max_length=bad)


def test_empty_reason_is_never_empty() -> None:
    assert failed_result("   ").reason_for_incompletion == "unknown failure"
