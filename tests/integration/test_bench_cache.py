"""``perago bench cache`` on a tiny data set against the real lakeFS of each topology: the cold
run fetches everything, the warm run nothing, the 1 %-changed run exactly the rewritten files
(and its reference fetches the same bytes); the lakectl row is measured or says why it is not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lakefs_sdk
import pytest
from rich.console import Console

from perago.bench.cache import cache_ratios
from perago.bench.report import Row, print_table
from tests.run_cli_support import PERAGO, clean_environment, lakectl_env, run_captured
from tests.servers_fixture import LakefsServer

pytestmark = pytest.mark.integration

FILES, SIZE = 200, 4096
CHANGED = 2  # 1 % of 200
CASES = ("clone", "cold", "warm", "1pct-changed", "1pct-floor", "1pct-reference")
SCENARIOS = [f"cache-small-{case}" for case in CASES]


def _bench_repositories(server: LakefsServer) -> set[str]:
    with server.api_client() as client:
        listed = lakefs_sdk.RepositoriesApi(client).list_repositories(amount=1000)
    return {repo.id for repo in listed.results if repo.id.startswith("bench-")}


def test_bench_cache_fetches_only_what_the_cache_lacks(
    lakefs_server: LakefsServer, tmp_path: Path
) -> None:
    server = lakefs_server
    before = _bench_repositories(server)
    named = lakectl_env(server.url, server.access_key_id, server.secret_access_key)
    env = clean_environment(named, without=("LAKECTL_",))
    where = ["--blockstore", server.blockstore]
    if server.blockstore == "s3":  # the session's bucket (the runner's env may name no bucket)
        where += ["--namespace", server.namespace_root + "perago-bench"]
    work = tmp_path / "work"
    work.mkdir()
    completed = run_captured(
        [PERAGO, "bench", "cache", "--files", str(FILES), "--size", "4K", "--large-files", "0",
         "--repeat", "1", *where, "--json", "--work-dir", work],
        env=env,
        cwd=tmp_path,
        timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert _bench_repositories(server) == before, "the bench left its repository behind"
    assert list(work.iterdir()) == [], "the bench left scratch data behind"
    rows: list[dict[str, Any]] = json.loads(completed.stdout)
    assert [row["scenario"] for row in rows] == SCENARIOS
    assert all(row["topology"] == server.blockstore for row in rows)
    clone, cold, warm, changed, floor, reference = rows

    assert (cold["tool"], cold["case"]) == ("perago", "cold")
    assert cold["files"] == FILES
    assert cold["total_bytes"] == cold["bytes_fetched"] == FILES * SIZE
    assert warm["total_bytes"] == FILES * SIZE
    assert warm["bytes_fetched"] == 0
    assert changed["total_bytes"] == FILES * SIZE
    assert changed["bytes_fetched"] == CHANGED * SIZE
    assert (reference["files"], reference["total_bytes"]) == (CHANGED, CHANGED * SIZE)
    assert reference["bytes_fetched"] == CHANGED * SIZE
    # The floor writes the files the 1 % case takes from the cache, from memory: nothing fetched.
    assert (floor["files"], floor["total_bytes"]) == (FILES - CHANGED, (FILES - CHANGED) * SIZE)
    assert floor["bytes_fetched"] == 0
    for row in (cold, warm, changed, floor, reference):
        assert row["median_s"] > 0
        assert row["peak_rss_mb"] > 0

    assert (clone["tool"], clone["case"]) == ("lakectl", "clone")
    if clone["median_s"] is None:
        assert "lakectl not found" in clone["note"]
        assert "lakectl not found" in completed.stderr
    else:
        assert clone["bytes_fetched"] == FILES * SIZE
        assert clone["peak_rss_mb"] > 0


def test_the_table_lists_the_byte_columns_and_the_ratios() -> None:
    def row(case: str, tool: str, seconds: float | None, fetched: int | None) -> Row:
        return Row(
            f"cache-small-{case}", tool, seconds, None, None, None,
            case=case, files=10, total_bytes=100, bytes_fetched=fetched,
        )  # fmt: skip

    rows = [
        row("clone", "lakectl", None, None),
        row("cold", "perago", 2.0, 100),
        row("warm", "perago", 0.5, 0),
        row("1pct-changed", "perago", 0.6, 1),
        row("1pct-floor", "perago", 0.45, 0),
        row("1pct-reference", "perago", 0.3, 1),
    ]
    console = Console(width=200, record=True)
    print_table(rows, title="t", console=console)
    text = console.export_text()
    assert all(header in text for header in ("files", "bytes", "fetched"))
    assert dict(cache_ratios(rows)) == {
        "small: warm / cold": 0.25,
        "small: warm / lakectl clone": None,
        "small: 1pct-changed / 1pct-reference": pytest.approx(2.0),
        "small: 1pct-floor / 1pct-reference": pytest.approx(1.5),
    }
