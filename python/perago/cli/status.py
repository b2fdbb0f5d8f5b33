"""``perago status [--json]``: this host's supervisors, each slot's attempt, phase and progress.

Reads the status files the supervisors keep in ``PERAGO_WORKSPACE_ROOT`` (one per host and
root); a supervisor whose process is gone is shown as such (its file outlived a kill).
"""

from __future__ import annotations

import json
from typing import Any

import typer

from perago.cli.support import cli_errors
from perago.config import host_token, load_runtime_config
from perago.runtime.console import human_size

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON array of supervisors.")


def _progress(progress: dict[str, Any] | None) -> str:
    if not progress:
        return ""
    done, total = progress.get("bytes_done", 0), progress.get("bytes_total", 0)
    share = f"{100.0 * done / total:.0f}% " if total else ""
    files = f", {progress.get('files_done', 0)} of {progress.get('files_total', 0)} files"
    return f" {share}({human_size(done)} of {human_size(total)}{files})"


def slot_line(slot: dict[str, Any]) -> str:
    head = f"  slot {slot.get('slot')} {slot.get('worker_id')}"
    if slot.get("pid") is None:
        return head + ": restarting"
    head += f" pid {slot['pid']}"
    attempt = slot.get("attempt")
    if not attempt:
        return head + (": idle" if slot.get("ready") else ": starting")
    line = (
        f"{head}: task {attempt.get('task_id')} (workflow {attempt.get('workflow_instance_id')}, "
        f"retry {attempt.get('retry_count')})"
    )
    if slot.get("phase"):
        line += f" phase {slot['phase']}{_progress(slot.get('progress'))}"
    return line


def board_lines(board: dict[str, Any]) -> list[str]:
    state = {"alive": "running", "dead": "not running (stale status)"}.get(
        str(board.get("alive")), "on another host or boot"
    )
    lines = [
        f"supervisor pid {board.get('supervisor_pid')} ({board.get('mode')} mode, module "
        f"{board.get('module')}): {state}; started {board.get('started_at')}, "
        f"updated {board.get('updated_at')}"
    ]
    lines.extend(slot_line(slot) for slot in board.get("slots", []))
    return lines


def status_command(as_json: bool = JSON_OPTION) -> None:
    """Show this host's supervisors: each slot's current attempt, phase and progress."""
    from perago.runtime.status_board import read_boards

    with cli_errors():
        # The module target only shapes the default worker id prefix, which status never uses.
        config = load_runtime_config("perago", probe_roots=False)
        boards = read_boards(config.workspace_root, host_token(config.merged_env))
    if as_json:
        typer.echo(json.dumps(boards))
        return
    if not boards:
        typer.echo(f"no supervisor of this host runs on {config.workspace_root}")
        return
    for board in boards:
        for line in board_lines(board):
            typer.echo(line)
