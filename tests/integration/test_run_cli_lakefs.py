"""``perago run --lakefs`` through the real console script against a real lakeFS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perago.config import LakeFSConfig
from perago.lakefs.client import LakeFSControl

from ..run_cli_support import make_project, run_perago
from .publication_support import commit_files, read_object

pytestmark = pytest.mark.integration


def test_run_against_lakefs_with_and_without_publish(
    tmp_path: Path, lakefs_config: LakeFSConfig, repo: str
) -> None:
    a = commit_files(lakefs_config, repo, "main", {"data/in.txt": b"in", "other/x": b"x"})
    project = make_project(tmp_path, "lakefstask")
    env = {
        "LAKECTL_SERVER_ENDPOINT_URL": lakefs_config.endpoint_url,
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": lakefs_config.access_key_id,
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": lakefs_config.secret_access_key.get_secret_value(),
    }
    control = LakeFSControl(
        lakefs_config.endpoint_url, lakefs_config.access_key_id, lakefs_config.secret_access_key
    )

    dry = run_perago(
        project, ["run", "lakefstask", "--params", '{"name": "q"}', "--lakefs", f"{repo}@main"], env
    )
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["output"]["workspace"]["ref"] == a
    assert "added 1 files" in dry.stderr
    assert control.branch_head(repo, "main") == a

    published = run_perago(
        project,
        [
            "run",
            "lakefstask",
            "--params",
            '{"name": "q", "drop": "in.txt"}',
            "--lakefs",
            f"{repo}@main",
            "--publish",
        ],
        env,
    )
    assert published.returncode == 0, published.stderr
    ref = json.loads(published.stdout)["output"]["workspace"]["ref"]
    assert control.branch_head(repo, "main") == ref != a
    assert read_object(lakefs_config, repo, ref, "data/out/q.txt") == b"qqq"
    assert "removed: in.txt" in published.stderr
    assert lakefs_config.secret_access_key.get_secret_value() not in published.stderr

    commit_only = run_perago(
        project,
        ["run", "lakefstask", "--params", '{"name": "r"}', "--lakefs", f"{repo}@{a}", "--publish"],
        env,
    )
    assert commit_only.returncode == 1
    assert commit_only.stderr.strip() == "error: --publish needs a branch: use REPO@COMMIT:BRANCH"

    stale = run_perago(
        project,
        [
            "run",
            "lakefstask",
            "--params",
            '{"name": "r"}',
            "--lakefs",
            f"{repo}@{a}:main",
            "--publish",
        ],
        env,
    )
    assert stale.returncode == 1
    assert "PublishFenceError: main cannot publish from input ref" in stale.stderr

    missing = run_perago(
        project, ["run", "lakefstask", "--params", "{}", "--lakefs", f"{repo}@nope"], env
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: lakeFS get commit failed (HTTP 404)")
