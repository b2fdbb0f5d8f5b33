"""``perago bench stage`` / ``perago bench attempt`` on a tiny tree against the real lakeFS, on
each topology (``--blockstore local|s3``; rows carry it as ``topology``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import lakefs_sdk

from tests.run_cli_support import PERAGO, clean_environment, lakectl_env, run_captured
from tests.servers_fixture import LakefsServer


def _bench_repositories(server: LakefsServer) -> set[str]:
    with server.api_client() as client:
        listed = lakefs_sdk.RepositoriesApi(client).list_repositories(amount=1000)
    return {repo.id for repo in listed.results if repo.id.startswith("bench-")}


def _run_bench(server: LakefsServer, tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    before = _bench_repositories(server)
    lakectl = lakectl_env(server.url, server.access_key_id, server.secret_access_key)
    env = clean_environment(lakectl, without=("LAKECTL_",))
    where = ["--blockstore", server.blockstore]
    if server.blockstore == "s3":  # the session's bucket (the runner's env may name no bucket)
        where += ["--namespace", server.namespace_root + "perago-bench"]
    completed = run_captured(
        [PERAGO, "bench", *args, *where, "--json", "--work-dir", tmp_path],
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    assert _bench_repositories(server) == before, "the bench left its repository behind"
    assert "deleted bench repository bench-" in completed.stderr
    rows = json.loads(completed.stdout)
    assert isinstance(rows, list)
    assert [row["topology"] for row in rows] == [server.blockstore] * len(rows)
    return rows


def test_bench_stage_reports_one_changed_object(
    lakefs_server: LakefsServer, tmp_path: Path
) -> None:
    rows = _run_bench(
        lakefs_server, tmp_path, "stage", "--files", "20", "--size", "1K", "--repeat", "2"
    )
    by_tool = {row["tool"]: row for row in rows}
    perago = by_tool["perago"]
    assert perago["scenario"] == "stage-1-of-20"
    assert perago["objects_uploaded"] == 1
    assert perago["median_s"] > 0
    lakectl = by_tool["lakectl"]  # listed even when it did not run, saying why
    if lakectl["median_s"] is None:
        assert lakectl["note"].startswith("lakectl baseline skipped: ")
    else:
        assert lakectl["scenario"] == "stage-1-of-20"
        assert lakectl["objects_uploaded"] == 1


def test_bench_attempt_reports_phases(lakefs_server: LakefsServer, tmp_path: Path) -> None:
    rows = _run_bench(lakefs_server, tmp_path, "attempt", "--files", "20", "--repeat", "2")
    assert len(rows) == 1
    row = rows[0]
    assert (row["scenario"], row["tool"]) == ("attempt-1-file", "perago")
    assert row["objects_uploaded"] == 1
    assert {"download", "detect_changes", "stage", "publish"} <= set(row["phase_ms"])
    assert "no Conductor" in row["note"]


def test_bench_attempt_rewrites_a_share_of_the_files(
    lakefs_server: LakefsServer, tmp_path: Path
) -> None:
    rows = _run_bench(
        lakefs_server, tmp_path, "attempt", "--files", "40", "--repeat", "1",
        "--change-percent", "10",
    )  # fmt: skip
    (row,) = rows
    assert row["scenario"] == "attempt-10pct-of-40"
    assert row["objects_uploaded"] == 4  # counted by lakeFS's diff of the published commit
    assert row["peak_rss_mb"] > 0


def test_bench_stage_rejects_bad_size(lakefs_server: LakefsServer, tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(PERAGO), "bench", "stage", "--size", "lots"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr.startswith("error: ")
    assert "Traceback" not in completed.stderr
