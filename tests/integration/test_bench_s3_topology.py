"""``perago bench download|upload --blockstore s3`` end to end, on a tiny data set: on the lakeFS
the environment names when it runs on S3 (the session's ``lakefs_server_s3``, as a
``perago dev up --blockstore s3`` stack would be named by ``.env``), and on the private MinIO +
lakeFS the bench starts for itself otherwise. perago and lakectl rows both carry
``topology == "s3"``; nothing is left behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lakefs_sdk
import pytest

from perago.bench.topology import ENV_DEV_BUCKET, bucket_of
from tests.run_cli_support import PERAGO, clean_environment, lakectl_env, run_captured
from tests.servers_fixture import LakefsServer

pytestmark = pytest.mark.integration

TINY = ["--files", "3", "--size", "4K", "--large-files", "0", "--repeat", "1"]


def _bench_repositories(server: LakefsServer) -> set[str]:
    with server.api_client() as client:
        listed = lakefs_sdk.RepositoriesApi(client).list_repositories(amount=1000)
    return {repo.id for repo in listed.results if repo.id.startswith("bench-")}


def _run(command: str, tmp_path: Path, env: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    completed = run_captured(
        [PERAGO, "bench", command, *TINY, "--blockstore", "s3", "--json", "--work-dir", work],
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    assert list(work.iterdir()) == [], "the bench left scratch data or server state behind"
    rows = json.loads(completed.stdout)  # stdout is the JSON array and nothing else
    assert isinstance(rows, list)
    assert rows
    assert all(row["topology"] == "s3" for row in rows)
    measured = [row for row in rows if "skipped" not in row]
    assert measured
    assert all(row["peak_rss_mb"] > 0 for row in measured)
    for row in rows:
        if "skipped" in row:  # no lakectl on this machine: the row says why, and so does stderr
            assert row["median_s"] is None
            assert f"{row['tool']} baseline skipped: {row['skipped']}" in completed.stderr
    return rows, completed.stderr


@pytest.mark.parametrize("command", ["download", "upload"])
def test_s3_reuses_the_environment_lakefs_on_s3(
    lakefs_server_s3: LakefsServer, tmp_path: Path, command: str
) -> None:
    server = lakefs_server_s3
    bucket = bucket_of(server.namespace_root)
    named = lakectl_env(server.url, server.access_key_id, server.secret_access_key)
    env = clean_environment({**named, ENV_DEV_BUCKET: bucket}, without=("LAKECTL_",))
    before = _bench_repositories(server)
    rows, stderr = _run(command, tmp_path, env)
    assert f"using the lakeFS from the environment ({server.url}), on its s3" in stderr
    assert "starting a private MinIO" not in stderr
    assert f"storage namespace s3://{bucket}/perago-bench/bench-" in stderr
    assert _bench_repositories(server) == before
    assert {row["scenario"] for row in rows} == {f"{command}-small"}


def test_s3_without_an_s3_lakefs_runs_on_a_private_stack(tmp_path: Path) -> None:
    env = clean_environment(without=("LAKECTL_", ENV_DEV_BUCKET))
    rows, stderr = _run("upload", tmp_path, env)
    assert "starting a private MinIO and a lakeFS on it" in stderr
    assert "its objects go with the private MinIO" in stderr
    assert "stopped the private MinIO and lakeFS" in stderr
    assert rows[0]["tool"] == "perago"
