"""The publication adapter's own logic (lost answers, retried rollbacks, fences, the guard).

``BranchModel`` is a small in-memory stand-in for perago's own ``LakeFSControl`` interface (not a
fake lakeFS server: the real server is exercised by tests/integration and tests/e2e). It lets
each test inject exactly one failure at exactly one call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from perago.attempt.decision import AttemptIdentity, PredecessorState, ReferenceAttempt
from perago.attempt.guard import AttemptEndedError, BranchMoveGuard, OwnPublication
from perago.errors import PublishFenceError, StaleAttemptError
from perago.lakefs.client import CommitInfo, LakeFSError
from perago.lakefs.publisher import Publisher, PublishRequest

A = "a"
ME = AttemptIdentity("wf", "ref", "task-me", 1, "exec-me")


def _metadata(who: AttemptIdentity) -> dict[str, str]:
    return {
        "perago.workflow_instance_id": who.workflow_instance_id,
        "perago.task_ref": who.task_ref,
        "perago.task_id": who.task_id,
        "perago.retry_count": str(who.retry_count),
        "perago.execution_id": who.execution_id,
    }


@dataclass
class BranchModel:
    """One branch's first-parent history; ``fail`` maps a call name to errors raised in turn."""

    commits: dict[str, CommitInfo] = field(default_factory=dict)
    head: str = A
    fail: dict[str, list[LakeFSError | None]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=itertools.count)
    # Runs inside the merge call, after the merge landed (e.g. another writer builds on it).
    after_merge: Callable[[], object] | None = None

    def __post_init__(self) -> None:
        self.add(A, None, {})

    def add(self, commit_id: str, parent: str | None, metadata: Mapping[str, str]) -> str:
        self.commits[commit_id] = CommitInfo(
            commit_id, (parent,) if parent else (), dict(metadata), datetime.now(UTC)
        )
        return commit_id

    def commit_on_head(self, metadata: Mapping[str, str]) -> str:
        self.head = self.add(f"c{next(self.ids)}", self.head, metadata)
        return self.head

    def _maybe_fail(self, name: str, *, before: bool = True) -> None:
        self.calls.append(name)
        queue = self.fail.get(name)
        if queue:
            error = queue.pop(0)
            if error is not None:
                raise error

    def chain(self) -> list[str]:
        out, cursor = [], self.head
        while cursor != A:
            out.append(cursor)
            cursor = self.commits[cursor].parents[0]
        return out

    # -- the LakeFSControl surface the publisher uses ------------------------------------------

    def branch_head(self, repository: str, branch: str) -> str:
        self._maybe_fail("get branch")
        return self.head

    def get_commit(self, repository: str, commit_id: str) -> CommitInfo:
        self._maybe_fail("get commit")
        return self.commits[commit_id]

    def squash_merge(self, repository: str, source: str, destination: str, **kw: Any) -> str:
        queue = self.fail.get("merge-lost-answer")
        merged = self.commit_on_head(kw["metadata"])
        self.calls.append("merge")
        if self.after_merge is not None:
            self.after_merge()
        if queue:
            error = queue.pop(0)
            if error is not None:
                raise error
        return merged

    def hard_reset(self, repository: str, branch: str, ref: str, timeout: float | None) -> None:
        self._maybe_fail("hard reset")
        self.head = ref


TIMEOUT = LakeFSError("merge", None, "ReadTimeoutError: read timed out")
SERVER_ERROR = LakeFSError("hard reset", 503, "unavailable")
CONFLICT = LakeFSError("merge", 409, "conflict")


class States:
    def __init__(self, **states: PredecessorState) -> None:
        self.states = states

    def predecessor_state(self, task_id: str, workflow_instance_id: str) -> PredecessorState:
        return self.states[task_id]


def _publisher(model: BranchModel, states: States | None = None) -> Publisher:
    return Publisher(
        model,  # type: ignore[arg-type]
        states,
        move_timeout_seconds=1.0,
        backoff_seconds=(0.0, 0.0, 0.0),
        sleep=lambda _s: None,
    )


@dataclass
class Fence:
    calls: int = 0
    stale_after: int | None = None

    def __call__(self) -> None:
        self.calls += 1
        if self.stale_after is not None and self.calls > self.stale_after:
            raise StaleAttemptError("task-me: task is TIMED_OUT, no longer IN_PROGRESS")


