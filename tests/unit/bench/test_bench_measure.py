"""``perago.bench.transfer.measure``: each tool's peak RSS is its own, never the bench driver's."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from perago.bench.transfer import measure

BALLAST_MIB = 160


def test_peak_rss_excludes_the_driver_process() -> None:
    # Linux carries the high-water RSS across exec: a child spawned straight from this process
    # would report at least the ballast held here.
    ballast = bytearray(BALLAST_MIB << 20)
    for offset in range(0, len(ballast), 4096):
        ballast[offset] = 1
    measured = measure([sys.executable, "-I", "-S", "-c", "pass"], dict(os.environ))
    assert 0 < measured.peak_rss_mb < BALLAST_MIB / 2
    assert measured.seconds > 0
    del ballast


def test_peak_rss_sees_the_child_own_memory() -> None:
    grow = "b = bytearray(96 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1"
    measured = measure([sys.executable, "-I", "-S", "-c", grow], dict(os.environ))
    assert measured.peak_rss_mb >= 96


def test_failing_child_fails_with_its_output() -> None:
    command = [sys.executable, "-c", "import sys; sys.exit('boom from child')"]
    with pytest.raises(RuntimeError, match=r"failed \(1\): boom from child"):
        measure(command, dict(os.environ))


def test_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-tool"
    with pytest.raises(RuntimeError, match=f"cannot start {re.escape(str(missing))}"):
        measure([str(missing)], dict(os.environ))
