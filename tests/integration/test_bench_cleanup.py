"""Every lakeFS bench deletes its repository when it ends (also on error or Ctrl-C) and, on a
``perago dev up`` server, the repository's objects in the local blockstore too.

The "dev server" here is a real lakeFS launched by ``perago.devservers`` under a private cache
directory (``PERAGO_DEV_CACHE_DIR``/state/default), with the state record ``perago dev up``
writes; the Conductor half of that record is a placeholder, as no bench here talks to Conductor.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lakefs_sdk
import pytest

from perago.bench import transfer as bench_transfer
from perago.bench.repository import bench_repository
from perago.devservers import lakefs, state, supervisor
from perago.devservers.state import DevState, ServerRecord
from tests.run_cli_support import PERAGO, clean_environment, lakectl_env, run_captured


@dataclass(frozen=True)
class DevLakefs:
    cache: Path
    url: str
    access_key_id: str
    secret_access_key: str
    block: Path

    def env(self) -> dict[str, str]:
        lakectl = lakectl_env(self.url, self.access_key_id, self.secret_access_key)
        values = {"PERAGO_DEV_CACHE_DIR": str(self.cache), **lakectl}
        return clean_environment(values, without=("LAKECTL_",))

    def repositories(self) -> set[str]:
        config = lakefs_sdk.Configuration(
            host=self.url + "/api/v1", username=self.access_key_id, password=self.secret_access_key
        )
        with lakefs_sdk.ApiClient(config) as client:
            listed = lakefs_sdk.RepositoriesApi(client).list_repositories(amount=1000)
        return {repo.id for repo in listed.results}


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def dev_lakefs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevLakefs]:
    cache = tmp_path_factory.mktemp("cache")
    state_dir = cache / "state" / "default"
    # Launched with the real cache (the provisioned lakeFS build); only the record is private.
    launched, creds = supervisor.launch_lakefs(state_dir, _quiet)
    try:
        supervisor.await_healthy(launched, _quiet)
        placeholder = ServerRecord("conductor", 0, 0, "http://127.0.0.1:9", "none", "none")
        state.save(
            state_dir,
            DevState(
                launched.record,
                placeholder,
                "http://127.0.0.1:9/api",
                creds.access_key_id,
                creds.secret_access_key,
            ),
        )
        block = lakefs.block_dir(supervisor.lakefs_data_dir(state_dir))
        block.mkdir(parents=True, exist_ok=True)
        yield DevLakefs(
            cache, launched.record.url, creds.access_key_id, creds.secret_access_key, block
        )
    finally:
        supervisor.stop([launched.record], _quiet)


@pytest.fixture
def namespace_root() -> str:
    return f"local://bench-clean-{uuid.uuid4().hex[:8]}"


def _ns_dir(dev: DevLakefs, namespace_root: str) -> Path:
    return dev.block / namespace_root.removeprefix("local://")


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def _server(dev: DevLakefs, monkeypatch: pytest.MonkeyPatch) -> bench_transfer.Server:
    """The server exactly as ``perago bench`` finds it: from the environment."""
    for key, value in dev.env().items():
        monkeypatch.setenv(key, value)
    server = bench_transfer.server_from_env()
    assert server.block_dir == dev.block
    return server


def _tiny(namespace_root: str) -> bench_transfer.Workload:
    return bench_transfer.Workload(
        files=3,
        size=4096,
        large_files=0,
        large_size=0,
        repeat=1,
        concurrency=None,
        namespace_root=namespace_root,
    )


def test_download_bench_removes_its_repository_and_objects(
    dev_lakefs: DevLakefs, namespace_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _server(dev_lakefs, monkeypatch)
    before = dev_lakefs.repositories()
    seen_during_run: list[list[str]] = []
    lines: list[str] = []

    def log(line: str) -> None:
        seen_during_run.append(_entries(_ns_dir(dev_lakefs, namespace_root)))
        lines.append(line)

    rows = bench_transfer.run_download(server, tmp_path, _tiny(namespace_root), log=log)

    assert [r.scenario for r in rows if r.tool == "perago"] == ["download-small"]
    assert seen_during_run[0], "the bench wrote no objects under its namespace"
    (repository,) = seen_during_run[0]
    assert repository not in dev_lakefs.repositories()
    assert dev_lakefs.repositories() == before
    assert _entries(_ns_dir(dev_lakefs, namespace_root)) == []
    assert lines[-1] == (
        f"deleted bench repository {repository} and its storage namespace "
        f"{namespace_root}/{repository}"
    )


def test_upload_bench_on_an_unknown_server_deletes_the_repository_and_says_objects_remain(
    dev_lakefs: DevLakefs, namespace_root: str, tmp_path: Path
) -> None:
    server = bench_transfer.Server(
        dev_lakefs.url, dev_lakefs.access_key_id, dev_lakefs.secret_access_key
    )
    before = dev_lakefs.repositories()
    lines: list[str] = []
    bench_transfer.run_upload(server, tmp_path, _tiny(namespace_root), log=lines.append)

    assert dev_lakefs.repositories() == before
    (repository,) = _entries(_ns_dir(dev_lakefs, namespace_root))  # the objects are still there
    assert lines[-1] == (
        f"deleted bench repository {repository}, but its storage namespace "
        f"{namespace_root}/{repository} still holds the objects "
        "(lakeFS needs garbage collection to reclaim them)"
    )


def _bench_that_ends_with(
    dev: DevLakefs, server: bench_transfer.Server, namespace_root: str, error: BaseException
) -> None:
    with bench_repository(server, namespace_root, log=_quiet) as repository:
        server.control.create_branch(repository, "work", "main")
        assert repository in dev.repositories()
        assert _entries(_ns_dir(dev, namespace_root)) == [repository]
        raise error


@pytest.mark.parametrize("interruption", [RuntimeError("bench failed"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_bench_still_removes_its_repository(
    dev_lakefs: DevLakefs,
    namespace_root: str,
    monkeypatch: pytest.MonkeyPatch,
    interruption: BaseException,
) -> None:
    server = _server(dev_lakefs, monkeypatch)
    before = dev_lakefs.repositories()
    with pytest.raises(type(interruption)):
        _bench_that_ends_with(dev_lakefs, server, namespace_root, interruption)
    assert dev_lakefs.repositories() == before
    assert _entries(_ns_dir(dev_lakefs, namespace_root)) == []


def test_stage_command_removes_its_repository_and_objects(
    dev_lakefs: DevLakefs, namespace_root: str, tmp_path: Path
) -> None:
    before = dev_lakefs.repositories()
    options = ["--no-lakectl", "--json", "--namespace", namespace_root, "--work-dir", str(tmp_path)]
    completed = run_captured(
        [PERAGO, "bench", "stage", "--files", "3", "--size", "1K", "--repeat", "1", *options],
        env=dev_lakefs.env(),
        cwd=tmp_path,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    assert "deleted bench repository bench-" in completed.stderr
    assert f"and its storage namespace {namespace_root}/bench-" in completed.stderr
    assert dev_lakefs.repositories() == before
    assert _entries(_ns_dir(dev_lakefs, namespace_root)) == []
