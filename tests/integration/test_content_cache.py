"""The host's content cache against the real lakeFS (both topologies): what a download fetches
and what it takes from the cache, counted by the engine and, on the local topology, by lakeFS's
own request counters (``GetObject``: every byte of a local-blockstore download goes through it).

Processes that share the cache are real child processes; where an interleaving matters they are
held at named fault points (``PERAGO_FAULT_GATE_DIR``), never timed with sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lakefs_sdk
import pytest

from perago.config import CacheConfig, LakeFSConfig
from perago.engine import cache as content_cache
from perago.engine import snapshot as engine
from perago.engine.cache import ContentCache, open_cache
from perago.lakefs.workspace import LakeFSWorkspaceRuntime

from ._lakefs_metrics import operation_counts
from ._transfer_helpers import creds, download_from, local_hashes, seed_with_engine, write_tree
from .conftest import LakeFSRepo, RestartableRepo
from .publication_support import (
    AttemptRun,
    RecordedTaskStates,
    commit_files,
    diff_paths,
    edit_task,
    make_attempt,
    read_object,
    sdk_client,
)

pytestmark = pytest.mark.integration

WAIT = 60.0


def _get_objects(repo: LakeFSRepo) -> int:
    """lakeFS's count of GetObject requests served so far."""
    return operation_counts(repo.endpoint).get("getobject", 0)


def _is_local(repo: LakeFSRepo) -> bool:
    """The local topology: every byte a download reads is a lakeFS GetObject."""
    return isinstance(repo, RestartableRepo)


def _seed(repo: LakeFSRepo, files: dict[str, bytes], source: Path) -> str:
    write_tree(source, files)
    seed_with_engine(repo, source, "data")
    return repo.commit()


def _files(count: int, size: int = 3000) -> dict[str, bytes]:
    return {f"d{i % 9}/f{i:04d}.bin": os.urandom(size + i % 200) for i in range(count)}


def _fetched(result: object) -> dict[str, int]:
    stats = result.cache_stats()  # type: ignore[attr-defined]
    assert isinstance(stats, dict)
    return stats


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def cache(tmp_path: Path) -> ContentCache:
    return open_cache(tmp_path / "cache", 1 << 30)


def test_a_retry_downloads_nothing_of_an_unchanged_input(
    transfer_repo: LakeFSRepo, tmp_path: Path, cache: ContentCache
) -> None:
    files = _files(300)
    commit = _seed(transfer_repo, files, tmp_path / "source")
    first = download_from(transfer_repo, commit, "data", tmp_path / "ws1", cache=cache)
    stats = _fetched(first)
    assert (stats["fetched"], stats["inserted"], stats["hits"]) == (300, 300, 0)
    assert stats["fetched_bytes"] == sum(len(b) for b in files.values())
    assert content_cache.status(cache).entries == 300

    before = _get_objects(transfer_repo) if _is_local(transfer_repo) else None
    retry = download_from(transfer_repo, commit, "data", tmp_path / "ws2", cache=cache)
    stats = _fetched(retry)
    assert (stats["fetched"], stats["fetched_bytes"]) == (0, 0)
    assert (stats["hits"], stats["hit_bytes"]) == (300, first.bytes)
    if before is not None:
        assert _get_objects(transfer_repo) == before, "a warm retry asked lakeFS for bytes"
    expected = local_hashes(tmp_path / "source")
    assert local_hashes(tmp_path / "ws2") == expected
    assert {rel: digest for rel, _, digest in retry.entries()} == expected
    # The baseline carries the cache's digests and equals a cold snapshot of what was written.
    baseline = engine.snapshot_from_download(tmp_path / "ws2", retry)
    cold = engine.take_snapshot(tmp_path / "ws2")
    assert [(e.path, e.size, e.digest, e.inode) for e in baseline] == [
        (e.path, e.size, e.digest, e.inode) for e in cold
    ]
    # Workspace files never share an inode with an entry: writing one leaves the cache intact.
    (tmp_path / "ws2/d0/f0000.bin").write_bytes(b"rewritten in place")
    third = download_from(transfer_repo, commit, "data", tmp_path / "ws3", cache=cache)
    assert _fetched(third)["hits"] == 300
    assert local_hashes(tmp_path / "ws3") == expected