def _request(
    model: BranchModel, fence: Fence, guard: BranchMoveGuard, *, noop: bool = False
) -> PublishRequest:
    staged = {} if noop else {"staged_commit": model.add("staged", A, _metadata(ME))}
    return PublishRequest(
        repository="repo",
        branch="main",
        input_ref=A,
        me=ME,
        fence=fence,
        guard=guard,
        staging_branch=None if noop else "staging",
        message="perago: t",
        metadata=_metadata(ME),
        **staged,
    )


def test_merge_is_fenced_and_recorded() -> None:
    model, fence, guard = BranchModel(), Fence(), BranchMoveGuard()
    out = _publisher(model).publish(_request(model, fence, guard))
    assert model.chain() == [out]
    assert fence.calls == 1
    assert guard.published == OwnPublication("repo", "main", out, A)


def test_a_stale_fence_stops_the_merge() -> None:
    model, guard = BranchModel(), BranchMoveGuard()
    with pytest.raises(StaleAttemptError):
        _publisher(model).publish(_request(model, Fence(stale_after=0), guard))
    assert model.chain() == []
    assert "merge" not in model.calls


def test_lost_merge_answer_finds_the_landed_merge() -> None:
    model = BranchModel(fail={"merge-lost-answer": [TIMEOUT]})
    out = _publisher(model).publish(_request(model, Fence(), BranchMoveGuard()))
    assert model.chain() == [out]


def test_lost_merge_answer_under_a_foreign_commit_is_still_found() -> None:
    model = BranchModel(fail={"merge-lost-answer": [TIMEOUT]})
    model.after_merge = lambda: model.commit_on_head({})
    out = _publisher(model).publish(_request(model, Fence(), BranchMoveGuard()))
    assert model.chain()[1] == out


def test_a_definite_merge_failure_is_raised() -> None:
    model = BranchModel(fail={"merge-lost-answer": [CONFLICT]})
    with pytest.raises(LakeFSError, match="409"):
        _publisher(model).publish(_request(model, Fence(), BranchMoveGuard()))


def test_lost_race_is_rolled_back_with_retries_and_fails_naming_both() -> None:
    model = BranchModel(fail={"hard reset": [SERVER_ERROR, TIMEOUT]})
    winner: list[str] = []
    # Between our head read and our merge, another publication lands on A.
    model.fail["get commit"] = [None]
    original = model.squash_merge

    def racing_merge(*args: Any, **kw: Any) -> str:
        winner.append(model.commit_on_head(_metadata(AttemptIdentity("wf2", "r", "t", 0, "e"))))
        return original(*args, **kw)

    model.squash_merge = racing_merge  # type: ignore[method-assign]
    guard = BranchMoveGuard()
    with pytest.raises(PublishFenceError) as raised:
        _publisher(model).publish(_request(model, Fence(), guard))
    assert model.chain() == winner  # our merge is gone, theirs stays
    assert winner[0] in str(raised.value)
    assert guard.published is None


def test_a_rollback_that_never_succeeds_names_both_commits() -> None:
    model = BranchModel(fail={"hard reset": [SERVER_ERROR] * 10})
    model.add("theirs", A, {})
    model.head = model.add("ours", "theirs", _metadata(ME))
    with pytest.raises(PublishFenceError) as raised:
        _publisher(model).reset_from("repo", "main", "ours", "theirs")
    assert "from ours to theirs after 4 tries" in str(raised.value)


def test_reset_never_moves_a_head_it_did_not_expect() -> None:
    model = BranchModel()
    foreign = model.commit_on_head({})
    with pytest.raises(PublishFenceError, match="moved to"):
        _publisher(model).reset_from("repo", "main", "something-else", A)
    assert model.head == foreign


def test_abandoned_publication_is_replaced_after_a_fence() -> None:
    model = BranchModel()
    earlier = AttemptIdentity("wf", "ref", "task-0", 0, "exec-0")
    model.commit_on_head(_metadata(earlier))
    fence = Fence()
    states = States(**{"task-0": PredecessorState("TIMED_OUT", retry_count=0)})
    out = _publisher(model, states).publish(_request(model, fence, BranchMoveGuard()))
    assert out == "staged"
    assert model.chain() == ["staged"]
    assert fence.calls == 1


def test_abandoned_publication_on_top_of_a_winner_is_rolled_back_then_decided_again() -> None:
    model = BranchModel()
    done = model.commit_on_head(_metadata(AttemptIdentity("wf", "ref", "task-2", 2, "e2")))
    model.commit_on_head(_metadata(AttemptIdentity("wf", "ref", "task-0", 0, "e0")))
    states = States(
        **{
            "task-0": PredecessorState("TIMED_OUT", retry_count=0),
            "task-2": PredecessorState("COMPLETED", retry_count=2),
        }
    )
    with pytest.raises(StaleAttemptError, match="COMPLETED"):
        _publisher(model, states).publish(_request(model, Fence(), BranchMoveGuard()))
    assert model.chain() == [done]  # the stale leftover is gone, the completed one stays


