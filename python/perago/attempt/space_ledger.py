"""Disk space reserved by the downloads running under one workspace root.

Checking free space per download is not enough: two attempts that start together both see the
same free space, both pass, and both run out half-way. So every attempt's download *reserves*
its listed total in a small ledger before writing anything, and the check compares free space
against what the others have reserved:

    needed  <=  free (statvfs f_bavail x f_frsize)  -  sum(reservations of other downloads)

Ledger ``<workspace_root>/.perago-space.json``, changed only under an exclusive ``flock`` of the
file itself, rewritten atomically (temporary file + rename) and removed when nothing is reserved,
so an idle root holds no ledger::

    {"reservations": [{"id": "<uuid hex>", "holder": "task_id=...-exec=...", "bytes": 123,
                       "owner": {<ProcessIdentity>}, "created_at": "<UTC ISO-8601>"}]}

A reservation is released when its download ends (success or failure). One left behind by a
process that died is dropped at the next reservation when its owner is judged dead
(:func:`perago.host.processes.judge`), when its attempt's owner record is gone (the attempt
ended or was garbage-collected), or — for this very process — when it is no longer held.

A reservation counts in full until its download ends, although the bytes it has written so far
already show in the free space: conservative (a concurrent download may be refused while the
other one is in its last bytes), never optimistic. The ledger covers downloads under the same
workspace root; other writers on the file system are only seen through the free space.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from perago.attempt import faults
from perago.attempt.directory import attempt_record_path
from perago.host.processes import ProcessIdentity, current_process_identity, judge

__all__ = [
    "LEDGER_FILENAME",
    "SpaceLedger",
    "SpaceReservation",
    "free_bytes",
    "reserve_for_download",
]

LEDGER_FILENAME = ".perago-space.json"

_held: set[str] = set()
_held_lock = threading.Lock()


@dataclass(frozen=True)
class SpaceReservation:
    id: str
    holder: str
    bytes: int
    owner: ProcessIdentity
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "holder": self.holder,
            "bytes": self.bytes,
            "owner": self.owner.to_json(),
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, raw: object) -> SpaceReservation | None:
        if not isinstance(raw, dict):
            return None
        owner = ProcessIdentity.from_json(raw.get("owner"))
        size = raw.get("bytes")
        if owner is None or not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return None
        return cls(
            id=str(raw.get("id", "")),
            holder=str(raw.get("holder", "")),
            bytes=size,
            owner=owner,
            created_at=str(raw.get("created_at", "")),
        )


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer can still use on the file system holding ``path``."""
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


class SpaceLedger:
    """The reservations of one workspace root (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        *,
        free: Callable[[Path], int] = free_bytes,
        judge_owner: Callable[[ProcessIdentity], str] = judge,
    ) -> None:
        self.root = root
        self._free = free
        self._judge = judge_owner

    @property
    def path(self) -> Path:
        return self.root / LEDGER_FILENAME

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        """An exclusive ``flock`` of the ledger file itself. The file is removed when the last
        reservation goes and replaced by every write, so after the lock is granted the
        descriptor must still be the file at the path; otherwise lock the current one."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        while True:
            fd = os.open(self.path, flags, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if _same_file(fd, self.path):
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        try:
            yield fd
        finally:
            os.close(fd)  # releases the lock

    def _load(self, fd: int) -> list[SpaceReservation]:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        text = b"".join(chunks)
        if not text.strip():
            return []  # just created by this lock
        try:
            raw = json.loads(text)
        except ValueError:
            # Never half-written (atomic replace); a hand-edited file counts as empty.
            logger.bind(ledger=str(self.path)).warning("ignoring an unreadable space ledger")
            return []
        items = raw.get("reservations") if isinstance(raw, dict) else None
        parsed = [SpaceReservation.from_json(item) for item in items or []]
        return [item for item in parsed if item is not None]

    def _store(self, reservations: list[SpaceReservation]) -> None:
        """Write the ledger (atomic replace), or remove it when nothing is reserved; called
        with the lock held."""
        if not reservations:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        temporary = self.root / f"{LEDGER_FILENAME}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        payload = {"reservations": [item.to_json() for item in reservations]}
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, 0o644)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, sort_keys=True)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def _live(self, item: SpaceReservation, me: ProcessIdentity) -> bool:
        if item.owner == me:
            with _held_lock:
                return item.id in _held
        if self._judge(item.owner) == "dead":
            return False
        if item.holder:
            # The attempt's owner record outlives its download: gone means the attempt ended.
            return os.path.lexists(attempt_record_path(self.root, item.holder))
        return True

    def _pruned(self, fd: int) -> tuple[list[SpaceReservation], bool]:
        me = current_process_identity()
        loaded = self._load(fd)
        live = [item for item in loaded if self._live(item, me)]
        return live, len(live) != len(loaded) or not loaded

    def reservations(self) -> list[SpaceReservation]:
        """The live reservations (stale ones are dropped from the ledger)."""
        with self._locked() as fd:
            live, changed = self._pruned(fd)
            if changed:
                self._store(live)
            return live

    def reserve(
        self, holder: str, size: int, *, check_path: Path | None = None
    ) -> SpaceReservation:
        """Reserve ``size`` bytes for ``holder`` or raise ``OSError(ENOSPC)`` naming the root,
        the bytes needed, free and reserved by others."""
        where = check_path or self.root
        with self._locked() as fd:
            live, changed = self._pruned(fd)
            reserved = sum(item.bytes for item in live)
            free = self._free(where)
            available = max(free - reserved, 0)
            if size > available:
                if changed:
                    self._store(live)
                raise OSError(
                    errno.ENOSPC,
                    f"not enough free disk space in {self.root}: {size} bytes needed, "
                    f"{available} bytes available ({free} free, {reserved} reserved by "
                    f"{len(live)} other running download(s))",
                )
            reservation = SpaceReservation(
                id=uuid.uuid4().hex,
                holder=holder,
                bytes=size,
                owner=current_process_identity(),
                created_at=datetime.now(UTC).isoformat(),
            )
            with _held_lock:
                _held.add(reservation.id)
            try:
                self._store([*live, reservation])
            except BaseException:
                with _held_lock:
                    _held.discard(reservation.id)
                raise
            return reservation

    def release(self, reservation: SpaceReservation) -> None:
        with _held_lock:
            _held.discard(reservation.id)
        with self._locked() as fd:
            loaded = self._load(fd)
            kept = [item for item in loaded if item.id != reservation.id]
            if len(kept) != len(loaded) or not kept:
                self._store(kept)


def _same_file(fd: int, path: Path) -> bool:
    try:
        current = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def reserve_for_download(
    directory: Path, *, ledger: SpaceLedger | None = None
) -> Iterator[Callable[[str, int], None]]:
    """A ``before_write`` hook for :func:`perago.engine.transfer.download_prefix` that reserves the
    listed total of the download into attempt ``directory`` in its root's ledger; the
    reservation is released when the block ends."""
    book = ledger or SpaceLedger(directory.parent)
    taken: list[SpaceReservation] = []

    def before_write(dest: str, total: int) -> None:
        if total > 0:
            taken.append(book.reserve(directory.name, total, check_path=Path(dest)))
        faults.reach("download.after_reserve", task_id=directory.name)

    try:
        yield before_write
    finally:
        for reservation in taken:
            try:
                book.release(reservation)
            except OSError as exc:  # the next reservation drops it (no longer held)
                logger.bind(ledger=str(book.path), error=str(exc)).warning(
                    "could not release a disk space reservation"
                )
