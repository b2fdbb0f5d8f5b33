"""Every ``perago bench`` command spells, types and means its shared options alike: ``--json`` is
one flag that leaves exactly one JSON array on stdout, scratch data goes to ``--work-dir``, and an
option two benches share is the same option in both (checked on the click commands themselves).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperOption as Option
from typer.testing import CliRunner

from perago.bench import cache, fleet, lakefs_setup, transfer, worker
from perago.bench.cli import BENCH_COMMANDS, JsonOpt
from perago.bench.report import Row, emit
from perago.bench.topology import BenchTarget, Blockstore
from perago.cli.app import app

LAKEFS_BENCHES = ("download", "upload", "cache", "stage", "attempt")
LAKECTL_BENCHES = ("download", "upload", "cache", "stage")


def _options(name: str) -> dict[str, Option]:
    """Each option string of bench ``name`` (``--json``, ``-j``...) and the option it belongs to."""
    command = BENCH_COMMANDS[name].load(name)
    found: dict[str, Option] = {}
    for param in command.params:
        if isinstance(param, Option):
            for spelling in (*param.opts, *param.secondary_opts):
                found[spelling] = param
    return found


ALL = {name: _options(name) for name in BENCH_COMMANDS}


def _kind(option: Option) -> tuple[object, ...]:
    """What must agree between two benches' uses of one option (its help names the bench's own
    default, so only ``--json``'s must be the same text)."""
    return (
        option.name,
        option.type_descriptor.annotation,
        option.is_flag,
        option.min,
        tuple(option.opts),
        tuple(option.secondary_opts),
        option.multiple,
        option.help if option.name == "as_json" else None,
    )


@pytest.mark.parametrize("name", list(BENCH_COMMANDS))
def test_every_bench_has_the_json_flag(name: str) -> None:
    option = ALL[name]["--json"]
    assert option.is_flag
    assert option.name == "as_json"
    assert option.type_descriptor.annotation is bool
    assert option.default is False
    assert option.opts == ["--json"]
    assert option.secondary_opts == []
    assert "stdout" in (option.help or "")


@pytest.mark.parametrize("name", list(BENCH_COMMANDS))
def test_every_bench_spells_work_dir_and_repeat_alike(name: str) -> None:
    options = ALL[name]
    assert "--workdir" not in options
    assert options["--work-dir"].name == "work_dir"
    assert not options["--work-dir"].is_flag
    repeat = options["--repeat"]
    assert (repeat.name, repeat.type_descriptor.annotation, repeat.min) == ("repeat", int, 1)
    assert "--attempts" not in options


def test_an_option_two_benches_share_is_the_same_option() -> None:
    seen: dict[str, tuple[str, tuple[object, ...]]] = {}
    for name, options in ALL.items():
        for spelling, option in options.items():
            kind = _kind(option)
            first = seen.setdefault(spelling, (name, kind))
            assert kind == first[1], f"{spelling}: bench {name} differs from bench {first[0]}"
    for spelling in ("--files", "--size", "--large-files", "--large-size", "--blockstore"):
        users = [name for name, options in ALL.items() if spelling in options]
        assert len(users) > 1, spelling


@pytest.mark.parametrize("name", LAKEFS_BENCHES)
def test_lakefs_benches_take_blockstore_and_namespace(name: str) -> None:
    assert {"--blockstore", "--namespace", "--files", "--size"} <= set(ALL[name])


@pytest.mark.parametrize("name", LAKECTL_BENCHES)
def test_lakectl_benches_can_turn_the_baseline_off(name: str) -> None:
    assert {"--lakectl", "--no-lakectl"} <= set(ALL[name])


def test_conductor_benches_share_workflows_and_processes() -> None:
    for name in ("worker", "fleet"):
        assert ALL[name]["-j"] is ALL[name]["--processes"]
        assert ALL[name]["--workflows"].name == "workflows"
    assert "--tasks" not in ALL["worker"]
    assert "--concurrency" not in ALL["worker"]


# --- --json: one JSON array on stdout, nothing else ----------------------------------------------


