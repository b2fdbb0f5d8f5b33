"""Fleet identity and lifecycle without servers: worker ids, parent death, quarantine rules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conductor.client.http.models.task import Task

from perago.config import RuntimeConfig, host_token, slot_worker_id
from perago.errors import CrashLoopError
from perago.runtime.observers import AttemptObservers
from perago.runtime.supervisor import (
    CRASH_LOOP_STARTUP_FAILURES,
    ProcessSupervisor,
    WorkerChildSpec,
    _Slot,
    describe_exit,
    quarantine_filename,
)
from perago.runtime.worker import ParentGuard, _AttemptLifecycle, _StatusChannel
from perago.runtime.worker_protocol import (
    QUARANTINE_AFTER_DEATHS,
    QUARANTINE_FILE_ENV,
    STATUS_FD_ENV,
    QuarantineFile,
    quarantine_key,
    running_line,
)
from tests.process_support import gone_within
from tests.run_cli_support import clean_environment, run_captured

# --- identity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance", "token"),
    [
        ("host-a", "hosta"),
        ("  Node_7 ", "node7"),
        ("workernode17", "workernode17"),  # 12 characters: kept as they are
    ],
)
def test_host_token_of_an_instance_id(instance: str, token: str) -> None:
    assert host_token({"PERAGO_INSTANCE_ID": instance}) == token


def test_long_host_names_stay_distinct_and_short() -> None:
    one = host_token({"PERAGO_INSTANCE_ID": "perago-worker-node-17"})
    two = host_token({"PERAGO_INSTANCE_ID": "perago-worker-node-18"})
    assert one != two
    assert one.startswith("peragow")
    assert len(one) == len(two) == 12
    assert host_token({"PERAGO_INSTANCE_ID": "---"}).startswith("h")
    assert host_token({"PERAGO_INSTANCE_ID": "---"}).isalnum()


def test_host_token_defaults_to_the_host_name() -> None:
    import socket

    label = socket.gethostname().split(".")[0].lower()
    expected = "".join(ch for ch in label if ch.isascii() and ch.isalnum())
    if 0 < len(expected) <= 12:
        assert host_token({}) == expected
    assert host_token({"PERAGO_INSTANCE_ID": " "}) == host_token({})


def test_worker_id_keeps_the_legacy_id_as_its_beginning() -> None:
    worker_id = slot_worker_id("prodA", 3, "hosta")
    assert worker_id == "prodA0003-hosta"
    assert worker_id.split("-", 1)[0] == slot_worker_id("prodA", 3)


# --- supervisor: blame, quarantine, crash loop ------------------------------------------------


def _supervisor(tmp_path: Path) -> ProcessSupervisor:
    config = RuntimeConfig(
        workspace_root=tmp_path, log_root=tmp_path / "logs", worker_id_prefix="w"
    )
    spec = WorkerChildSpec(1, "w0001-test", {})
    return ProcessSupervisor(
        config=config,
        module_target="m",
        specs=[spec],
        quarantine=QuarantineFile(tmp_path / quarantine_filename("test")),
    )


def _dead_worker(slot: _Slot, lines: list[str], code: int = 1) -> int:
    """Give ``slot`` a worker that wrote ``lines`` on its status pipe and exited with ``code``."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.write(write_fd, "".join(line + "\n" for line in lines).encode())
    os.close(write_fd)
    slot.process = subprocess.Popen([sys.executable, "-c", f"import os; os._exit({code})"])
    slot.process.wait()
    slot.status_fd = read_fd
    slot.started_at = time.monotonic()
    slot.ready = False
    return slot.process.returncode


def _running(task_id: str) -> str:
    return running_line(
        {
            "task_id": task_id,
            "workflow_instance_id": "wf-1",
            "reference_task_name": "edit_ref",
            "task_def_name": "edit",
        }
    )


def test_a_task_that_keeps_killing_its_worker_is_quarantined_not_the_supervisor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    supervisor = _supervisor(tmp_path)
    (slot,) = supervisor.slots
    key = quarantine_key("wf-1", "edit_ref")
    reader = QuarantineFile(supervisor.quarantine.path)  # type: ignore[union-attr]
    for death in range(1, QUARANTINE_AFTER_DEATHS + 3):
        # Conductor retries the task under a new task id each time: same workflow and reference.
        code = _dead_worker(slot, ["ready", _running(f"t{death}")])
        supervisor._handle_exit(slot, code)  # never a CrashLoopError
        assert slot.restart_at is not None
        assert supervisor.task_deaths[key]["deaths"] == death
        expected = death if death >= QUARANTINE_AFTER_DEATHS else 0
        assert reader.deaths(key) == expected
    stderr = capsys.readouterr().err
    assert stderr.count("warning: task edit_ref of workflow wf-1 (edit) quarantined: ") == 1
    assert "killed its worker 3 times" in stderr
    data = json.loads(supervisor.quarantine.path.read_text())  # type: ignore[union-attr]
    assert data["tasks"][key]["last_task_id"] == f"t{QUARANTINE_AFTER_DEATHS + 2}"


