"""``perago check MODULE [--json]``: validate the runtime config and the task module offline.

With ``PERAGO_CACHE_DIR`` set, the content cache is opened (created) to show how its entries
reach workspaces on that file system; a cache that cannot be opened fails the check.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from perago.cli.cache import open_configured_cache, short_size
from perago.cli.support import MODULE_ARGUMENT, WarningPrinter, cli_errors, prepare_task
from perago.config import CACHE_DIR, RuntimeConfig, conductor_auth

if TYPE_CHECKING:
    from perago.engine.cache import ContentCache


def _configured(value: object) -> str:
    return "configured" if value is not None else "not configured"


def _open_content_cache(config: RuntimeConfig) -> ContentCache | None:
    """The configured cache, opened (created) to learn how entries reach workspaces here."""
    return None if config.cache is None else open_configured_cache(config.cache)


def _cache_document(cache: ContentCache | None) -> dict[str, object] | None:
    if cache is None:
        return None
    return {"directory": str(cache.dir), "max_size": cache.max_size, "clone_mode": cache.mode}


def _describe_cache(cache: ContentCache | None) -> str:
    if cache is None:
        return f"off (set {CACHE_DIR} to enable)"
    limit = short_size(cache.max_size)
    return f"{cache.dir} (max_size {limit}, clone_mode {cache.mode})"


def _describe_metrics(config: RuntimeConfig) -> str:
    metrics = config.metrics
    if metrics is None:
        return "not configured"
    parts = [
        f"metrics {metrics.endpoint or 'not pushed'}",
        f"traces {metrics.traces_endpoint or 'off'}",
        f"prometheus port {metrics.prometheus_port or 'off'}",
        f"service {metrics.service_name}",
    ]
    if metrics.instance_id:
        parts.append(f"instance {metrics.instance_id}")
    headers = sorted({*metrics.metrics_headers, *metrics.traces_headers})
    if headers:
        parts.append(f"headers {','.join(headers)} (values hidden)")
    return "; ".join(parts)


def check_command(
    module_target: str = MODULE_ARGUMENT,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of lines."),
) -> None:
    """Validate the runtime config and the task module without touching the network."""
    from perago.conductor.sdk_config import sdk_worker_settings

    printer = WarningPrinter()
    with cli_errors():
        prepared = prepare_task(module_target, printer)
        auth = conductor_auth(prepared.config.merged_env)
        content_cache = _open_content_cache(prepared.config)
    config = prepared.config
    # What the conductor-python worker would run with (same variables, same priority).
    sdk_worker = sdk_worker_settings(prepared.task.name, config.merged_env)
    if (ignored := sdk_worker.ignored_warning()) is not None:
        printer.emit(ignored)
    facts: dict[str, object] = {
        "workspace_root": str(config.workspace_root),
        "log_root": str(config.log_root),
        "worker_id_prefix": config.worker_id_prefix,
        "conductor": _configured(config.conductor),
        "lakefs": _configured(config.lakefs),
        "conductor_auth": _configured(auth),
    }
    if as_json:
        document = {
            "ok": True,
            "name": prepared.task.name,
            **facts,
            "content_cache": _cache_document(content_cache),
            "metrics": config.metrics.describe() if config.metrics is not None else None,
            "sdk_worker": sdk_worker.as_dict(),
            "body_env_passthrough": list(config.body_env_passthrough),
        }
        typer.echo(json.dumps({**document, "warnings": printer.messages}))
        return
    typer.echo(f"ok: {prepared.task.name}")
    for key, value in facts.items():
        typer.echo(f"{key}: {value}")
    typer.echo(f"content_cache: {_describe_cache(content_cache)}")
    typer.echo(f"metrics: {_describe_metrics(config)}")
    typer.echo(f"sdk_worker: {sdk_worker.describe()}")
    typer.echo(f"body_env_passthrough: {','.join(config.body_env_passthrough) or '(none)'}")
