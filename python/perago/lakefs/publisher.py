"""The thin adapter around :mod:`perago.attempt.decision`: reads lakeFS and Conductor, acts.

Every round reads the head (and, when the head is another attempt's publication of this task, that
task's Conductor state), asks :func:`decide` for one action and performs it. Every branch move is
preceded by the attempt fence and made under the attempt's :class:`BranchMoveGuard`; resets and
rollbacks re-read the head just before the move and only ever move the head they expect.
Rollbacks retry with backoff; a rollback that cannot be done fails the attempt with a reason
naming both commits. A merge whose answer is lost (timeout, 5xx, dropped connection) is looked
for on the branch by its execution id before the attempt decides anything else.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import ParamSpec, Protocol, TypeVar

from perago.attempt import faults
from perago.attempt.decision import (
    UNKNOWN,
    Action,
    ActionKind,
    AttemptIdentity,
    HeadCommit,
    PredecessorState,
    ReferenceAttempt,
    decide,
    decide_after_merge,
    decide_reconcile,
    predecessor_to_read,
)
from perago.attempt.guard import BranchMoveGuard, OwnPublication
from perago.errors import PublishFenceError, StaleAttemptError
from perago.lakefs.client import LakeFSControl, LakeFSError

__all__ = [
    "DEFAULT_BACKOFF_SECONDS",
    "PublishRequest",
    "Publisher",
    "ReferenceAttemptsReader",
    "TaskStateReader",
]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 4.0)
# Each round either finishes or removes one abandoned publication; more means a busy branch.
MAX_ROUNDS = 6
# How far below the head a lost merge answer is looked for.
OWN_COMMIT_SEARCH_DEPTH = 20


class TaskStateReader(Protocol):
    """Conductor's view of another attempt's task (the Conductor adapter implements it)."""

    def predecessor_state(self, task_id: str, workflow_instance_id: str) -> PredecessorState: ...


class ReferenceAttemptsReader(Protocol):
    """Every attempt of one task reference by task id (None: Conductor unreadable)."""

    def reference_attempts(
        self, workflow_instance_id: str, task_ref: str
    ) -> Mapping[str, ReferenceAttempt] | None: ...


@dataclass(frozen=True)
class PublishRequest:
    repository: str
    branch: str
    input_ref: str
    me: AttemptIdentity
    fence: Callable[[], None]
    guard: BranchMoveGuard
    # Publish only: the staging branch, its commit, and the merge commit's message and metadata.
    staging_branch: str | None = None
    staged_commit: str | None = None
    message: str = ""
    metadata: Mapping[str, str] | None = None


def is_ambiguous(exc: LakeFSError) -> bool:
    """No definite answer: the request may or may not have been carried out."""
    return exc.status is None or exc.status >= 500 or exc.status == 429


class Publisher:
    def __init__(
        self,
        control: LakeFSControl,
        task_states: TaskStateReader | None,
        *,
        move_timeout_seconds: float | None,
        retry_window_seconds: float = 60.0,
        backoff_seconds: Sequence[float] = DEFAULT_BACKOFF_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._control = control
        self._task_states = task_states
        self._move_timeout = move_timeout_seconds
        # Retries stop once this long has passed since the first try: a frozen server costs
        # one or two request timeouts, not one per backoff step.
        self._retry_window = retry_window_seconds
        self._backoff = tuple(backoff_seconds)
        self._sleep = sleep
        self._clock = clock

    def _delays(self) -> Iterator[float]:
        """Backoff delays between tries, ending early once the retry window has passed."""
        started = self._clock()

        def delays() -> Iterator[float]:
            for delay in self._backoff:
                if self._clock() - started + delay > self._retry_window:
                    return
                yield delay

        return delays()

    # -- entry points --------------------------------------------------------------------------

    def publish(self, request: PublishRequest) -> str:
        """Publish the staged commit (or complete a no-op); returns the output ref."""
        for _ in range(MAX_ROUNDS):
            head = self._read_head(request.repository, request.branch)
            action = decide(
                input_ref=request.input_ref,
                head=head,
                me=request.me,
                staged_commit=request.staged_commit,
                predecessor=self._predecessor(head, request.me),
                branch=request.branch,
            )
            faults.reach(f"publish.decided.{action.kind}", task_id=request.me.task_id)
            if action.kind is ActionKind.COMPLETE:
                assert action.target is not None
                return action.target
            if action.kind is ActionKind.STALE:
                raise StaleAttemptError(action.reason)
            if action.kind is ActionKind.FAIL_CLOSED:
                raise PublishFenceError(action.reason)
            if action.kind is ActionKind.MERGE:
                return self._merge(request)
            self._move(request, action)
            if action.kind is ActionKind.RESET:
                assert action.target is not None
                return action.target
            if action.then_fail is not None:
                raise PublishFenceError(action.then_fail)
        raise PublishFenceError(
            f"{request.branch} did not settle after {MAX_ROUNDS} rounds of publication; "
            "another writer keeps moving it"
        )

    def undo(self, publication: OwnPublication) -> str:
        """Take this attempt's own publication back out while it is still the head."""
        head = self._retrying(self._control.branch_head, publication.repository, publication.branch)
        if head != publication.commit:
            return f"left {publication.commit} on {publication.branch}: the head is now {head}"
        self.reset_from(
            publication.repository, publication.branch, publication.commit, publication.parent
        )
        return f"took {publication.commit} back out of {publication.branch}"

    def reconcile(
        self, repository: str, branch: str, attempts: ReferenceAttemptsReader
    ) -> list[str]:
        """Roll back head publications whose task ended without completing them (perago gc).

        This is what converges after the last attempt of a task died between its merge and its
        completion, or after a stale merge whose own rollback failed. Returns the removed commits.
        """
        removed: list[str] = []
        for _ in range(MAX_ROUNDS):
            head = self._read_head(repository, branch)
            publisher = head.publisher
            if publisher is None:
                break
            action = decide_reconcile(
                head,
                attempts.reference_attempts(publisher.workflow_instance_id, publisher.task_ref),
            )
            if action is None:
                break
            assert action.expected_head is not None
            assert action.target is not None
            self.reset_from(repository, branch, action.expected_head, action.target)
            removed.append(head.id)
        return removed

    # -- steps ---------------------------------------------------------------------------------

    def _merge(self, request: PublishRequest) -> str:
        assert request.staging_branch is not None
        assert request.metadata is not None
        with request.guard.moving():
            request.fence()
            faults.reach("publish.before_merge", task_id=request.me.task_id)
            try:
                merged_id = self._control.squash_merge(
                    request.repository,
                    request.staging_branch,
                    request.branch,
                    message=request.message,
                    metadata=request.metadata,
                    timeout_seconds=self._move_timeout,
                )
            except LakeFSError as exc:
                if not is_ambiguous(exc):
                    raise
                try:
                    found = self._find_own_commit(request)
                except LakeFSError:
                    raise exc from None  # the merge's own failure is the one to report
                if found is None:
                    raise
                merged_id = found
            # Still under the guard: a deadline that closes it right after the merge must find
            # the publication recorded, or it could not undo it. (If this read fails the parent
            # is unknown and nothing is undone; the next attempt or gc converges.)
            merged = self._head_commit(request.repository, merged_id)
            if merged.first_parent is not None:
                request.guard.record(
                    OwnPublication(
                        request.repository, request.branch, merged_id, merged.first_parent
                    )
                )
        faults.reach("publish.after_merge", task_id=request.me.task_id)
        try:
            current = self._retrying(self._control.branch_head, request.repository, request.branch)
        except BaseException:
            self._undo_quietly(request)
            raise
        action = decide_after_merge(
            input_ref=request.input_ref,
            merged=merged,
            current_head=current,
            branch=request.branch,
        )
        if action.kind is ActionKind.COMPLETE:
            assert action.target is not None
            return action.target
        if action.kind is ActionKind.ROLL_BACK:
            self._move(request, action)
            request.guard.record(None)
            raise PublishFenceError(action.then_fail or action.reason)
        raise PublishFenceError(action.reason)

    def _move(self, request: PublishRequest, action: Action) -> None:
        """RESET / ROLL_BACK: fence (unless undoing our own commit), then move the head."""
        assert action.expected_head is not None
        assert action.target is not None
        own_undo = action.kind is ActionKind.ROLL_BACK and not action.fenced
        with request.guard.moving(undo=own_undo):
            fence = None if own_undo else request.fence
            if action.kind is ActionKind.RESET and request.staged_commit is not None:
                # Recorded before the reset is sent: if its answer is lost the deadline's undo
                # still knows what to look for (it checks the head before moving anything).
                request.guard.record(
                    OwnPublication(
                        request.repository, request.branch, action.target, request.input_ref
                    )
                )
            faults.reach(f"publish.before_{action.kind}", task_id=request.me.task_id)
            self.reset_from(
                request.repository, request.branch, action.expected_head, action.target, fence
            )

    def reset_from(
        self,
        repository: str,
        branch: str,
        expected: str,
        target: str,
        fence: Callable[[], None] | None = None,
    ) -> None:
        """Hard-reset ``branch`` from ``expected`` to ``target``, retrying with backoff.

        The head (and, for a move made for the task, the attempt ``fence``) is re-read before
        every try: a branch that moved elsewhere is never reset (lakeFS has no compare-and-swap on
        a reset, so this re-read is the narrowest window there is).
        """
        last: LakeFSError | None = None
        tries = 0
        for delay in itertools.chain((0.0,), self._delays()):
            if delay:
                self._sleep(delay)
            tries += 1
            if fence is not None:
                fence()
            try:
                head = self._control.branch_head(repository, branch)
                if head == target:
                    return  # an earlier try landed although its answer was lost
                if head != expected:
                    raise PublishFenceError(
                        f"{branch} could not be reset from {expected} to {target}: its head "
                        f"moved to {head}"
                    )
                self._control.hard_reset(repository, branch, target, self._move_timeout)
                return
            except LakeFSError as exc:
                if not is_ambiguous(exc):
                    raise PublishFenceError(
                        f"{branch} could not be reset from {expected} to {target}: {exc}"
                    ) from None
                last = exc
        raise PublishFenceError(
            f"{branch} could not be reset from {expected} to {target} after {tries} tries: {last}"
        )

    def _undo_quietly(self, request: PublishRequest) -> None:
        publication = request.guard.published
        if publication is None:
            return
        try:
            with request.guard.moving(undo=True):
                # Only while Conductor still has this attempt current: once it is stale a retry
                # may be replacing the publication right now, and it converges on its own.
                request.fence()
                self.undo(publication)
            request.guard.record(None)
        except (LakeFSError, PublishFenceError, StaleAttemptError):
            pass  # the next attempt (or gc) converges; the original failure is what matters

    # -- reads ---------------------------------------------------------------------------------

    def _read_head(self, repository: str, branch: str) -> HeadCommit:
        head = self._retrying(self._control.branch_head, repository, branch)
        return self._head_commit(repository, head)

    def _head_commit(self, repository: str, commit_id: str) -> HeadCommit:
        commit = self._retrying(self._control.get_commit, repository, commit_id)
        return HeadCommit(
            id=commit.id,
            first_parent=commit.first_parent,
            publisher=AttemptIdentity.from_metadata(commit.metadata),
        )

    def _predecessor(self, head: HeadCommit, me: AttemptIdentity) -> PredecessorState | None:
        task_id = predecessor_to_read(head, me)
        if task_id is None:
            return None
        if self._task_states is None:
            return PredecessorState(UNKNOWN, detail="no Conductor client")
        return self._task_states.predecessor_state(task_id, me.workflow_instance_id)

    def _find_own_commit(self, request: PublishRequest) -> str | None:
        """The merge commit of this execution on the branch's first-parent chain, if it landed."""
        commit_id = self._retrying(self._control.branch_head, request.repository, request.branch)
        for _ in range(OWN_COMMIT_SEARCH_DEPTH):
            if commit_id == request.input_ref:
                return None
            commit = self._head_commit(request.repository, commit_id)
            if commit.publisher is not None and commit.publisher.same_execution(request.me):
                return commit.id
            if commit.first_parent is None:
                return None
            commit_id = commit.first_parent
        return None

    def _retrying(self, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """A read, retried with backoff while lakeFS gives no definite answer."""
        delays = self._delays()
        while True:
            try:
                return call(*args, **kwargs)
            except LakeFSError as exc:
                if not is_ambiguous(exc):
                    raise
                delay = next(delays, None)
                if delay is None:
                    raise
            self._sleep(delay)