def test_a_finished_attempt_is_not_blamed_and_idle_deaths_never_end_the_supervisor(
    tmp_path: Path,
) -> None:
    supervisor = _supervisor(tmp_path)
    (slot,) = supervisor.slots
    for n in range(8):
        code = _dead_worker(slot, ["ready", _running(f"t{n}"), f"done t{n}"])
        supervisor._handle_exit(slot, code)
    assert supervisor.task_deaths == {}
    assert not supervisor.quarantine.path.exists()  # type: ignore[union-attr]


def test_a_slot_that_cannot_start_is_still_a_crash_loop(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path)
    (slot,) = supervisor.slots
    for _ in range(CRASH_LOOP_STARTUP_FAILURES - 1):
        supervisor._handle_exit(slot, _dead_worker(slot, ["fatal: ImportError: nope"], code=3))
    with pytest.raises(CrashLoopError, match=r"crash-looping .*last cause: ImportError: nope"):
        supervisor._handle_exit(slot, _dead_worker(slot, ["fatal: ImportError: nope"], code=3))


def test_exit_descriptions() -> None:
    assert describe_exit(-11) == "killed by SIGSEGV"
    assert describe_exit(1) == "exit code 1"


# --- worker: running/done lines and quarantined tasks -----------------------------------------


class _FakeExecutor:
    """The part of ``AttemptExecutor`` the lifecycle wrapper uses."""

    def __init__(self, tmp_path: Path) -> None:
        self.draining = threading.Event()
        self.config = RuntimeConfig(
            workspace_root=tmp_path, log_root=tmp_path, worker_id_prefix="w"
        )
        self.worker_id = "w0001-test"
        self.executed: list[str] = []
        self.observers = AttemptObservers()

    def execute(self, sdk_task: Any) -> str:
        self.executed.append(sdk_task.task_id)
        return "ran"


def _sdk_task(task_id: str) -> Task:
    return Task(
        workflow_instance_id="wf-1",
        task_id=task_id,
        retry_count=3,
        task_def_name="edit",
        reference_task_name="edit_ref",
        seq=1,
        status="IN_PROGRESS",
        input_data={},
        poll_count=1,
    )


def test_the_worker_names_the_running_attempt_and_fails_a_quarantined_one(
    tmp_path: Path,
) -> None:
    read_fd, write_fd = os.pipe()
    quarantine = QuarantineFile(tmp_path / "q.json")
    env = {STATUS_FD_ENV: str(write_fd), QUARANTINE_FILE_ENV: str(quarantine.path)}
    executor = _FakeExecutor(tmp_path)
    lifecycle = _AttemptLifecycle(executor, _StatusChannel(env), env)  # type: ignore[arg-type]
    try:
        assert lifecycle.execute(_sdk_task("t1")) == "ran"
        lines = os.read(read_fd, 65536).decode().splitlines()
        assert json.loads(lines[0].removeprefix("running "))["task_id"] == "t1"
        assert lines[1] == "done t1"

        quarantine.write({quarantine_key("wf-1", "edit_ref"): {"deaths": 4}})
        result = lifecycle.execute(_sdk_task("t2"))
        assert executor.executed == ["t1"]  # the body never ran
        assert result.status.name == "FAILED_WITH_TERMINAL_ERROR"
        assert result.reason_for_incompletion == "quarantined: killed its worker 4 times"
        assert result.task_id == "t2"
        assert result.worker_id == "w0001-test"
        # Draining: handed back through the executor as before, quarantined or not.
        executor.draining.set()
        assert lifecycle.execute(_sdk_task("t3")) == "ran"
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_an_unreadable_quarantine_file_quarantines_nothing(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    reader = QuarantineFile(path)
    assert reader.deaths("k") == 0
    path.write_text("{not json")
    assert reader.deaths("k") == 0
    path.write_text(json.dumps({"format": 1, "tasks": {"k": {"deaths": 3}, "x": "bad"}}))
    assert reader.deaths("k") == 3
    assert reader.deaths("x") == 0


# --- worker: dies with its supervisor ----------------------------------------------------------


def test_parent_death_signal_kills_the_child_with_its_parent() -> None:
    child_script = (
        "import time\n"
        "from perago.runtime.worker import set_parent_death_signal\n"
        "assert set_parent_death_signal()\n"
        "print('armed', flush=True)\n"
        "time.sleep(600)\n"
    )
    parent_script = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {child_script!r}], stdout=sys.stdout)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_script], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert parent.stdout.readline().strip() == "armed"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert gone_within(child, 10)


def test_a_worker_whose_supervisor_is_already_gone_does_not_start(tmp_path: Path) -> None:
    # Not this worker's parent:
    env = clean_environment({"PERAGO_SUPERVISOR_PID": str(os.getpid() + 1_000_000)})
    done = run_captured(
        [sys.executable, "-m", "perago.runtime.worker", "no_such_module"],
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 3
    assert done.stderr.strip() == (
        f"error: worker's supervisor pid {os.getpid() + 1_000_000} is already gone; not starting"
    )


def test_the_parent_watch_stops_polling_once_the_parent_is_gone() -> None:
    assert ParentGuard(os.getppid()).gone() is False
    gone = threading.Event()
    ParentGuard(os.getppid() + 1_000_000).watch(gone.set, interval=0.01)
    assert gone.wait(5)
    assert ParentGuard.arm({}) is None
