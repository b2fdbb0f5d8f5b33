"""lakeFS workspace runtime: the download / stage / publish / no-op / cleanup collaborators of the
attempt core, bulk bytes through :mod:`perago.engine.transfer`, control calls through
:mod:`perago.lakefs.client`.

Publication follows protocol v2 (:mod:`perago.attempt.decision`, :mod:`perago.lakefs.publisher`;
docs/adr/0007).

The runtime holds no per-attempt state, so one instance serves every thread of a worker.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from perago.attempt import faults
from perago.attempt import staging as staging_gc
from perago.attempt.core import StagedWorkspace, TaskExecutionContext, staging_branch_name
from perago.attempt.decision import AttemptIdentity
from perago.attempt.guard import OwnPublication
from perago.attempt.space_ledger import reserve_for_download
from perago.config import CacheConfig, LakeFSConfig
from perago.definition.controls import PublishBudget
from perago.definition.workspace import WorkspaceInput, WorkspaceSpec
from perago.engine import snapshot, transfer
from perago.engine.cache import ContentCache, open_cache
from perago.errors import PublishFenceError, TaskInputError
from perago.lakefs.client import (
    DEFAULT_CONTROL_TIMEOUT_SECONDS,
    NO_RETRIES,
    LakeFSControl,
    LakeFSError,
)
from perago.lakefs.paths import check_publishable_entry, workspace_object_path
from perago.lakefs.publisher import (
    Publisher,
    PublishRequest,
    ReferenceAttemptsReader,
    TaskStateReader,
)

__all__ = [
    "STAGING_BRANCH_PREFIX",
    "LakeFSWorkspaceRuntime",
    "StagingOwnerReader",
    "StaleStagingBranch",
    "publication_metadata",
]

STAGING_BRANCH_PREFIX = "perago-staging-"


@dataclass(frozen=True)
class StaleStagingBranch:
    """A staging branch the staging GC judged: abandoned (listed) or kept, and why."""

    repository: str
    branch: str
    head: str
    head_created: datetime | None
    reason: str = ""


class StagingOwnerReader(Protocol):
    """Conductor as the staging GC asks it (``ConductorClient.staging_task_state``)."""

    def staging_task_state(
        self, task_id: str, workflow_instance_id: str | None = None
    ) -> staging_gc.StagingTaskState: ...


def publication_metadata(context: TaskExecutionContext) -> dict[str, str]:
    """The ``perago.*`` commit metadata identifying the attempt that produced a commit."""
    worker_id = (
        context.attempt.worker_id or os.environ.get("PERAGO_WORKER_ID") or f"pid-{os.getpid()}"
    )
    return {
        **attempt_identity(context).to_metadata(),
        "perago.worker_id": worker_id,
        "perago.poll_count": str(context.attempt.poll_count or 0),
        "perago.task_name": context.attempt.task_def_name,
    }


def attempt_identity(context: TaskExecutionContext) -> AttemptIdentity:
    """This attempt's identity, as its publications record it (see publication_metadata)."""
    return AttemptIdentity(
        workflow_instance_id=context.attempt.workflow_instance_id,
        task_ref=context.attempt.reference_task_name,
        task_id=context.attempt.task_id,
        retry_count=context.attempt.retry_count,
        execution_id=context.execution_id,
    )


