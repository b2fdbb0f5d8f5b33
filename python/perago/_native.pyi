"""Type stub of the compiled module perago._native (checked against the build by tests)."""

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final, final

__version__: str

# Defined once in perago-core (Rust); Python reads them from here.
ATTEMPT_MARKER: Final[str]  # ".perago-attempt.json": reserved at the workspace root
DEFAULT_CONCURRENCY: Final[int]  # parallel requests of a download when none is given
UPLOAD_CONCURRENCY: Final[int]  # parallel requests of an upload when none is given
DEFAULT_PART_SIZE: Final[int]  # bytes per ranged download part when none is given
REMOTE_RANGED_THRESHOLD: Final[int]  # objects this large are fetched as ranges from a remote server
LAKEFS_PAGE_SIZE: Final[int]  # entries per lakeFS listing page, paths per bulk delete

# (path, kind, size, mtime_ns, ctime_ns, inode, mode, digest_hex, symlink_target)
_EntryTuple = tuple[str, str, int, int, int, int, int, str, str | None]

def hash_file(path: str | os.PathLike[str]) -> str: ...

@final
class Snapshot:
    @property
    def root(self) -> str: ...
    @property
    def started_ns(self) -> int: ...
    @property
    def file_count(self) -> int: ...
    @property
    def symlink_count(self) -> int: ...
    @property
    def total_bytes(self) -> int: ...
    @property
    def heap_bytes(self) -> int: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: str, /) -> bool: ...
    def get(self, path: str) -> _EntryTuple | None: ...
    def unsupported(self) -> list[tuple[str, str]]: ...
    def entries(self) -> SnapshotIter: ...

@final
class SnapshotIter:
    def __iter__(self) -> SnapshotIter: ...
    def __next__(self) -> _EntryTuple: ...

@final
class ChangeSet:
    @property
    def added(self) -> list[str]: ...
    @property
    def modified(self) -> list[str]: ...
    @property
    def removed(self) -> list[str]: ...
    @property
    def type_changed(self) -> list[str]: ...
    @property
    def added_bytes(self) -> int: ...
    @property
    def modified_bytes(self) -> int: ...
    @property
    def removed_bytes(self) -> int: ...
    @property
    def type_changed_bytes(self) -> int: ...
    @property
    def scanned(self) -> int: ...
    @property
    def rehashed(self) -> int: ...
    def unsupported(self) -> list[tuple[str, str]]: ...

def take_snapshot(root: str | os.PathLike[str], threads: int | None = None) -> Snapshot: ...
def snapshot_from_known_hashes(
    root: str | os.PathLike[str],
    known: Iterable[tuple[str, bytes | str]],
    threads: int | None = None,
) -> Snapshot: ...
def snapshot_from_download(
    root: str | os.PathLike[str],
    download: DownloadResult,
    threads: int | None = None,
) -> Snapshot: ...
def detect_changes(
    root: str | os.PathLike[str],
    baseline: Snapshot,
    threads: int | None = None,
    racy_window_ns: int | None = None,
) -> ChangeSet: ...
def stat_walk(root: str | os.PathLike[str], threads: int | None = None) -> tuple[int, int]: ...

# lakeFS failures raise perago.errors.LakeFSError and unsafe object keys
# perago.errors.UnsafeObjectKeyError: the native code builds Python's own classes.

@final
class LakeFSClient:
    def __new__(
        cls,
        endpoint: str,
        access_key_id: str,
        secret_access_key: str,
        *,
        max_attempts: int | None = None,
        connect_timeout: float | None = None,
        io_timeout: float | None = None,
        transfer_mode: str | None = None,
    ) -> LakeFSClient: ...
    @property
    def api_base(self) -> str: ...
    @property
    def access_key_id(self) -> str: ...
    @property
    def transfer_mode(self) -> str: ...
    def data_path(self) -> tuple[bool, bool]: ...

@final
class DownloadResult:
    @property
    def root(self) -> Path: ...
    @property
    def file_count(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    def __len__(self) -> int: ...
    def hash_of(self, rel_path: str) -> str | None: ...
    def entries(self) -> list[tuple[str, int, str]]: ...
    def cache_stats(self) -> dict[str, int]: ...

@final
class ContentCache:
    def __new__(cls, dir: str | os.PathLike[str], max_size: int) -> ContentCache: ...
    @property
    def dir(self) -> Path: ...
    @property
    def max_size(self) -> int: ...
    @property
    def mode(self) -> str: ...
    def status(self) -> dict[str, int]: ...
    def prune(
        self,
        target: int | None = None,
        *,
        progress: Callable[[int, int], object] | None = None,
    ) -> dict[str, int]: ...
    def verify(
        self,
        *,
        threads: int | None = None,
        progress: Callable[[int, int], object] | None = None,
    ) -> dict[str, int]: ...

def list_objects(
    client: LakeFSClient, repo: str, reference: str, prefix: str
) -> list[tuple[str, int, str]]: ...
def download_prefix(
    client: LakeFSClient,
    repo: str,
    reference: str,
    prefix: str,
    dest: str | os.PathLike[str],
    *,
    concurrency: int | None = None,
    part_size: int | None = None,
    ranged_threshold: int | None = None,
    progress: Callable[[int, int, int, int], object] | None = None,
    before_write: Callable[[str, int], object] | None = None,
    cache: ContentCache | None = None,
) -> DownloadResult: ...
def upload_files(
    client: LakeFSClient,
    repo: str,
    branch: str,
    items: Sequence[tuple[str | os.PathLike[str], str]],
    *,
    concurrency: int | None = None,
    progress: Callable[[int, int, int, int], object] | None = None,
    multipart_threshold: int | None = None,
    part_size: int | None = None,
) -> tuple[int, int]: ...
def delete_objects(client: LakeFSClient, repo: str, branch: str, paths: Sequence[str]) -> int: ...
