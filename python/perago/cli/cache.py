"""``perago cache status|prune|verify``: inspect and maintain the host's content cache.

The cache is the one ``PERAGO_CACHE_DIR`` names (the environment or ``./.env``, like every other
command), limited to ``PERAGO_CACHE_MAX_SIZE``. No task module is needed. Without a configured
cache every command fails with one ``error:`` line. Progress bars go to stderr, and only when it
is a terminal; results go to stdout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from perago.cli.support import CliError, cli_errors
from perago.config import CACHE_DIR, CacheConfig, _parse_size, load_runtime_config
from perago.errors import RuntimeConfigError

if TYPE_CHECKING:
    from perago.engine.cache import ContentCache

__all__ = [
    "cache_app",
    "configured_cache",
    "describe_size",
    "open_configured_cache",
    "parse_prune_target",
    "short_size",
]

cache_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Show, prune or verify the host's content cache of lakeFS objects.",
)

# What `_parse_size` accepts but rejects as zero ("0KB", "0.0 GB"), and a bare "0".
_ZERO_SIZE_RE = re.compile(r"0(\.0+)?(\s*[KMGT]B)?", re.IGNORECASE)
_SIZE_UNITS = (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("KB", 1024))

TO_OPTION = typer.Option(
    None,
    "--to",
    metavar="SIZE",
    help="Prune down to SIZE, e.g. '512MB', '10GB' or 0 to empty the cache "
    "(default: PERAGO_CACHE_MAX_SIZE).",
    show_default=False,
)
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object instead of lines.")


def describe_size(size: int) -> str:
    """``'512 bytes'``, or the size in the units of ``PERAGO_CACHE_MAX_SIZE`` (1024-based) with
    the exact byte count: ``'10GB (10737418240 bytes)'``."""
    for unit, factor in _SIZE_UNITS:
        if size >= factor:
            text = f"{size / factor:.1f}".removesuffix(".0")
            return f"{text}{unit} ({size} bytes)"
    return f"{size} byte{'' if size == 1 else 's'}"


def short_size(size: int) -> str:
    """:func:`describe_size` without the exact count (for one-line summaries)."""
    return describe_size(size).split(" (", 1)[0]


def _count(number: int, singular: str, plural: str) -> str:
    return f"{number} {singular if number == 1 else plural}"


def parse_prune_target(text: str) -> int:
    """``--to``: a size in the ``PERAGO_CACHE_MAX_SIZE`` syntax, or zero (empty the cache)."""
    value = text.strip()
    if _ZERO_SIZE_RE.fullmatch(value):
        return 0
    try:
        return _parse_size("--to", value)
    except RuntimeConfigError:
        raise CliError(
            f"--to must be 0 or a size such as '512MB', '10GB' or '1TB', got {text!r}"
        ) from None


def configured_cache() -> CacheConfig:
    """The cache of the runtime config; without ``PERAGO_CACHE_DIR`` the command cannot run."""
    # The module target only shapes the default worker id prefix, which these commands never
    # use; nor do they need the workspace and log roots, so those are not probed (created).
    config = load_runtime_config("perago", probe_roots=False)
    if config.cache is None:
        raise CliError(f"{CACHE_DIR} is not set: no content cache is configured")
    return config.cache


def open_configured_cache(cache: CacheConfig) -> ContentCache:
    """Open (creating) ``cache``; failures are one-line config errors naming its directory."""
    from perago.engine.cache import open_cache

    return open_cache(cache.directory, cache.max_size)


@contextmanager
def _entry_progress(description: str) -> Iterator[Callable[[int, int], object] | None]:
    """A ``(done, total)`` entries callback drawing one transient bar on stderr, or ``None``
    when stderr is not a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@cache_app.command("status")
def status_command(as_json: bool = JSON_OPTION) -> None:
    """Print the cache's directory, clone mode, size limit, entries and temp files."""
    from perago.engine.cache import status

    with cli_errors():
        current = status(open_configured_cache(configured_cache()))
    if as_json:
        document = {
            "directory": current.directory,
            "clone_mode": current.mode,
            "max_size": current.max_size,
            "entries": current.entries,
            "bytes": current.bytes,
            "temp_files": current.partials,
            "temp_file_bytes": current.partial_bytes,
        }
        typer.echo(json.dumps(document))
        return
    typer.echo(f"directory: {current.directory}")
    typer.echo(f"clone_mode: {current.mode}")
    typer.echo(f"max_size: {describe_size(current.max_size)}")
    typer.echo(f"entries: {current.entries}")
    typer.echo(f"size: {describe_size(current.bytes)}")
    typer.echo(f"temp_files: {current.partials} ({describe_size(current.partial_bytes)})")


@cache_app.command("prune")
def prune_command(to: str | None = TO_OPTION) -> None:
    """Evict least recently used entries down to SIZE and remove abandoned temp files.

    An entry a running attempt is reading stays readable to it; temp files of fetches still in
    progress are kept.
    """
    from perago.engine.cache import prune

    with cli_errors():
        target = None if to is None else parse_prune_target(to)
        cache = open_configured_cache(configured_cache())
        with _entry_progress("prune") as progress:
            result = prune(cache, target, progress=progress)
    typer.echo(
        f"pruned {_count(result.evicted, 'entry', 'entries')} "
        f"({short_size(result.evicted_bytes)}), "
        f"kept {result.entries} ({short_size(result.bytes)}); "
        f"removed {_count(result.partials_removed, 'abandoned temp file', 'abandoned temp files')}"
    )


@cache_app.command("verify")
def verify_command() -> None:
    """Re-hash every entry and evict those whose bytes changed; exit status 1 if any did.

    An evicted entry is fetched again the next time a download needs it.
    """
    from perago.engine.cache import verify

    with cli_errors():
        cache = open_configured_cache(configured_cache())
        with _entry_progress("verify") as progress:
            result = verify(cache, progress=progress)
    corrupt = f"{result.corrupt} corrupt, evicted" if result.corrupt else "none corrupt"
    typer.echo(
        f"verified {_count(result.checked, 'entry', 'entries')} "
        f"({short_size(result.bytes)}): {corrupt}"
    )
    if result.corrupt:
        raise typer.Exit(1)
