"""The branch-move guard of one attempt: nothing moves the branch once the attempt's end is decided.

The publisher holds the guard around every call that moves the branch (merge, reset, rollback).
The local deadline (and a lost completion) *closes* it: closing waits for a move in flight to
finish, then refuses every further move except the undo of this attempt's own publication, which
the closer performs itself. So a worker is never killed in the middle of a branch move, and a
failed attempt leaves no publication of its own behind while it is still the head.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from perago.errors import StaleAttemptError

__all__ = ["AttemptEndedError", "BranchMoveGuard", "OwnPublication"]


class AttemptEndedError(StaleAttemptError):
    """The attempt's end was decided (deadline, lost completion): no more branch moves."""


@dataclass(frozen=True)
class OwnPublication:
    """A commit this attempt put on the branch, and the commit that undoes it."""

    repository: str
    branch: str
    commit: str
    parent: str


class BranchMoveGuard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed: str | None = None
        self._published: OwnPublication | None = None

    @property
    def published(self) -> OwnPublication | None:
        return self._published

    @property
    def closed(self) -> str | None:
        return self._closed

    @contextmanager
    def moving(self, *, undo: bool = False) -> Iterator[None]:
        """Hold the guard for one branch move; refused once closed unless it is an undo."""
        with self._lock:
            if self._closed is not None and not undo:
                raise AttemptEndedError(f"no branch move after the attempt ended: {self._closed}")
            yield

    def record(self, publication: OwnPublication | None) -> None:
        """Remember (or, with None, forget) this attempt's publication on the branch."""
        self._published = publication

    def close(self, reason: str, *, wait_seconds: float | None) -> bool:
        """Refuse further moves; waits for a move in flight. False if it did not end in time."""
        acquired = self._lock.acquire(timeout=-1 if wait_seconds is None else wait_seconds)
        try:
            if self._closed is None:
                self._closed = reason
        finally:
            if acquired:
                self._lock.release()
        return acquired
