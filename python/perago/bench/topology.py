"""Where a lakeFS bench runs (``--blockstore local|s3``), and the ``topology`` its rows carry.

``local`` (the default) is the lakeFS the environment names (``LAKECTL_*``, else ``./.env``, as
before), which must run on its local blockstore; repositories go under ``local://perago-bench``.

``s3`` is lakeFS on its S3 blockstore over a real MinIO:

- the lakeFS the environment names, when it runs on S3 (``perago dev up --blockstore s3``);
  repositories go under ``s3://$PERAGO_DEV_S3_BUCKET/perago-bench`` (that stack writes the bucket
  to ``.env``) or under ``--namespace s3://<bucket>/<prefix>``;
- otherwise a private MinIO and a lakeFS on it, started through :mod:`perago.devservers` in a
  scratch directory for this one run (bucket ``perago-bench``, or ``--namespace``'s), then stopped
  and deleted with every object the bench wrote.

The blockstore is what the server itself reports (``GET /api/v1/config``), so a row's
``topology`` is the blockstore the measured lakeFS really ran on. perago's engine picks presigned
transfers there by itself (transfer mode ``auto``) and ``lakectl`` presigns by itself too.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perago.bench.transfer import Server
    from perago.devservers.state import ServerRecord


class Blockstore(StrEnum):
    """lakeFS's blockstore under a bench, reported as its rows' ``topology``."""

    LOCAL = "local"
    S3 = "s3"


LOCAL_NAMESPACE = "local://perago-bench"
# The bucket of the private MinIO, and the directory under a bucket where bench repositories go.
BENCH_BUCKET = "perago-bench"
NAMESPACE_DIR = "perago-bench"
ENV_DEV_BUCKET = "PERAGO_DEV_S3_BUCKET"  # written to .env by `perago dev up --blockstore s3`
SCHEMES = {Blockstore.LOCAL: "local://", Blockstore.S3: "s3://"}


@dataclass(frozen=True)
class BenchTarget:
    """The lakeFS a bench measures, where its repositories go, and the rows' ``topology``."""

    server: Server
    namespace_root: str
    topology: Blockstore


def check_namespace(blockstore: Blockstore, namespace: str | None) -> str | None:
    """``--namespace`` without trailing slashes; a ValueError unless it is on the blockstore's
    scheme (``local://...`` or ``s3://<bucket>[/<prefix>]``)."""
    if namespace is None:
        return None
    scheme = SCHEMES[blockstore]
    root = namespace.strip().rstrip("/")
    if not root.startswith(scheme) or not root[len(scheme) :].split("/")[0]:
        raise ValueError(
            f"--namespace {namespace} is not a {scheme}<...> namespace (--blockstore {blockstore})"
        )
    return root


def namespace_root(blockstore: Blockstore, namespace: str | None, bucket: str | None) -> str:
    """``--namespace`` (checked), else the default: ``local://perago-bench`` on local,
    ``s3://<bucket>/perago-bench`` on s3 (a ValueError when no bucket is known)."""
    checked = check_namespace(blockstore, namespace)
    if checked is not None:
        return checked
    if blockstore is Blockstore.LOCAL:
        return LOCAL_NAMESPACE
    if not bucket:
        raise ValueError(
            f"the lakeFS from the environment runs on S3 but {ENV_DEV_BUCKET} is not set: "
            "pass --namespace s3://<bucket>/<prefix>"
        )
    return f"s3://{bucket}/{NAMESPACE_DIR}"


def bucket_of(root: str) -> str:
    """The bucket of an ``s3://<bucket>[/<prefix>]`` namespace root."""
    return root.removeprefix(SCHEMES[Blockstore.S3]).split("/")[0]


def blockstore_of(config: Mapping[str, object]) -> str:
    """The blockstore type in a ``GET /api/v1/config`` body (``storage_config``, or the first of
    ``storage_config_list`` on servers that list several); "" when it says none."""
    single = config.get("storage_config")
    listed = config.get("storage_config_list")
    if not isinstance(single, Mapping) and isinstance(listed, list) and listed:
        single = listed[0]
    if not isinstance(single, Mapping):
        return ""
    return str(single.get("blockstore_type") or "")


