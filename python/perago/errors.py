"""Exception types of the perago public API.

Definition and configuration problems are ``ValueError`` subclasses (bad values supplied by the
author or the operator); everything raised while an attempt runs is a ``RuntimeError`` subclass,
so the runtime can classify failures by type alone.
"""

from __future__ import annotations

__all__ = [
    "GuardrailViolation",
    "PostGuardrailViolation",
    "PreGuardrailViolation",
    "PublishFenceError",
    "RuntimeConfigError",
    "StaleAttemptError",
    "TaskDefinitionError",
    "TaskExecutionError",
    "TaskFailed",
    "TaskInputError",
    "TaskTerminalError",
]


class TaskDefinitionError(ValueError):
    """The task declaration (decorator arguments, signature, models) is invalid."""


class RuntimeConfigError(ValueError):
    """The worker-local runtime configuration (environment, ``.env``) is invalid."""


class TaskInputError(ValueError):
    """The input handed to a task attempt (wrapper, workspace reference, params) is invalid."""


class TaskExecutionError(RuntimeError):
    """Base class for failures a task body signals on purpose; carries a reason string."""

    reason: str

    def __init__(self, reason: str) -> None:
        # The reason becomes Conductor's reasonForIncompletion, so it must be text.
        if not isinstance(reason, str):
            raise TypeError("reason must be str")
        super().__init__(reason)
        self.reason = reason


class TaskFailed(TaskExecutionError):
    """A retryable failure: Conductor marks the attempt FAILED and may retry it."""


class TaskTerminalError(TaskExecutionError):
    """A non-retryable failure: Conductor marks the attempt FAILED_WITH_TERMINAL_ERROR."""


class GuardrailViolation(RuntimeError):
    """A workspace guardrail did not hold."""


class PreGuardrailViolation(GuardrailViolation):
    """A guardrail checked before the task body failed (the input can never succeed)."""


class PostGuardrailViolation(GuardrailViolation):
    """A guardrail checked after the task body failed (the attempt may be retried)."""


class PublishFenceError(RuntimeError):
    """The target branch moved in a way that makes publishing this attempt unsafe."""


class StaleAttemptError(RuntimeError):
    """Conductor no longer considers this worker's attempt the current one."""
