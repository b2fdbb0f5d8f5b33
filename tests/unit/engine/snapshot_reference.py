"""A deliberately simple pure-Python model of perago's snapshot and change rules.

Used only by tests, to cross-check the Rust engine on random trees.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass

MARKER_FILE = ".perago-attempt.json"


@dataclass(frozen=True)
class RefEntry:
    kind: str  # "file" | "symlink" | "fifo" | "socket" | ...
    size: int
    content: str  # sha256 of the bytes (file) or the link target (symlink)


def reference_snapshot(root: str) -> dict[str, RefEntry]:
    """Every non-directory entry under root, keyed by '/'-separated relative path."""
    found: dict[str, RefEntry] = {}

    def visit(directory: str, prefix: str) -> None:
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if rel == MARKER_FILE:
                    continue
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    visit(entry.path, rel + "/")
                elif stat.S_ISLNK(info.st_mode):
                    found[rel] = RefEntry("symlink", info.st_size, os.readlink(entry.path))
                elif stat.S_ISREG(info.st_mode):
                    with open(entry.path, "rb") as handle:
                        digest = hashlib.sha256(handle.read()).hexdigest()
                    found[rel] = RefEntry("file", info.st_size, digest)
                else:
                    found[rel] = RefEntry("special", info.st_size, "")

    visit(root, "")
    return found


@dataclass(frozen=True)
class RefChanges:
    added: list[str]
    modified: list[str]
    removed: list[str]
    type_changed: list[str]
    added_bytes: int
    modified_bytes: int
    removed_bytes: int
    type_changed_bytes: int


def reference_diff(before: dict[str, RefEntry], after: dict[str, RefEntry]) -> RefChanges:
    """Content/target/kind differences; special files count as gone (and are never added)."""
    publishable = {"file", "symlink"}
    old = {p: e for p, e in before.items() if e.kind in publishable}
    new = {p: e for p, e in after.items() if e.kind in publishable}
    added = sorted(p for p in new if p not in old)
    removed = sorted(p for p in old if p not in new)
    both = sorted(p for p in new if p in old)
    type_changed = [p for p in both if new[p].kind != old[p].kind]
    modified = [p for p in both if new[p].kind == old[p].kind and new[p].content != old[p].content]
    return RefChanges(
        added=added,
        modified=modified,
        removed=removed,
        type_changed=type_changed,
        added_bytes=sum(new[p].size for p in added),
        modified_bytes=sum(new[p].size for p in modified),
        removed_bytes=sum(old[p].size for p in removed),
        type_changed_bytes=sum(new[p].size for p in type_changed),
    )
