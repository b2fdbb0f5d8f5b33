"""Workspace guardrails: file-system checks run before and after a task body.

Paths and patterns are relative to the workspace root, ``/``-separated, and may never leave it.

Glob semantics (identical on every Python version, unlike ``pathlib.Path.glob``):

* A pattern is split on ``/`` into segments, matched against the segments of a path relative to
  the workspace root.
* A segment that is exactly ``**`` matches zero or more directories, so ``**/*.wav`` matches
  ``a.wav`` and ``x/y/a.wav``. A trailing ``**`` is shorthand for ``**/*``: ``a/**`` matches every
  file below ``a`` (never ``a`` itself) and ``**`` alone matches every file.
* Any other segment is matched against one name with :func:`fnmatch.fnmatchcase`
  (``*``, ``?``, ``[...]``; case-sensitive; ``*`` also matches names starting with ``.``, so
  hidden files match).
* Only files are counted: regular files and symlinks that resolve to regular files (the same
  notion ``require_file`` uses). Directories never count, so "matched N files" is literal.
  Symlinked directories are not descended into, so a symlink loop cannot hang a check.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from perago.errors import GuardrailViolation, TaskDefinitionError

__all__ = [
    "GuardrailKind",
    "GuardrailPhase",
    "check_guardrails",
    "count_glob_matches",
    "forbid_glob",
    "glob_segments_match",
    "require_dir",
    "require_file",
    "require_glob",
]

GuardrailKind = Literal["require_file", "require_dir", "require_glob", "forbid_glob"]
GuardrailPhase = Literal["pre", "post"]

_DRIVE_PREFIX = re.compile(r"^[A-Za-z]:")
_COUNTED_KINDS = frozenset({"require_glob"})
_GLOB_MAGIC = re.compile(r"[*?\[]")


def _canonical_path(path: object) -> str:
    """Return the ``/``-joined relative form of a guardrail path, or raise TaskDefinitionError."""
    if isinstance(path, PureWindowsPath):
        if path.drive or path.root:
            raise TaskDefinitionError("drive-qualified or absolute guardrail paths are not allowed")
        parts: Sequence[str] = path.parts
    elif isinstance(path, PurePath):
        if path.is_absolute():
            raise TaskDefinitionError("absolute guardrail paths are not allowed")
        parts = path.parts
    elif isinstance(path, str):
        if "\\" in path:
            raise TaskDefinitionError("string guardrail paths must use '/' separators")
        if path.startswith("/"):
            raise TaskDefinitionError(
                "guardrail paths must be relative to WorkspaceSpec(prefix=...)"
            )
        if _DRIVE_PREFIX.match(path):
            raise TaskDefinitionError("drive-qualified guardrail paths are not allowed")
        parts = path.split("/") if path else []
    elif isinstance(path, os.PathLike):
        return _canonical_path(PurePath(os.fspath(path)))
    else:
        raise TaskDefinitionError("guardrail paths must be strings or path objects")
    if not parts:
        raise TaskDefinitionError("workspace guardrail paths must not be empty")
    if any(part in ("", ".", "..") for part in parts):
        raise TaskDefinitionError(
            "workspace guardrail paths must be relative and must not contain '..'"
        )
    return "/".join(parts)


def _checked_count(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TaskDefinitionError(f"guardrail {name} must be an integer")
    if value < 0:
        raise TaskDefinitionError(f"guardrail {name} must be >= 0")
    return value


def _normalised_fields(
    kind: object, path: object, min_count: object, max_count: object
) -> dict[str, Any]:
    """Validate one guardrail's fields; shared by the factories and the dict form."""
    if kind not in ("require_file", "require_dir", "require_glob", "forbid_glob"):
        raise TaskDefinitionError(
            "guardrail kind must be one of require_file, require_dir, require_glob, forbid_glob"
        )
    low = _checked_count("min_count", min_count)
    high = _checked_count("max_count", max_count)
    if kind not in _COUNTED_KINDS:
        if low is not None or high is not None:
            raise TaskDefinitionError(f"{kind} does not accept count bounds")
    elif low is None:
        low = 1
    if low is not None and high is not None and low > high:
        raise TaskDefinitionError("guardrail min_count must be <= max_count")
    return {"kind": kind, "path": _canonical_path(path), "min_count": low, "max_count": high}


