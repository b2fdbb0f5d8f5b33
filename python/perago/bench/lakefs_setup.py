"""lakeFS set-up shared by the stage and attempt benches: the server from the environment, a
seeded repository, and the diff API used to verify how many objects a commit changed."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from perago import transfer
from perago.bench import transfer as bench_transfer
from perago.config import LakeFSConfig

PREFIX = "data"
LAKECTL_CACHE_GLOB = ".cache/perago/servers/lakefs/*/bin/lakectl"


@dataclass(frozen=True)
class SeededRepo:
    server: bench_transfer.Server
    repository: str
    commit: str
    files: int
    size: int

    @property
    def config(self) -> LakeFSConfig:
        return lakefs_config(self.server)


def lakefs_config(server: bench_transfer.Server) -> LakeFSConfig:
    return LakeFSConfig(
        endpoint_url=server.endpoint,
        access_key_id=server.access_key_id,
        secret_access_key=SecretStr(server.secret_access_key),
    )


def seed_repository(
    server: bench_transfer.Server, work: Path, files: int, size: int, namespace_root: str
) -> SeededRepo:
    """A new repository whose ``main`` holds ``files`` x ``size`` bytes under ``data/``."""
    repository = bench_transfer.create_repository(server, namespace_root)
    source = Path(tempfile.mkdtemp(prefix="seed-", dir=work))
    try:
        bench_transfer.generate_files(source, files, size)
        creds = transfer.LakeFSCredentials(server.access_key_id, server.secret_access_key)
        items = [
            (path, f"{PREFIX}/{path.relative_to(source).as_posix()}")
            for path in sorted(source.rglob("*"))
            if path.is_file()
        ]
        transfer.upload_files(server.endpoint, creds, repository, "main", items)
    finally:
        shutil.rmtree(source, ignore_errors=True)
    commit = bench_transfer.commit(server, repository, "main", "seed")
    return SeededRepo(server, repository, commit, files, size)


def _get(server: bench_transfer.Server, path: str, query: dict[str, str]) -> dict[str, object]:
    base = server.endpoint.rstrip("/").removesuffix("/api/v1") + "/api/v1"
    token = base64.b64encode(f"{server.access_key_id}:{server.secret_access_key}".encode()).decode()
    request = urllib.request.Request(
        f"{base}{path}?{urllib.parse.urlencode(query)}",
        headers={"Authorization": f"Basic {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            decoded = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise RuntimeError(f"lakeFS GET {path}: HTTP {exc.code}: {detail}") from None
    return decoded if isinstance(decoded, dict) else {}


def changed_objects(server: bench_transfer.Server, repository: str, left: str, right: str) -> int:
    """Objects that differ between two refs, counted through lakeFS's own diff API."""
    quoted = f"/repositories/{repository}/refs/{urllib.parse.quote(left, safe='')}/diff/"
    path = quoted + urllib.parse.quote(right, safe="")
    count, after = 0, ""
    while True:
        page = _get(server, path, {"amount": "1000", "after": after})
        results = page.get("results")
        count += len(results) if isinstance(results, list) else 0
        pagination = page.get("pagination")
        if not isinstance(pagination, dict) or not pagination.get("has_more"):
            return count
        after = str(pagination.get("next_offset", ""))


def branch_head(server: bench_transfer.Server, repository: str, branch: str) -> str:
    found = _get(server, f"/repositories/{repository}/branches/{branch}", {})
    return str(found["commit_id"])


def find_lakectl() -> str | None:
    """``lakectl`` on PATH / ``PERAGO_LAKECTL_BIN``, else the one ``perago dev`` installed."""
    explicit = bench_transfer._lakectl()
    if explicit:
        return explicit
    cached = sorted(Path.home().glob(LAKECTL_CACHE_GLOB))
    return str(cached[-1]) if cached and os.access(cached[-1], os.X_OK) else None
