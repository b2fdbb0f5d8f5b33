"""``--blockstore local|s3`` of ``perago bench download|upload|stage|attempt``, which lakeFS each
choice measures, and the ``topology`` every row of theirs carries.

No server here: lakeFS's storage-config answer and the private MinIO + lakeFS are stubbed (the
real s3 path runs in tests/integration/test_bench_s3_topology.py).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from perago.bench import (
    baselines,
    lakefs_setup,
    repository,
    stage,
    topology,
    transfer,
    transfer_child,
)
from perago.bench.baselines import Baseline
from perago.bench.report import Row
from perago.bench.topology import BenchTarget, Blockstore
from perago.cli.app import app

ENDPOINT = "http://127.0.0.1:8000"


def _quiet(_: str) -> None:
    pass


# --- option parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], Blockstore.LOCAL),
        (["--blockstore", "local"], Blockstore.LOCAL),
        (["--blockstore", "s3"], Blockstore.S3),
        (["--blockstore", "S3"], Blockstore.S3),
    ],
)
@pytest.mark.parametrize("command", ["download", "upload", "cache"])
def test_transfer_benches_parse_the_blockstore(
    monkeypatch: pytest.MonkeyPatch, command: str, args: list[str], expected: Blockstore
) -> None:
    seen: list[transfer.TransferOptions] = []

    def fake_command(runner: object, options: transfer.TransferOptions, **_: Any) -> None:
        seen.append(options)

    monkeypatch.setattr(transfer, "run_command", fake_command)
    result = CliRunner().invoke(app, ["bench", command, *args])
    assert result.exit_code == 0, result.output
    (options,) = seen
    assert options.blockstore is expected
    assert options.namespace is None  # the default follows the blockstore (see namespace_root)


@pytest.mark.parametrize(
    ("args", "expected"),
    [([], Blockstore.LOCAL), (["--blockstore", "s3"], Blockstore.S3)],
)
@pytest.mark.parametrize("command", ["stage", "attempt"])
def test_seeded_benches_parse_the_blockstore(
    monkeypatch: pytest.MonkeyPatch, command: str, args: list[str], expected: Blockstore
) -> None:
    seen: dict[str, Any] = {}

    def fake_run_seeded(bench: object, **options: Any) -> None:
        seen.update(options)
        raise SystemExit(0)  # nothing to print

    monkeypatch.setattr(lakefs_setup, "run_seeded", fake_run_seeded)
    result = CliRunner().invoke(app, ["bench", command, *args])
    assert result.exit_code == 0, result.output
    assert seen["blockstore"] is expected
    assert seen["namespace_root"] is None


@pytest.mark.parametrize("command", ["download", "upload", "stage", "attempt"])
def test_an_unknown_blockstore_is_a_usage_error(command: str) -> None:
    result = CliRunner().invoke(app, ["bench", command, "--blockstore", "gcs"])
    assert result.exit_code == 2
    assert "Invalid value" in result.output


@pytest.mark.parametrize(
    ("blockstore", "namespace", "expected"),
    [
        (Blockstore.LOCAL, None, "local://perago-bench"),
        (Blockstore.LOCAL, "local://mine/", "local://mine"),
        (Blockstore.S3, None, "s3://dev-bucket/perago-bench"),
        (Blockstore.S3, "s3://other/some/prefix/", "s3://other/some/prefix"),
        (Blockstore.S3, "s3://other", "s3://other"),
    ],
)
def test_namespace_root(blockstore: Blockstore, namespace: str | None, expected: str) -> None:
    assert topology.namespace_root(blockstore, namespace, "dev-bucket") == expected


@pytest.mark.parametrize(
    ("blockstore", "namespace"),
    [
        (Blockstore.LOCAL, "s3://bucket/x"),
        (Blockstore.LOCAL, "local://"),
        (Blockstore.S3, "local://perago-bench"),
        (Blockstore.S3, "s3://"),
        (Blockstore.S3, "s3:///x"),
    ],
)
def test_a_namespace_off_the_blockstore_is_refused(blockstore: Blockstore, namespace: str) -> None:
    with pytest.raises(ValueError, match=f"--namespace {namespace} is not a"):
        topology.namespace_root(blockstore, namespace, "dev-bucket")


def test_s3_without_a_known_bucket_asks_for_a_namespace() -> None:
    with pytest.raises(ValueError, match="pass --namespace s3://"):
        topology.namespace_root(Blockstore.S3, None, None)


def test_a_mismatched_namespace_fails_before_any_server_is_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_server(_: transfer.Server) -> str:
        raise AssertionError("no server should be contacted")

    monkeypatch.setattr(topology, "server_blockstore", no_server)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["bench", "download", "--blockstore", "s3", "--namespace", "local://x"]
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: --namespace local://x is not a s3://<...> namespace (--blockstore s3)"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"storage_config": {"blockstore_type": "s3", "pre_sign_support": True}}, "s3"),
        ({"storage_config": None, "storage_config_list": [{"blockstore_type": "local"}]}, "local"),
        ({"version_config": {}}, ""),
    ],
)
def test_blockstore_of_a_config_answer(body: dict[str, object], expected: str) -> None:
    assert topology.blockstore_of(body) == expected


# --- which lakeFS each blockstore measures ----------------------------------------------------


@pytest.fixture
def env_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], None]:
    """Point ``LAKECTL_*`` at a lakeFS that reports the given blockstore (no ./.env around)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(topology.ENV_DEV_BUCKET, raising=False)

    def point(kind: str) -> None:
        monkeypatch.setenv(transfer_child.ENV_ENDPOINT, ENDPOINT)
        monkeypatch.setenv(transfer_child.ENV_KEY, "AKIAENV")
        monkeypatch.setenv(transfer_child.ENV_SECRET, "secret")
        monkeypatch.setattr(topology, "server_blockstore", lambda _: kind)

    for name in (transfer_child.ENV_ENDPOINT, transfer_child.ENV_KEY, transfer_child.ENV_SECRET):
        monkeypatch.delenv(name, raising=False)
    return point


