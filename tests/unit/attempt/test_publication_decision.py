"""The pure publication decision (protocol v2): an exhaustive table and properties.

The table's oracle below restates the v2 rule of docs/adr/0007 independently of the implementation:
every combination of head kind, parent, Conductor state of the head's task, relative retry count and
mode (publish or no-op) is checked against it.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perago.attempt.decision import (
    ABANDONED_STATUSES,
    GONE,
    UNKNOWN,
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

A, H, C, X = "commit-a", "commit-h", "commit-c", "commit-x"
ME = AttemptIdentity("wf", "ref", "task-me", 1, "exec-me")

PUBLISHERS = {
    "none": None,
    "other_workflow": AttemptIdentity("wf-2", "ref", "task-o", 0, "e"),
    "other_ref": AttemptIdentity("wf", "ref-2", "task-o", 0, "e"),
    "own": ME,
    "same_task_other_execution": AttemptIdentity("wf", "ref", "task-me", 1, "exec-2"),
    "earlier_retry": AttemptIdentity("wf", "ref", "task-p", 0, "exec-p"),
    "later_retry": AttemptIdentity("wf", "ref", "task-p", 2, "exec-p"),
}
STATUSES = [
    None,
    UNKNOWN,
    GONE,
    "SCHEDULED",
    "IN_PROGRESS",
    "COMPLETED",
    "COMPLETED_WITH_ERRORS",
    "FAILED",
    "FAILED_WITH_TERMINAL_ERROR",
    "TIMED_OUT",
    "CANCELED",
    "SKIPPED",
    "SOMETHING_NEW",
]
PARENTS = {"input": A, "other": X, "root": None}
CONDUCTOR_RETRY = {"as_recorded": "recorded", "lower": 0, "equal": 1, "higher": 2, "missing": None}


def oracle(
    head_is_input: bool,
    publisher: AttemptIdentity | None,
    parent: str | None,
    state: PredecessorState | None,
    publishing: bool,
) -> tuple[ActionKind, str | None]:
    """The v2 rule, written out case by case."""
    if head_is_input:
        return (ActionKind.MERGE, None) if publishing else (ActionKind.COMPLETE, A)
    same_task = publisher is not None and (publisher.workflow_instance_id, publisher.task_ref) == (
        ME.workflow_instance_id,
        ME.task_ref,
    )
    if not same_task:
        return ActionKind.FAIL_CLOSED, None
    assert publisher is not None
    if publisher.task_id == ME.task_id and publisher.execution_id == ME.execution_id:
        if not publishing or parent is None:
            return ActionKind.FAIL_CLOSED, None
        return (ActionKind.COMPLETE, H) if parent == A else (ActionKind.ROLL_BACK, parent)
    if publisher.task_id == ME.task_id:
        return ActionKind.STALE, None
    if state is None or state.status == UNKNOWN:
        return ActionKind.FAIL_CLOSED, None
    if state.status != GONE:
        retry = state.retry_count if state.retry_count is not None else publisher.retry_count
        if state.status in ("COMPLETED", "COMPLETED_WITH_ERRORS"):
            return ActionKind.STALE, None
        if retry >= ME.retry_count:
            return ActionKind.STALE, None
        if state.status in ("SCHEDULED", "IN_PROGRESS"):
            return ActionKind.STALE, None
        if state.status not in (
            "FAILED",
            "FAILED_WITH_TERMINAL_ERROR",
            "TIMED_OUT",
            "CANCELED",
            "SKIPPED",
        ):
            return ActionKind.FAIL_CLOSED, None
    # Proven abandoned.
    if parent == A:
        return ActionKind.RESET, C if publishing else A
    if parent is None:
        return ActionKind.FAIL_CLOSED, None
    return ActionKind.ROLL_BACK, parent


def _cases() -> list[tuple[bool, str, str, str | None, str, bool]]:
    cases: list[tuple[bool, str, str, str | None, str, bool]] = []
    for head_is_input, publishing in itertools.product([True, False], [True, False]):
        if head_is_input:
            cases.append((True, "none", "root", None, "as_recorded", publishing))
            continue
        for publisher, parent, status, retry in itertools.product(
            PUBLISHERS, PARENTS, STATUSES, CONDUCTOR_RETRY
        ):
            cases.append((False, publisher, parent, status, retry, publishing))
    return cases


CASES = _cases()


def test_the_table_is_exhaustive() -> None:
    # 2 modes x (1 head==A + 7 publishers x 3 parents x 13 states x 5 retry views).
    assert len(CASES) == 2 * (1 + 7 * 3 * 13 * 5)


@pytest.mark.parametrize(
    ("head_is_input", "publisher_name", "parent_name", "status", "retry_name", "publishing"),
    CASES,
)
def test_decision_table(  # noqa: PLR0917 - one parametrized case per row
    head_is_input: bool,
    publisher_name: str,
    parent_name: str,
    status: str | None,
    retry_name: str,
    publishing: bool,
) -> None:
    publisher = PUBLISHERS[publisher_name]
    parent = PARENTS[parent_name]
    head = HeadCommit(A if head_is_input else H, None if head_is_input else parent, publisher)
    retry = CONDUCTOR_RETRY[retry_name]
    if retry == "recorded":
        retry = publisher.retry_count if publisher else None
    state = None if status is None else PredecessorState(status, retry_count=retry)  # type: ignore[arg-type]
    action = decide(
        input_ref=A,
        head=head,
        me=ME,
        staged_commit=C if publishing else None,
        predecessor=state,
        branch="main",
    )
    expected_kind, expected_target = oracle(
        head_is_input, publisher, None if head_is_input else parent, state, publishing
    )
    assert action.kind is expected_kind, action
    if expected_target is not None:
        assert action.target == expected_target
    if action.kind in (ActionKind.RESET, ActionKind.ROLL_BACK):
        assert action.expected_head == H  # only ever moves the head it has read
    if action.kind in (ActionKind.STALE, ActionKind.FAIL_CLOSED):
        assert action.reason.startswith(f"main cannot {'publish' if publishing else 'complete'}")
        assert H in action.reason


def test_old_rule_case_is_now_stale() -> None:
    """Issue 11 item 1: a COMPLETED later attempt's publication is never replaced."""
    later = AttemptIdentity("wf", "ref", "task-2", 1, "e2")
    stale_me = AttemptIdentity("wf", "ref", "task-1", 0, "e1")
    head = HeadCommit(H, A, later)
    for staged in (C, None):  # item 2: the stale no-op must not erase it either
        action = decide(
            input_ref=A,
            head=head,
            me=stale_me,
            staged_commit=staged,
            predecessor=PredecessorState("COMPLETED", retry_count=1),
        )
        assert action.kind is ActionKind.STALE
        assert not action.moves_branch


