"""Task controls: retry, timeout, rate limits and the publication budget.

Each model maps one-to-one onto Conductor TaskDef fields (see ``perago.definition.taskdef``).
Unknown fields are rejected everywhere so a typo in a control never silently becomes a default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from perago.errors import TaskDefinitionError

__all__ = [
    "ExecutionLimits",
    "PublishBudget",
    "RetryLogic",
    "RetryPolicy",
    "TaskControls",
    "TimeoutPolicy",
    "TimeoutPolicyName",
]

RetryLogic = Literal["FIXED", "EXPONENTIAL_BACKOFF", "LINEAR_BACKOFF"]
TimeoutPolicyName = Literal["RETRY", "TIME_OUT_WF", "ALERT_ONLY"]


class RetryPolicy(BaseModel):
    """How Conductor retries a failed attempt (retryCount, retryLogic, ...)."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=3, ge=0, le=10)
    logic: RetryLogic = "FIXED"
    delay_seconds: int = Field(default=60, ge=0)
    max_delay_seconds: int = Field(default=0, ge=0)
    jitter_ms: int = Field(default=0, ge=0)


class TimeoutPolicy(BaseModel):
    """Conductor's timeout fields for the task (timeoutPolicy, timeoutSeconds, ...)."""

    model_config = ConfigDict(extra="forbid")

    policy: TimeoutPolicyName = "TIME_OUT_WF"
    seconds: int = Field(default=0, ge=0)
    response_seconds: int = Field(default=600, ge=0)
    poll_seconds: int = Field(default=0, ge=0)
    total_seconds: int = Field(default=0, ge=0)


class ExecutionLimits(BaseModel):
    """Optional concurrency and rate limits; unset fields are left out of the TaskDef."""

    model_config = ConfigDict(extra="forbid")

    concurrent_exec_limit: int | None = Field(default=None, ge=0)
    rate_limit_frequency_in_seconds: int | None = Field(default=None, ge=0)
    rate_limit_per_frequency: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _rate_limit_fields_come_together(self) -> ExecutionLimits:
        # Conductor needs both halves of a rate limit; one alone is meaningless.
        if (self.rate_limit_frequency_in_seconds is None) != (
            self.rate_limit_per_frequency is None
        ):
            raise TaskDefinitionError(
                "rate_limit_frequency_in_seconds and rate_limit_per_frequency "
                "must be configured together"
            )
        return self


class PublishBudget(BaseModel):
    """Operational timing budget of one fenced publication.

    ``response_timeout_seconds`` is the time a worker may legitimately stay silent while it
    merges, completes the Conductor task, shuts down and misses one heartbeat. It is advisory:
    the TaskDef always uses ``TimeoutPolicy.response_seconds``. The merge timeout is also the
    lakeFS merge/reset request timeout at run time.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    observed_merge_p99_seconds: int = Field(ge=0)
    safety_margin_seconds: int = Field(ge=0)
    lakefs_merge_timeout_seconds: int = Field(ge=1)
    conductor_completion_timeout_seconds: int = Field(ge=1)
    worker_shutdown_grace_seconds: int = Field(ge=1)
    heartbeat_interval_seconds: int = Field(ge=1)

    @model_validator(mode="after")
    def _merge_timeout_covers_observed_merges(self) -> PublishBudget:
        if (
            self.lakefs_merge_timeout_seconds
            < self.observed_merge_p99_seconds + self.safety_margin_seconds
        ):
            raise TaskDefinitionError(
                "lakefs_merge_timeout_seconds must cover observed_merge_p99_seconds "
                "plus safety_margin_seconds"
            )
        return self

    @property
    def response_timeout_seconds(self) -> int:
        return (
            self.lakefs_merge_timeout_seconds
            + self.conductor_completion_timeout_seconds
            + self.worker_shutdown_grace_seconds
            + self.heartbeat_interval_seconds
        )


class TaskControls(BaseModel):
    """All operational controls of a task; ``@task(controls=None)`` means these defaults."""

    model_config = ConfigDict(extra="forbid")

    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: TimeoutPolicy = Field(default_factory=TimeoutPolicy)
    limits: ExecutionLimits = Field(default_factory=ExecutionLimits)
    publish_budget: PublishBudget | None = None

    @property
    def response_timeout_seconds(self) -> int:
        # The budget never overrides the declared response timeout; taskdef warns instead.
        return self.timeout.response_seconds
