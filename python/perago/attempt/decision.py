"""The publication decision (protocol v2, docs/adr/0007): pure, no I/O.

Given the input ref A, the head H of the target branch (its first parent and the perago identity
in its metadata), the Conductor state of the task that made H when H is another attempt's
publication of this task, and this attempt's identity, return the one action that keeps the
invariant: at most one publication per (workflow instance, task reference) after A, a COMPLETED
task's output is on the branch, nobody else's commit is ever discarded.

The lakeFS and Conductor calls live in :mod:`perago.lakefs.publisher`; every branch move it
makes is an :class:`Action` returned from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ABANDONED_STATUSES",
    "Action",
    "ActionKind",
    "AttemptIdentity",
    "HeadCommit",
    "PredecessorState",
    "ReferenceAttempt",
    "decide",
    "decide_after_merge",
    "decide_reconcile",
    "predecessor_to_read",
]

METADATA_WORKFLOW = "perago.workflow_instance_id"
METADATA_TASK_REF = "perago.task_ref"
METADATA_TASK_ID = "perago.task_id"
METADATA_RETRY = "perago.retry_count"
METADATA_EXECUTION = "perago.execution_id"

# Conductor statuses of a task that can never complete any more: its publication is abandoned.
ABANDONED_STATUSES = frozenset(
    {"FAILED", "FAILED_WITH_TERMINAL_ERROR", "TIMED_OUT", "CANCELED", "SKIPPED"}
)
# The task may still complete (or already has): its publication must be left alone.
LIVE_STATUSES = frozenset({"SCHEDULED", "IN_PROGRESS"})
DONE_STATUSES = frozenset({"COMPLETED", "COMPLETED_WITH_ERRORS"})
# Not a Conductor status: the task is no longer part of the workflow (rerun) or not found.
GONE = "GONE"
# Not a Conductor status: the lookup failed, nothing is proven.
UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class AttemptIdentity:
    """Who made a publication (or who is publishing now)."""

    workflow_instance_id: str
    task_ref: str
    task_id: str
    retry_count: int
    execution_id: str

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> AttemptIdentity | None:
        """The identity recorded in a perago commit's metadata; None for any other commit."""
        try:
            return cls(
                workflow_instance_id=metadata[METADATA_WORKFLOW],
                task_ref=metadata[METADATA_TASK_REF],
                task_id=metadata[METADATA_TASK_ID],
                retry_count=int(metadata[METADATA_RETRY]),
                execution_id=metadata.get(METADATA_EXECUTION, ""),
            )
        except (KeyError, ValueError):
            return None

    def to_metadata(self) -> dict[str, str]:
        """The commit metadata that :meth:`from_metadata` reads back."""
        return {
            METADATA_WORKFLOW: self.workflow_instance_id,
            METADATA_TASK_ID: self.task_id,
            METADATA_TASK_REF: self.task_ref,
            METADATA_RETRY: str(self.retry_count),
            METADATA_EXECUTION: self.execution_id,
        }

    def same_task(self, other: AttemptIdentity) -> bool:
        return (
            self.workflow_instance_id == other.workflow_instance_id
            and self.task_ref == other.task_ref
        )

    def same_execution(self, other: AttemptIdentity) -> bool:
        return self.task_id == other.task_id and self.execution_id == other.execution_id


@dataclass(frozen=True)
class HeadCommit:
    """The branch head as the decision needs it."""

    id: str
    first_parent: str | None
    publisher: AttemptIdentity | None


@dataclass(frozen=True)
class PredecessorState:
    """Conductor's view of the task that made the head: a Conductor status, GONE or UNKNOWN."""

    status: str
    retry_count: int | None = None
    detail: str = ""


