"""The outcome of one attempt as Conductor sees it, and how exceptions are classified.

Classification:

* a normal return → ``COMPLETED`` (business rejections are still completions);
* ``TaskTerminalError``, ``PreGuardrailViolation`` and input that can never be valid (malformed
  wrapper, invalid ``WorkspaceInput``, invalid params — raised as :class:`InvalidAttemptInput`)
  → ``FAILED_WITH_TERMINAL_ERROR``: retrying the same input cannot succeed;
* everything else → ``FAILED`` (Conductor retries it).

The reason text always starts with the exception type (``ValueError: ...``), is never empty, is
one line (pydantic errors are condensed to ``loc: msg; loc: msg``) and is cut to ``max_length``.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from loguru import logger
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, model_validator

from perago.errors import (
    PreGuardrailViolation,
    TaskExecutionError,
    TaskInputError,
    TaskTerminalError,
)

__all__ = [
    "DEFAULT_FAILURE_REASON_MAX_LENGTH",
    "FailureDetail",
    "InvalidAttemptInput",
    "RuntimeTaskResult",
    "TaskResultStatus",
    "completed_result",
    "describe_exception",
    "failed_result",
    "result_for_exception",
    "terminal_failed_result",
]

DEFAULT_FAILURE_REASON_MAX_LENGTH = 500

TaskResultStatus = Literal["COMPLETED", "FAILED", "FAILED_WITH_TERMINAL_ERROR"]


class InvalidAttemptInput(TaskInputError):
    """The attempt's input (wrapper, ``WorkspaceInput`` or params) can never be valid.

    Reported as ``TaskInputError`` in reasons; classified as a terminal failure.
    """

    reason_type_name = "TaskInputError"


@dataclass(frozen=True)
class FailureDetail:
    """What the worker logs about a failed attempt (never sent to Conductor)."""

    exception_type: str
    message: str
    traceback: str


class RuntimeTaskResult(BaseModel):
    """Status plus either an output (``COMPLETED``) or a reason (failures)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: TaskResultStatus
    output: dict[str, Any] | None = None
    reason_for_incompletion: str | None = None

    _failure: FailureDetail | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _status_matches_payload(self) -> RuntimeTaskResult:
        if self.status == "COMPLETED":
            if self.output is None:
                raise ValueError("COMPLETED results require output")
            if self.reason_for_incompletion is not None:
                raise ValueError("COMPLETED results must not carry a reason_for_incompletion")
        else:
            if not self.reason_for_incompletion:
                raise ValueError(f"{self.status} results require a reason_for_incompletion")
            if self.output is not None:
                raise ValueError(f"{self.status} results must not carry output")
        return self

    @property
    def failure_detail(self) -> FailureDetail | None:
        """Exception type, full message and traceback when the result came from an exception."""
        return self._failure

    def conductor_payload(self) -> dict[str, Any]:
        if self.status == "COMPLETED":
            return {"status": self.status, "output": self.output}
        return {"status": self.status, "reasonForIncompletion": self.reason_for_incompletion}


def completed_result(output: Mapping[str, Any]) -> RuntimeTaskResult:
    return RuntimeTaskResult(status="COMPLETED", output=dict(output))


def failed_result(
    reason: str, *, max_length: int = DEFAULT_FAILURE_REASON_MAX_LENGTH
) -> RuntimeTaskResult:
    return RuntimeTaskResult(status="FAILED", reason_for_incompletion=_bounded(reason, max_length))


def terminal_failed_result(
    reason: str, *, max_length: int = DEFAULT_FAILURE_REASON_MAX_LENGTH
) -> RuntimeTaskResult:
    return RuntimeTaskResult(
        status="FAILED_WITH_TERMINAL_ERROR", reason_for_incompletion=_bounded(reason, max_length)
    )


def result_for_exception(
    exc: Exception, *, max_length: int = DEFAULT_FAILURE_REASON_MAX_LENGTH
) -> RuntimeTaskResult:
    """Classify ``exc`` into a failed result with a one-line typed reason."""
    reason = describe_exception(exc)
    terminal = isinstance(exc, TaskTerminalError | PreGuardrailViolation | InvalidAttemptInput)
    builder = terminal_failed_result if terminal else failed_result
    result = builder(reason, max_length=max_length)
    result._failure = FailureDetail(
        exception_type=type(exc).__name__,
        message=_exception_message(exc),
        traceback="".join(traceback.format_exception(exc)),
    )
    return result


def describe_exception(exc: BaseException) -> str:
    """``<Type>: <one-line message>``, or just ``<Type>`` when the message is empty."""
    type_name = getattr(type(exc), "reason_type_name", type(exc).__name__)
    message = " ".join(_exception_message(exc).split())
    return f"{type_name}: {message}" if message else str(type_name)


def condense_validation_error(error: ValidationError, *, context: str | None = None) -> str:
    """``<context>: <loc>: <msg>; <loc>: <msg>`` — pydantic's text without URLs and newlines."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        parts.append(f"{location}: {item['msg']}" if location else str(item["msg"]))
    text = "; ".join(parts) or error.title
    return f"{context}: {text}" if context else text


def _exception_message(exc: BaseException) -> str:
    if isinstance(exc, TaskExecutionError):
        return exc.reason
    if isinstance(exc, ValidationError):
        return condense_validation_error(exc, context=f"invalid {exc.title}")
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        return repr(exc.args[0])
    return str(exc)


def _bounded(reason: str, max_length: int) -> str:
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError("max_length must be a positive integer")
    text = " ".join(reason.split()) or "unknown failure"
    if len(text) <= max_length:
        return text
    logger.warning(
        "truncated task failure reason",
        original_length=len(text),
        max_length=max_length,
    )
    return text[:max_length]
