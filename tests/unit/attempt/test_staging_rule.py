"""The staging-branch GC rule (perago.attempt.staging): a branch is abandoned only when its attempt
can never pass its fence again — never because its head is old or nothing is uncommitted."""

from __future__ import annotations

import itertools

import pytest

from perago.attempt.core import staging_branch_name
from perago.attempt.staging import (
    GONE,
    UNKNOWN,
    StagingOwner,
    StagingTaskState,
    judge_staging_branch,
    staging_owner,
)
from tests.unit.conftest import make_attempt

TASK = "0f8c5a9e-1d2b-4c3d-9e8f-7a6b5c4d3e2f"
WORKFLOW = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
EXEC = "5e0f6c2b8a4d4e1f9a7b3c5d2e8f1a0b"
ATTEMPT = make_attempt(
    task_id=TASK,
    workflow_instance_id=WORKFLOW,
    reference_task_name="render_ref",
    seq=2,
    iteration=0,
    retry_count=1,
    execution_id=EXEC,
)
BRANCH = staging_branch_name(ATTEMPT)
STAGED = {
    "perago.workflow_instance_id": WORKFLOW,
    "perago.task_id": TASK,
    "perago.task_ref": "render_ref",
    "perago.retry_count": "1",
    "perago.execution_id": EXEC,
    "perago.poll_count": "3",
}
FOREIGN = {**STAGED, "perago.task_id": "other-task", "perago.execution_id": "other-exec"}


def _state(status: str, **changes: object) -> StagingTaskState:
    values: dict[str, object] = {
        "workflow_instance_id": WORKFLOW,
        "reference_task_name": "render_ref",
        "seq": 2,
        "iteration": 0,
        "retry_count": 1,
        "poll_count": 3,
    }
    values.update(changes)
    return StagingTaskState(status, **values)  # type: ignore[arg-type]


def test_the_owner_comes_from_the_staging_commit_or_else_the_name() -> None:
    committed = staging_owner(BRANCH, STAGED)
    assert committed == StagingOwner(TASK, EXEC, "commit", WORKFLOW, 3, name_checked=True)
    # Before the staging commit the head is A — here another task's publication: ignored.
    assert staging_owner(BRANCH, FOREIGN) == StagingOwner(TASK, EXEC, "name", name_checked=True)
    assert staging_owner(BRANCH, {}) == StagingOwner(TASK, EXEC, "name", name_checked=True)
    assert staging_owner("perago-staging-hand-made", {}) is None


@pytest.mark.parametrize("status", ["IN_PROGRESS", "SCHEDULED"])
@pytest.mark.parametrize("metadata", [STAGED, FOREIGN, {}])
def test_a_live_task_keeps_its_branch(status: str, metadata: dict[str, str]) -> None:
    verdict = judge_staging_branch(BRANCH, staging_owner(BRANCH, metadata), _state(status))
    assert not verdict.abandoned
    assert verdict.reason == f"task {TASK} is {status}"


@pytest.mark.parametrize(
    "status",
    ["COMPLETED", "FAILED", "FAILED_WITH_TERMINAL_ERROR", "TIMED_OUT", "CANCELED", "SKIPPED"],
)
@pytest.mark.parametrize("metadata", [STAGED, FOREIGN, {}])
def test_an_ended_task_abandons_its_branch(status: str, metadata: dict[str, str]) -> None:
    verdict = judge_staging_branch(BRANCH, staging_owner(BRANCH, metadata), _state(status))
    assert verdict.abandoned
    assert verdict.reason == f"task {TASK} is {status}"


def test_a_repolled_task_abandons_the_earlier_polls_staging_commit() -> None:
    owner = staging_owner(BRANCH, STAGED)
    verdict = judge_staging_branch(BRANCH, owner, _state("IN_PROGRESS", poll_count=4))
    assert verdict.abandoned
    assert "polled again (poll 3 -> 4)" in verdict.reason
    # Without a staging commit there is no recorded poll count: nothing is proven.
    name_only = staging_owner(BRANCH, {})
    assert not judge_staging_branch(
        BRANCH, name_only, _state("IN_PROGRESS", poll_count=4)
    ).abandoned


