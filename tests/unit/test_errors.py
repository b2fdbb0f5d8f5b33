"""The exception hierarchy and TaskExecutionError's reason contract."""

from __future__ import annotations

import re

import pytest

import perago
from perago.errors import (
    GuardrailViolation,
    LakeFSError,
    PeragoError,
    PostGuardrailViolation,
    PreGuardrailViolation,
    PublishFenceError,
    RuntimeConfigError,
    StaleAttemptError,
    TaskDefinitionError,
    TaskExecutionError,
    TaskFailed,
    TaskInputError,
    TaskTerminalError,
)


@pytest.mark.parametrize("error", [TaskDefinitionError, RuntimeConfigError, TaskInputError])
def test_definition_and_input_errors_are_value_errors(error: type[Exception]) -> None:
    assert issubclass(error, ValueError)
    assert not issubclass(error, RuntimeError)


@pytest.mark.parametrize(
    "error",
    [
        TaskExecutionError,
        TaskFailed,
        TaskTerminalError,
        GuardrailViolation,
        PreGuardrailViolation,
        PostGuardrailViolation,
        PublishFenceError,
        StaleAttemptError,
    ],
)
def test_attempt_errors_are_runtime_errors(error: type[Exception]) -> None:
    assert issubclass(error, RuntimeError)
    assert not issubclass(error, ValueError)


def test_failure_signals_subclass_task_execution_error() -> None:
    assert issubclass(TaskFailed, TaskExecutionError)
    assert issubclass(TaskTerminalError, TaskExecutionError)
    assert not issubclass(TaskFailed, TaskTerminalError)
    assert not issubclass(TaskTerminalError, TaskFailed)


def test_guardrail_phases_subclass_guardrail_violation() -> None:
    assert issubclass(PreGuardrailViolation, GuardrailViolation)
    assert issubclass(PostGuardrailViolation, GuardrailViolation)
    assert not issubclass(PreGuardrailViolation, PostGuardrailViolation)


@pytest.mark.parametrize("error", [TaskExecutionError, TaskFailed, TaskTerminalError])
def test_reason_is_kept_and_is_the_message(error: type[TaskExecutionError]) -> None:
    raised = error("disk quota exceeded")
    assert raised.reason == "disk quota exceeded"
    assert str(raised) == "disk quota exceeded"
    assert raised.args == ("disk quota exceeded",)


@pytest.mark.parametrize("reason", [None, 42, b"bytes", ["x"]])
@pytest.mark.parametrize("error", [TaskExecutionError, TaskFailed, TaskTerminalError])
def test_non_str_reason_is_a_type_error(error: type[TaskExecutionError], reason: object) -> None:
    with pytest.raises(TypeError, match=re.escape("reason must be str")):
        error(reason)  # type: ignore[arg-type]


def test_stale_attempt_message_is_the_bare_task_id() -> None:
    assert str(StaleAttemptError("task-123")) == "task-123"


def test_every_error_derives_from_perago_error_and_lives_in_perago_errors() -> None:
    import perago.errors as errors_module

    public_errors = [
        value
        for name, value in vars(errors_module).items()
        if isinstance(value, type) and issubclass(value, BaseException) and not name.startswith("_")
    ]
    assert len(public_errors) >= 14
    for error in public_errors:
        assert issubclass(error, PeragoError), error
        assert error.__module__ == "perago.errors"


def test_the_errors_a_task_author_raises_or_catches_are_top_level() -> None:
    for error in (
        PeragoError,
        TaskDefinitionError,
        RuntimeConfigError,
        TaskExecutionError,
        TaskFailed,
        TaskTerminalError,
        GuardrailViolation,
        StaleAttemptError,
        LakeFSError,
    ):
        assert getattr(perago, error.__name__) is error
        assert error.__name__ in perago.__all__


def test_lakefs_error_keeps_operation_status_and_the_server_message() -> None:
    error = LakeFSError("merge", 409, "conflict found")
    assert (error.operation, error.status, error.server_message) == ("merge", 409, "conflict found")
    assert str(error) == "lakeFS merge failed (HTTP 409): conflict found"
    assert str(LakeFSError("get commit", None, "connection refused")) == (
        "lakeFS get commit failed: connection refused"
    )
