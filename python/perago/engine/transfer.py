"""Parallel, streaming lakeFS transfers (Rust engine) behind a small typed API.

Every function releases the GIL while it works and stops at the next chunk when Ctrl-C is
pressed (``KeyboardInterrupt``). Failures raise:

* :class:`perago.errors.LakeFSError` — a lakeFS request failed (``status`` is ``None`` when the
  server could not be reached, ``target`` names the repository, ref and object; never a secret);
  the same type the control plane (:mod:`perago.lakefs.client`) raises;
* :class:`UnsafeObjectKeyError` (a ``ValueError``) — an object key cannot be a safe relative path;
  raised before anything is written;
* ``OSError`` subclasses for local problems (``FileExistsError`` for an existing destination
  file, ``errno.ENOSPC`` when the listed total does not fit on disk).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from perago import _native
from perago.errors import LakeFSError, UnsafeObjectKeyError

DownloadResult = _native.DownloadResult
LakeFSClient = _native.LakeFSClient

# (bytes_done, bytes_total, files_done, files_total), called from the calling thread.
RawProgress = Callable[[int, int, int, int], object]

__all__ = [
    "DownloadResult",
    "LakeFSClient",
    "LakeFSCredentials",
    "LakeFSError",
    "ObjectEntry",
    "TransferProgress",
    "UnsafeObjectKeyError",
    "UploadResult",
    "connect",
    "delete_objects",
    "download_prefix",
    "list_objects",
    "upload_files",
]


class _SecretLike(Protocol):
    def get_secret_value(self) -> str: ...


class CredentialsLike(Protocol):
    """Anything with an access key id and a secret (``str`` or pydantic ``SecretStr``)."""

    @property
    def access_key_id(self) -> str: ...

    @property
    def secret_access_key(self) -> str | _SecretLike: ...


@dataclass(frozen=True)
class LakeFSCredentials:
    """An access key pair; the secret is left out of ``repr``."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class TransferProgress:
    """Counters of a running transfer, reported at most ~10 times per second and once at the end."""

    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int


ProgressCallback = Callable[[TransferProgress], object]


@dataclass(frozen=True)
class ObjectEntry:
    path: str
    size: int
    checksum: str


@dataclass(frozen=True)
class UploadResult:
    files: int
    bytes: int


def _secret_text(value: str | _SecretLike) -> str:
    return value if isinstance(value, str) else value.get_secret_value()


def connect(
    endpoint: str,
    credentials: CredentialsLike,
    *,
    max_attempts: int | None = None,
    connect_timeout: float | None = None,
    io_timeout: float | None = None,
    transfer_mode: str | None = None,
) -> LakeFSClient:
    """A reusable native client (keeps connections alive across calls).

    ``endpoint`` is the server URL with or without ``/api/v1``. Defaults: 8 attempts with
    exponential backoff and jitter on connection errors, 5xx and 429; 10 s connect timeout;
    120 s without progress on a connection. ``transfer_mode``: ``"auto"`` (default) moves bytes
    with presigned object-store URLs when lakeFS's blockstore offers them (``GET /config``,
    asked once per client) and through lakeFS otherwise; ``"presign"`` requires them;
    ``"lakefs"`` never uses them. https endpoints trust the PEM bundle named by
    ``SSL_CERT_FILE`` (else ``REQUESTS_CA_BUNDLE``) instead of the built-in roots when set.
    """
    return _native.LakeFSClient(
        endpoint,
        credentials.access_key_id,
        _secret_text(credentials.secret_access_key),
        max_attempts=max_attempts,
        connect_timeout=connect_timeout,
        io_timeout=io_timeout,
        transfer_mode=transfer_mode,
    )


def _client(endpoint: str | LakeFSClient, credentials: CredentialsLike | None) -> LakeFSClient:
    if isinstance(endpoint, LakeFSClient):
        return endpoint
    if credentials is None:
        raise ValueError("credentials are required when endpoint is a URL")
    return connect(endpoint, credentials)


def _raw_progress(
    progress: ProgressCallback | None,
) -> RawProgress | None:
    if progress is None:
        return None

    def report(bytes_done: int, bytes_total: int, files_done: int, files_total: int) -> object:
        return progress(TransferProgress(bytes_done, bytes_total, files_done, files_total))

    return report