class _WorkspaceGuardrail(BaseModel):
    """One guardrail; built by the factories (or from a dict inside ``WorkspaceSpec``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: GuardrailKind
    path: str
    min_count: int | None = None
    max_count: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" in data and "path" in data:
            extra = set(data) - {"kind", "path", "min_count", "max_count"}
            if not extra:
                return _normalised_fields(
                    data["kind"], data["path"], data.get("min_count"), data.get("max_count")
                )
        return data  # let pydantic report missing/extra fields in its usual way

    def label(self) -> str:
        return f"{self.kind}('{self.path}')"


def _guardrail(
    kind: GuardrailKind, path: object, min_count: object = None, max_count: object = None
) -> _WorkspaceGuardrail:
    fields = _normalised_fields(kind, path, min_count, max_count)
    return _WorkspaceGuardrail.model_construct(**fields)


def require_file(path: str | os.PathLike[str]) -> _WorkspaceGuardrail:
    """Require ``path`` to be a file (symlinks to files count)."""
    return _guardrail("require_file", path)


def require_dir(path: str | os.PathLike[str]) -> _WorkspaceGuardrail:
    """Require ``path`` to be a directory."""
    return _guardrail("require_dir", path)


def require_glob(
    pattern: str | os.PathLike[str], *, min_count: int = 1, max_count: int | None = None
) -> _WorkspaceGuardrail:
    """Require between ``min_count`` and ``max_count`` files matching ``pattern``."""
    return _guardrail("require_glob", pattern, min_count, max_count)


def forbid_glob(pattern: str | os.PathLike[str]) -> _WorkspaceGuardrail:
    """Require that no file matches ``pattern``."""
    return _guardrail("forbid_glob", pattern)


def _expanded(pattern: Sequence[str]) -> list[str]:
    # A trailing ``**`` means "every file below": the file name needs a segment of its own.
    segments = list(pattern)
    if segments and segments[-1] == "**":
        segments.append("*")
    return segments


def glob_segments_match(pattern: Sequence[str], path: Sequence[str]) -> bool:
    """Whether a relative file path (as segments) matches a pattern (as segments)."""
    return _segments_match(_expanded(pattern), list(path))


def _segments_match(pattern: list[str], path: list[str]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        # ``**`` is never last here, so it can only consume directory segments.
        return any(_segments_match(rest, path[skip:]) for skip in range(len(path)))
    return bool(path) and fnmatch.fnmatchcase(path[0], head) and _segments_match(rest, path[1:])


def _matching_files(directory: str, pattern: list[str], prefix: str) -> Iterator[str]:
    """Yield relative paths of files under ``directory`` matching ``pattern`` (may repeat)."""
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        yield from _matching_files(directory, rest, prefix)
        for entry in _scandir(directory):
            if entry.is_dir(follow_symlinks=False):
                yield from _matching_files(entry.path, pattern, f"{prefix}{entry.name}/")
        return
    if _GLOB_MAGIC.search(head):
        entries = [e for e in _scandir(directory) if fnmatch.fnmatchcase(e.name, head)]
    else:
        entries = [e for e in _scandir(directory) if e.name == head]
    for entry in entries:
        if rest:
            if entry.is_dir(follow_symlinks=False):
                yield from _matching_files(entry.path, rest, f"{prefix}{entry.name}/")
        elif entry.is_file():
            yield f"{prefix}{entry.name}"


def _scandir(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []


def count_glob_matches(root: str | os.PathLike[str], pattern: str) -> int:
    """Count files below ``root`` matching a canonical guardrail pattern (see module doc)."""
    return len(set(_matching_files(os.fspath(root), _expanded(pattern.split("/")), "")))


def _violation(guardrail: _WorkspaceGuardrail, root: Path) -> str | None:
    """Return the failure detail of one guardrail, or None when it holds."""
    target = root / guardrail.path
    if guardrail.kind == "require_file":
        return None if target.is_file() else "did not find a file"
    if guardrail.kind == "require_dir":
        return None if target.is_dir() else "did not find a directory"
    matched = count_glob_matches(root, guardrail.path)
    if guardrail.kind == "forbid_glob":
        return None if matched == 0 else f"matched {matched} files"
    if guardrail.min_count is not None and matched < guardrail.min_count:
        return f"matched {matched} files; min_count={guardrail.min_count}"
    if guardrail.max_count is not None and matched > guardrail.max_count:
        return f"matched {matched} files; max_count={guardrail.max_count}"
    return None


def check_guardrails(
    root: str | os.PathLike[str],
    guardrails: Sequence[_WorkspaceGuardrail],
    phase: GuardrailPhase,
) -> None:
    """Evaluate guardrails in order; raise GuardrailViolation for the first that fails."""
    if phase not in ("pre", "post"):
        raise ValueError("guardrail phase must be 'pre' or 'post'")
    root_path = Path(root)
    for guardrail in guardrails:
        detail = _violation(guardrail, root_path)
        if detail is not None:
            raise GuardrailViolation(f"{phase} guardrail {guardrail.label()} {detail}")
