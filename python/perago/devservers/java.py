"""Find a JDK new enough for the Conductor jar among the machine's installed JDKs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from perago.devservers.errors import DevServerError

JVM_ROOT = Path("/usr/lib/jvm")
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


@dataclass(frozen=True)
class JavaRuntime:
    executable: Path
    major: int


def java_major(executable: Path) -> int | None:
    """The feature version reported by ``java -version`` (``1.8`` counts as 8), or None."""
    try:
        result = subprocess.run(
            [str(executable), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(result.stderr + result.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _candidates() -> list[Path]:
    found: list[Path] = []
    explicit = os.environ.get("PERAGO_JAVA", "").strip()
    if explicit:
        found.append(Path(explicit))
    java_home = os.environ.get("JAVA_HOME", "").strip()
    if java_home:
        found.append(Path(java_home) / "bin" / "java")
    if JVM_ROOT.is_dir():
        found += sorted(p / "bin" / "java" for p in JVM_ROOT.iterdir() if not p.is_symlink())
    on_path = shutil.which("java")
    if on_path:
        found.append(Path(on_path))
    return [p for p in dict.fromkeys(found) if p.is_file()]


def find_java(min_major: int) -> JavaRuntime:
    """``$PERAGO_JAVA`` if set, else the newest installed JDK whose version is >= ``min_major``."""
    explicit = os.environ.get("PERAGO_JAVA", "").strip()
    seen: list[str] = []
    best: JavaRuntime | None = None
    for candidate in _candidates():
        major = java_major(candidate)
        seen.append(f"{candidate} ({major or '?'})")
        if major is None or major < min_major:
            continue
        runtime = JavaRuntime(candidate, major)
        if explicit and str(candidate) == explicit:
            return runtime
        if best is None or major > best.major:
            best = runtime
    if best is None:
        raise DevServerError(
            f"Conductor needs Java {min_major}+; found only: {', '.join(seen) or 'no JDK'} "
            "(set PERAGO_JAVA to a java executable)"
        )
    return best
