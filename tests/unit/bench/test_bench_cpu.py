"""The transfer benches report the client's CPU and each known server's CPU per row: read from
real processes (this one, and children that burn a known amount of CPU), never from timers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from perago.bench import cpu, transfer
from perago.bench.cpu import ServerProcess
from perago.bench.report import Row, print_table
from perago.bench.transfer_child import ENV_ENDPOINT, ENV_KEY, ENV_SECRET
from perago.devservers import state
from perago.devservers.state import DevState, ServerRecord

# Spins until the process itself has used SECONDS of CPU, says so on stdout, then waits for
# stdin to close: its CPU is known without timing anything.
BURNER = """
import sys, time
seconds = float(sys.argv[1])
while time.process_time() < seconds:
    pass
print("burnt", flush=True)
sys.stdin.read()
"""


def _burn(seconds: float) -> None:
    started = time.process_time()
    while time.process_time() - started < seconds:
        pass


def test_reads_the_cpu_a_process_has_used_so_far() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", BURNER, "0.3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "burnt\n"
        seconds = cpu.process_cpu_seconds(child.pid)
        assert seconds is not None
        # At least what it burnt, less one clock tick of rounding in /proc.
        assert seconds >= 0.3 - 1 / os.sysconf("SC_CLK_TCK")
    finally:
        child.communicate("")
    assert cpu.process_cpu_seconds(child.pid) is None  # reaped: gone


def test_parses_a_command_name_with_spaces_and_parentheses(tmp_path: Path) -> None:
    tick = os.sysconf("SC_CLK_TCK")
    fields = ["S", "1", "1", "1", "0", "-1", "0", "5", "0", "0", "0", str(3 * tick), str(tick)]
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text(f"42 (a) b (c)) {' '.join(fields)} 0 0 20 0\n")
    assert cpu.process_cpu_seconds(42, tmp_path) == pytest.approx(4.0)
    (tmp_path / "43").mkdir()
    (tmp_path / "43" / "stat").write_text("43 (short) S 1\n")
    assert cpu.process_cpu_seconds(43, tmp_path) is None


def test_samples_sum_a_name_and_skip_what_cannot_be_read() -> None:
    me = os.getpid()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    servers = [
        ServerProcess("lakefs", me),
        ServerProcess("lakefs", me),
        ServerProcess("x", gone.pid),
    ]
    before = cpu.sample(servers)
    assert set(before) == {"lakefs"}
    _burn(0.05)
    after = cpu.sample(servers)
    # Two entries of the same pid: the name counts it twice, so it spent at least twice 50 ms.
    assert cpu.spent(before, after)["lakefs"] >= 2 * (0.05 - 1 / os.sysconf("SC_CLK_TCK"))
    assert cpu.spent({"a": 1.0, "b": 2.0}, {"a": 1.5}) == {"a": 0.5}


def test_medians_need_the_same_servers_in_every_run() -> None:
    assert cpu.median_by_name([{"minio": 3.0, "lakefs": 1.0}, {"minio": 5.0, "lakefs": 2.0}]) == {
        "lakefs": 1.5,
        "minio": 4.0,
    }
    assert cpu.median_by_name([{"minio": 3.0}, {"lakefs": 1.0}]) is None
    assert cpu.median_by_name([{"minio": 3.0}, None]) is None
    assert cpu.median_by_name([{}]) is None
    assert cpu.median_by_name([]) is None


def test_measure_reports_the_cpu_of_the_child() -> None:
    script = "import time\nwhile time.process_time() < 0.3:\n    pass\n"
    measured = transfer.measure([sys.executable, "-c", script], dict(os.environ))
    assert measured.cpu_s is not None
    assert measured.cpu_s >= 0.3 - 1 / os.sysconf("SC_CLK_TCK")


def test_rows_carry_the_client_and_server_cpu_of_their_runs() -> None:
    data = transfer.DataSet("small", Path("."), files=4, bytes=4096)

    def run(_: int) -> transfer.Measurement:
        _burn(0.05)  # "the server" is this process: the sample around the run sees it
        return transfer.Measurement(0.5, 1.0, cpu_s=0.25)

    (row,) = transfer._measured_rows(
        "upload",
        data,
        {"perago": run},
        repeat=3,
        log=lambda _: None,
        servers=[ServerProcess("lakefs", os.getpid())],
    )
    assert row.cpu_s == 0.25
    assert row.server_cpu_s is not None
    assert row.server_cpu_s["lakefs"] >= 0.05 - 1 / os.sysconf("SC_CLK_TCK")
    shown = row.as_json()
    assert shown["cpu_s"] == 0.25
    assert shown["server_cpu_s"] == row.server_cpu_s
    (unwatched,) = transfer._measured_rows(
        "upload",
        data,
        {"perago": lambda _: transfer.Measurement(0.5, 1.0)},
        repeat=1,
        log=lambda _: None,
    )
    assert unwatched.cpu_s is None
    assert unwatched.server_cpu_s is None
    assert "cpu_s" not in unwatched.as_json()
    assert "server_cpu_s" not in json.dumps(unwatched.as_json())


def test_the_table_shows_cpu_columns_only_when_a_row_has_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain = Row("upload-small", "perago", 1.0, 1.0, 1.0, 10.0)
    print_table([plain], title="t")
    assert "CPU" not in capsys.readouterr().out
    timed = Row(
        "upload-small",
        "perago",
        1.0,
        1.0,
        1.0,
        10.0,
        cpu_s=4.5,
        server_cpu_s={"lakefs": 11.0, "minio": 21.25},
    )
    print_table([timed, plain], title="t", console=Console(width=250))
    out = capsys.readouterr().out
    assert "server CPU s" in out
    assert "4.50" in out
    assert "lakefs 11.00, minio 21.25" in out


def test_a_dev_stack_names_its_server_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERAGO_DEV_CACHE_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no ./.env of the checkout
    lakefs = ServerRecord("lakefs", 101, 8000, "http://127.0.0.1:8000", "lakefs.log", "1")
    conductor = ServerRecord("conductor", 102, 8080, "http://127.0.0.1:8080", "c.log", "1")
    minio = ServerRecord("minio", 103, 9000, "http://127.0.0.1:9000", "minio.log", "1")
    state.save(
        tmp_path / "state" / "s3",
        DevState(lakefs, conductor, "http://127.0.0.1:8080/api", "AKIA1", "s", "s3", minio),
    )
    monkeypatch.setenv(ENV_ENDPOINT, "http://127.0.0.1:8000")
    monkeypatch.setenv(ENV_KEY, "AKIA1")
    monkeypatch.setenv(ENV_SECRET, "s")
    server = transfer.server_from_env()
    assert server.processes == (ServerProcess("lakefs", 101), ServerProcess("minio", 103))
    assert server.block_dir is None  # an s3 stack's objects are not in a directory
    monkeypatch.setenv(ENV_KEY, "AKIA2")  # another server on the same port
    assert transfer.server_from_env().processes == ()