def server_blockstore(server: Server, *, timeout: float = 10.0) -> str:
    """The blockstore type the lakeFS reports; RuntimeError when it does not answer."""
    base = server.endpoint.strip().rstrip("/").removesuffix("/api/v1")
    request = urllib.request.Request(base + "/api/v1/config")
    token = base64.b64encode(f"{server.access_key_id}:{server.secret_access_key}".encode())
    request.add_header("Authorization", "Basic " + token.decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except (OSError, ValueError) as exc:  # URLError/HTTPError are OSErrors; bad JSON a ValueError
        raise RuntimeError(f"cannot read the storage config of lakeFS at {base}: {exc}") from None
    return blockstore_of(body) if isinstance(body, Mapping) else ""


@contextlib.contextmanager
def bench_target(
    blockstore: Blockstore,
    namespace: str | None,
    *,
    work_dir: Path | None,
    log: Callable[[str], None],
) -> Iterator[BenchTarget]:
    """The lakeFS to measure on ``blockstore`` (see the module docstring); a private s3 stack is
    stopped and deleted on exit, also on error or Ctrl-C. Bad options are a ValueError, a server
    on another blockstore or one that cannot start a RuntimeError, before anything is measured."""
    from perago.bench import transfer as bench_transfer  # imported late: it imports this module

    check_namespace(blockstore, namespace)
    if blockstore is Blockstore.LOCAL:
        server = bench_transfer.server_from_env()
        found = server_blockstore(server)
        if found != Blockstore.LOCAL:
            raise RuntimeError(
                f"lakeFS at {server.endpoint} runs the {found or 'unknown'} blockstore, not local"
                + (" (pass --blockstore s3)" if found == Blockstore.S3 else "")
            )
        yield BenchTarget(server, namespace_root(blockstore, namespace, None), blockstore)
        return
    reused = environment_s3_server(log)
    if reused is not None:
        server, bucket = reused
        yield BenchTarget(server, namespace_root(blockstore, namespace, bucket), blockstore)
        return
    root = namespace_root(blockstore, namespace, BENCH_BUCKET)
    with private_s3_lakefs(bucket_of(root), work_dir=work_dir, log=log) as server:
        yield BenchTarget(server, root, blockstore)


def environment_s3_server(log: Callable[[str], None]) -> tuple[Server, str | None] | None:
    """The lakeFS the environment names and its dev bucket (``PERAGO_DEV_S3_BUCKET``, None when
    unset), when that lakeFS answers and runs on S3; else None (say, the local dev stack)."""
    from perago.bench import transfer as bench_transfer

    try:
        server = bench_transfer.server_from_env()
    except ValueError:
        return None  # no lakeFS configured at all
    try:
        found = server_blockstore(server)
    except RuntimeError as exc:
        log(f"not using the lakeFS from the environment: {exc}")
        return None
    if found != Blockstore.S3:
        kind = found or "an unknown"
        log(f"the lakeFS from the environment ({server.endpoint}) runs the {kind} blockstore")
        return None
    log(f"using the lakeFS from the environment ({server.endpoint}), on its s3 blockstore")
    bucket = bench_transfer.merged_environment().get(ENV_DEV_BUCKET, "").strip()
    return server, bucket or None


@contextlib.contextmanager
def private_s3_lakefs(
    bucket: str, *, work_dir: Path | None, log: Callable[[str], None]
) -> Iterator[Server]:
    """A MinIO (with ``bucket``) and a lakeFS on its S3 blockstore, both on free loopback ports
    with fresh credentials, under a scratch directory that is deleted, with every object, once
    both have stopped."""
    from perago.bench import transfer as bench_transfer
    from perago.devservers import supervisor

    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)  # a fresh --work-dir, like the other benches
    state_dir = Path(tempfile.mkdtemp(prefix="perago-bench-s3-", dir=work_dir))
    log(f"starting a private MinIO and a lakeFS on it under {state_dir}")
    started: list[ServerRecord] = []  # in stop order: lakeFS writes to MinIO until it stops
    try:
        minio_run, minio_creds = supervisor.launch_minio(state_dir, log)
        started.append(minio_run.record)
        supervisor.await_healthy(minio_run, log)
        target = supervisor.s3_target(minio_run.record, minio_creds, bucket)
        lakefs_run, creds = supervisor.launch_lakefs(state_dir, log, s3=target)
        started.insert(0, lakefs_run.record)
        supervisor.await_healthy(lakefs_run, log)
        yield bench_transfer.Server(
            lakefs_run.record.url,
            creds.access_key_id,
            creds.secret_access_key,
            disposable=True,
            processes=bench_transfer.server_processes(lakefs_run.record, minio_run.record),
        )
    finally:
        try:
            supervisor.stop(started, log)
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
        log(f"stopped the private MinIO and lakeFS and removed {state_dir} (objects included)")
