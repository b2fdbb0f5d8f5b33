"""A lakeFS restart between staging and publication: the attempt fails cleanly, a retry succeeds.

Uses a private lakeFS process (not the shared session server) because it is stopped mid-test.
"""

from __future__ import annotations

from pathlib import Path

import lakefs_sdk
import pytest
from pydantic import SecretStr

from perago.config import LakeFSConfig
from perago.devservers import supervisor
from perago.lakefs.workspace import LakeFSWorkspaceRuntime, StaleStagingBranch

from .publication_support import AttemptRun, commit_files, edit_task, make_attempt, sdk_client

pytestmark = pytest.mark.integration


def _start(state_dir: Path) -> tuple[supervisor.Launched, LakeFSConfig]:
    launched, creds = supervisor.launch_lakefs(state_dir, lambda _: None)
    supervisor.await_healthy(launched, lambda _: None)
    config = LakeFSConfig(
        endpoint_url=launched.record.url,
        access_key_id=creds.access_key_id,
        secret_access_key=SecretStr(creds.secret_access_key),
    )
    return launched, config


def test_restart_between_stage_and_publish(tmp_path: Path, unique_name: str) -> None:
    state_dir = tmp_path / "private-lakefs"
    launched, config = _start(state_dir)
    try:
        lakefs_sdk.RepositoriesApi(sdk_client(config)).create_repository(
            lakefs_sdk.RepositoryCreation(
                name=unique_name,
                storage_namespace=f"local://{unique_name}",
                default_branch="main",
                storage_id=None,
            )
        )
        a = commit_files(config, unique_name, "main", {"data/a.txt": b"a"})
        first = AttemptRun(LakeFSWorkspaceRuntime(config), tmp_path / "attempts")

        def stop_server() -> None:
            supervisor.stop([launched.record], lambda _: None)

        first.before_publish = stop_server
        failed = first.run(
            edit_task(),
            unique_name,
            "main",
            a,
            {"write": {"x.txt": "1"}},
            attempt=make_attempt(retry=0),
        )
        assert failed.status == "FAILED"
        reason = failed.reason_for_incompletion or ""
        assert reason.startswith("LakeFSError: lakeFS get branch failed"), reason
        assert config.secret_access_key.get_secret_value() not in reason
        assert list((tmp_path / "attempts").iterdir()) == []

        launched, config = _start(state_dir)
        runtime = LakeFSWorkspaceRuntime(config)
        assert runtime.control.branch_head(unique_name, "main") == a
        # The staging branch of the failed attempt could not be cleaned while lakeFS was down.
        # (Its task is not a Conductor task, so the staging GC cannot prove it abandoned: it is
        # kept, and deleted by hand here.)
        kept: list[StaleStagingBranch] = []
        assert runtime.list_stale_staging_branches(unique_name, None, kept) == []
        assert [s.branch for s in kept] == [first.staged[0].branch]

        retry = AttemptRun(runtime, tmp_path / "attempts").run(
            edit_task(),
            unique_name,
            "main",
            a,
            {"write": {"x.txt": "1"}},
            attempt=make_attempt(retry=1),
        )
        assert retry.status == "COMPLETED", retry.reason_for_incompletion
        assert runtime.control.branch_head(unique_name, "main") == retry.output["workspace"]["ref"]  # type: ignore[index]
        assert runtime.delete_staging_branches(kept) == []
        left: list[StaleStagingBranch] = []
        runtime.list_stale_staging_branches(unique_name, None, left)
        assert left == []
    finally:
        supervisor.stop([launched.record], lambda _: None)
