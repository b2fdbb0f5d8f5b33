"""``perago gc [--lakefs REPO]``: remove abandoned attempt directories and staging branches."""

from __future__ import annotations

import typer

from perago.gc import collect_attempt_workspaces
from perago.runtime_cli import fail, load_config


def gc_command(
    lakefs_repository: str | None = typer.Option(
        None, "--lakefs", help="Also delete stale perago staging branches of this repository."
    ),
    module_target: str = typer.Option(
        "perago", "--module", help="Module whose configuration (worker id prefix) to load."
    ),
) -> None:
    """Garbage-collect attempt workspaces older than PERAGO_WORKSPACE_GC_TTL (and staging branches)."""
    config = load_config(module_target)
    report = collect_attempt_workspaces(config.workspace_root, ttl=config.workspace_gc_ttl)
    for path in report.removed:
        typer.echo(f"removed workspace: {path}")
    for path, error in report.errors:
        typer.echo(f"warning: could not collect {path}: {error}", err=True)
    if lakefs_repository is not None:
        if config.lakefs is None:
            fail("LakeFS config is required for perago gc --lakefs")
        from perago.lakefs_runtime import LakeFSWorkspaceRuntime

        runtime = LakeFSWorkspaceRuntime.from_config(config.lakefs)
        try:
            deleted = runtime.delete_stale_staging_branches(
                lakefs_repository, older_than=config.workspace_gc_ttl
            )
        except Exception as exc:
            fail(f"could not collect staging branches of {lakefs_repository}: {exc}")
        for branch in deleted:
            typer.echo(f"removed staging branch: {lakefs_repository}/{branch}")
    typer.echo(
        f"gc: {len(report.removed)} workspace(s) removed, {len(report.kept)} kept, "
        f"{len(report.errors)} error(s)"
    )


def register(app: typer.Typer) -> None:
    app.command("gc")(gc_command)