def test_nothing_is_proven_without_conductor_or_when_it_cannot_answer() -> None:
    owner = staging_owner(BRANCH, STAGED)
    assert judge_staging_branch(BRANCH, owner, None).reason == "Conductor is not configured"
    unread = judge_staging_branch(BRANCH, owner, StagingTaskState(UNKNOWN, detail="timeout"))
    assert (unread.abandoned, unread.reason) == (
        False,
        f"task {TASK} cannot be proven gone: timeout",
    )


def test_a_task_missing_from_its_readable_workflow_is_gone() -> None:
    gone = StagingTaskState(GONE, detail="not listed")
    assert judge_staging_branch(BRANCH, staging_owner(BRANCH, STAGED), gone).abandoned
    # Found, but the workflow no longer lists it (a rerun): gone too, after the name check.
    rerun = _state(GONE)
    assert judge_staging_branch(BRANCH, staging_owner(BRANCH, {}), rerun).abandoned
    # Not found and no workflow known (name only): nothing is proven.
    assert not judge_staging_branch(BRANCH, staging_owner(BRANCH, {}), gone).abandoned


@pytest.mark.parametrize(
    "changes",
    [
        {"workflow_instance_id": "another-workflow"},
        {"reference_task_name": "other_ref"},
        {"seq": 9},
        {"iteration": 5},
        {"retry_count": 0},
        {"seq": None},
    ],
)
def test_a_branch_whose_name_does_not_match_its_task_is_kept(changes: dict[str, object]) -> None:
    verdict = judge_staging_branch(
        BRANCH, staging_owner(BRANCH, STAGED), _state("FAILED", **changes)
    )
    assert not verdict.abandoned
    assert "does not match" in verdict.reason


def test_hashed_long_names_are_proven_by_the_staging_commit() -> None:
    long_ref = "r" * 1000
    attempt = make_attempt(
        task_id=TASK, workflow_instance_id=WORKFLOW, reference_task_name=long_ref, seq=2,
        retry_count=1, execution_id=EXEC,
    )  # fmt: skip
    branch = staging_branch_name(attempt)
    assert "-exec-" not in branch[-40:]
    owner = staging_owner(branch, STAGED)
    assert owner is not None
    assert not owner.name_checked
    ended = _state("FAILED", reference_task_name=long_ref)
    assert judge_staging_branch(branch, owner, ended).abandoned
    # Before its staging commit (head A, foreign metadata) nothing names its task: kept.
    assert staging_owner(branch, {}) is None
    foreign = staging_owner(branch, FOREIGN)
    assert not judge_staging_branch(branch, foreign, StagingTaskState(GONE)).abandoned


def test_only_an_ended_or_gone_proven_task_is_ever_abandoned() -> None:
    """Exhaustive over statuses x metadata x poll counts x name agreement."""
    statuses = ["IN_PROGRESS", "SCHEDULED", "COMPLETED", "FAILED", "TIMED_OUT", GONE, UNKNOWN]
    for status, metadata, poll, agrees in itertools.product(
        statuses, [STAGED, FOREIGN, {}], [None, 3, 4], [True, False]
    ):
        state = _state(status, poll_count=poll, seq=2 if agrees else 7)
        owner = staging_owner(BRANCH, metadata)
        verdict = judge_staging_branch(BRANCH, owner, state)
        repolled = metadata is STAGED and poll is not None and poll != 3 and status != UNKNOWN
        expected = agrees and (
            status in {"COMPLETED", "FAILED", "TIMED_OUT", GONE}
            or (status in {"IN_PROGRESS", "SCHEDULED"} and repolled)
        )
        assert verdict.abandoned == expected, (status, metadata, poll, agrees, verdict)
