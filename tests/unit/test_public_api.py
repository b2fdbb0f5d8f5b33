"""The curated ``perago`` namespace: every public name resolves, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import perago


def test_every_public_name_resolves() -> None:
    missing = [name for name in perago.__all__ if not hasattr(perago, name)]
    assert missing == []
    assert sorted(perago.__all__) == perago.__all__
    assert set(dir(perago)) >= set(perago.__all__)


def test_task_is_the_decorator_even_after_its_module_is_imported() -> None:
    import perago.definition.decorator as definition

    assert perago.task is definition.task
    assert callable(perago.task)


def test_import_perago_loads_no_heavy_dependency() -> None:
    probe = (
        "import sys, perago, perago.engine.transfer\n"
        "heavy = [m for m in ('pydantic', 'loguru', 'conductor', 'typer', 'lakefs_sdk')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


def test_the_export_table_is_the_stub_and_only_perago_names() -> None:
    stub = (Path(perago.__file__).parent / "__init__.pyi").read_text(encoding="utf-8")
    exported = [line.split(" as ")[-1] for line in stub.splitlines() if line.startswith("from ")]
    assert sorted([*exported, "__version__"]) == perago.__all__
    assert all(line.startswith("from perago.") for line in stub.splitlines() if "import" in line)
