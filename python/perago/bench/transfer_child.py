"""One perago transfer per process, as the transfer bench times it against one lakectl command.

Kept to the standard library and ``perago.engine.transfer``: inside a worker the transfer runs in an
already-started process, so the bench should not charge perago for importing the bench's own
CLI scaffolding (typer, urllib, ...) on every run.

    python -m perago.bench.transfer_child _download REPO REF PREFIX DEST CONCURRENCY PART THRESHOLD
    python -m perago.bench.transfer_child _upload REPO BRANCH PREFIX SOURCE CONCURRENCY
    python -m perago.bench.transfer_child _cached_download REPO REF PREFIX DEST CONCURRENCY \
        CACHE_DIR MAX_SIZE STATS [LIST_PREFIX]

The lakeFS endpoint and keys come from the ``LAKECTL_*`` variables that lakectl reads too. The
commit after an upload is the bench driver's (:class:`perago.bench.transfer._UploadTarget`).
``_cached_download`` (``perago bench cache``) downloads through the content cache at CACHE_DIR
and writes the download's ``cache_stats()`` and the cache's ``mode`` to the JSON file STATS; with
LIST_PREFIX it first lists ``REF`` under that prefix once, on the same client, and adds the
number of objects listed as ``listed``. ``_write_floor DEST FILES SIZE THREADS STATS`` writes the
files a ``1pct-changed`` run takes from the cache from memory (``perago bench cache``'s
``1pct-floor``) and the seconds that took to STATS.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

ENV_ENDPOINT = "LAKECTL_SERVER_ENDPOINT_URL"
ENV_KEY = "LAKECTL_CREDENTIALS_ACCESS_KEY_ID"
ENV_SECRET = "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"


def upload_items(source: Path, prefix: str) -> list[tuple[str | os.PathLike[str], str]]:
    """Every regular file under ``source`` as ``(path, prefix/relative-path)``, sorted by object
    path; symlinks are left out (uploads refuse them).

    One ``scandir`` per directory, using the types it read: ``Path.rglob`` plus ``is_file`` took
    0.19-0.22 s for 10,000 files (a stat and several ``Path`` objects per file), this 0.02 s. The
    upload bench times this child whole, and a worker never lists in Python: its uploads come
    from the change set its Rust walk found.
    """
    items: list[tuple[str | os.PathLike[str], str]] = []
    pending = [(os.fspath(source), prefix)]
    while pending:
        directory, base = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, f"{base}/{entry.name}"))
                elif entry.is_file(follow_symlinks=False) and entry.name != ".lakefs_ref.yaml":
                    items.append((entry.path, f"{base}/{entry.name}"))
    items.sort(key=lambda item: item[1])
    return items


def main(argv: Sequence[str]) -> None:
    from perago.engine.transfer import (
        LakeFSCredentials,
        connect,
        download_prefix,
        list_objects,
        upload_files,
    )

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
    elif action == "_cached_download":
        from perago.engine.cache import open_cache

        repo, ref, prefix, dest, concurrency, cache_dir, max_size, stats_path, *listing = rest
        client = connect(endpoint, creds)
        report: dict[str, object] = {}
        for list_prefix in listing:
            report["listed"] = len(list_objects(client, None, repo, ref, list_prefix))
        cache = open_cache(cache_dir, int(max_size))
        result = download_prefix(
            client, None, repo, ref, prefix, dest, concurrency=int(concurrency) or None, cache=cache
        )
        report.update(result.cache_stats(), mode=cache.mode)
        Path(stats_path).write_text(json.dumps(report))
    elif action == "_write_floor":
        from perago.bench.cache import kept_indices, write_from_memory

        dest, files, size, threads, stats_path = rest
        seconds = write_from_memory(Path(dest), kept_indices(int(files)), int(size), int(threads))
        Path(stats_path).write_text(json.dumps({"seconds": seconds}))
    else:
        raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main(sys.argv[1:])
