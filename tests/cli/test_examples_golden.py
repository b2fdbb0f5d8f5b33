"""``perago extract`` of the shipped examples matches the reviewed golden TaskDefs byte for byte.

To update a golden after an intentional TaskDef change, run from the repository root
``perago extract examples.<name> -o tests/golden/<name>.json``, review the diff, and commit it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import perago_executable

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = REPO_ROOT / "tests" / "golden"


@pytest.mark.parametrize("name", ["render_audio", "word_count"])
def test_extract_matches_golden(tmp_path: Path, name: str) -> None:
    output = tmp_path / f"{name}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERAGO_", "PYTHON"))}
    env["PERAGO_WORKSPACE_ROOT"] = str(tmp_path / "workspaces")
    env["PERAGO_LOG_ROOT"] = str(tmp_path / "logs")
    completed = subprocess.run(
        [str(perago_executable()), "extract", f"examples.{name}", "-o", str(output)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert completed.stdout == f"{output}\n"
    assert output.read_text(encoding="utf-8") == (GOLDEN_DIR / f"{name}.json").read_text(
        encoding="utf-8"
    )
