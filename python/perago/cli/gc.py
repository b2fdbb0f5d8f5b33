"""``perago gc [--lakefs REPO]``: remove abandoned attempt directories and staging branches."""

from __future__ import annotations

import typer

from perago.cli.support import CliError, cli_errors
from perago.config import RuntimeConfig, load_runtime_config

LAKEFS_OPTION = typer.Option(
    None,
    "--lakefs",
    metavar="REPO",
    help="Also delete perago staging branches of REPO whose task Conductor reports ended.",
)


def gc_command(lakefs_repository: str | None = LAKEFS_OPTION) -> None:
    """Remove attempt workspaces whose owner is gone and staging branches proven abandoned.

    A workspace goes when its owner process is dead (this host) or its heartbeat is older than
    PERAGO_WORKSPACE_GC_TTL (another host); a staging branch only when Conductor shows that its
    attempt can never publish (never by age).
    """
    from perago.runtime.workspace_gc import collect_attempt_workspaces

    with cli_errors():
        # The module target only shapes the default worker id prefix, which gc never uses.
        config = load_runtime_config("perago")
        report = collect_attempt_workspaces(config.workspace_root, ttl=config.workspace_gc_ttl)
        for path in report.removed:
            typer.echo(f"removed workspace: {path}")
        for path, error in report.errors:
            typer.echo(f"warning: could not collect {path}: {error}", err=True)
        branches: list[str] = []
        if lakefs_repository is not None:
            if config.lakefs is None:
                raise CliError("LakeFS config is required for perago gc --lakefs")
            branches = _collect_staging_branches(config, lakefs_repository)
            _reconcile_publications(config, lakefs_repository)
        for branch in branches:
            typer.echo(f"removed staging branch: {lakefs_repository}/{branch}")
    typer.echo(
        f"gc: {len(report.removed)} workspace(s) and {len(branches)} staging branch(es) removed"
    )


def _collect_staging_branches(config: RuntimeConfig, repository: str) -> list[str]:
    """Delete the staging branches proven abandoned (perago.attempt.staging); without Conductor
    none can be proven, so none is deleted."""
    from perago.conductor.client import ConductorClient
    from perago.lakefs.workspace import LakeFSWorkspaceRuntime, StaleStagingBranch

    assert config.lakefs is not None
    timeout = config.control_timeout.total_seconds()
    runtime = LakeFSWorkspaceRuntime.from_config(config.lakefs, control_timeout_seconds=timeout)
    if config.conductor is None:
        typer.echo(
            "note: staging branches not collected: CONDUCTOR_SERVER_URL is not set (a staging "
            "branch is deleted only when Conductor shows its task can no longer publish)",
            err=True,
        )
        return []
    client = ConductorClient.from_config(config)
    kept: list[StaleStagingBranch] = []
    stale = runtime.list_stale_staging_branches(repository, client, kept)
    for item in kept:
        typer.echo(f"kept staging branch: {repository}/{item.branch} ({item.reason})")
    failed = set(runtime.delete_staging_branches(stale))
    for branch in sorted(failed):
        typer.echo(f"warning: could not delete staging branch {repository}/{branch}", err=True)
    return [f"{item.branch} ({item.reason})" for item in stale if item.branch not in failed]


def _reconcile_publications(config: RuntimeConfig, repository: str) -> None:
    """Roll back head publications of tasks that ended without completing them (docs/adr/0007)."""
    from perago.conductor.client import ConductorClient
    from perago.lakefs.workspace import LakeFSWorkspaceRuntime

    assert config.lakefs is not None
    if config.conductor is None:
        typer.echo("note: publications not reconciled: CONDUCTOR_SERVER_URL is not set", err=True)
        return
    timeout = config.control_timeout.total_seconds()
    client = ConductorClient.from_config(config)
    runtime = LakeFSWorkspaceRuntime.from_config(config.lakefs, control_timeout_seconds=timeout)
    failures: list[tuple[str, str]] = []
    for branch, commit in runtime.reconcile_publications(repository, client, failures):
        typer.echo(f"rolled back abandoned publication: {repository}/{branch} {commit}")
    for branch, reason in failures:
        typer.echo(f"warning: could not reconcile {repository}/{branch}: {reason}", err=True)
