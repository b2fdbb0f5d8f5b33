"""lakeFS set-up shared by the stage and attempt benches: the server (``--blockstore``, see
:mod:`perago.bench.topology`), a seeded repository, and the diff used to verify how many objects a
commit changed (all through perago's one lakeFS client, ``Server.control``)."""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import typer

from perago.bench import transfer as bench_transfer
from perago.bench.repository import bench_repository
from perago.bench.sizes import parse_size
from perago.bench.topology import Blockstore, bench_target
from perago.bench.transfer_child import upload_items
from perago.config import LakeFSConfig
from perago.engine import transfer

PREFIX = "data"
T = TypeVar("T")


@dataclass(frozen=True)
class SeededRepo:
    server: bench_transfer.Server
    repository: str
    commit: str
    files: int
    size: int
    # lakeFS's blockstore under ``server``: the ``topology`` of the bench's rows.
    topology: str = Blockstore.LOCAL.value

    @property
    def config(self) -> LakeFSConfig:
        return self.server.config


def seed_repository(
    server: bench_transfer.Server,
    repository: str,
    work: Path,
    files: int,
    size: int,
    *,
    topology: str = Blockstore.LOCAL.value,
) -> SeededRepo:
    """Commit ``files`` x ``size`` bytes under ``data/`` to the empty repository's ``main``."""
    source = Path(tempfile.mkdtemp(prefix="seed-", dir=work))
    try:
        bench_transfer.generate_files(source, files, size)
        # In a child process: the list of a million upload items must not raise the peak RSS
        # the benches report for this process.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.apply(
                _upload_tree,
                (
                    server.endpoint,
                    server.access_key_id,
                    server.secret_access_key,
                    repository,
                    source,
                ),
            )
    finally:
        shutil.rmtree(source, ignore_errors=True)
    commit = server.control.commit(repository, "main", "seed", {})
    return SeededRepo(server, repository, commit, files, size, topology)


def _upload_tree(endpoint: str, key: str, secret: str, repository: str, source: Path) -> None:
    creds = transfer.LakeFSCredentials(key, secret)
    items = upload_items(source, PREFIX)
    transfer.upload_files(endpoint, creds, repository, "main", items)


def run_seeded(
    bench: Callable[[SeededRepo, Path], T],
    *,
    name: str,
    files: int,
    size: str | None,
    default_size: int,
    namespace_root: str | None,
    work_dir: Path | None,
    blockstore: Blockstore = Blockstore.LOCAL,
) -> T:
    """Seed a fresh repository from a scratch directory on the lakeFS of ``blockstore``, run
    ``bench`` on it, clean up (the scratch directory, the repository and, on a ``perago dev up``
    server, its objects; a private s3 stack goes whole).

    Bad options or a failing server end the command with one ``error:`` line and exit code 1.
    """
    try:
        if files < 1:
            raise ValueError("--files must be at least 1")
        each = default_size if size is None else parse_size(size)
        with bench_target(blockstore, namespace_root, work_dir=work_dir, log=_log) as target:
            server = target.server
            if work_dir is not None:
                work_dir.mkdir(parents=True, exist_ok=True)  # a fresh --work-dir is fine
            work = Path(tempfile.mkdtemp(prefix=f"perago-bench-{name}-", dir=work_dir))
            try:
                with bench_repository(server, target.namespace_root, log=_log) as repository:
                    _log(f"seeding {files} x {each} B into {repository} ({target.topology})")
                    seeded = seed_repository(
                        server, repository, work, files, each, topology=target.topology.value
                    )
                    _log(f"seeded {seeded.repository}@{seeded.commit}")
                    return bench(seeded, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except (ValueError, RuntimeError, OSError) as exc:  # DevServerError is a RuntimeError
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _log(line: str) -> None:
    typer.echo(line, err=True)


def changed_objects(server: bench_transfer.Server, repository: str, left: str, right: str) -> int:
    """Objects that differ between two refs, counted through lakeFS's own diff API."""
    return sum(1 for _ in server.control.iter_diff(repository, left, right))
