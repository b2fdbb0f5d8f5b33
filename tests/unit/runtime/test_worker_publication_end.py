"""The worker's side of "nothing moves the branch after the attempt's end was decided".

The deadline waits for a branch move in flight, then undoes the attempt's own publication; a lost
completion undoes it unless Conductor has the task COMPLETED. The collaborators are small fakes of
perago's own interfaces (the Conductor client and the workspace runtime); the real servers are
exercised by tests/e2e/test_publication_faults.py.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from perago.attempt.guard import BranchMoveGuard, OwnPublication
from perago.attempt.identity import TaskAttempt
from perago.definition.decorator import TaskDefinition
from perago.runtime.worker import AttemptExecutor, _ActiveAttempt
from tests.unit.conftest import make_attempt, scratch_runtime_config


class Empty(BaseModel):
    pass


PUBLICATION = OwnPublication("repo", "main", "merged", "a")


@dataclass
class Client:
    status: str = "IN_PROGRESS"
    updates: list[Any] = field(default_factory=list)

    def update_task(self, result: Any) -> None:
        self.updates.append(result)

    def reload_attempt(self, attempt: TaskAttempt) -> TaskAttempt:
        return TaskAttempt(**{**attempt.__dict__, "status": self.status})


@dataclass
class Runtime:
    undone: list[OwnPublication] = field(default_factory=list)

    def undo_publication(self, publication: OwnPublication) -> str:
        self.undone.append(publication)
        return "took it back out"


def _executor(tmp_path: Path, client: Client, runtime: Runtime) -> AttemptExecutor:
    config = scratch_runtime_config(tmp_path)
    task = TaskDefinition(
        name="t",
        owner_email="t@example.com",
        fn=lambda p: p,
        params_model=Empty,
        output_model=Empty,
    )
    executor = AttemptExecutor(
        task=task,
        config=config,
        worker_id="w1",
        client=client,  # type: ignore[arg-type]
        taskdef_timeout_seconds=None,
        exit_on_deadline=False,
        workspace_runtime=runtime,
    )
    executor.watchdog.stop()
    return executor


def test_deadline_waits_for_the_move_in_flight_then_undoes_it(tmp_path: Path) -> None:
    client, runtime = Client(), Runtime()
    executor = _executor(tmp_path, client, runtime)
    active = _ActiveAttempt(make_attempt(), started=0.0, deadline=1.0, guard=BranchMoveGuard())
    in_move, release = threading.Event(), threading.Event()

    def merging() -> None:
        with active.guard.moving():
            in_move.set()
            release.wait(10)
            active.guard.record(PUBLICATION)  # the merge landed, recorded under the guard

    mover = threading.Thread(target=merging)
    mover.start()
    assert in_move.wait(10)
    deadline = threading.Thread(target=executor._deadline_expired, args=(active,))
    deadline.start()
    deadline.join(0.5)
    assert deadline.is_alive()  # held: a merge is in flight
    assert client.updates == []
    release.set()
    mover.join(10)
    deadline.join(10)
    assert runtime.undone == [PUBLICATION]
    assert [u.status for u in client.updates] == ["FAILED"]
    assert active.guard.closed is not None


def test_deadline_leaves_the_publication_when_the_attempt_is_no_longer_current(
    tmp_path: Path,
) -> None:
    client, runtime = Client(status="TIMED_OUT"), Runtime()
    executor = _executor(tmp_path, client, runtime)
    active = _ActiveAttempt(make_attempt(), started=0.0, deadline=1.0)
    active.guard.record(PUBLICATION)
    executor._deadline_expired(active)
    assert runtime.undone == []  # a retry may be replacing it right now: leave it to the retry


def test_lost_completion_undoes_unless_conductor_has_it(tmp_path: Path) -> None:
    for status, undone in (("IN_PROGRESS", [PUBLICATION]), ("COMPLETED", []), ("TIMED_OUT", [])):
        client, runtime = Client(status=status), Runtime()
        executor = _executor(tmp_path / status, client, runtime)
        active = _ActiveAttempt(make_attempt(), started=0.0, deadline=None)
        active.guard.record(PUBLICATION)
        executor._awaiting_confirmation["task-1"] = active
        executor.completion_lost("task-1")
        assert runtime.undone == undone
        # After an undo the task is reported FAILED, so a late COMPLETED would be ignored.
        assert [u.status for u in client.updates] == (["FAILED"] if undone else [])
        executor.completion_lost("task-1")  # a second event changes nothing
        assert runtime.undone == undone