def test_after_a_one_file_change_only_that_object_is_fetched(
    transfer_repo: LakeFSRepo, tmp_path: Path, cache: ContentCache
) -> None:
    files = _files(200)
    commit = _seed(transfer_repo, files, tmp_path / "source")
    download_from(transfer_repo, commit, "data", tmp_path / "ws1", cache=cache)
    transfer_repo.put("data/d3/f0003.bin", b"the one change")
    changed = transfer_repo.commit(message="one change")

    before = _get_objects(transfer_repo) if _is_local(transfer_repo) else None
    result = download_from(transfer_repo, changed, "data", tmp_path / "ws2", cache=cache)
    stats = _fetched(result)
    assert (stats["fetched"], stats["fetched_bytes"]) == (1, len(b"the one change"))
    assert stats["hits"] == 199
    if before is not None:
        assert _get_objects(transfer_repo) - before == 1
    assert (tmp_path / "ws2/d3/f0003.bin").read_bytes() == b"the one change"
    assert result.hash_of("d3/f0003.bin") == engine.hash_file(tmp_path / "ws2/d3/f0003.bin")


def test_a_changed_byte_in_an_entry_is_caught_evicted_and_fetched_again(
    transfer_repo: LakeFSRepo, tmp_path: Path, cache: ContentCache
) -> None:
    if cache.mode != "copy":
        pytest.skip("reflink mode does not read entries at use (perago cache verify does)")
    files = _files(20)
    commit = _seed(transfer_repo, files, tmp_path / "source")
    download_from(transfer_repo, commit, "data", tmp_path / "ws1", cache=cache)
    entries = sorted(p for p in (cache.dir / "v1/objects").rglob("*") if p.is_file())
    assert len(entries) == 20
    victim = entries[7]
    # Flip one byte and put the modification time back: only the bytes can tell.
    stat = victim.stat()
    victim.chmod(0o600)
    with victim.open("r+b") as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0x01]))
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    result = download_from(transfer_repo, commit, "data", tmp_path / "ws2", cache=cache)
    stats = _fetched(result)
    assert (stats["corrupt"], stats["fetched"], stats["hits"]) == (1, 1, 19)
    assert local_hashes(tmp_path / "ws2") == local_hashes(tmp_path / "source")
    # The evicted entry was fetched again, correct this time.
    assert content_cache.verify(cache).corrupt == 0
    assert content_cache.status(cache).entries == 20


def test_a_branch_is_served_from_the_cache_but_never_fills_it(
    transfer_repo: LakeFSRepo, tmp_path: Path, cache: ContentCache
) -> None:
    files = _files(30)
    commit = _seed(transfer_repo, files, tmp_path / "source")
    # A branch may move between the listing and the fetch: nothing it fetches is kept.
    on_branch = download_from(transfer_repo, "main", "data", tmp_path / "ws1", cache=cache)
    assert (_fetched(on_branch)["fetched"], _fetched(on_branch)["inserted"]) == (30, 0)
    assert content_cache.status(cache).entries == 0
    download_from(transfer_repo, commit, "data", tmp_path / "ws2", cache=cache)
    again = download_from(transfer_repo, "main", "data", tmp_path / "ws3", cache=cache)
    assert (_fetched(again)["hits"], _fetched(again)["fetched"]) == (30, 0)
    assert local_hashes(tmp_path / "ws3") == local_hashes(tmp_path / "source")


_CHILD = """
import json, sys
from perago.engine.cache import open_cache
from perago.engine.transfer import LakeFSCredentials, download_prefix
args = json.loads(sys.argv[1])
cache = open_cache(args["cache"], 1 << 30)
result = download_prefix(
    args["endpoint"], LakeFSCredentials(args["key"], args["secret"]), args["repo"],
    args["ref"], "data", args["dest"], cache=cache, concurrency=args["concurrency"],
)
print(json.dumps(result.cache_stats()))
"""


def _child(
    repo: LakeFSRepo,
    ref: str,
    dest: Path,
    cache_dir: Path,
    *,
    gates: Path | None,
    concurrency: int,
) -> subprocess.Popen[str]:
    credentials = creds(repo)
    args = {
        "endpoint": repo.endpoint,
        "key": credentials.access_key_id,
        "secret": credentials.secret_access_key,
        "repo": repo.name,
        "ref": ref,
        "dest": str(dest),
        "cache": str(cache_dir),
        "concurrency": concurrency,
    }
    env = {k: v for k, v in os.environ.items() if k != "PERAGO_FAULT_GATE_DIR"}
    if gates is not None:
        env["PERAGO_FAULT_GATE_DIR"] = str(gates)
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def _stats_of(process: subprocess.Popen[str]) -> dict[str, int]:
    out, err = process.communicate(timeout=WAIT * 4)
    assert process.returncode == 0, err
    stats = json.loads(out)
    assert isinstance(stats, dict)
    return stats


