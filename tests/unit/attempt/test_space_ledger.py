"""The disk space ledger: reservations add up, stale ones are dropped, processes serialise on it,
and nothing is left behind once every download ended."""

from __future__ import annotations

import errno
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perago.attempt.directory import attempt_record_path
from perago.attempt.space_ledger import (
    LEDGER_FILENAME,
    SpaceLedger,
    SpaceReservation,
    reserve_for_download,
)
from perago.host.processes import ProcessIdentity, boot_id, host_id, pid_namespace

MIB = 1 << 20


def _ledger(root: Path, free: int) -> SpaceLedger:
    return SpaceLedger(root, free=lambda _: free)


def test_reservations_add_up_and_the_second_one_is_refused(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 64 * MIB)
    first = ledger.reserve("task_id=a", 40 * MIB)
    with pytest.raises(OSError, match="not enough free disk space") as refused:
        ledger.reserve("task_id=b", 40 * MIB)
    assert refused.value.errno == errno.ENOSPC
    message = str(refused.value)
    assert f"{40 * MIB} bytes needed" in message
    assert f"{24 * MIB} bytes available" in message
    assert "1 other running download(s)" in message
    ledger.release(first)
    second = ledger.reserve("task_id=b", 40 * MIB)
    ledger.release(second)
    assert list(tmp_path.iterdir()) == []  # no ledger while nothing is reserved


def test_the_hook_reserves_for_the_block_only(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, 100)
    directory = tmp_path / "task_id=a"
    with reserve_for_download(directory, ledger=ledger) as before_write:
        before_write(str(directory), 60)
        assert [item.bytes for item in ledger.reservations()] == [60]
        with pytest.raises(OSError, match="60 bytes needed, 40 bytes available"):
            SpaceLedger(tmp_path, free=lambda _: 100).reserve("task_id=b", 60)
    assert ledger.reservations() == []
    with reserve_for_download(directory, ledger=ledger) as before_write:
        before_write(str(directory), 0)  # an empty prefix reserves nothing
        assert ledger.reservations() == []


def _write_foreign(root: Path, owner: ProcessIdentity, holder: str, size: int) -> None:
    ledger = _ledger(root, 1 << 40)
    ledger._store(
        [
            *ledger.reservations(),
            SpaceReservation("x" + holder, holder, size, owner, "2026-01-01T00:00:00+00:00"),
        ]
    )


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_reservations_are_dropped(tmp_path: Path) -> None:
    here = (host_id(), boot_id(), pid_namespace())
    dead = ProcessIdentity(*here, _dead_pid(), 1)
    elsewhere = ProcessIdentity("other-host", "b", "pid:[1]", 4242, 1)
    live_holder = "task_id=remote-live"
    attempt_record_path(tmp_path, live_holder).parent.mkdir()
    attempt_record_path(tmp_path, live_holder).write_text("{}")
    _write_foreign(tmp_path, dead, "task_id=dead", 10)  # owner died: dropped
    _write_foreign(tmp_path, elsewhere, "task_id=remote-ended", 20)  # record gone: dropped
    _write_foreign(tmp_path, elsewhere, live_holder, 30)  # another host, attempt running: kept
    mine = SpaceReservation(
        "mine", "task_id=x", 40, ProcessIdentity(*here, os.getpid(), 0), "2026-01-01T00:00:00"
    )
    ledger = _ledger(tmp_path, 1000)
    ledger._store([*ledger.reservations(), mine])  # this process, but no longer held: dropped
    assert [(item.holder, item.bytes) for item in ledger.reservations()] == [(live_holder, 30)]
    assert (tmp_path / LEDGER_FILENAME).exists()


def test_an_unreadable_ledger_counts_as_empty(tmp_path: Path) -> None:
    (tmp_path / LEDGER_FILENAME).write_text("{not json")
    ledger = _ledger(tmp_path, 10)
    reservation = ledger.reserve("task_id=a", 10)
    ledger.release(reservation)
    assert list(tmp_path.iterdir()) == []


def _reserve_in_child(root: str, barrier: object, results: object) -> None:
    ledger = SpaceLedger(Path(root), free=lambda _: 100 * MIB)
    barrier.wait()  # type: ignore[attr-defined]
    outcome = []
    for _ in range(5):
        try:
            outcome.append(ledger.reserve("task_id=p", 7 * MIB).bytes)
        except OSError as exc:
            outcome.append(0 if exc.errno == errno.ENOSPC else -1)
    results.put(sum(outcome))  # type: ignore[attr-defined]
    barrier.wait()  # type: ignore[attr-defined]  # hold the reservations until all have tried


def test_concurrent_processes_never_reserve_more_than_is_free(tmp_path: Path) -> None:
    """8 processes x 5 reservations of 7 MiB against 100 MiB: exactly 14 fit, whatever the
    interleaving (the flock serialises check and write)."""
    # The holder is a running attempt (its owner record exists), so nobody drops its entries.
    attempt_record_path(tmp_path, "task_id=p").parent.mkdir()
    attempt_record_path(tmp_path, "task_id=p").write_text("{}")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(8)
    results = context.Queue()
    processes = [
        context.Process(target=_reserve_in_child, args=(str(tmp_path), barrier, results))
        for _ in range(8)
    ]
    for process in processes:
        process.start()
    totals = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert sum(totals) == 14 * 7 * MIB