def test_predecessor_is_read_only_for_another_task_of_this_reference() -> None:
    for name, publisher in PUBLISHERS.items():
        head = HeadCommit(H, A, publisher)
        expected = "task-p" if name in ("earlier_retry", "later_retry") else None
        assert predecessor_to_read(head, ME) == expected


def test_after_merge() -> None:
    on_input = HeadCommit("m", A, ME)
    assert decide_after_merge(input_ref=A, merged=on_input, current_head="m").target == "m"
    # Somebody built on our publication already: still ours, still the output.
    built_on = decide_after_merge(input_ref=A, merged=on_input, current_head="later")
    assert (built_on.kind, built_on.target) == (ActionKind.COMPLETE, "m")
    lost = HeadCommit("m", X, ME)
    rollback = decide_after_merge(input_ref=A, merged=lost, current_head="m", branch="main")
    assert (rollback.kind, rollback.target, rollback.expected_head) == (
        ActionKind.ROLL_BACK,
        X,
        "m",
    )
    assert not rollback.fenced  # undoing our own merge needs no fence
    assert rollback.then_fail is not None
    assert "m" in rollback.then_fail
    assert X in rollback.then_fail
    covered = decide_after_merge(input_ref=A, merged=lost, current_head="top", branch="main")
    assert covered.kind is ActionKind.FAIL_CLOSED
    assert "m" in covered.reason
    assert "top" in covered.reason
    assert X in covered.reason


def test_identity_from_metadata() -> None:
    metadata = {
        "perago.workflow_instance_id": "wf",
        "perago.task_ref": "ref",
        "perago.task_id": "t",
        "perago.retry_count": "3",
        "perago.execution_id": "e",
    }
    assert AttemptIdentity.from_metadata(metadata) == AttemptIdentity("wf", "ref", "t", 3, "e")
    assert AttemptIdentity.from_metadata({}) is None
    assert AttemptIdentity.from_metadata({**metadata, "perago.retry_count": "x"}) is None


# -- properties ---------------------------------------------------------------------------------