def list_objects(
    endpoint: str | LakeFSClient,
    credentials: CredentialsLike | None,
    repo: str,
    ref: str,
    prefix: str,
) -> list[ObjectEntry]:
    """Objects of ``repo@ref`` under ``prefix + "/"`` (never sibling prefixes); ``""`` = all."""
    client = _client(endpoint, credentials)
    return [ObjectEntry(p, s, c) for p, s, c in _native.list_objects(client, repo, ref, prefix)]


def download_prefix(  # noqa: PLR0917 - positional order is the documented API
    endpoint: str | LakeFSClient,
    credentials: CredentialsLike | None,
    repo: str,
    ref: str,
    prefix: str,
    dest: str | os.PathLike[str],
    *,
    concurrency: int | None = None,
    part_size: int | None = None,
    ranged_threshold: int | None = None,
    progress: ProgressCallback | None = None,
    before_write: Callable[[str, int], object] | None = None,
    cache: _native.ContentCache | None = None,
) -> DownloadResult:
    """Materialise ``repo@ref`` under ``prefix`` into ``dest`` (created if missing).

    All keys are checked before anything is written; files are created exclusively (existing
    entries are never overwritten or followed). ``concurrency`` = parallel requests (default 16);
    objects of at least ``ranged_threshold`` bytes are fetched as parallel ``part_size`` ranges
    (default 32 MiB, a power of two). The default threshold is 64 MiB for a remote server and
    none for one on this machine (loopback), where one stream per object is already CPU-bound.
    The result keeps the per-file (path, size, BLAKE3) list native: ``result.entries()``,
    ``result.hash_of(rel_path)``, ``result.file_count``, ``result.bytes``, ``result.root``.

    ``before_write(canonical dest, listed total bytes)`` is called once after the listing and
    before anything is written (see :mod:`perago.attempt.space_ledger`: the attempt reserves disk
    space there); an exception it raises ends the download unchanged.

    ``cache`` (:mod:`perago.engine.cache`): objects it holds are materialised from it (cloned or
    copied, never hard-linked) instead of fetched; what is fetched enters it as it streams.
    ``result.cache_stats()`` tells what came from where.
    """
    return _native.download_prefix(
        _client(endpoint, credentials),
        repo,
        ref,
        prefix,
        dest,
        concurrency=concurrency,
        part_size=part_size,
        ranged_threshold=ranged_threshold,
        progress=_raw_progress(progress),
        before_write=before_write,
        cache=cache,
    )


def upload_files(
    endpoint: str | LakeFSClient,
    credentials: CredentialsLike | None,
    repo: str,
    branch: str,
    files: Iterable[tuple[str | os.PathLike[str], str]],
    *,
    concurrency: int | None = None,
    progress: ProgressCallback | None = None,
    multipart_threshold: int | None = None,
    part_size: int | None = None,
) -> UploadResult:
    """Upload ``(local path, object path)`` pairs to ``branch`` (streamed; symlinks refused),
    ``concurrency`` requests at a time (default :data:`perago.engine.UPLOAD_CONCURRENCY`, 32).

    On the presigned data path each file is PUT to a fresh staging location and linked; files of
    at least ``multipart_threshold`` bytes (default 64 MiB) go up as presigned multipart uploads
    of ``part_size`` parts (default 32 MiB, at least 5 MiB), parts in parallel, each retried on
    its own; a failure or Ctrl-C aborts every multipart upload it opened.
    """
    count, size = _native.upload_files(
        _client(endpoint, credentials),
        repo,
        branch,
        list(files),
        concurrency=concurrency,
        progress=_raw_progress(progress),
        multipart_threshold=multipart_threshold,
        part_size=part_size,
    )
    return UploadResult(files=count, bytes=size)


def delete_objects(
    endpoint: str | LakeFSClient,
    credentials: CredentialsLike | None,
    repo: str,
    branch: str,
    paths: Iterable[str],
) -> int:
    """Delete object paths from ``branch`` in batches of at most 1000 per request."""
    return _native.delete_objects(_client(endpoint, credentials), repo, branch, list(paths))