def _row(scenario: str, tool: str = "perago", **extra: Any) -> Row:
    return Row(scenario, tool, 0.5, 10.0, 20.0, 30.0, **extra)


def test_emit_puts_the_table_on_stdout_or_only_the_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # a pipe: the table is not wrapped
    rows = [_row("s"), Row.skipped_baseline("s", "lakectl", "lakectl not found")]
    one = typer.Typer()

    @one.command()
    def show(as_json: bool = JsonOpt) -> None:
        emit(rows, as_json=as_json, title="t", lines=["ratio: 1.00"])

    plain = CliRunner().invoke(one, [])
    assert plain.exit_code == 0, plain.output
    assert "ratio: 1.00" in plain.stdout
    assert plain.stderr == ""
    as_json = CliRunner().invoke(one, ["--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == [row.as_json() for row in rows]
    assert "ratio: 1.00" in as_json.stderr
    assert "lakectl baseline skipped: lakectl not found" in as_json.stderr  # the note


@contextlib.contextmanager
def _fake_target(
    blockstore: Blockstore,
    namespace: str | None,
    *,
    work_dir: Path | None,
    log: Callable[[str], None],
) -> Iterator[BenchTarget]:
    log("progress: a line on stderr")
    yield BenchTarget(transfer.Server("http://x", "k", "s"), "local://perago-bench", blockstore)


def _fake_runner(kind: str) -> Callable[..., list[Row]]:
    def run(server: object, work: Path, load: transfer.Workload, **options: Any) -> list[Row]:
        options["log"]("running")
        return [_row(f"{kind}-small", topology=load.topology)]

    return run


@pytest.fixture
def fake_benches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every bench's measuring part replaced by canned rows (and a progress line on stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("CONDUCTOR_SERVER_URL", "http://127.0.0.1:1/api")
    monkeypatch.setattr(transfer, "bench_target", _fake_target)
    monkeypatch.setattr(transfer, "run_download", _fake_runner("download"))
    monkeypatch.setattr(transfer, "run_upload", _fake_runner("upload"))
    monkeypatch.setattr(cache, "run_cache", _fake_runner("cache"))

    def fake_seeded(bench: object, *, name: str, **_: Any) -> object:
        if name == "attempt":
            return _row("attempt-1-file", phase_ms={"download": 1.0}, objects_uploaded=1)
        return [_row("stage-1-of-3", objects_uploaded=1)]

    monkeypatch.setattr(lakefs_setup, "run_seeded", fake_seeded)

    def fake_worker_rows(**_: Any) -> list[Row]:
        return [
            _row(worker.SCENARIO, "perago", tasks_per_s=10.0),
            _row(worker.SCENARIO, "conductor-python", tasks_per_s=10.0),
        ]

    monkeypatch.setattr(worker, "worker_rows", fake_worker_rows)
    monkeypatch.setattr(transfer, "server_from_env", lambda: transfer.Server("http://x", "k", "s"))
    monkeypatch.setattr(
        fleet,
        "fleet_results",
        lambda **_: [fleet.RoundResult(fleet.Plan(1, 2), 4, 1.0, 4, (), 4)],
    )


FAKED = ["download", "upload", "cache", "stage", "attempt", "worker", "fleet"]


@pytest.mark.usefixtures("fake_benches")
@pytest.mark.parametrize("name", FAKED)
def test_json_leaves_one_json_array_on_stdout(name: str, tmp_path: Path) -> None:
    args = ["bench", name, "--work-dir", str(tmp_path / "work")]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)  # the whole of stdout, nothing before or after
    assert isinstance(rows, list)
    assert rows
    assert all({"scenario", "tool", "median_s", "note"} <= set(row) for row in rows)
    assert rows[0]["scenario"] in result.stderr  # the table went to stderr
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 0, plain.output
    assert rows[0]["scenario"] in plain.stdout  # without --json: the table, on stdout
    with pytest.raises(json.JSONDecodeError, match="Expecting value"):
        json.loads(plain.stdout)
