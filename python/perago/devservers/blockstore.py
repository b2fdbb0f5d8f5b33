"""The local blockstore of a lakeFS that ``perago dev up`` started: find it, and remove one
storage namespace's objects from it.

lakeFS's API deletes a repository but never the objects under its storage namespace (that takes
garbage collection), so for the dev server, whose block directory perago configured itself, the
namespace directory can be removed directly. Nothing outside that block directory is ever touched.
"""

from __future__ import annotations

import shutil
import urllib.parse
from pathlib import Path

from perago.devservers import lakefs, paths, state, supervisor

LOCAL_SCHEME = "local://"
_LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


def _server_key(url: str) -> tuple[str, str, int | None]:
    parsed = urllib.parse.urlsplit(url.strip().rstrip("/").removesuffix("/api/v1"))
    host = parsed.hostname or ""
    # The dev server listens on 127.0.0.1; .env may name it localhost.
    host = "127.0.0.1" if host in _LOOPBACK_NAMES else host
    return parsed.scheme, host, parsed.port


def known_dev_state(endpoint: str, access_key_id: str) -> tuple[Path, state.DevState] | None:
    """The state directory and record of the ``perago dev up`` stack whose lakeFS is at
    ``endpoint`` with that access key; else None (a server perago did not start)."""
    wanted = _server_key(endpoint)
    for record_file in sorted((paths.cache_root() / "state").glob(f"*/{state.STATE_FILE}")):
        try:
            recorded = state.load(record_file.parent)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a half-written or foreign file is not a server we know
        if recorded is None or recorded.access_key_id != access_key_id:
            continue
        if _server_key(recorded.lakefs.url) == wanted:
            return record_file.parent, recorded
    return None


def known_block_dir(endpoint: str, access_key_id: str) -> Path | None:
    """The block directory of the dev lakeFS at ``endpoint`` (:func:`known_dev_state`), when it
    runs the local blockstore; else None."""
    known = known_dev_state(endpoint, access_key_id)
    if known is None or known[1].blockstore != "local":
        return None  # objects live in the S3 bucket, not in a directory perago may remove
    block = lakefs.block_dir(supervisor.lakefs_data_dir(known[0]))
    return block if block.is_dir() else None


def namespace_dir(block_dir: Path, namespace: str) -> Path:
    """The directory holding a ``local://`` namespace's objects, strictly inside ``block_dir``.

    Raises ValueError for any other scheme, a path that is empty or has ``.``/``..``/empty parts,
    or a symlink anywhere below ``block_dir`` on the way (it could lead outside).
    """
    if not namespace.startswith(LOCAL_SCHEME):
        raise ValueError(f"storage namespace {namespace} is not a {LOCAL_SCHEME} namespace")
    parts = namespace[len(LOCAL_SCHEME) :].rstrip("/").split("/")
    if any(part in {"", ".", ".."} for part in parts):
        raise ValueError(f"storage namespace {namespace} is not a plain relative path")
    root = block_dir.resolve(strict=True)
    target = root
    for part in parts:
        target = target / part
        if target.is_symlink():
            raise ValueError(f"storage namespace {namespace} passes through a symlink ({target})")
    if target.resolve() != target or not target.is_relative_to(root) or target == root:
        raise ValueError(f"storage namespace {namespace} resolves outside {root}")
    return target


def remove_namespace(block_dir: Path, namespace: str) -> bool:
    """Delete the namespace's directory; False when it did not exist. Raises ValueError (nothing
    deleted) when the namespace does not map strictly inside ``block_dir``."""
    target = namespace_dir(block_dir, namespace)
    if not target.exists():
        return False
    shutil.rmtree(target)  # fd-based on Linux: never follows a symlink inside the tree
    return True
