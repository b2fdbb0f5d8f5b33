"""The attempt core, phase by phase, with small fakes of its own collaborator protocols.

Change detection is the real snapshot engine; only the lakeFS/Conductor side is faked.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from perago.attempt.core import (
    LAKEFS_BRANCH_ID_MAX_LENGTH,
    StagedWorkspace,
    TaskExecutionContext,
    assert_current_attempt_snapshot,
    invoke_workspace_free_task,
    invoke_workspace_task_body,
    run_workspace_free_task_attempt,
    run_workspace_task_attempt,
    staging_branch_name,
)
from perago.attempt.directory import ATTEMPT_WORKSPACE_MARKER, active_workspace_owner_tokens
from perago.attempt.identity import AttemptStats, TaskAttempt
from perago.definition.guardrails import require_file
from perago.definition.workspace import WorkspaceInput, WorkspaceSpec
from perago.engine.snapshot import ChangeSet, take_snapshot
from perago.errors import PublishFenceError, StaleAttemptError, TaskFailed, TaskInputError
from tests.unit.conftest import (
    WORKSPACE,
    Output,
    Params,
    _changes_nothing,
    _returns_mapping,
    make_attempt,
    make_task,
)


@dataclass
class FakeRuntime:
    """Records every collaborator call; behaviour is switched by flags."""

    files: dict[str, str] = field(default_factory=lambda: {"a.txt": "a", "sub/b.txt": "b"})
    calls: list[str] = field(default_factory=list)
    seen_dirs: list[Path] = field(default_factory=list)
    changes: ChangeSet | None = None
    fresh: TaskAttempt | None = None
    fresh_after_stage: TaskAttempt | None = None
    fail: str | None = None
    return_no_baseline: bool = False

    def download(self, workspace: WorkspaceInput, spec: WorkspaceSpec, directory: Path) -> Any:
        self.calls.append("download")
        self.seen_dirs.append(directory)
        assert (directory / ATTEMPT_WORKSPACE_MARKER).is_file()
        for relative, text in self.files.items():
            (directory / relative).parent.mkdir(parents=True, exist_ok=True)
            (directory / relative).write_text(text)
        if self.fail == "download":
            raise OSError("network down")
        return None if self.return_no_baseline else take_snapshot(directory)

    def load_current(self, attempt: TaskAttempt) -> TaskAttempt:
        self.calls.append("fence")
        if self.fail == "fence":
            raise RuntimeError("conductor unreachable")
        staged = "stage" in self.calls
        if staged and self.fresh_after_stage is not None:
            return self.fresh_after_stage
        return self.fresh or attempt

    def stage(
        self,
        directory: Path,
        workspace: WorkspaceInput,
        spec: WorkspaceSpec,
        context: TaskExecutionContext,
        *,
        changes: ChangeSet,
    ) -> StagedWorkspace:
        self.calls.append("stage")
        self.changes = changes
        if self.fail == "stage":
            raise OSError("upload failed")
        return StagedWorkspace(workspace.repository, staging_branch_name(context), "C")

    def publish(
        self,
        staged: StagedWorkspace,
        workspace: WorkspaceInput,
        spec: WorkspaceSpec,
        context: TaskExecutionContext,
    ) -> str:
        self.calls.append("publish")
        if self.fail == "publish":
            raise PublishFenceError("main cannot publish from input ref c0ffee; current head is X")
        return "M"

    def cleanup(self, staged: StagedWorkspace) -> None:
        self.calls.append("cleanup")
        if self.fail_cleanup:
            raise RuntimeError("lakeFS down during cleanup")

    fail_cleanup: bool = False

    def noop(
        self, workspace: WorkspaceInput, spec: WorkspaceSpec, context: TaskExecutionContext
    ) -> str:
        self.calls.append("noop")
        return workspace.ref

    def run(self, task: Any, input_data: Any, root: Path, **extra: Any) -> Any:
        options: dict[str, Any] = {
            "download_workspace": self.download,
            "load_current_attempt": self.load_current,
            "stage_workspace": self.stage,
            "publish_workspace": self.publish,
            "cleanup_staging": self.cleanup,
            "complete_noop_workspace": self.noop,
        }
        options.update(extra)
        return run_workspace_task_attempt(task, input_data, make_attempt(), root, **options)


def good_input(**params: Any) -> dict[str, Any]:
    return {"workspace": dict(WORKSPACE), "params": {"name": "new", **params}}


def test_writable_change_is_staged_fenced_twice_and_published(tmp_path: Path) -> None:
    fake = FakeRuntime()
    stats = AttemptStats()
    result = fake.run(make_task(), good_input(), tmp_path, stats=stats)
    assert result.status == "COMPLETED", result.reason_for_incompletion
    assert result.output == {
        "workspace": {"repository": "repo", "branch": "main", "ref_type": "commit", "ref": "M"},
        "result": {"ok": True, "note": ""},
    }
    assert fake.calls == ["download", "fence", "stage", "fence", "publish", "cleanup"]
    assert fake.changes is not None
    assert list(fake.changes.added) == ["new.txt"]
    assert not fake.changes.modified
    assert not fake.changes.removed
    assert stats.files_uploaded == 1
    assert stats.bytes_uploaded == 3
    assert stats.files_downloaded == 2
    assert stats.bytes_downloaded == 2
    assert {
        "validate_input",
        "download",
        "body",
        "detect_changes",
        "fence",
        "stage",
        "publish",
        "cleanup",
    } <= set(stats.phase_ms)
    assert not fake.seen_dirs[0].exists()  # attempt directory removed
    assert list(tmp_path.iterdir()) == []


def test_old_style_download_without_baseline_still_detects_changes(tmp_path: Path) -> None:
    fake = FakeRuntime(return_no_baseline=True)
    result = fake.run(make_task(), good_input(), tmp_path)
    assert result.status == "COMPLETED"
    assert fake.changes is not None
    assert list(fake.changes.added) == ["new.txt"]


def test_modified_and_removed_files_are_reported(tmp_path: Path) -> None:
    def body(workspace: Path, params: Params) -> Output:
        (workspace / "a.txt").write_text("changed")
        (workspace / "sub" / "b.txt").unlink()
        (workspace / "sub" / "same.txt").write_text("s")  # rewritten identical below
        return Output(ok=True)

    fake = FakeRuntime(files={"a.txt": "a", "sub/b.txt": "b", "sub/same.txt": "s"})
    result = fake.run(make_task(body), good_input(), tmp_path)
    assert result.status == "COMPLETED"
    assert fake.changes is not None
    assert list(fake.changes.modified) == ["a.txt"]
    assert list(fake.changes.removed) == ["sub/b.txt"]
    assert not fake.changes.added


def test_no_change_completes_through_noop_without_staging(tmp_path: Path) -> None:
    fake = FakeRuntime()
    result = fake.run(make_task(_changes_nothing), good_input(), tmp_path)
    assert result.status == "COMPLETED"
    assert result.output is not None
    assert result.output["workspace"]["ref"] == "c0ffee"
    assert fake.calls == ["download", "fence", "noop"]


def test_noop_without_callback_fails(tmp_path: Path) -> None:
    fake = FakeRuntime()
    result = fake.run(
        make_task(_changes_nothing), good_input(), tmp_path, complete_noop_workspace=None
    )
    assert result.status == "FAILED"
    assert "complete_noop_workspace callback is required" in (result.reason_for_incompletion or "")


def test_read_only_completes_with_input_ref_and_no_lakefs_calls(tmp_path: Path) -> None:
    fake = FakeRuntime()
    result = fake.run(make_task(read_only=True), good_input(), tmp_path)
    assert result.status == "COMPLETED"
    assert result.output is not None
    assert result.output["workspace"]["ref"] == "c0ffee"
    assert fake.calls == ["download"]


@pytest.mark.parametrize(
    ("input_data", "fragment"),
    [
        ({"params": {"name": "x"}}, "must contain only workspace and params"),
        (
            {"workspace": {**WORKSPACE, "ref": " "}, "params": {"name": "x"}},
            "invalid workspace input",
        ),
        ({"workspace": WORKSPACE, "params": {"name": 1}}, "invalid params: name"),
        ({"workspace": WORKSPACE, "params": {"name": "x", "zzz": 1}}, "invalid params: zzz"),
    ],
)
def test_invalid_input_is_terminal_and_costs_no_download(
    tmp_path: Path, input_data: dict[str, Any], fragment: str
) -> None:
    fake = FakeRuntime()
    result = fake.run(make_task(), input_data, tmp_path)
    assert result.status == "FAILED_WITH_TERMINAL_ERROR"
    assert (result.reason_for_incompletion or "").startswith("TaskInputError: ")
    assert fragment in (result.reason_for_incompletion or "")
    assert fake.calls == []
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_pre_guardrail_is_terminal_and_body_not_called(tmp_path: Path) -> None:
    called: list[bool] = []

    def body(workspace: Path, params: Params) -> Output:
        called.append(True)
        return Output(ok=True)

    fake = FakeRuntime()
    result = fake.run(make_task(body, pre=[require_file("missing.txt")]), good_input(), tmp_path)
    assert result.status == "FAILED_WITH_TERMINAL_ERROR"
    assert (result.reason_for_incompletion or "").startswith(
        "PreGuardrailViolation: pre guardrail require_file('missing.txt')"
    )
    assert called == []


def test_post_guardrail_is_retryable_and_nothing_is_published(tmp_path: Path) -> None:
    fake = FakeRuntime()
    result = fake.run(make_task(post=[require_file("out.wav")]), good_input(), tmp_path)
    assert result.status == "FAILED"
    assert (result.reason_for_incompletion or "").startswith(
        "PostGuardrailViolation: post guardrail"
    )
    assert fake.calls == ["download"]


def test_output_validation_failure_is_retryable(tmp_path: Path) -> None:
    def body(workspace: Path, params: Params) -> dict[str, object]:
        return {"ok": True, "unexpected": 1}

    result = FakeRuntime().run(make_task(body), good_input(), tmp_path)
    assert result.status == "FAILED"
    assert "unexpected: Extra inputs are not permitted" in (result.reason_for_incompletion or "")


def test_task_failed_and_terminal_from_body(tmp_path: Path) -> None:
    def body(workspace: Path, params: Params) -> Output:
        raise TaskFailed("try later")

    result = FakeRuntime().run(make_task(body), good_input(), tmp_path)
    assert (result.status, result.reason_for_incompletion) == ("FAILED", "TaskFailed: try later")


@pytest.mark.parametrize("phase", ["download", "stage", "publish", "fence"])
def test_failures_in_each_phase_are_retryable_and_cleaned(tmp_path: Path, phase: str) -> None:
    fake = FakeRuntime(fail=phase)
    result = fake.run(make_task(), good_input(), tmp_path)
    assert result.status == "FAILED"
    assert list(tmp_path.iterdir()) == []
    assert ("cleanup" in fake.calls) == (phase == "publish")


def test_stale_attempt_before_staging_fails_without_writes(tmp_path: Path) -> None:
    fake = FakeRuntime(fresh=make_attempt(status="COMPLETED"))
    result = fake.run(make_task(), good_input(), tmp_path)
    assert result.status == "FAILED"
    assert (result.reason_for_incompletion or "").startswith(
        "StaleAttemptError: task-1: task is COMPLETED"
    )
    assert fake.calls == ["download", "fence"]


def test_stale_attempt_after_staging_does_not_publish(tmp_path: Path) -> None:
    fake = FakeRuntime(fresh_after_stage=make_attempt(worker_id="worker0002"))
    result = fake.run(make_task(), good_input(), tmp_path)
    assert result.status == "FAILED"
    assert "worker_id changed" in (result.reason_for_incompletion or "")
    assert fake.calls == ["download", "fence", "stage", "fence", "cleanup"]


def test_cleanup_failure_never_changes_the_result(tmp_path: Path) -> None:
    fake = FakeRuntime(fail_cleanup=True)
    result = fake.run(make_task(), good_input(), tmp_path)
    assert result.status == "COMPLETED"
    fake = FakeRuntime(fail_cleanup=True, fail="publish")
    result = fake.run(make_task(), good_input(), tmp_path)
    assert result.status == "FAILED"
    assert (result.reason_for_incompletion or "").startswith(
        "PublishFenceError: main cannot publish"
    )


def test_owner_token_is_registered_only_while_running(tmp_path: Path) -> None:
    seen: list[frozenset[str]] = []

    def body(workspace: Path, params: Params) -> Output:
        seen.append(active_workspace_owner_tokens())
        return Output(ok=True)

    before = active_workspace_owner_tokens()
    FakeRuntime().run(make_task(body), good_input(), tmp_path)
    assert len(seen[0] - before) == 1
    assert active_workspace_owner_tokens() == before


def test_symlink_in_change_set_is_reported_to_staging(tmp_path: Path) -> None:
    def body(workspace: Path, params: Params) -> Output:
        (workspace / "link").symlink_to("a.txt")
        return Output(ok=True)

    fake = FakeRuntime()
    fake.run(make_task(body), good_input(), tmp_path)
    assert fake.changes is not None


def test_non_workspace_task_is_rejected_before_running(tmp_path: Path) -> None:
    with pytest.raises(TaskInputError, match="only supports workspace tasks"):
        FakeRuntime().run(make_task(workspace=False), good_input(), tmp_path)
    with pytest.raises(TaskInputError, match="only supports workspace-free tasks"):
        run_workspace_free_task_attempt(make_task(), {"params": {"name": "x"}})


def test_workspace_free_attempt() -> None:
    task = make_task(_returns_mapping, workspace=False)
    result = run_workspace_free_task_attempt(task, {"params": {"name": "hi"}})
    assert result.output == {"result": {"ok": True, "note": "hi"}}
    bad = run_workspace_free_task_attempt(task, {"params": {"name": "hi", "x": 1}})
    assert bad.status == "FAILED_WITH_TERMINAL_ERROR"
    assert invoke_workspace_free_task(task, {"params": {"name": "a"}}) == {
        "result": {"ok": True, "note": "a"}
    }


def test_invoke_workspace_task_body(tmp_path: Path) -> None:
    out = invoke_workspace_task_body(make_task(), good_input(), tmp_path)
    assert out == {"result": {"ok": True, "note": ""}}
    assert (tmp_path / "new.txt").read_text() == "new"


def test_fence_rules() -> None:
    original = make_attempt()
    assert_current_attempt_snapshot(original, original)
    assert_current_attempt_snapshot(original, replace(original, worker_id=None, poll_count=None))
    for changed in (
        {"status": "TIMED_OUT"},
        {"retry_count": 1},
        {"workflow_instance_id": "wf-2"},
        {"worker_id": "other"},
        {"poll_count": 2},
    ):
        with pytest.raises(StaleAttemptError, match="task-1"):
            assert_current_attempt_snapshot(original, replace(original, **changed))

    class Bare:
        status = "IN_PROGRESS"

    with pytest.raises(
        AttributeError, match="task is missing required attribute workflow_instance_id"
    ):
        assert_current_attempt_snapshot(original, Bare())


def test_staging_branch_name_format() -> None:
    context = TaskExecutionContext(make_attempt(workflow_instance_id="wf/1 x"), "exec:9")
    assert staging_branch_name(context) == (
        "perago-staging-wf-1-x-render-seq-3-iteration-0-task-id-task-1-retry-0-exec-exec-9"
    )
    assert context.task_id == "task-1"  # delegated to the attempt


def test_long_staging_branch_names_are_shortened_with_a_hash() -> None:
    long_a = make_attempt(workflow_instance_id="w" * 1000)
    long_b = make_attempt(workflow_instance_id="w" * 999 + "x")
    name_a, name_b = staging_branch_name(long_a), staging_branch_name(long_b)
    assert len(name_a) == LAKEFS_BRANCH_ID_MAX_LENGTH
    assert name_a != name_b
    assert name_a.startswith("perago-staging-www")
