"""Property tests: the Rust snapshot and diff agree with a pure-Python reference on random trees.

Same-size edits restore the previous mtime with os.utime; with a racy window shorter than the
time since the baseline they are caught through ctime (a write always bumps it), which is what
these tests prove. The default 2 s racy window is checked to give the same answers.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perago.engine import snapshot as engine
from perago.engine.snapshot import detect_changes, take_snapshot
from tests.unit.engine.snapshot_reference import reference_diff, reference_snapshot

OLD_NS = 1_600_000_000_123_456_789
# Longer than a coarse kernel timestamp tick, so ctime moves between baseline and edits.
TICK_S = 0.03

names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/\x00", exclude_categories=["Cs"]),
    min_size=1,
    max_size=6,
).filter(lambda s: s not in {".", ".."})


@dataclass
class Node:
    content: bytes | None  # None: symlink
    target: str = ""


def _conflicts(path: str, taken: dict[str, Node]) -> bool:
    for other in taken:
        if other == path or other.startswith(path + "/") or path.startswith(other + "/"):
            return True
    return False


@st.composite
def trees(draw: st.DrawFn) -> dict[str, Node]:
    tree: dict[str, Node] = {}
    for segments in draw(st.lists(st.lists(names, min_size=1, max_size=5), max_size=10)):
        path = "/".join(segments)
        if _conflicts(path, tree):
            continue
        if draw(st.integers(0, 5)) == 0:
            tree[path] = Node(None, draw(names))
        else:
            tree[path] = Node(draw(st.binary(max_size=48)))
    return tree


OPS = ["keep", "same_size_edit", "rewrite_identical", "delete", "chmod", "to_symlink", "grow"]


def _write(root: str, rel: str, node: Node) -> None:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if node.content is None:
        os.symlink(node.target, path)
    else:
        with open(path, "wb") as handle:
            handle.write(node.content)


def _age(root: str) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(directory, name), ns=(OLD_NS, OLD_NS), follow_symlinks=False)


def _mutate(root: str, rel: str, node: Node, op: str, fresh: bytes) -> None:
    path = os.path.join(root, rel)
    if op == "keep":
        return
    if op == "delete":
        os.remove(path)
    elif op == "to_symlink":
        os.remove(path)
        os.symlink("elsewhere", path)
    elif node.content is None:
        os.remove(path)
        os.symlink(node.target + "x", path)
    elif op == "same_size_edit":
        before = os.stat(path)
        flipped = bytes(b ^ 0xFF for b in node.content)
        with open(path, "r+b") as handle:
            handle.write(flipped)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif op == "rewrite_identical":
        with open(path, "wb") as handle:
            handle.write(node.content)
    elif op == "chmod":
        os.chmod(path, 0o600)
    elif op == "grow":
        with open(path, "ab") as handle:
            handle.write(fresh or b"+")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    tree=trees(),
    ops=st.lists(st.sampled_from(OPS), min_size=10, max_size=10),
    additions=trees(),
    fresh=st.binary(max_size=8),
)
def test_rust_snapshot_and_diff_match_reference(
    tree: dict[str, Node], ops: list[str], additions: dict[str, Node], fresh: bytes
) -> None:
    with tempfile.TemporaryDirectory(prefix="perago-prop-") as root:
        for rel, node in tree.items():
            _write(root, rel, node)
        _age(root)
        time.sleep(TICK_S)

        snapshot = take_snapshot(root, threads=2)
        expected = reference_snapshot(root)
        assert [e.path for e in snapshot] == sorted(expected)
        for entry in snapshot:
            ref = expected[entry.path]
            assert (entry.kind, entry.size) == (ref.kind, ref.size)
            if entry.kind == "symlink":
                assert entry.target == ref.content
            else:
                assert entry.digest == engine.hash_file(os.path.join(root, entry.path))
        time.sleep(TICK_S)

        touched = 0
        for (rel, node), op in zip(sorted(tree.items()), ops, strict=False):
            _mutate(root, rel, node, op, fresh)
            touched += op != "keep"
        for rel, node in additions.items():
            if not _conflicts(rel, tree) and not os.path.lexists(os.path.join(root, rel)):
                _write(root, rel, node)

        want = reference_diff(expected, reference_snapshot(root))
        strict = detect_changes(root, snapshot, racy_window_s=TICK_S / 3)
        for changes in (strict, detect_changes(root, snapshot)):
            assert list(changes.added) == want.added
            assert list(changes.modified) == want.modified
            assert list(changes.removed) == want.removed
            assert list(changes.type_changed) == want.type_changed
            assert changes.added_bytes == want.added_bytes
            assert changes.modified_bytes == want.modified_bytes
            assert changes.removed_bytes == want.removed_bytes
            assert changes.type_changed_bytes == want.type_changed_bytes
        # Only stat-changed entries (plus symlinks, always re-read) were read again.
        symlinks = sum(1 for node in tree.values() if node.content is None)
        assert strict.rehashed <= touched + symlinks