def test_two_processes_downloading_one_commit_fetch_each_object_once(
    transfer_repo: LakeFSRepo, tmp_path: Path
) -> None:
    files = _files(120)
    commit = _seed(transfer_repo, files, tmp_path / "source")
    cache_dir = tmp_path / "cache"
    open_cache(cache_dir, 1 << 30)
    # A holds mid-fetch of its first objects (bytes in the cache's temp files, locks held);
    # B runs meanwhile and is held when it starts waiting for those; then both are let go.
    gates_a, gates_b = tmp_path / "gates-a", tmp_path / "gates-b"
    gates_a.mkdir()
    gates_b.mkdir()
    (gates_a / "download.cache_partial.hold").touch()
    (gates_b / "download.cache_waiting.hold").touch()
    before = _get_objects(transfer_repo) if _is_local(transfer_repo) else None

    a = _child(transfer_repo, commit, tmp_path / "ws-a", cache_dir, gates=gates_a, concurrency=3)
    try:
        _wait_for((gates_a / "download.cache_partial.reached").exists, "A mid-fetch")
        _wait_for(
            lambda: content_cache.status(open_cache(cache_dir, 1 << 30)).partials == 3,
            "A's three temp files",
        )
        b = _child(
            transfer_repo, commit, tmp_path / "ws-b", cache_dir, gates=gates_b, concurrency=4
        )
        try:
            _wait_for((gates_b / "download.cache_waiting.reached").exists, "B waiting")
            (gates_b / "download.cache_waiting.hold").unlink()
            (gates_a / "download.cache_partial.hold").unlink()
            stats_b = _stats_of(b)
        finally:
            b.kill()
        stats_a = _stats_of(a)
    finally:
        a.kill()

    assert stats_a["fetched"] == 3, stats_a
    assert stats_b["waited"] == 3, stats_b
    assert stats_b["fetched"] == 117, stats_b
    assert stats_a["fetched"] + stats_b["fetched"] == 120
    assert stats_a["hits"] + stats_b["hits"] == 120
    if before is not None:
        assert _get_objects(transfer_repo) - before == 120, "an object was fetched twice"
    expected = local_hashes(tmp_path / "source")
    assert local_hashes(tmp_path / "ws-a") == expected
    assert local_hashes(tmp_path / "ws-b") == expected


def test_kill_9_during_a_fetch_leaves_a_usable_cache(
    transfer_repo: LakeFSRepo, tmp_path: Path
) -> None:
    files = _files(40, size=300_000)  # several chunks each: held after the first
    commit = _seed(transfer_repo, files, tmp_path / "source")
    cache_dir = tmp_path / "cache"
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "download.cache_partial.hold").touch()
    victim = _child(
        transfer_repo, commit, tmp_path / "ws-killed", cache_dir, gates=gates, concurrency=4
    )
    try:
        _wait_for((gates / "download.cache_partial.reached").exists, "mid-fetch")
        _wait_for(
            lambda: content_cache.status(open_cache(cache_dir, 1 << 30)).partials == 4,
            "four temp files",
        )
    finally:
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
    cache = open_cache(cache_dir, 1 << 30)
    left = content_cache.status(cache)
    assert (left.entries, left.partials) == (0, 4)
    assert 0 < left.partial_bytes < 4 * 300_000

    result = download_from(transfer_repo, commit, "data", tmp_path / "ws", cache=cache)
    stats = _fetched(result)
    assert (stats["fetched"], stats["inserted"]) == (40, 40)
    assert local_hashes(tmp_path / "ws") == local_hashes(tmp_path / "source")
    after = content_cache.status(cache)
    assert (after.entries, after.partials) == (40, 0), "the abandoned fetches were taken over"
    assert content_cache.verify(cache).corrupt == 0


