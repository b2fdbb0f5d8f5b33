"""Fault points: inert by default; hold and hold-once gates between real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from perago.attempt import faults

REACH = "from perago.attempt import faults; faults.reach('p.x', task_id='t')"


def _reach(gate: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, faults.FAULT_GATE_ENV: str(gate)}
    return subprocess.Popen([sys.executable, "-c", REACH], env=env)


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_inert_without_the_variable(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(faults.FAULT_GATE_ENV, raising=False)
    (tmp_path / "p.x.hold").touch()
    faults.reach("p.x")  # returns at once
    assert not (tmp_path / "p.x.reached").exists()


def test_hold_once_holds_only_the_first_process(tmp_path: Path) -> None:
    (tmp_path / "p.x.hold-once").touch()
    first = _reach(tmp_path)
    _wait_for(tmp_path / "p.x.reached")
    pid, task = (tmp_path / "p.x.reached").read_text(encoding="utf-8").split()
    assert (int(pid), task) == (first.pid, "t")
    second = _reach(tmp_path)
    assert second.wait(timeout=30) == 0  # passes freely while the first is still held
    assert first.poll() is None
    (tmp_path / "p.x.hold").unlink()
    assert first.wait(timeout=30) == 0


def test_hold_holds_everyone(tmp_path: Path) -> None:
    (tmp_path / "p.x.hold").touch()
    held = [_reach(tmp_path), _reach(tmp_path)]
    _wait_for(tmp_path / "p.x.reached")
    time.sleep(0.3)  # not a race: asserting that both are still waiting on the gate
    assert all(process.poll() is None for process in held)
    (tmp_path / "p.x.hold").unlink()
    assert [process.wait(timeout=30) for process in held] == [0, 0]


def test_a_killed_claimer_does_not_block_later_holds(tmp_path: Path) -> None:
    (tmp_path / "p.x.hold-once").touch()
    first = _reach(tmp_path)
    _wait_for(tmp_path / "p.x.reached")
    first.kill()
    first.wait(timeout=30)
    (tmp_path / "p.x.reached").unlink()
    # The gate is still closed (its .hold stays): the next process is held, not waved through.
    second = _reach(tmp_path)
    _wait_for(tmp_path / "p.x.reached")
    assert second.poll() is None
    (tmp_path / "p.x.hold").unlink()
    assert second.wait(timeout=30) == 0