class LakeFSWorkspaceRuntime:
    """Workspace collaborators for :func:`perago.attempt.core.run_workspace_task_attempt`."""

    def __init__(
        self,
        config: LakeFSConfig,
        *,
        publish_budget: PublishBudget | None = None,
        download_concurrency: int | None = None,
        upload_concurrency: int | None = None,
        progress: transfer.ProgressCallback | None = None,
        task_states: TaskStateReader | None = None,
        control_timeout_seconds: float = DEFAULT_CONTROL_TIMEOUT_SECONDS,
        cache: CacheConfig | None = None,
    ) -> None:
        self._config = config
        self._cache_config = cache
        self._cache: ContentCache | None = None
        # Runtime calls (staging branch, commit, gc reads) retry transient failures within
        # their timeout (perago.lakefs.client); the publisher retries on its own schedule and
        # must never have a branch move re-sent under it, so it gets a client without retries.
        self._control = LakeFSControl.from_config(config, timeout_seconds=control_timeout_seconds)
        self._budget = publish_budget
        # The publish phase (its reads, moves and the staging cleanup after it) runs under the
        # PublishBudget's timeout when one is declared, so a frozen lakeFS ends the attempt
        # within a few budgets instead of a few default timeouts.
        self._publish_control = self._control.without_retries()
        if publish_budget is not None:
            self._publish_control = LakeFSControl.from_config(
                config,
                timeout_seconds=float(publish_budget.lakefs_merge_timeout_seconds),
                retries=NO_RETRIES,
            )
        self._publisher = Publisher(
            self._publish_control,
            task_states,
            move_timeout_seconds=(
                float(publish_budget.lakefs_merge_timeout_seconds) if publish_budget else None
            ),
            retry_window_seconds=(
                float(publish_budget.lakefs_merge_timeout_seconds)
                if publish_budget
                else control_timeout_seconds
            ),
        )
        self._download_concurrency = download_concurrency
        self._upload_concurrency = upload_concurrency
        self._progress = progress
        self._client: transfer.LakeFSClient | None = None
        self._client_pid = 0

    @classmethod
    def from_config(
        cls,
        config: LakeFSConfig,
        publish_budget: PublishBudget | None = None,
        *,
        task_states: TaskStateReader | None = None,
        control_timeout_seconds: float = DEFAULT_CONTROL_TIMEOUT_SECONDS,
        cache: CacheConfig | None = None,
        progress: transfer.ProgressCallback | None = None,
    ) -> LakeFSWorkspaceRuntime:
        return cls(
            config,
            publish_budget=publish_budget,
            task_states=task_states,
            control_timeout_seconds=control_timeout_seconds,
            cache=cache,
            progress=progress,
        )

    def __repr__(self) -> str:
        return f"LakeFSWorkspaceRuntime(endpoint_url={self._config.endpoint_url!r})"

    @property
    def control(self) -> LakeFSControl:
        return self._control

    def _transfer_client(self) -> transfer.LakeFSClient:
        # One native client per process (connections are reused); never inherited across fork.
        pid = os.getpid()
        if self._client is None or self._client_pid != pid:
            self._client = transfer.connect(
                self._config.endpoint_url,
                self._config,
                transfer_mode=self._config.transfer_mode,
            )
            self._client_pid = pid
        return self._client

    def _content_cache(self) -> ContentCache | None:
        # Opened once per process, on the first download (a worker that never downloads never
        # touches the cache directory).
        if self._cache is None and self._cache_config is not None:
            self._cache = open_cache(self._cache_config.directory, self._cache_config.max_size)
        return self._cache

    # -- download ------------------------------------------------------------------------------

    def download_workspace(
        self, workspace: WorkspaceInput, spec: WorkspaceSpec, directory: Path
    ) -> snapshot.Snapshot:
        """Materialise ``repository@ref`` under the prefix into ``directory``; return baseline.

        The listed total is reserved in the workspace root's space ledger before anything is
        written and released when the download ends (:mod:`perago.attempt.space_ledger`)."""
        with reserve_for_download(directory) as before_write:
            result = transfer.download_prefix(
                self._transfer_client(),
                None,
                workspace.repository,
                workspace.ref,
                "" if spec.prefix == "/" else spec.prefix,
                directory,
                concurrency=self._download_concurrency,
                progress=self._progress,
                before_write=before_write,
                cache=self._content_cache(),
            )
        return snapshot.snapshot_from_download(directory, result)

    # -- stage ---------------------------------------------------------------------------------

    def stage_workspace(
        self,
        directory: Path,
        workspace: WorkspaceInput,
        spec: WorkspaceSpec,
        context: TaskExecutionContext,
        *,
        changes: snapshot.ChangeSet,
    ) -> StagedWorkspace:
        """Branch from A, upload only added/modified files, delete removed ones, commit."""
        uploads, deletes = _staging_operations(directory, spec, changes)
        branch = staging_branch_name(context)
        self._control.create_branch(workspace.repository, branch, workspace.ref)
        try:
            # The branch's head is A and nothing is uncommitted yet: staging GC must prove its
            # task ended (perago.attempt.staging) — tests hold attempts here and run gc.
            faults.reach("stage.after_branch", task_id=context.attempt.task_id)
            if deletes:
                transfer.delete_objects(
                    self._transfer_client(), None, workspace.repository, branch, deletes
                )
            if uploads:
                transfer.upload_files(
                    self._transfer_client(),
                    None,
                    workspace.repository,
                    branch,
                    uploads,
                    concurrency=self._upload_concurrency,
                    progress=self._progress,
                )
            faults.reach("stage.before_commit", task_id=context.attempt.task_id)
            commit = self._control.commit(
                workspace.repository,
                branch,
                f"perago: {context.attempt.task_def_name}",
                publication_metadata(context),
            )
        except BaseException:
            # Not yet a StagedWorkspace, so the core cannot clean it: remove the branch here.
            self._delete_branch_quietly(workspace.repository, branch)
            raise
        return StagedWorkspace(repository=workspace.repository, branch=branch, commit=commit)

    # -- publish -------------------------------------------------------------------------------

    def publish_workspace(
        self,
        staged: StagedWorkspace,
        workspace: WorkspaceInput,
        spec: WorkspaceSpec,
        context: TaskExecutionContext,
    ) -> str:
        """Publish C onto the branch through the v2 decision table (docs/adr/0007)."""
        return self._publisher.publish(
            self._request(
                workspace,
                context,
                staging_branch=staged.branch,
                staged_commit=staged.commit,
                message=f"perago: {context.attempt.task_def_name}",
                metadata=publication_metadata(context),
            )
        )

    def complete_noop_workspace(
        self, workspace: WorkspaceInput, spec: WorkspaceSpec, context: TaskExecutionContext
    ) -> str:
        """Nothing changed: output A; undo a proven-abandoned publication of this task."""
        return self._publisher.publish(self._request(workspace, context))

    def undo_publication(self, publication: OwnPublication) -> str:
        """Take an attempt's own publication back out while it is still the head."""
        return self._publisher.undo(publication)

    def _request(
        self, workspace: WorkspaceInput, context: TaskExecutionContext, **staged: Any
    ) -> PublishRequest:
        return PublishRequest(
            repository=workspace.repository,
            branch=workspace.branch,
            input_ref=workspace.ref,
            me=attempt_identity(context),
            fence=context.fence,
            guard=context.guard,
            **staged,
        )

    def cleanup_staging(self, staged: StagedWorkspace) -> None:
        self._publish_control.delete_branch(staged.repository, staged.branch)

    # -- staging branch GC ---------------------------------------------------------------------

    def list_stale_staging_branches(
        self,
        repository: str,
        owners: StagingOwnerReader | None,
        kept: list[StaleStagingBranch] | None = None,
    ) -> list[StaleStagingBranch]:
        """Staging branches proven abandoned (:mod:`perago.attempt.staging`: the attempt that made
        it can never pass its fence again), never by age. ``owners`` is Conductor; without it
        nothing is proven and nothing is listed. Branches kept are appended to ``kept`` with
        the reason; one branch that cannot be read never stops the pass (kept, reason given)."""
        stale = []
        for name, head in self._control.iter_branches(repository, STAGING_BRANCH_PREFIX):
            try:
                commit = self._control.get_commit(repository, head)
                owner = staging_gc.staging_owner(name, commit.metadata)
                state = None
                if owner is not None and owners is not None:
                    known_workflow = owner.workflow_instance_id if owner.name_checked else None
                    state = owners.staging_task_state(owner.task_id, known_workflow)
                verdict = staging_gc.judge_staging_branch(name, owner, state)
            except LakeFSError as exc:
                if kept is not None:
                    kept.append(StaleStagingBranch(repository, name, head, None, str(exc)))
                continue
            item = StaleStagingBranch(repository, name, head, commit.creation_date, verdict.reason)
            if verdict.abandoned:
                stale.append(item)
            elif kept is not None:
                kept.append(item)
        return stale

    def reconcile_publications(
        self,
        repository: str,
        attempts: ReferenceAttemptsReader,
        failures: list[tuple[str, str]],
    ) -> list[tuple[str, str]]:
        """(branch, commit) of every head publication rolled back because no completed task's
        output names it; staging branches are left to the staging GC. Branches that could not
        be reconciled are appended to ``failures`` as (branch, reason)."""
        removed = []
        for name, _head in list(self._control.iter_branches(repository, "")):
            if name.startswith(STAGING_BRANCH_PREFIX):
                continue
            try:
                for commit in self._publisher.reconcile(repository, name, attempts):
                    removed.append((name, commit))
            except (LakeFSError, PublishFenceError) as exc:
                # One busy or unreachable branch never stops the pass (it is retried next time).
                failures.append((name, str(exc)))
        return removed

    def delete_staging_branches(self, branches: list[StaleStagingBranch]) -> list[str]:
        """Delete the given branches; returns the ones that failed (logged by the caller)."""
        failed = []
        for stale in branches:
            try:
                self._control.delete_branch(stale.repository, stale.branch)
            except LakeFSError as exc:
                if exc.status != 404:  # its own attempt's cleanup may have won the race
                    failed.append(stale.branch)
        return failed

    # -- helpers -------------------------------------------------------------------------------

    def _delete_branch_quietly(self, repository: str, branch: str) -> None:
        # One try, no retries: this runs on the way out of a failure (often Ctrl-C or the
        # deadline), and the GC removes the branch later if this fails too.
        with contextlib.suppress(LakeFSError):
            self._control.without_retries().delete_branch(repository, branch)


def _staging_operations(
    directory: Path, spec: WorkspaceSpec, changes: snapshot.ChangeSet
) -> tuple[list[tuple[Path, str]], list[str]]:
    """Uploads (local path, object path) for new/changed files and object paths to delete."""
    if changes.unsupported:
        path, kind = changes.unsupported[0]
        raise TaskInputError(
            f"workspace publication supports only regular files; {path} is a {kind}"
        )
    uploads: list[tuple[Path, str]] = []
    for relative in [*changes.added, *changes.modified, *changes.type_changed]:
        check_publishable_entry(directory, relative)
        uploads.append((directory / relative, workspace_object_path(spec, relative)))
    deletes = [workspace_object_path(spec, relative) for relative in changes.removed]
    return uploads, deletes
