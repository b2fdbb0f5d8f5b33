"""Publication and no-op tables against a REAL lakeFS server."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from perago.attempt.identity import TaskAttempt
from perago.attempt.result import RuntimeTaskResult
from perago.config import LakeFSConfig
from perago.lakefs.workspace import LakeFSWorkspaceRuntime

from .publication_support import (
    AttemptRun,
    commit_files,
    diff_paths,
    edit_task,
    make_attempt,
    read_object,
)

pytestmark = pytest.mark.integration

SEED = {"data/a.txt": b"a", "data/sub/b.txt": b"b", "data2/sibling.txt": b"s"}


@pytest.fixture
def seeded(lakefs_config: LakeFSConfig, repo: str) -> tuple[str, str]:
    repository = repo
    commit = commit_files(lakefs_config, repository, "main", SEED)
    return repository, commit


def edit(
    attempts: AttemptRun,
    seeded: tuple[str, str],
    params: Mapping[str, Any],
    *,
    attempt: TaskAttempt | None = None,
) -> RuntimeTaskResult:
    """One attempt of the edit task on main from the seeded commit A."""
    repository, a = seeded
    return attempts.run(edit_task(), repository, "main", a, params, attempt=attempt)


def head(runtime: LakeFSWorkspaceRuntime, repository: str) -> str:
    return runtime.control.branch_head(repository, "main")


def test_head_equals_input_merges_with_metadata(
    attempts: AttemptRun, seeded: tuple[str, str], lakefs_config: LakeFSConfig
) -> None:
    repository, a = seeded
    result = edit(attempts, seeded, {"write": {"new.txt": "n"}, "delete": ["sub/b.txt"]})
    assert result.status == "COMPLETED", result.reason_for_incompletion
    merged = result.output["workspace"]["ref"]  # type: ignore[index]
    control = attempts.runtime.control
    assert head(attempts.runtime, repository) == merged
    commit = control.get_commit(repository, merged)
    assert commit.parents == (a,)
    assert commit.metadata["perago.workflow_instance_id"] == "wf-1"
    assert commit.metadata["perago.task_ref"] == "edit"
    assert commit.metadata["perago.task_name"] == "edit_files"
    assert sorted(diff_paths(lakefs_config, repository, a, merged)) == [
        "data/new.txt",
        "data/sub/b.txt",
    ]
    assert read_object(lakefs_config, repository, merged, "data/new.txt") == b"n"
    # The staging branch is gone.
    assert not list(control.iter_branches(repository, "perago-staging-"))


def test_abandoned_publication_of_same_task_is_replaced(
    attempts: AttemptRun, seeded: tuple[str, str]
) -> None:
    repository, a = seeded
    earlier = make_attempt(retry=0)
    first = edit(attempts, seeded, {"write": {"x.txt": "1"}}, attempt=earlier)
    assert first.status == "COMPLETED"
    abandoned = head(attempts.runtime, repository)
    attempts.states.set(earlier, "TIMED_OUT")
    # Conductor never saw that completion; the retry runs from the same input ref A.
    retry = edit(attempts, seeded, {"write": {"x.txt": "2"}}, attempt=make_attempt(retry=1))
    assert retry.status == "COMPLETED", retry.reason_for_incompletion
    c = attempts.staged[-1].commit
    assert retry.output["workspace"]["ref"] == c  # type: ignore[index]
    assert head(attempts.runtime, repository) == c
    assert attempts.runtime.control.get_commit(repository, c).parents == (a,)
    assert abandoned != c


@pytest.mark.parametrize("status", ["COMPLETED", "IN_PROGRESS"])
@pytest.mark.parametrize("noop", [False, True])
def test_publication_of_a_task_that_may_complete_is_never_replaced(
    attempts: AttemptRun, seeded: tuple[str, str], status: str, noop: bool
) -> None:
    """Issue 11 items 1-2: a stale attempt (publishing or no-op) finds a live/COMPLETED one."""
    repository, _ = seeded
    earlier = make_attempt(retry=0)
    first = edit(attempts, seeded, {"write": {"x.txt": "1"}}, attempt=earlier)
    assert first.status == "COMPLETED"
    published = head(attempts.runtime, repository)
    attempts.states.set(earlier, status)
    params = {} if noop else {"write": {"x.txt": "2"}}
    retry = edit(attempts, seeded, params, attempt=make_attempt(retry=1))
    assert retry.status == "FAILED"
    assert (retry.reason_for_incompletion or "").startswith("StaleAttemptError: ")
    assert head(attempts.runtime, repository) == published


def test_later_attempts_publication_is_never_replaced_by_an_earlier_one(
    attempts: AttemptRun, seeded: tuple[str, str]
) -> None:
    repository, _ = seeded
    later = make_attempt(retry=2)
    assert edit(attempts, seeded, {"write": {"x.txt": "2"}}, attempt=later).status == "COMPLETED"
    published = head(attempts.runtime, repository)
    attempts.states.set(later, "FAILED")
    stale = edit(attempts, seeded, {"write": {"x.txt": "1"}}, attempt=make_attempt(retry=1))
    assert stale.status == "FAILED"
    assert "later or concurrent attempt" in (stale.reason_for_incompletion or "")
    assert head(attempts.runtime, repository) == published


def test_unknown_conductor_state_fails_closed(
    attempts: AttemptRun, seeded: tuple[str, str]
) -> None:
    repository, _ = seeded
    assert (
        edit(attempts, seeded, {"write": {"x.txt": "1"}}, attempt=make_attempt(retry=0)).status
        == "COMPLETED"
    )
    published = head(attempts.runtime, repository)
    result = edit(attempts, seeded, {"write": {"x.txt": "2"}}, attempt=make_attempt(retry=1))
    assert (result.reason_for_incompletion or "").startswith("PublishFenceError: ")
    assert "Conductor state is unknown" in (result.reason_for_incompletion or "")
    assert head(attempts.runtime, repository) == published


def test_someone_elses_child_of_input_fails_closed(
    attempts: AttemptRun, seeded: tuple[str, str], lakefs_config: LakeFSConfig
) -> None:
    repository, a = seeded
    theirs = commit_files(lakefs_config, repository, "main", {"data/theirs.txt": b"t"})
    result = edit(attempts, seeded, {"write": {"x.txt": "1"}})
    assert result.status == "FAILED"
    reason = result.reason_for_incompletion or ""
    assert reason.startswith(
        f"PublishFenceError: main cannot publish from input ref {a}; current head is {theirs}"
    )
    assert "refusing to discard it" in reason
    assert head(attempts.runtime, repository) == theirs


def test_same_workflow_other_task_reference_fails_closed(
    attempts: AttemptRun, seeded: tuple[str, str]
) -> None:
    repository, _ = seeded
    other = edit(
        attempts, seeded, {"write": {"x.txt": "1"}}, attempt=make_attempt(ref_name="other_step")
    )
    assert other.status == "COMPLETED"
    theirs = head(attempts.runtime, repository)
    result = edit(attempts, seeded, {"write": {"y.txt": "1"}})
    assert result.status == "FAILED"
    assert head(attempts.runtime, repository) == theirs


def test_grandchild_fails_closed_with_exact_text(
    attempts: AttemptRun, seeded: tuple[str, str], lakefs_config: LakeFSConfig
) -> None:
    repository, a = seeded
    commit_files(lakefs_config, repository, "main", {"data/one.txt": b"1"})
    grandchild = commit_files(lakefs_config, repository, "main", {"data/two.txt": b"2"})
    result = edit(attempts, seeded, {"write": {"x.txt": "1"}})
    assert result.status == "FAILED"
    assert result.reason_for_incompletion == (
        f"PublishFenceError: main cannot publish from input ref {a}; current head is {grandchild}"
    )


def test_noop_at_input_writes_nothing(attempts: AttemptRun, seeded: tuple[str, str]) -> None:
    repository, a = seeded
    result = edit(attempts, seeded, {"write": {"a.txt": "a"}})
    assert result.status == "COMPLETED"
    assert result.output["workspace"]["ref"] == a  # type: ignore[index]
    assert head(attempts.runtime, repository) == a
    assert attempts.staged == []


def test_noop_after_abandoned_publication_resets_to_input(
    attempts: AttemptRun, seeded: tuple[str, str]
) -> None:
    repository, a = seeded
    earlier = make_attempt(retry=0)
    first = edit(attempts, seeded, {"write": {"x.txt": "1"}}, attempt=earlier)
    assert first.status == "COMPLETED"
    attempts.states.set(earlier, "FAILED")
    retry = edit(attempts, seeded, {}, attempt=make_attempt(retry=1))
    assert retry.status == "COMPLETED", retry.reason_for_incompletion
    assert retry.output["workspace"]["ref"] == a  # type: ignore[index]
    assert head(attempts.runtime, repository) == a


def test_noop_with_foreign_head_fails_closed(
    attempts: AttemptRun, seeded: tuple[str, str], lakefs_config: LakeFSConfig
) -> None:
    repository, a = seeded
    theirs = commit_files(lakefs_config, repository, "main", {"data/theirs.txt": b"t"})
    result = edit(attempts, seeded, {})
    assert result.status == "FAILED"
    expected = f"main cannot complete no-op from input ref {a}; current head is {theirs}"
    assert (result.reason_for_incompletion or "").startswith(f"PublishFenceError: {expected}")
    commit_files(lakefs_config, repository, "main", {"data/more.txt": b"m"})
    result = edit(attempts, seeded, {})
    assert result.status == "FAILED"
    assert head(attempts.runtime, repository) != a


def test_concurrent_publications_exactly_one_wins(
    attempts: AttemptRun, seeded: tuple[str, str], lakefs_config: LakeFSConfig
) -> None:
    repository, a = seeded
    barrier = threading.Barrier(2, timeout=60)
    attempts.before_publish = barrier.wait  # both read H == A before either merges
    results = {}

    def run(name: str) -> None:
        results[name] = edit(
            attempts,
            seeded,
            {"write": {f"{name}.txt": name}},
            attempt=make_attempt(workflow=f"wf-{name}"),
        )

    threads = [threading.Thread(target=run, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(result.status for result in results.values())
    assert statuses == ["COMPLETED", "FAILED"], {
        k: v.reason_for_incompletion for k, v in results.items()
    }
    winner = next(name for name, result in results.items() if result.status == "COMPLETED")
    loser = next(name for name in results if name != winner)
    assert "PublishFenceError" in (results[loser].reason_for_incompletion or "")
    final = head(attempts.runtime, repository)
    assert final == results[winner].output["workspace"]["ref"]  # type: ignore[index]
    assert read_object(lakefs_config, repository, final, f"data/{winner}.txt") == winner.encode()
    assert diff_paths(lakefs_config, repository, a, final) == [f"data/{winner}.txt"]


def test_longest_staging_branch_name_is_accepted(
    attempts: AttemptRun, seeded: tuple[str, str]
) -> None:
    result = edit(
        attempts, seeded, {"write": {"x.txt": "1"}}, attempt=make_attempt(workflow="w" * 2000)
    )
    assert result.status == "COMPLETED", result.reason_for_incompletion
    assert len(attempts.staged[-1].branch) == 900
