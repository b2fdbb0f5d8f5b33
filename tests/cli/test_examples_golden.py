"""``perago extract`` of the shipped examples matches the reviewed golden TaskDefs byte for byte.

To update a golden after an intentional TaskDef change, run from the repository root
``perago extract examples.<name> -o tests/golden/<name>.json``, review the diff, and commit it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import perago_executable
from tests.run_cli_support import clean_environment, run_captured

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = REPO_ROOT / "tests" / "golden"


@pytest.mark.parametrize("name", ["render_audio", "word_count"])
def test_extract_matches_golden(tmp_path: Path, name: str) -> None:
    output = tmp_path / f"{name}.json"
    env = clean_environment(
        {
            "PERAGO_WORKSPACE_ROOT": str(tmp_path / "workspaces"),
            "PERAGO_LOG_ROOT": str(tmp_path / "logs"),
        },
        without=("PERAGO_", "PYTHON"),
    )
    completed = run_captured(
        [perago_executable(), "extract", f"examples.{name}", "-o", output],
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert completed.stdout == f"{output}\n"
    assert output.read_text(encoding="utf-8") == (GOLDEN_DIR / f"{name}.json").read_text(
        encoding="utf-8"
    )
