"""One perago transfer per process, as the transfer bench times it against one lakectl command.

Kept to the standard library and ``perago.engine.transfer``: inside a worker the transfer runs in an
already-started process, so the bench should not charge perago for importing the bench's own
CLI scaffolding (typer, urllib, ...) on every run.

    python -m perago.bench.transfer_child _download REPO REF PREFIX DEST CONCURRENCY PART THRESHOLD
    python -m perago.bench.transfer_child _upload REPO BRANCH PREFIX SOURCE CONCURRENCY

The lakeFS endpoint and keys come from the ``LAKECTL_*`` variables that lakectl reads too. The
commit after an upload is the bench driver's (:class:`perago.bench.transfer._UploadTarget`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

ENV_ENDPOINT = "LAKECTL_SERVER_ENDPOINT_URL"
ENV_KEY = "LAKECTL_CREDENTIALS_ACCESS_KEY_ID"
ENV_SECRET = "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"


def upload_items(source: Path, prefix: str) -> list[tuple[str | os.PathLike[str], str]]:
    """Every regular file under ``source`` as ``(path, prefix/relative-path)``, sorted."""
    return [
        (p, f"{prefix}/{p.relative_to(source).as_posix()}")
        for p in sorted(source.rglob("*"))
        if p.is_file() and p.name != ".lakefs_ref.yaml"
    ]


def main(argv: Sequence[str]) -> None:
    from perago.engine.transfer import LakeFSCredentials, download_prefix, upload_files

    endpoint = os.environ[ENV_ENDPOINT]
    creds = LakeFSCredentials(os.environ[ENV_KEY], os.environ[ENV_SECRET])
    action, *rest = argv
    if action == "_download":
        repo, ref, prefix, dest, concurrency, part_size, threshold = rest
        download_prefix(
            endpoint,
            creds,
            repo,
            ref,
            prefix,
            dest,
            concurrency=int(concurrency) or None,
            part_size=int(part_size) or None,
            ranged_threshold=int(threshold) or None,
        )
    elif action == "_upload":
        repo, branch, prefix, source, concurrency = rest
        upload_files(
            endpoint,
            creds,
            repo,
            branch,
            upload_items(Path(source), prefix),
            concurrency=int(concurrency) or None,
        )
    else:
        raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main(sys.argv[1:])