@pytest.fixture
def private_buckets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stand in for the private MinIO + lakeFS; the buckets it was asked for are recorded."""
    buckets: list[str] = []

    @contextlib.contextmanager
    def fake_private(
        bucket: str, *, work_dir: Path | None, log: Callable[[str], None]
    ) -> Iterator[transfer.Server]:
        buckets.append(bucket)
        yield transfer.Server("http://127.0.0.1:9999", "AKIAPRIVATE", "s", disposable=True)

    monkeypatch.setattr(topology, "private_s3_lakefs", fake_private)
    return buckets


def _target(blockstore: Blockstore, namespace: str | None = None) -> BenchTarget:
    with topology.bench_target(blockstore, namespace, work_dir=None, log=_quiet) as target:
        return target


def test_local_measures_the_environment_lakefs(
    env_server: Callable[[str], None], private_buckets: list[str]
) -> None:
    env_server("local")
    target = _target(Blockstore.LOCAL)
    assert (target.server.endpoint, target.server.access_key_id) == (ENDPOINT, "AKIAENV")
    assert target.namespace_root == "local://perago-bench"
    assert target.topology is Blockstore.LOCAL
    assert private_buckets == []


def test_local_refuses_an_s3_lakefs(env_server: Callable[[str], None]) -> None:
    env_server("s3")
    with pytest.raises(RuntimeError, match=r"runs the s3 blockstore, not local \(pass --"):
        _target(Blockstore.LOCAL)


def test_s3_reuses_the_environment_lakefs_on_s3(
    env_server: Callable[[str], None],
    private_buckets: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env_server("s3")
    monkeypatch.setenv(topology.ENV_DEV_BUCKET, "perago-dev")
    target = _target(Blockstore.S3)
    assert target.server.endpoint == ENDPOINT
    assert not target.server.disposable
    assert target.namespace_root == "s3://perago-dev/perago-bench"
    assert target.topology is Blockstore.S3
    assert private_buckets == []


def test_s3_on_an_environment_lakefs_without_a_bucket_needs_a_namespace(
    env_server: Callable[[str], None], private_buckets: list[str]
) -> None:
    env_server("s3")
    with pytest.raises(ValueError, match="pass --namespace"):
        _target(Blockstore.S3)
    assert _target(Blockstore.S3, "s3://bucket/p").namespace_root == "s3://bucket/p"
    assert private_buckets == []


def test_s3_starts_a_private_stack_when_the_environment_lakefs_is_local(
    env_server: Callable[[str], None], private_buckets: list[str]
) -> None:
    env_server("local")
    target = _target(Blockstore.S3)
    assert target.server.disposable
    assert target.namespace_root == "s3://perago-bench/perago-bench"
    assert target.topology is Blockstore.S3
    assert _target(Blockstore.S3, "s3://mine/runs").namespace_root == "s3://mine/runs"
    assert private_buckets == ["perago-bench", "mine"]


def test_s3_starts_a_private_stack_without_any_lakefs_configured(
    env_server: Callable[[str], None], private_buckets: list[str]
) -> None:
    assert _target(Blockstore.S3).server.disposable
    assert private_buckets == ["perago-bench"]


def test_a_private_stack_repository_is_deleted_through_lakefs_only() -> None:
    deleted: list[str] = []

    class Control:
        def delete_repository(self, name: str) -> None:
            deleted.append(name)

    server = transfer.Server("http://127.0.0.1:9999", "AKIA", "s", disposable=True)
    server.__dict__["control"] = Control()  # the cached_property, filled in ahead
    lines: list[str] = []
    repository.remove_bench_repository(server, "bench-1", "s3://perago-bench/x", lines.append)
    assert deleted == ["bench-1"]
    assert lines == [
        "deleted bench repository bench-1; its objects go with the private MinIO "
        "when the bench ends"
    ]


# --- the topology field -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Blockstore))
@pytest.mark.parametrize("command", ["download", "upload"])
def test_every_transfer_json_row_carries_its_topology(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str, kind: Blockstore
) -> None:
    server = transfer.Server(ENDPOINT, "AKIA", "s")

    @contextlib.contextmanager
    def fake_target(
        blockstore: Blockstore,
        namespace: str | None,
        *,
        work_dir: Path | None,
        log: Callable[[str], None],
    ) -> Iterator[BenchTarget]:
        assert blockstore is kind
        yield BenchTarget(server, topology.namespace_root(blockstore, None, "b"), blockstore)

    def fake_run(
        got: transfer.Server, work: Path, load: transfer.Workload, **options: Any
    ) -> list[Row]:
        assert got is server
        assert load.namespace_root.startswith(topology.SCHEMES[kind])
        data = transfer.DataSet("small", work, files=4, bytes=4096)
        runs = {tool: (lambda _: transfer.Measurement(0.5, 40.0)) for tool in ("perago", "lakectl")}
        return transfer._measured_rows(
            command, data, runs, repeat=1, log=options["log"], topology=load.topology
        )

    monkeypatch.setattr(transfer, "bench_target", fake_target)
    monkeypatch.setattr(transfer, f"run_{command}", fake_run)
    args = ["--blockstore", kind.value, "--json", "--work-dir", str(tmp_path)]
    result = CliRunner().invoke(app, ["bench", command, *args])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)  # stdout is the JSON array and nothing else
    assert [(row["tool"], row["topology"]) for row in rows] == [
        ("perago", kind.value),
        ("lakectl", kind.value),
    ]
    assert all(row["peak_rss_mb"] == 40.0 for row in rows)
    assert f"perago bench {command} ({kind.value})" in result.stderr  # the table's title
    assert f"{command}-small" in result.stderr
    table = CliRunner().invoke(app, ["bench", command, *args[:-3], "--work-dir", str(tmp_path)])
    assert table.exit_code == 0, table.output
    assert f"{command}-small" in table.stdout  # without --json the table is on stdout
    assert "speed-up): 1.00" in table.stdout


def test_transfer_rows_default_to_the_local_topology() -> None:
    data = transfer.DataSet("small", Path("."), files=4, bytes=4096)
    (row,) = transfer._measured_rows(
        "download", data, {"perago": lambda _: transfer.Measurement(0.5, 1.0)}, repeat=1, log=_quiet
    )
    assert row.topology == "local"
    assert row.as_json()["topology"] == "local"


def test_each_tool_runs_first_in_turn_round_by_round() -> None:
    data = transfer.DataSet("small", Path("."), files=4, bytes=4096)
    ran: list[tuple[str, int]] = []

    def run(tool: str, seconds: float) -> Callable[[int], transfer.Measurement]:
        def one(n: int) -> transfer.Measurement:
            ran.append((tool, n))
            return transfer.Measurement(seconds + n, 1.0)

        return one

    perago, lakectl = transfer._measured_rows(
        "download",
        data,
        {"perago": run("perago", 1.0), "lakectl": run("lakectl", 2.0)},
        repeat=3,
        log=_quiet,
    )
    assert ran == [
        ("perago", 0),
        ("lakectl", 0),
        ("lakectl", 1),
        ("perago", 1),
        ("perago", 2),
        ("lakectl", 2),
    ]
    assert (perago.tool, perago.median_s) == ("perago", 2.0)
    assert (lakectl.tool, lakectl.median_s) == ("lakectl", 3.0)


@pytest.mark.parametrize("lakectl_found", [True, False])
def test_every_stage_json_row_carries_its_topology(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lakectl_found: bool
) -> None:
    seeded = lakefs_setup.SeededRepo(
        transfer.Server(ENDPOINT, "AKIA", "s"), "bench-1", "c0", 3, 10, topology="s3"
    )

    def fake_run_seeded(
        bench: Callable[[lakefs_setup.SeededRepo, Path], list[Row]], **options: Any
    ) -> list[Row]:
        assert options["blockstore"] is Blockstore.S3
        return bench(seeded, tmp_path)

    def measured(tool: str) -> Row:
        return Row("stage-1-of-3", tool, 0.1, None, 30.0, None, objects_uploaded=1)

    def fake_lakectl(enabled: bool = True) -> Baseline:
        if lakectl_found:
            return Baseline("lakectl", "/usr/bin/lakectl")
        return Baseline("lakectl", None, baselines.LAKECTL_MISSING)

    monkeypatch.setattr(lakefs_setup, "run_seeded", fake_run_seeded)
    monkeypatch.setattr(stage, "perago_row", lambda *_: measured("perago"))
    monkeypatch.setattr(stage, "lakectl_row", lambda *_: measured("lakectl"))
    monkeypatch.setattr(baselines, "lakectl", fake_lakectl)
    result = CliRunner().invoke(app, ["bench", "stage", "--blockstore", "s3", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(row["tool"], row["topology"]) for row in rows] == [("perago", "s3"), ("lakectl", "s3")]
    assert list(rows[0])[:3] == ["scenario", "tool", "topology"]
    skipped = "lakectl baseline skipped: lakectl not found on PATH or in the perago dev cache"
    if lakectl_found:
        assert "skipped" not in rows[1]
        assert skipped not in result.stderr
    else:
        assert rows[1]["note"] == skipped
        assert rows[1]["skipped"] == baselines.LAKECTL_MISSING
        assert rows[1]["median_s"] is None
        assert skipped in result.stderr.splitlines()


def test_rows_of_benches_without_lakefs_have_no_topology() -> None:
    row = Row.measured("snapshot-small", "perago", 1.0, total_bytes=1, files=1, peak_rss_kb=None)
    assert "topology" not in row.as_json()


def test_attempt_edits_every_nth_seeded_file() -> None:
    from perago.bench.attempt import EDITED, edited_files

    assert edited_files(1000, 0) == [EDITED]
    ten_percent = edited_files(1000, 10)
    assert len(ten_percent) == 100
    assert ten_percent[:2] == [EDITED, "d010/f000010.bin"]
