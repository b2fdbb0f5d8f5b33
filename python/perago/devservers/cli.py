"""``perago dev up|down|status|provision``: local lakeFS and Conductor for development."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from perago.devservers import paths, provision, supervisor
from perago.devservers.envfile import update_env_file
from perago.devservers.errors import DevServerError
from perago.devservers.state import DevState

dev_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Start/stop local lakeFS, Conductor (and MinIO) servers (loopback only) for development.",
)

_STATE_DIR_HELP = "Where server data, logs and pids live (default: ~/.cache/perago/state/default)."
StateDirOption = Annotated[
    Path | None, typer.Option("--state-dir", help=_STATE_DIR_HELP, show_default=False)
]
EnvFileOption = Annotated[Path, typer.Option("--env-file", help="The .env file to update.")]
BlockstoreOption = Annotated[
    str,
    typer.Option(
        "--blockstore",
        help="lakeFS's blockstore: `local` (a directory) or `s3` (a MinIO started alongside).",
    ),
]
S3_ENV_KEYS = (
    "PERAGO_DEV_S3_ENDPOINT",
    "PERAGO_DEV_S3_REGION",
    "PERAGO_DEV_S3_BUCKET",
    "PERAGO_DEV_S3_ACCESS_KEY_ID",
    "PERAGO_DEV_S3_SECRET_ACCESS_KEY",
)


def _fail(exc: Exception) -> typer.Exit:
    # One line on stderr; multi-line details (log tails) follow on their own lines.
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


def _resolve_state_dir(state_dir: Path | None) -> Path:
    return (state_dir or paths.default_state_dir()).expanduser().resolve()


def env_values(current: DevState) -> dict[str, str]:
    """The variables load_runtime_config reads, pointing at the running servers; on the s3
    blockstore also the MinIO bucket under lakeFS (``PERAGO_DEV_S3_*``: for inspecting objects
    and for storage namespaces ``s3://<bucket>/...``)."""
    values = {
        "CONDUCTOR_SERVER_URL": current.conductor_api_url,
        "LAKECTL_SERVER_ENDPOINT_URL": current.lakefs.url,
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": current.access_key_id,
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": current.secret_access_key,
    }
    if current.s3 is not None:
        s3 = current.s3
        s3_values = (s3.endpoint, s3.region, s3.bucket, s3.access_key_id, s3.secret_access_key)
        values.update(zip(S3_ENV_KEYS, s3_values, strict=True))
    return values


@dev_app.command()
def up(
    state_dir: StateDirOption = None,
    env_file: EnvFileOption = Path(".env"),
    blockstore: BlockstoreOption = "local",
) -> None:
    """Start lakeFS and Conductor (on `--blockstore s3`, MinIO first), wait until healthy,
    write their endpoints to .env."""
    try:
        current = supervisor.up(_resolve_state_dir(state_dir), blockstore=blockstore)
        # Switching back to local drops the PERAGO_DEV_S3_* lines a former s3 stack wrote.
        update_env_file(env_file, env_values(current), remove=S3_ENV_KEYS)
    except (DevServerError, OSError) as exc:
        raise _fail(exc) from None
    typer.echo(f"lakeFS:    {current.lakefs.url} (pid {current.lakefs.pid})")
    typer.echo(f"Conductor: {current.conductor_api_url} (pid {current.conductor.pid})")
    if current.minio is not None and current.s3 is not None:
        typer.echo(
            f"MinIO:     {current.minio.url} (pid {current.minio.pid}); "
            f"storage namespaces under {current.s3.namespace_root}/"
        )
    typer.echo(f"access key id: {current.access_key_id}; secret written to {env_file}")


@dev_app.command()
def down(
    state_dir: StateDirOption = None,
) -> None:
    """Stop the servers started by `up` (whole process groups) and check their ports are free."""
    try:
        stopped = supervisor.down(_resolve_state_dir(state_dir))
    except (DevServerError, OSError) as exc:
        raise _fail(exc) from None
    typer.echo("stopped" if stopped else "nothing running")


@dev_app.command()
def status(
    state_dir: StateDirOption = None,
) -> None:
    """Print each server's URL, pid and health; exit 1 unless all are healthy."""
    resolved = _resolve_state_dir(state_dir)
    try:
        checks = supervisor.status(resolved)
    except (DevServerError, OSError, ValueError, KeyError) as exc:
        raise _fail(exc) from None
    if checks is None:
        typer.echo(f"error: no dev servers recorded in {resolved}", err=True)
        raise typer.Exit(1)
    for check in checks:
        state_word = "healthy" if check.healthy else ("unhealthy" if check.running else "dead")
        typer.echo(f"{check.name:<10} {check.url:<28} pid {check.pid:<8} {state_word}")
    if not all(c.healthy for c in checks):
        raise typer.Exit(1)


@dev_app.command("provision")
def provision_command() -> None:
    """Build/fetch lakeFS, lakectl, MinIO and the Conductor jar into the cache (no servers
    started)."""
    try:
        provision.provision_all()
    except (DevServerError, OSError) as exc:
        raise _fail(exc) from None
