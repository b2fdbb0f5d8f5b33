"""SPEC §2.5: the exception hierarchy and TaskExecutionError's reason contract."""

from __future__ import annotations

import re

import pytest

import perago
from perago.errors import (
    GuardrailViolation,
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


def test_every_error_is_exported_from_perago() -> None:
    for error in (
        TaskDefinitionError,
        RuntimeConfigError,
        TaskInputError,
        TaskExecutionError,
        TaskFailed,
        TaskTerminalError,
        GuardrailViolation,
        PreGuardrailViolation,
        PostGuardrailViolation,
        PublishFenceError,
        StaleAttemptError,
    ):
        assert getattr(perago, error.__name__) is error
        assert error.__name__ in perago.__all__