def test_a_completed_publication_is_never_replaced_by_a_noop() -> None:
    model = BranchModel()
    later = model.commit_on_head(_metadata(AttemptIdentity("wf", "ref", "task-2", 2, "e2")))
    states = States(**{"task-2": PredecessorState("COMPLETED", retry_count=2)})
    with pytest.raises(StaleAttemptError):
        _publisher(model, states).publish(_request(model, Fence(), BranchMoveGuard(), noop=True))
    assert model.chain() == [later]


def test_a_closed_guard_refuses_moves_but_allows_the_undo() -> None:
    model = BranchModel()
    guard = BranchMoveGuard()
    assert guard.close("deadline", wait_seconds=1)
    with pytest.raises(AttemptEndedError):
        _publisher(model).publish(_request(model, Fence(), guard))
    assert model.chain() == []
    mine = model.commit_on_head(_metadata(ME))
    with guard.moving(undo=True):
        outcome = _publisher(model).undo(OwnPublication("repo", "main", mine, A))
    assert model.head == A
    assert "took" in outcome


def test_undo_leaves_a_publication_someone_built_on() -> None:
    model = BranchModel()
    mine = model.commit_on_head(_metadata(ME))
    top = model.commit_on_head({})
    outcome = _publisher(model).undo(OwnPublication("repo", "main", mine, A))
    assert model.head == top
    assert top in outcome


def test_a_failure_after_the_merge_undoes_it() -> None:
    # The merge lands; the head read after it fails: the attempt fails, and its merge is taken
    # back out (the undo's own reads succeed).
    model = BranchModel()
    model.fail["get branch"] = [None, LakeFSError("get branch", 400, "bad")]
    guard = BranchMoveGuard()
    with pytest.raises(LakeFSError):
        _publisher(model).publish(_request(model, Fence(), guard))
    assert guard.published is None
    assert model.head == A


class Attempts:
    def __init__(self, statuses: dict[str, str], outputs: dict[str, str] | None = None) -> None:
        self.attempts = {
            task: ReferenceAttempt(status, (outputs or {}).get(task))
            for task, status in statuses.items()
        }

    def reference_attempts(
        self, workflow_instance_id: str, task_ref: str
    ) -> dict[str, ReferenceAttempt]:
        return self.attempts


def test_reconcile_removes_stale_leftovers_down_to_the_completed_output() -> None:
    model = BranchModel()
    done = model.commit_on_head(_metadata(AttemptIdentity("wf", "ref", "task-2", 1, "e2")))
    stale = model.commit_on_head(_metadata(AttemptIdentity("wf", "ref", "task-1", 0, "e1")))
    attempts = Attempts({"task-1": "TIMED_OUT", "task-2": "COMPLETED"}, {"task-2": done})
    assert _publisher(model).reconcile("repo", "main", attempts) == [stale]
    assert model.chain() == [done]
    assert _publisher(model).reconcile("repo", "main", attempts) == []


def test_reconcile_never_touches_a_foreign_head() -> None:
    model = BranchModel()
    model.commit_on_head(_metadata(AttemptIdentity("wf", "ref", "task-1", 0, "e1")))
    foreign = model.commit_on_head({})
    assert _publisher(model).reconcile("repo", "main", Attempts({"task-1": "FAILED"})) == []
    assert model.head == foreign


def test_a_frozen_server_costs_about_one_retry_window_not_one_timeout_per_retry() -> None:
    now = [0.0]
    model = BranchModel(fail={"get branch": [TIMEOUT] * 10})
    original = model.branch_head

    def slow_head(repository: str, branch: str) -> str:
        now[0] += 10.0  # each try waits out a 10 s request timeout
        return original(repository, branch)

    model.branch_head = slow_head  # type: ignore[method-assign]
    publisher = Publisher(
        model,  # type: ignore[arg-type]
        None,
        move_timeout_seconds=10.0,
        retry_window_seconds=15.0,
        backoff_seconds=(0.2, 0.5, 1.0, 2.0),
        sleep=lambda s: now.__setitem__(0, now[0] + s),
        clock=lambda: now[0],
    )
    with pytest.raises(LakeFSError):
        publisher.publish(_request(model, Fence(), BranchMoveGuard()))
    assert model.calls.count("get branch") == 2
    assert now[0] <= 25.0
