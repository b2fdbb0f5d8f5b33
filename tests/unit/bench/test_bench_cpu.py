"""The transfer benches report the client's CPU and each known server's CPU per row: read from
real processes (this one, and children that burn a known amount of CPU), never from timers."""

from __future__ import annotations

import json
import os
import shutil
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


# /proc rounds user and system time down separately: a sum may be two ticks short.
SLACK = 2 / os.sysconf("SC_CLK_TCK") + 1e-9


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
        assert seconds >= 0.3 - SLACK
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
    assert cpu.spent(before, after)["lakefs"] >= 2 * 0.05 - 2 * SLACK
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
    assert measured.cpu_s >= 0.3 - SLACK


def test_measure_counts_what_a_server_spent_while_the_child_ran(tmp_path: Path) -> None:
    # The "server" burns 0.2 s of CPU for each request the measured child sends it through a
    # FIFO, then answers; the child waits for the answer, so the burn falls inside the run.
    requests, answers = tmp_path / "requests", tmp_path / "answers"
    os.mkfifo(requests)
    os.mkfifo(answers)
    server_code = f"""
import time
while True:
    with open({str(requests)!r}) as inbox:
        inbox.read()
    started = time.process_time()
    while time.process_time() - started < 0.2:
        pass
    with open({str(answers)!r}, "w") as outbox:
        outbox.write("done")
"""
    server = subprocess.Popen([sys.executable, "-c", server_code])
    try:
        client = f"printf go > {requests}; cat {answers} > /dev/null"
        measured = transfer.measure(
            ["sh", "-c", client], dict(os.environ), [ServerProcess("lakefs", server.pid)]
        )
        assert measured.server_cpu_s is not None
        assert measured.server_cpu_s["lakefs"] >= 0.2 - SLACK
        unwatched = transfer.measure(["sh", "-c", "true"], dict(os.environ))
        assert unwatched.server_cpu_s is None
    finally:
        server.kill()
        server.wait()


def test_rows_take_the_median_of_each_cpu() -> None:
    data = transfer.DataSet("small", Path("."), files=4, bytes=4096)
    runs = iter(
        [
            transfer.Measurement(0.5, 1.0, 0.25, {"lakefs": 1.0, "minio": 9.0}),
            transfer.Measurement(0.5, 1.0, 0.75, {"lakefs": 3.0, "minio": 7.0}),
            transfer.Measurement(0.5, 1.0, 0.50, {"lakefs": 2.0, "minio": 8.0}),
        ]
    )
    (row,) = transfer._measured_rows(
        "upload", data, {"perago": lambda _: next(runs)}, repeat=3, log=lambda _: None
    )
    assert row.cpu_s == 0.5
    assert row.server_cpu_s == {"lakefs": 2.0, "minio": 8.0}
    shown = row.as_json()
    assert shown["cpu_s"] == 0.5
    assert shown["server_cpu_s"] == {"lakefs": 2.0, "minio": 8.0}
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
    sleep = shutil.which("sleep")
    assert sleep is not None
    running: list[subprocess.Popen[bytes]] = []
    try:
        for name in ("lakefs", "minio"):
            # Started through a link of that name, the kernel names the process after it.
            (tmp_path / name).symlink_to(sleep)
            running.append(subprocess.Popen([str(tmp_path / name), "600"]))
        lakefs_pid, minio_pid = (process.pid for process in running)
        wait_for_comm(lakefs_pid, "lakefs")
        wait_for_comm(minio_pid, "minio")
        lakefs = ServerRecord("lakefs", lakefs_pid, 8000, "http://127.0.0.1:8000", "l.log", "1")
        conductor = ServerRecord("conductor", 1, 8080, "http://127.0.0.1:8080", "c.log", "1")
        minio = ServerRecord("minio", minio_pid, 9000, "http://127.0.0.1:9000", "m.log", "1")
        stack = tmp_path / "state" / "s3"
        state.save(
            stack,
            DevState(lakefs, conductor, "http://127.0.0.1:8080/api", "AKIA1", "s", "s3", minio),
        )
        monkeypatch.setenv(ENV_ENDPOINT, "http://127.0.0.1:8000")
        monkeypatch.setenv(ENV_KEY, "AKIA1")
        monkeypatch.setenv(ENV_SECRET, "s")
        server = transfer.server_from_env()
        assert server.processes == (
            ServerProcess("lakefs", lakefs_pid),
            ServerProcess("minio", minio_pid),
        )
        assert server.block_dir is None  # an s3 stack's objects are not in a directory
        # A recorded pid that now belongs to another program (this test) is not watched.
        reused = ServerRecord("lakefs", os.getpid(), 8000, "http://127.0.0.1:8000", "l.log", "1")
        state.save(
            stack,
            DevState(reused, conductor, "http://127.0.0.1:8080/api", "AKIA1", "s", "s3", minio),
        )
        assert transfer.server_from_env().processes == (ServerProcess("minio", minio_pid),)
        monkeypatch.setenv(ENV_KEY, "AKIA2")  # another server on the same port
        assert transfer.server_from_env().processes == ()
    finally:
        for process in running:
            process.kill()
            process.wait()


def wait_for_comm(pid: int, name: str) -> None:
    """Until the child has exec'd (its name is the link's, not the forked Python's)."""
    deadline = time.monotonic() + 30
    while not cpu.runs_as(pid, name):
        assert time.monotonic() < deadline, f"process {pid} never ran as {name}"
        time.sleep(0.01)


def test_runs_as_reads_the_command_name(tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "comm").write_text("minio\n")
    assert cpu.runs_as(7, "minio", tmp_path)
    assert not cpu.runs_as(7, "lakefs", tmp_path)
    assert not cpu.runs_as(8, "minio", tmp_path)  # no such process
    (tmp_path / "9").mkdir()
    (tmp_path / "9" / "comm").write_text("a-very-long-ser\n")  # the kernel keeps 15 bytes
    assert cpu.runs_as(9, "a-very-long-server-name", tmp_path)