identities = st.builds(
    AttemptIdentity,
    workflow_instance_id=st.sampled_from(["wf", "wf-2"]),
    task_ref=st.sampled_from(["ref", "ref-2"]),
    task_id=st.sampled_from(["task-me", "task-p", "task-q"]),
    retry_count=st.integers(0, 3),
    execution_id=st.sampled_from(["exec-me", "exec-p"]),
)
heads = st.builds(
    HeadCommit,
    id=st.sampled_from([A, H]),
    first_parent=st.sampled_from([A, X, None]),
    publisher=st.none() | identities,
)
states = st.none() | st.builds(
    PredecessorState,
    status=st.sampled_from([s for s in STATUSES if s is not None]),
    retry_count=st.none() | st.integers(0, 3),
)


@given(head=heads, me=identities, state=states, publishing=st.booleans())
def test_a_move_only_ever_replaces_a_proven_abandoned_publication_of_this_task(
    head: HeadCommit,
    me: AttemptIdentity,
    state: PredecessorState | None,
    publishing: bool,
) -> None:
    action = decide(
        input_ref=A,
        head=head,
        me=me,
        staged_commit=C if publishing else None,
        predecessor=state,
    )
    if action.kind is ActionKind.MERGE:
        assert head.id == A
        assert publishing
    if action.kind is ActionKind.RESET:
        assert head.id != A
        assert head.first_parent == A
        assert action.target == (C if publishing else A)
    if action.kind in (ActionKind.RESET, ActionKind.ROLL_BACK):
        publisher = head.publisher
        assert publisher is not None
        assert publisher.same_task(me)
        assert action.expected_head == head.id
        if action.fenced:
            # Somebody else's attempt: only when Conductor proved it can never complete.
            assert state is not None
            assert publisher.task_id != me.task_id
            assert state.status == GONE or (
                state.status in ABANDONED_STATUSES
                and (state.retry_count if state.retry_count is not None else publisher.retry_count)
                < me.retry_count
            )
        else:
            assert publisher.same_execution(me)  # unfenced: only our own commit
    if action.kind is ActionKind.COMPLETE:
        assert action.target in (A, head.id)
        if action.target == head.id and head.id != A:
            assert head.publisher is not None
            assert head.publisher.same_execution(me)


@given(head=heads, me=identities, state=states, publishing=st.booleans())
def test_a_completed_publication_is_never_moved(
    head: HeadCommit, me: AttemptIdentity, state: PredecessorState | None, publishing: bool
) -> None:
    if state is None or state.status not in ("COMPLETED", "COMPLETED_WITH_ERRORS"):
        state = PredecessorState("COMPLETED", retry_count=state.retry_count if state else None)
    action = decide(
        input_ref=A, head=head, me=me, staged_commit=C if publishing else None, predecessor=state
    )
    publisher = head.publisher
    if head.id != A and publisher is not None and not publisher.same_execution(me):
        assert not action.moves_branch


R = ReferenceAttempt


@pytest.mark.parametrize(
    ("attempts", "rolls_back"),
    [
        (None, False),  # Conductor unreadable: never remove what is not proven
        ({"task-p": R("TIMED_OUT")}, True),  # the last attempt died after its merge
        ({"task-p": R("TIMED_OUT"), "task-q": R("COMPLETED", "c2")}, True),  # stale merge on top
        ({"task-p": R("TIMED_OUT"), "task-q": R("IN_PROGRESS")}, False),  # a live attempt decides
        ({"task-p": R("TIMED_OUT"), "task-q": R("SCHEDULED")}, False),
        ({"task-p": R("COMPLETED", H)}, False),  # a completed task's output stays
        ({"task-p": R("COMPLETED")}, False),  # output unknown: it may be the output
        ({"task-p": R("COMPLETED", "c2")}, True),  # another execution of the task completed
        ({"task-q": R("FAILED")}, True),  # its task is gone from the workflow (rerun)
        ({"task-p": R("SOMETHING_NEW")}, False),
    ],
)
def test_reconcile(attempts: dict[str, ReferenceAttempt] | None, rolls_back: bool) -> None:
    publisher = AttemptIdentity("wf", "ref", "task-p", 0, "exec-p")
    action = decide_reconcile(HeadCommit(H, A, publisher), attempts)
    if rolls_back:
        assert action is not None
        assert (action.kind, action.target, action.expected_head) == (
            ActionKind.ROLL_BACK,
            A,
            H,
        )
    else:
        assert action is None
    assert decide_reconcile(HeadCommit(H, A, None), {"task-p": R("FAILED")}) is None
