"""The exception hierarchy of perago, rooted at :class:`PeragoError`.

Definition and configuration problems are also ``ValueError`` subclasses (bad values supplied by
the author or the operator); everything raised while an attempt runs is also a ``RuntimeError``
subclass, so the runtime can classify failures by type alone and callers can catch all of perago
with one ``except PeragoError``.
"""

from __future__ import annotations


class PeragoError(Exception):
    """Root of every exception perago raises for a condition of its own. Local operating-system
    problems stay ``OSError`` subclasses (``FileExistsError``, ``PermissionError``, ...), and
    ``KeyboardInterrupt`` stays what it is."""


class TaskDefinitionError(PeragoError, ValueError):
    """The task declaration (decorator arguments, signature, models) is invalid."""


class RuntimeConfigError(PeragoError, ValueError):
    """The worker-local runtime configuration (environment, ``.env``) is invalid."""


class TaskInputError(PeragoError, ValueError):
    """The input handed to a task attempt (wrapper, workspace reference, params) is invalid."""


class TaskExecutionError(PeragoError, RuntimeError):
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


class GuardrailViolation(PeragoError, RuntimeError):
    """A workspace guardrail did not hold."""


class PreGuardrailViolation(GuardrailViolation):
    """A guardrail checked before the task body failed (the input can never succeed)."""


class PostGuardrailViolation(GuardrailViolation):
    """A guardrail checked after the task body failed (the attempt may be retried)."""


class PublishFenceError(PeragoError, RuntimeError):
    """The target branch moved in a way that makes publishing this attempt unsafe."""


class StaleAttemptError(PeragoError, RuntimeError):
    """Conductor no longer considers this worker's attempt the current one."""


class WorkspaceSafetyError(PeragoError, RuntimeError):
    """The attempt directory is no longer the real directory perago created (the body replaced
    it by a symlink, a file, or removed it); nothing is read through it or published."""


class LakeFSError(PeragoError, RuntimeError):
    """A lakeFS API call failed — in the control plane (lakefs-sdk) or the Rust data path alike.

    ``operation`` names the call, ``status`` is the HTTP status when the server answered
    (``None`` when it could not be reached), ``server_message`` the server's own message and
    ``target`` (data path) the repository/ref/object; the text never contains a secret."""

    def __init__(
        self, operation: str, status: int | None, message: str, *, target: str | None = None
    ) -> None:
        self.operation = operation
        self.status = status
        self.server_message = message
        self.target = target
        prefix = f"lakeFS {operation} {target} failed" if target else f"lakeFS {operation} failed"
        super().__init__(
            f"{prefix} (HTTP {status}): {message}" if status else f"{prefix}: {message}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_lakefs_error, (self.operation, self.status, self.server_message, self.target))


def _lakefs_error(
    operation: str, status: int | None, message: str, target: str | None
) -> LakeFSError:
    return LakeFSError(operation, status, message, target=target)


class UnsafeObjectKeyError(PeragoError, ValueError):
    """A lakeFS object key cannot be represented safely as a relative local path (``key``);
    raised before anything is written."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key

    def __reduce__(self) -> tuple[type[UnsafeObjectKeyError], tuple[str, str]]:
        return (type(self), (str(self), self.key))


class ConductorTaskError(PeragoError, ValueError):
    """A polled or reloaded Conductor task lacks something perago needs."""


class CrashLoopError(PeragoError, RuntimeError):
    """A worker slot keeps dying; the message names the slot and the last cause seen."""
