"""The throw-away lakeFS repository every lakeFS bench runs in, deleted again however it ends.

A bench moves gigabytes into its repository; left behind, a few runs fill the disk. The repository
is deleted through the API; its objects go too when the server is the ``perago dev up`` lakeFS,
whose block directory perago knows (``Server.block_dir``), or a private MinIO + lakeFS the bench
started and deletes whole (``Server.disposable``, ``--blockstore s3``). For any other server lakeFS
keeps the objects until its garbage collection runs, and the bench says so.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import typer

from perago.bench import transfer as bench_transfer
from perago.devservers import blockstore


def _stderr(line: str) -> None:
    typer.echo(line, err=True)


@contextlib.contextmanager
def bench_repository(
    server: bench_transfer.Server,
    namespace_root: str,
    *,
    log: Callable[[str], None] = _stderr,
) -> Iterator[str]:
    """A fresh ``bench-<random>`` repository (its name is yielded), removed on exit, also on
    error or Ctrl-C."""
    repository = "bench-" + uuid.uuid4().hex[:12]
    namespace = bench_transfer.storage_namespace(namespace_root, repository)
    server.control.create_repository(repository, namespace)
    try:
        yield repository
    finally:
        remove_bench_repository(server, repository, namespace_root, log)


def remove_bench_repository(
    server: bench_transfer.Server,
    repository: str,
    namespace_root: str,
    log: Callable[[str], None] = _stderr,
) -> None:
    """Delete the repository, then its namespace's objects when the block directory is known.

    Never raises: a clean-up failure must not hide the bench's own result or error, so it is
    reported as one line instead.
    """
    namespace = bench_transfer.storage_namespace(namespace_root, repository)
    try:
        server.control.delete_repository(repository)
    except (RuntimeError, OSError) as exc:
        log(f"warning: could not delete bench repository {repository}: {exc}")
        return
    if server.disposable:
        log(
            f"deleted bench repository {repository}; its objects go with the private MinIO "
            "when the bench ends"
        )
        return
    # An ``s3://`` namespace (``--blockstore s3`` on the environment's lakeFS) is cleaned up
    # through lakeFS only: the repository is deleted, its objects stay in the bucket until
    # lakeFS's garbage collection (the local-blockstore directory removal does not apply).
    if server.block_dir is None or not namespace.startswith(blockstore.LOCAL_SCHEME):
        log(
            f"deleted bench repository {repository}, but its storage namespace {namespace} "
            "still holds the objects (lakeFS needs garbage collection to reclaim them)"
        )
        return
    try:
        blockstore.remove_namespace(server.block_dir, namespace)
    except (ValueError, OSError) as exc:
        log(
            f"deleted bench repository {repository}, but its storage namespace {namespace} "
            f"still holds the objects (not removed: {exc})"
        )
        return
    log(f"deleted bench repository {repository} and its storage namespace {namespace}")