def test_a_small_limit_evicts_yet_every_download_stays_correct(
    transfer_repo: LakeFSRepo, tmp_path: Path
) -> None:
    files = _files(60, size=10_000)
    commit = _seed(transfer_repo, files, tmp_path / "source")
    total = sum(len(b) for b in files.values())
    cache = open_cache(tmp_path / "cache", total // 3)
    expected = local_hashes(tmp_path / "source")
    for n in range(3):
        result = download_from(transfer_repo, commit, "data", tmp_path / f"ws{n}", cache=cache)
        assert local_hashes(tmp_path / f"ws{n}") == expected
        status = content_cache.status(cache)
        assert status.bytes <= total // 3, "pruned to the limit after each download"
        assert status.entries > 0
        if n:
            stats = _fetched(result)
            assert stats["hits"] > 0
            assert stats["fetched"] > 0
            assert stats["evicted"] > 0


def _branch(config: LakeFSConfig, repository: str, name: str, source: str) -> None:
    with sdk_client(config) as api:
        lakefs_sdk.BranchesApi(api).create_branch(
            repository, lakefs_sdk.BranchCreation(name=name, source=source, hidden=False)
        )


def test_attempts_report_what_the_cache_saved_a_retry_and_the_next_task(
    lakefs_config: LakeFSConfig, repo: str, tmp_path: Path
) -> None:
    seed = {"data/a.txt": b"a" * 5000, "data/sub/b.txt": b"b" * 7000}
    commit = commit_files(lakefs_config, repo, "main", seed)
    states = RecordedTaskStates()
    runtime = LakeFSWorkspaceRuntime(
        lakefs_config,
        task_states=states,
        cache=CacheConfig(directory=tmp_path / "cache", max_size=1 << 30),
    )
    attempts = AttemptRun(runtime=runtime, workspace_root=tmp_path / "attempts", states=states)
    try:
        first = attempts.run(edit_task(), repo, "main", commit, {"write": {"new.txt": "n"}})
        assert first.status == "COMPLETED", first.reason_for_incompletion
        published = first.output["workspace"]["ref"]  # type: ignore[index]
        # The same input again, on a branch of its own (another task of the fleet reading the
        # commit), then the next task reading what the first published.
        _branch(lakefs_config, repo, "again", commit)
        _branch(lakefs_config, repo, "next", published)
        again = attempts.run(
            edit_task(), repo, "again", commit, {}, attempt=make_attempt(workflow="wf-again")
        )
        assert again.status == "COMPLETED", again.reason_for_incompletion
        following = attempts.run(
            edit_task(), repo, "next", published, {}, attempt=make_attempt(workflow="wf-next")
        )
        assert following.status == "COMPLETED", following.reason_for_incompletion
    finally:
        runtime.control.close()
    fetch = [stats.as_log_fields()["fetch"] for stats in attempts.stats]
    assert (fetch[0]["fetched"], fetch[0]["inserted"], fetch[0]["hits"]) == (2, 2, 0)
    assert (fetch[1]["fetched_bytes"], fetch[1]["hits"], fetch[1]["hit_bytes"]) == (0, 2, 12000)
    assert (fetch[2]["fetched"], fetch[2]["fetched_bytes"], fetch[2]["hits"]) == (1, 1, 2)


def test_an_attempt_under_a_small_cache_limit_publishes_exactly_its_change(
    lakefs_config: LakeFSConfig, repo: str, tmp_path: Path
) -> None:
    seed = {f"data/f{i:02d}.bin": os.urandom(20_000) for i in range(40)}
    commit = commit_files(lakefs_config, repo, "main", seed)
    limit = 200_000  # a quarter of the input: the attempt's own inserts are evicted
    states = RecordedTaskStates()
    runtime = LakeFSWorkspaceRuntime(
        lakefs_config,
        task_states=states,
        cache=CacheConfig(directory=tmp_path / "cache", max_size=limit),
    )
    attempts = AttemptRun(runtime=runtime, workspace_root=tmp_path / "attempts", states=states)
    try:
        for n, workflow in enumerate(("wf-small-1", "wf-small-2")):
            branch = f"small-{n}"
            _branch(lakefs_config, repo, branch, commit)
            result = attempts.run(
                edit_task(),
                repo,
                branch,
                commit,
                {"write": {"f07.bin": f"edited {n}"}, "delete": ["f13.bin"]},
                attempt=make_attempt(workflow=workflow),
            )
            assert result.status == "COMPLETED", result.reason_for_incompletion
            published = result.output["workspace"]["ref"]  # type: ignore[index]
            assert sorted(diff_paths(lakefs_config, repo, commit, published)) == [
                "data/f07.bin",
                "data/f13.bin",
            ]
            assert read_object(lakefs_config, repo, published, "data/f07.bin") == (
                f"edited {n}".encode()
            )
            assert (
                read_object(lakefs_config, repo, published, "data/f21.bin")
                == (seed["data/f21.bin"])
            )
            status = content_cache.status(open_cache(tmp_path / "cache", limit))
            assert status.bytes <= limit
    finally:
        runtime.control.close()
    fetch = [stats.as_log_fields()["fetch"] for stats in attempts.stats]
    assert fetch[0]["evicted"] > 0
    assert fetch[1]["hits"] > 0
    assert fetch[1]["hits"] + fetch[1]["fetched"] == 40
