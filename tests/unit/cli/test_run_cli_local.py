"""``perago run`` through the real console script against a local directory."""

from __future__ import annotations

import json
from pathlib import Path

from tests.run_cli_support import make_project, run_perago


def test_local_directory_mode_prints_result_and_changes(tmp_path: Path) -> None:
    project = make_project(tmp_path, "localtask")
    source = tmp_path / "ws"
    (source / "keep").mkdir(parents=True)
    (source / "keep" / "a.txt").write_text("aaaa")
    (source / "gone.txt").write_text("bye")
    done = run_perago(
        project,
        [
            "run",
            "localtask",
            "--params",
            '{"name": "ab", "drop": "gone.txt"}',
            "--workspace",
            str(source),
        ],
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["status"] == "COMPLETED"
    assert payload["output"]["result"] == {"written": "ab"}
    assert (
        "changes: added 1 files (6 bytes), modified 0 files (0 bytes), removed 1 files (3 bytes)"
        in done.stderr
    )
    assert "added: out/ab.txt" in done.stderr
    assert "removed: gone.txt" in done.stderr
    # The original directory is untouched and no attempt directory is left behind.
    assert sorted(p.relative_to(source).as_posix() for p in source.rglob("*")) == [
        "gone.txt",
        "keep",
        "keep/a.txt",
    ]
    assert list((tmp_path / "attempts").iterdir()) == []


def test_params_from_file_and_bad_input_errors(tmp_path: Path) -> None:
    project = make_project(tmp_path, "localtask2")
    (tmp_path / "ws").mkdir()
    (tmp_path / "p.json").write_text('{"name": "z"}')
    done = run_perago(
        project,
        [
            "run",
            "localtask2",
            "--params",
            f"@{tmp_path / 'p.json'}",
            "--workspace",
            str(tmp_path / "ws"),
        ],
    )
    assert done.returncode == 0, done.stderr

    bad_json = run_perago(project, ["run", "localtask2", "--params", "{", "--workspace", "."])
    assert bad_json.returncode == 1
    assert bad_json.stderr.startswith("error: --params is not valid JSON")
    assert len(bad_json.stderr.strip().splitlines()) == 1

    no_ws = run_perago(project, ["run", "localtask2", "--params", "{}"])
    assert no_ws.returncode == 1
    assert no_ws.stderr.strip() == (
        "error: localtask2 is a workspace task; pass --workspace DIR or --lakefs REPO@REF"
    )

    invalid = run_perago(
        project,
        ["run", "localtask2", "--params", '{"nme": 1}', "--workspace", str(tmp_path / "ws")],
    )
    assert invalid.returncode == 1
    assert json.loads(invalid.stdout)["status"] == "FAILED_WITH_TERMINAL_ERROR"
    assert invalid.stderr.startswith(
        "error: task FAILED_WITH_TERMINAL_ERROR: TaskInputError: invalid params"
    )
    assert "Traceback" not in invalid.stderr
