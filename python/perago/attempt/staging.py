"""When a staging branch is provably abandoned (``perago gc --lakefs``), never by age alone.

A staging branch (``perago-staging-...``, :func:`perago.attempt.core.staging_branch_name`) lives
from the attempt's staging step until its cleanup. For most of that life its head is the input
commit A — often older than any TTL — and until its first upload lands it has no uncommitted change
either, so "old head, nothing uncommitted" describes a live branch as well as a dead one. The proof
used instead: **a staging branch is abandoned when the attempt that made it can never pass its fence
again** (the attempt fence, docs/adr/0005: the task, reloaded by id, must be IN_PROGRESS with the
same identity and poll count). Deleting the branch of such an attempt can change nothing that
matters: it can no longer publish.

1. *Whose branch?* The staging commit's metadata (``perago.task_id``, ``perago.execution_id``,
   ``perago.workflow_instance_id``, ``perago.poll_count``) when the head is that commit and the
   branch name carries the same task id and execution id (before the staging commit the head is
   A, which may itself be another task's publication: its metadata is then ignored); otherwise
   the task id and execution id parsed from the name.
2. *Is it really that task's branch?* The branch name rebuilt from Conductor's task (workflow,
   reference name, seq, iteration, task id, retry count) and the execution id must equal the
   branch name exactly. A name that does not match (hand-made branch, hashed long name) proves
   nothing: kept.
3. *Can that attempt still pass its fence?*
   - task IN_PROGRESS or SCHEDULED → **kept**, unless the staging commit recorded a poll count
     and the task has been polled again since (the fence compares poll counts): abandoned;
   - task in any other status (COMPLETED, FAILED, TIMED_OUT, CANCELED, ...) → abandoned (a task
     id never becomes IN_PROGRESS again: retries and reruns create new task ids);
   - task no longer part of its workflow (rerun), or not found while its workflow (known from
     the staging commit) is readable and does not list it → abandoned;
   - Conductor cannot be read, or knows neither the task nor its workflow (for instance gc
     pointed at another Conductor, or a ``perago run`` branch) → **kept**.

Without Conductor nothing is proven and nothing is deleted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal

from perago.attempt.core import _branch_segment, staging_branch_name
from perago.attempt.decision import GONE, UNKNOWN

__all__ = [
    "GONE",
    "LIVE_STATUSES",
    "UNKNOWN",
    "StagingOwner",
    "StagingTaskState",
    "StagingVerdict",
    "judge_staging_branch",
    "staging_owner",
]

LIVE_STATUSES = frozenset({"IN_PROGRESS", "SCHEDULED"})
_NAME_TAIL = re.compile(
    r"-task-id-(?P<task>.+)-retry-(?P<retry>\d+)-exec-(?P<exec>[A-Za-z0-9_-]+)$"
)


@dataclass(frozen=True)
class StagingOwner:
    """The attempt a staging branch claims to belong to."""

    task_id: str
    execution_id: str
    source: Literal["commit", "name"]
    workflow_instance_id: str | None = None
    """Known only from the staging commit (a name cannot be split into workflow and ref)."""
    poll_count: int | None = None
    """The poll count the staging commit recorded (None before the commit, or when 0)."""
    name_checked: bool = False
    """The branch name's task id and execution id agree with these."""


@dataclass(frozen=True)
class StagingTaskState:
    """Conductor's view of a task: a Conductor status, GONE (not found while its workflow is
    readable, or no longer part of it) or UNKNOWN (nothing proven), plus the fields that name
    its staging branch when the task was found."""

    status: str
    workflow_instance_id: str | None = None
    reference_task_name: str | None = None
    seq: int | None = None
    iteration: int | None = None
    retry_count: int | None = None
    poll_count: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class StagingVerdict:
    abandoned: bool
    reason: str


def staging_owner(branch: str, head_metadata: Mapping[str, str]) -> StagingOwner | None:
    """Who made ``branch`` (step 1 of the module docstring); None when nothing names one."""
    match = _NAME_TAIL.search(branch)
    task_id = head_metadata.get("perago.task_id", "")
    execution_id = head_metadata.get("perago.execution_id", "")
    named = (
        match is not None
        and bool(task_id and execution_id)
        and _branch_segment(task_id) == match["task"]
        and _branch_segment(execution_id) == match["exec"]
    )
    # A hashed (very long) name carries no parsable tail: the commit's metadata is then taken
    # and verified by rebuilding the name from Conductor's task (judge_staging_branch).
    if task_id and execution_id and (named or match is None):
        poll = head_metadata.get("perago.poll_count", "")
        return StagingOwner(
            task_id=task_id,
            execution_id=execution_id,
            source="commit",
            workflow_instance_id=head_metadata.get("perago.workflow_instance_id") or None,
            poll_count=int(poll) if poll.isdigit() and int(poll) > 0 else None,
            name_checked=named,
        )
    if match is None:
        return None
    return StagingOwner(
        task_id=match["task"], execution_id=match["exec"], source="name", name_checked=True
    )


def _rebuilt_name(owner: StagingOwner, state: StagingTaskState) -> str | None:
    fields = (state.workflow_instance_id, state.reference_task_name, state.seq, state.retry_count)
    if any(value is None for value in fields):
        return None
    return staging_branch_name(
        SimpleNamespace(
            workflow_instance_id=state.workflow_instance_id,
            reference_task_name=state.reference_task_name,
            seq=state.seq,
            iteration=state.iteration or 0,
            task_id=owner.task_id,
            retry_count=state.retry_count,
            execution_id=owner.execution_id,
        )
    )


def judge_staging_branch(
    branch: str, owner: StagingOwner | None, state: StagingTaskState | None
) -> StagingVerdict:
    """Steps 2 and 3 of the module docstring: abandoned only when proven."""
    if owner is None:
        return StagingVerdict(False, "the name names no attempt")
    if state is None:
        return StagingVerdict(False, "Conductor is not configured")
    task = f"task {owner.task_id}"
    if state.status == UNKNOWN:
        detail = f": {state.detail}" if state.detail else ""
        return StagingVerdict(False, f"{task} cannot be proven gone{detail}")
    if state.status == GONE and state.reference_task_name is None:
        # Not found: proven only when its workflow (known from the staging commit) was read.
        if owner.source != "commit" or not owner.name_checked:
            return StagingVerdict(False, f"{task} not found and its workflow is not known")
        return StagingVerdict(True, f"{task} is not part of workflow {owner.workflow_instance_id}")
    rebuilt = _rebuilt_name(owner, state)
    if rebuilt != branch:
        return StagingVerdict(False, f"the branch name does not match {task} (nothing proven)")
    if state.status == GONE:
        return StagingVerdict(True, f"{task} is no longer part of its workflow")
    if state.status in LIVE_STATUSES:
        if (
            owner.poll_count is not None
            and state.poll_count is not None
            and state.poll_count != owner.poll_count
        ):
            return StagingVerdict(
                True,
                f"{task} was polled again (poll {owner.poll_count} -> {state.poll_count}); "
                "this attempt's fence can never pass",
            )
        return StagingVerdict(False, f"{task} is {state.status}")
    return StagingVerdict(True, f"{task} is {state.status}")
