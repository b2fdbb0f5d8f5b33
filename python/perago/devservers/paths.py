"""Where provisioned programs, toolchain caches and server state live (outside the repo)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$PERAGO_DEV_CACHE_DIR`` or ``~/.cache/perago``: shared by developers' runs and CI.

    (``PERAGO_CACHE_DIR`` is the workers' content cache of downloaded objects, not this.)"""
    configured = os.environ.get("PERAGO_DEV_CACHE_DIR", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "perago"


def servers_dir() -> Path:
    return cache_root() / "servers"


def go_dir() -> Path:
    """GOMODCACHE/GOCACHE/GOPATH live here so a second build reuses the downloaded modules."""
    return cache_root() / "go"


def maven_repo_dir() -> Path:
    return cache_root() / "m2"


def default_state_dir(name: str = "default") -> Path:
    return cache_root() / "state" / name