class ActionKind(StrEnum):
    MERGE = "merge"  # squash-merge the staging branch (H == A)
    COMPLETE = "complete"  # no branch move; output ``target``
    RESET = "reset"  # replace an abandoned publication: hard-reset to ``target`` (C or A)
    ROLL_BACK = "roll_back"  # take a publication back out: hard-reset to its parent ``target``
    STALE = "stale"  # StaleAttemptError, no write
    FAIL_CLOSED = "fail_closed"  # PublishFenceError, no write


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    target: str | None = None
    # The head a RESET / ROLL_BACK may move: re-read just before the move, never anything else.
    expected_head: str | None = None
    reason: str = ""
    # ROLL_BACK only: True when the move needs the attempt fence (it acts for the task); False
    # when it only undoes this attempt's own commit, which is allowed even once it is stale.
    fenced: bool = True
    # ROLL_BACK only: the outcome once the rollback is done (None = decide again).
    then_fail: str | None = None

    @property
    def moves_branch(self) -> bool:
        return self.kind in (ActionKind.MERGE, ActionKind.RESET, ActionKind.ROLL_BACK)


def predecessor_to_read(head: HeadCommit, me: AttemptIdentity) -> str | None:
    """Task id whose Conductor state :func:`decide` needs, or None when it needs none."""
    publisher = head.publisher
    if publisher is None or not publisher.same_task(me) or publisher.task_id == me.task_id:
        return None
    return publisher.task_id


def decide(
    *,
    input_ref: str,
    head: HeadCommit,
    me: AttemptIdentity,
    staged_commit: str | None,
    predecessor: PredecessorState | None,
    branch: str = "branch",
) -> Action:
    """The next step of publishing ``staged_commit`` (None: a no-op completion) onto ``branch``."""
    action = "publish" if staged_commit is not None else "complete no-op"
    generic = f"{branch} cannot {action} from input ref {input_ref}; current head is {head.id}"
    if head.id == input_ref:
        if staged_commit is None:
            return Action(ActionKind.COMPLETE, target=input_ref)
        return Action(ActionKind.MERGE)
    publisher = head.publisher
    if publisher is None or not publisher.same_task(me):
        if head.first_parent == input_ref:
            return Action(
                ActionKind.FAIL_CLOSED,
                reason=f"{generic}, a commit that is not a publication of this task (workflow "
                f"{me.workflow_instance_id}, task {me.task_ref}); refusing to discard it",
            )
        return Action(ActionKind.FAIL_CLOSED, reason=generic)
    if publisher.same_execution(me):
        return _own_publication(input_ref, head, staged_commit, generic)
    if publisher.task_id == me.task_id:
        return Action(
            ActionKind.STALE,
            reason=f"{generic}: another execution ({publisher.execution_id}) of task "
            f"{me.task_id} published it",
        )
    proof = _abandoned(publisher, predecessor, me)
    if proof is not None:
        return proof.with_generic(generic)
    # Proven abandoned: its task can never complete any more.
    if head.first_parent == input_ref:
        return Action(
            ActionKind.RESET,
            target=staged_commit if staged_commit is not None else input_ref,
            expected_head=head.id,
            reason=f"replacing abandoned publication {head.id} of task {publisher.task_id}",
        )
    if head.first_parent is None:
        return Action(ActionKind.FAIL_CLOSED, reason=generic)
    return Action(
        ActionKind.ROLL_BACK,
        target=head.first_parent,
        expected_head=head.id,
        reason=f"taking abandoned publication {head.id} of task {publisher.task_id} back out",
    )


def decide_after_merge(
    *, input_ref: str, merged: HeadCommit, current_head: str, branch: str = "branch"
) -> Action:
    """After our merge commit ``merged`` landed: keep it, or take it back out (race lost)."""
    if merged.first_parent == input_ref:
        # Ours, on A; somebody may already have built on it, which changes nothing.
        return Action(ActionKind.COMPLETE, target=merged.id)
    lost = (
        f"{branch} cannot publish from input ref {input_ref}; current head was "
        f"{merged.first_parent} (a concurrent publication won); our merge {merged.id}"
    )
    if current_head == merged.id and merged.first_parent is not None:
        return _take_back_our_merge(merged, then_fail=f"{lost} was taken back out")
    return Action(
        ActionKind.FAIL_CLOSED,
        reason=f"{lost} stays under head {current_head}, which was built on it",
    )


