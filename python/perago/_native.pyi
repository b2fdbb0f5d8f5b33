"""Type stub of the compiled module perago._native (checked against the build by tests)."""

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import final

__version__: str

def hash_file(path: str | os.PathLike[str]) -> str: ...

class LakeFSError(Exception):
    status_code: int | None
    operation: str
    target: str

class UnsafeObjectKeyError(ValueError):
    key: str

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
    ) -> LakeFSClient: ...
    @property
    def api_base(self) -> str: ...
    @property
    def access_key_id(self) -> str: ...

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
) -> DownloadResult: ...
def upload_files(
    client: LakeFSClient,
    repo: str,
    branch: str,
    items: Sequence[tuple[str | os.PathLike[str], str]],
    *,
    concurrency: int | None = None,
    progress: Callable[[int, int, int, int], object] | None = None,
) -> tuple[int, int]: ...
def delete_objects(client: LakeFSClient, repo: str, branch: str, paths: Sequence[str]) -> int: ...