@dataclass(frozen=True)
class ReferenceAttempt:
    """One attempt of a task reference as Conductor reports it (for ``perago gc``)."""

    status: str
    output_ref: str | None = None


def decide_reconcile(
    head: HeadCommit, attempts: Mapping[str, ReferenceAttempt] | None
) -> Action | None:
    """``perago gc``: roll back a head publication that no completed task's output names.

    ``attempts`` maps the task id of every attempt of the head's (workflow, task reference) to
    its Conductor state (None: Conductor could not be read). Returns the rollback, or None to
    leave the head alone: not a perago publication, state unknown, an attempt still live (it
    decides itself), or the head is a COMPLETED task's output (or may be: output unknown).
    """
    publisher = head.publisher
    if publisher is None or attempts is None or head.first_parent is None:
        return None
    if any(attempt.status in LIVE_STATUSES for attempt in attempts.values()):
        return None
    mine = attempts.get(publisher.task_id, ReferenceAttempt(GONE))
    if mine.status in DONE_STATUSES:
        # Another execution of the same task id may have completed with another commit.
        if mine.output_ref is None or mine.output_ref == head.id:
            return None
    elif mine.status not in ABANDONED_STATUSES and mine.status != GONE:
        return None
    return Action(
        ActionKind.ROLL_BACK,
        target=head.first_parent,
        expected_head=head.id,
        reason=f"publication {head.id} of task {publisher.task_id} ({mine.status}) is no "
        "completed task's output and no attempt of its task is live",
    )


def _own_publication(
    input_ref: str, head: HeadCommit, staged_commit: str | None, generic: str
) -> Action:
    """The head is this very execution's commit (a merge whose answer was lost, say)."""
    if staged_commit is None or head.first_parent is None:
        return Action(ActionKind.FAIL_CLOSED, reason=f"{generic}: unexpected own commit")
    if head.first_parent == input_ref:
        return Action(ActionKind.COMPLETE, target=head.id)
    return _take_back_our_merge(
        head,
        then_fail=f"{generic}: our merge {head.id} landed on {head.first_parent}, not on the "
        "input ref, and was taken back out",
    )


def _take_back_our_merge(merge: HeadCommit, *, then_fail: str) -> Action:
    """Roll this attempt's own merge back to its first parent (unfenced), then fail."""
    return Action(
        ActionKind.ROLL_BACK,
        target=merge.first_parent,
        expected_head=merge.id,
        fenced=False,
        reason=f"taking our merge {merge.id} back out",
        then_fail=then_fail,
    )


@dataclass(frozen=True)
class _NotProven:
    kind: ActionKind
    why: str

    def with_generic(self, generic: str) -> Action:
        return Action(self.kind, reason=f"{generic}: {self.why}")


def _abandoned(
    publisher: AttemptIdentity, predecessor: PredecessorState | None, me: AttemptIdentity
) -> _NotProven | None:
    """None when the publisher's task is proven abandoned; otherwise why this attempt stops."""
    task = f"task {publisher.task_id} (retry {publisher.retry_count})"
    if predecessor is None or predecessor.status == UNKNOWN:
        detail = f" ({predecessor.detail})" if predecessor and predecessor.detail else ""
        return _NotProven(
            ActionKind.FAIL_CLOSED,
            f"it is a publication of {task} whose Conductor state is unknown{detail}",
        )
    if predecessor.status == GONE:
        return None
    retry = (
        predecessor.retry_count if predecessor.retry_count is not None else publisher.retry_count
    )
    if predecessor.status in DONE_STATUSES:
        return _NotProven(ActionKind.STALE, f"{task} is {predecessor.status} and published it")
    if retry >= me.retry_count:
        return _NotProven(
            ActionKind.STALE, f"it is a publication of a later or concurrent attempt, {task}"
        )
    if predecessor.status in LIVE_STATUSES:
        return _NotProven(ActionKind.STALE, f"{task} is still {predecessor.status}")
    if predecessor.status in ABANDONED_STATUSES:
        return None
    return _NotProven(
        ActionKind.FAIL_CLOSED, f"{task} has unexpected Conductor status {predecessor.status}"
    )
