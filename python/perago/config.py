"""Worker-local runtime configuration: ``<cwd>/.env`` overlaid by the process environment.

Everything here is about *where and how* a worker runs (directories, log rotation, connection
settings). Nothing in this module ever ends up in a TaskDef: the TaskDef is derived from the task
declaration alone, so the same JSON is produced on every machine.

Variables are parsed in a fixed order and the first problem wins, so an operator fixing one error
at a time always sees the next one in the same order.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr

from perago.errors import RuntimeConfigError
from perago.host.secure_files import ensure_private_directory, unsafe_directory_reason
from perago.metrics.settings import MetricsConfig, load_metrics_config

__all__ = [
    "BODY_ENV_PASSTHROUGH",
    "CACHE_DIR",
    "CACHE_MAX_SIZE",
    "CREDENTIAL_VARIABLES",
    "DOTENV_FILENAME",
    "REPLACE_ME",
    "CacheConfig",
    "ConductorAuth",
    "ConductorConfig",
    "ExecutionMode",
    "LakeFSConfig",
    "MetricsConfig",
    "RuntimeConfig",
    "body_environment_removals",
    "conductor_auth",
    "current_worker_id",
    "derive_worker_id_prefix",
    "host_token",
    "load_runtime_config",
    "merged_environment",
    "parse_dotenv",
    "probe_writable_root",
    "slot_worker_id",
]

ExecutionMode = Literal["process", "thread"]
TransferMode = Literal["auto", "presign", "lakefs"]

DOTENV_FILENAME = ".env"
# The placeholder shipped in example .env files; it must never reach a server.
REPLACE_ME = "replace-me"

WORKSPACE_ROOT = "PERAGO_WORKSPACE_ROOT"
LOG_ROOT = "PERAGO_LOG_ROOT"
LOG_FILE_MAX_SIZE = "PERAGO_LOG_FILE_MAX_SIZE"
LOG_RETENTION = "PERAGO_LOG_RETENTION"
# What `perago start` prints to the console (the JSONL files are unaffected).
LOG_FORMAT = "PERAGO_LOG_FORMAT"
LOG_LEVEL = "PERAGO_LOG_LEVEL"
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
WORKER_ID_PREFIX = "PERAGO_WORKER_ID_PREFIX"
WORKER_ID = "PERAGO_WORKER_ID"
# Tells hosts (or containers sharing a kernel) apart: worker ids, supervisor locks, liveness.
INSTANCE_ID = "PERAGO_INSTANCE_ID"
EXECUTION_MODE = "PERAGO_EXECUTION_MODE"
WORKSPACE_GC_TTL = "PERAGO_WORKSPACE_GC_TTL"
WORKSPACE_GC_INTERVAL = "PERAGO_WORKSPACE_GC_INTERVAL"
SHUTDOWN_FORCE_KILL_AFTER = "PERAGO_SHUTDOWN_FORCE_KILL_AFTER"
FAILURE_REASON_MAX_LENGTH = "PERAGO_FAILURE_REASON_MAX_LENGTH"
CONTROL_TIMEOUT = "PERAGO_CONTROL_TIMEOUT"
CONDUCTOR_SERVER_URL = "CONDUCTOR_SERVER_URL"
LAKEFS_ENDPOINT_URL = "LAKECTL_SERVER_ENDPOINT_URL"
LAKEFS_ACCESS_KEY_ID = "LAKECTL_CREDENTIALS_ACCESS_KEY_ID"
LAKEFS_SECRET_ACCESS_KEY = "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"
LAKEFS_VARIABLES = (LAKEFS_ENDPOINT_URL, LAKEFS_ACCESS_KEY_ID, LAKEFS_SECRET_ACCESS_KEY)
# Where workspace bytes travel: presigned object-store URLs when lakeFS offers them ("auto"),
# always presigned ("presign"), or always through the lakeFS server ("lakefs").
TRANSFER_MODE = "PERAGO_TRANSFER_MODE"
TRANSFER_MODES = ("auto", "presign", "lakefs")
# PEM bundles of trusted CAs for https endpoints, in the order consulted (the Rust engine reads
# the same two): like OpenSSL and requests, a bundle replaces the built-in roots.
CA_BUNDLE_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
# Read by perago itself and passed to the Conductor SDK explicitly (never via os.environ).
CONDUCTOR_AUTH_KEY = "CONDUCTOR_AUTH_KEY"
CONDUCTOR_AUTH_SECRET = "CONDUCTOR_AUTH_SECRET"
# Names of credential variables a task body's process (and its subprocesses) may still see.
BODY_ENV_PASSTHROUGH = "PERAGO_BODY_ENV_PASSTHROUGH"
# The host's content cache of downloaded objects (off unless a directory is named).
CACHE_DIR = "PERAGO_CACHE_DIR"
CACHE_MAX_SIZE = "PERAGO_CACHE_MAX_SIZE"
# perago's own credentials: a worker removes them from its environment once its clients exist.
CREDENTIAL_VARIABLES = (
    LAKEFS_ACCESS_KEY_ID,
    LAKEFS_SECRET_ACCESS_KEY,
    CONDUCTOR_AUTH_KEY,
    CONDUCTOR_AUTH_SECRET,
    # Collector tokens: the exporters get them from MetricsConfig, never from the environment.
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
)
_CREDENTIAL_PREFIXES = ("LAKECTL_CREDENTIALS_", "CONDUCTOR_AUTH_")

DEFAULT_LOG_FILE_MAX_SIZE = 100 * 1024 * 1024
DEFAULT_LOG_RETENTION = timedelta(days=30)
DEFAULT_CACHE_MAX_SIZE = 10 * 1024**3
DEFAULT_WORKSPACE_GC_TTL = timedelta(hours=24)
DEFAULT_WORKSPACE_GC_INTERVAL = timedelta(hours=1)
DEFAULT_FAILURE_REASON_MAX_LENGTH = 500
# Timeout of every lakeFS and Conductor control call (a PublishBudget overrides merge and reset).
DEFAULT_CONTROL_TIMEOUT_SECONDS = 60.0
DEFAULT_CONTROL_TIMEOUT = timedelta(seconds=DEFAULT_CONTROL_TIMEOUT_SECONDS)

_SIZE_RE = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?\s*(KB|MB|GB|TB)", re.IGNORECASE)
_SIZE_UNITS = {"KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_RETENTION_RE = re.compile(r"([1-9][0-9]*)d", re.IGNORECASE)
_DURATION_RE = re.compile(r"([1-9][0-9]*)([smhd])", re.IGNORECASE)
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_PREFIX_RE = re.compile(r"[A-Za-z0-9]+")
_INTEGER_RE = re.compile(r"[0-9]+")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

T = TypeVar("T")


class ConductorConfig(BaseModel):
    """Where the Conductor server is. Used by ``perago start``/``register``, never in TaskDefs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    server_url: str


class LakeFSConfig(BaseModel):
    """lakeFS endpoint and credentials; the secret key is redacted in every repr and dump."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint_url: str
    access_key_id: str
    secret_access_key: SecretStr
    transfer_mode: TransferMode = "auto"


class CacheConfig(BaseModel):
    """The host's content cache (``PERAGO_CACHE_DIR``, ``PERAGO_CACHE_MAX_SIZE``): shared by
    every worker slot and supervisor that names the same directory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    directory: Path
    max_size: int = DEFAULT_CACHE_MAX_SIZE


class ConductorAuth(BaseModel):
    """``CONDUCTOR_AUTH_KEY``/``CONDUCTOR_AUTH_SECRET``; the secret is redacted everywhere."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str
    key_secret: SecretStr


class RuntimeConfig(BaseModel):
    """The validated worker configuration (frozen).

    ``merged_env`` (not a field, so never part of a repr or dump) is the ``.env`` file overlaid by
    the process environment. Every command builds its Conductor SDK configuration from it
    (``CONDUCTOR_AUTH_KEY``/``SECRET`` passed explicitly, see ``conductor_auth``) and the worker
    resolves the SDK's ``CONDUCTOR_WORKER_*`` settings from it; worker processes also get it as
    their environment, minus perago's own credentials once their clients exist (except the names
    in ``body_env_passthrough``, from ``PERAGO_BODY_ENV_PASSTHROUGH``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    workspace_root: Path
    log_root: Path
    log_file_max_size: int = DEFAULT_LOG_FILE_MAX_SIZE
    log_retention: timedelta = DEFAULT_LOG_RETENTION
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    worker_id_prefix: str
    execution_mode: ExecutionMode = "process"
    workspace_gc_ttl: timedelta = DEFAULT_WORKSPACE_GC_TTL
    workspace_gc_interval: timedelta = DEFAULT_WORKSPACE_GC_INTERVAL
    shutdown_force_kill_after: timedelta | None = None
    failure_reason_max_length: int = DEFAULT_FAILURE_REASON_MAX_LENGTH
    control_timeout: timedelta = DEFAULT_CONTROL_TIMEOUT
    conductor: ConductorConfig | None = None
    lakefs: LakeFSConfig | None = None
    cache: CacheConfig | None = None
    metrics: MetricsConfig | None = None
    body_env_passthrough: tuple[str, ...] = ()

    # A plain dict (not a proxy) so the config stays picklable for spawned worker processes.
    _merged_env: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def merged_env(self) -> Mapping[str, str]:
        """Read-only view of ``.env`` overlaid by the process environment it was loaded from."""
        return MappingProxyType(self._merged_env)


def ca_bundle(environment: Mapping[str, str] | None = None) -> str | None:
    """The CA bundle named by the first of ``CA_BUNDLE_VARIABLES`` that is set, else None."""
    source = os.environ if environment is None else environment
    for name in CA_BUNDLE_VARIABLES:
        value = source.get(name, "").strip()
        if value:
            return value
    return None


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse ``.env`` text: ``KEY=VALUE`` lines, optional ``export``, matching quotes removed.

    There is deliberately no interpolation, escaping or inline-comment stripping: what is between
    the first ``=`` and the end of the line is the value.
    """
    values: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not key:
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def _read_dotenv(directory: Path) -> dict[str, str]:
    path = directory / DOTENV_FILENAME
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuntimeConfigError(f"{path} could not be read: {exc}") from exc
    return parse_dotenv(text)


def merged_environment(
    *, cwd: str | os.PathLike[str] | None = None, process_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``<cwd>/.env`` overlaid by the process environment (``{}`` ignores the real one)."""
    directory = Path.cwd() if cwd is None else Path(cwd)
    environment = dict(os.environ) if process_env is None else dict(process_env)
    return {**_read_dotenv(directory), **environment}


def derive_worker_id_prefix(module_target: str) -> str:
    """Default worker id prefix: the module target without its non-alphanumeric characters."""
    return "".join(ch for ch in module_target if ch.isascii() and ch.isalnum())


_HOST_TOKEN_MAX = 12
_HOST_TOKEN_KEEP = 7


def host_token(env: Mapping[str, str] | None = None) -> str:
    """Short, readable name of this host for worker ids and per-host files (ADR 0006).

    ``PERAGO_INSTANCE_ID`` when set, else the first label of the host name, reduced to lower-case
    ASCII letters and digits. Up to 12 characters are kept as they are; a longer name keeps its
    first 7 and adds 5 hex digits of its SHA-256, so ``worker-node-17`` and ``worker-node-18``
    never collapse into the same token.
    """
    environment = os.environ if env is None else env
    source = environment.get(INSTANCE_ID, "").strip()
    if not source:
        source = socket.gethostname().split(".", 1)[0].strip() or "localhost"
    cleaned = "".join(ch for ch in source.lower() if ch.isascii() and ch.isalnum())
    if cleaned and len(cleaned) <= _HOST_TOKEN_MAX:
        return cleaned
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
    return (cleaned[:_HOST_TOKEN_KEEP] or "h") + digest[: _HOST_TOKEN_MAX - _HOST_TOKEN_KEEP]


def slot_worker_id(prefix: str, slot: int, host: str | None = None) -> str:
    """Stable id of supervisor slot ``slot`` (1-based): ``<prefix><slot:04d>-<host>``.

    The legacy ``<prefix><slot:04d>`` stays the id's literal beginning (the prefix has no ``-``,
    so the first ``-`` always separates it from the host token); without ``host`` it is the
    whole id.
    """
    if slot < 1:
        raise ValueError("worker slot must be at least 1")
    base = f"{prefix}{slot:04d}"
    return f"{base}-{host}" if host else base


def current_worker_id(config: RuntimeConfig, env: Mapping[str, str] | None = None) -> str:
    """``PERAGO_WORKER_ID`` (set by the supervisor) or ``<prefix>-pid-<pid>-<host>`` when
    unsupervised (``host_token`` of ``env`` over the config's merged environment)."""
    environment = os.environ if env is None else env
    supplied = environment.get(WORKER_ID, "").strip()
    host = host_token({**config.merged_env, **environment})
    return supplied or f"{config.worker_id_prefix}-pid-{os.getpid()}-{host}"


class _Reader:
    """Looks variables up in the merged environment with the shared blank/placeholder rules."""

    def __init__(self, environment: Mapping[str, str]) -> None:
        self._environment = environment

    def present(self, name: str) -> bool:
        return name in self._environment

    def value(self, name: str) -> str | None:
        """Stripped value; ``None`` when missing or blank; the placeholder is an error."""
        raw = self._environment.get(name)
        if raw is None or not raw.strip():
            return None
        value = raw.strip()
        if value == REPLACE_ME:
            raise RuntimeConfigError(f"{name} must be replaced with a real value")
        return value

    def parsed(self, name: str, parse: Callable[[str, str], T], default: T) -> T:
        value = self.value(name)
        return default if value is None else parse(name, value)


def _parse_path(base: Path) -> Callable[[str, str], Path]:
    def parse(_name: str, value: str) -> Path:
        # Relative roots are anchored at the directory whose .env was read, not wherever a
        # child process happens to run later.
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path

    return parse


def _parse_size(name: str, value: str) -> int:
    match = _SIZE_RE.fullmatch(value)
    if match is None:
        raise RuntimeConfigError(
            f"{name} must be a positive size such as '512KB', '100MB', or '1.5GB'"
        )
    number = Decimal(match.group(1) + (match.group(2) or ""))
    size = math.ceil(number * _SIZE_UNITS[match.group(3).upper()])
    if size <= 0:
        raise RuntimeConfigError(f"{name} must be greater than zero")
    return size


def _parse_retention(name: str, value: str) -> timedelta:
    match = _RETENTION_RE.fullmatch(value)
    if match is None:
        raise RuntimeConfigError(f"{name} must be a positive day count such as '7d' or '30d'")
    return timedelta(days=int(match.group(1)))


def _parse_duration(name: str, value: str) -> timedelta:
    match = _DURATION_RE.fullmatch(value)
    if match is None:
        raise RuntimeConfigError(
            f"{name} must be a positive duration such as '30s', '5m', '1h', or '24h'"
        )
    unit = _DURATION_UNITS[match.group(2).lower()]
    return timedelta(**{unit: int(match.group(1))})


def _parse_execution_mode(name: str, value: str) -> ExecutionMode:
    mode = value.lower()
    if mode == "process":
        return "process"
    if mode == "thread":
        return "thread"
    raise RuntimeConfigError(f"{name} must be either 'process' or 'thread'")


def _parse_log_format(name: str, value: str) -> Literal["text", "json"]:
    lowered = value.lower()
    if lowered == "text":
        return "text"
    if lowered == "json":
        return "json"
    raise RuntimeConfigError(f"{name} must be either 'text' or 'json'")


def _parse_log_level(name: str, value: str) -> Literal["DEBUG", "INFO", "WARNING", "ERROR"]:
    upper = value.upper()
    for level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        if upper == level:
            return level
    raise RuntimeConfigError(f"{name} must be one of DEBUG, INFO, WARNING, ERROR")


def _parse_positive_integer(name: str, value: str) -> int:
    if _INTEGER_RE.fullmatch(value) is None:
        raise RuntimeConfigError(f"{name} must be a positive integer")
    number = int(value)
    if number <= 0:
        raise RuntimeConfigError(f"{name} must be greater than zero")
    return number


def _worker_id_prefix(reader: _Reader, module_target: str) -> str:
    # Unlike every other variable, an explicitly empty prefix is an error rather than "unset":
    # it almost always means a templating step produced nothing.
    if reader.present(WORKER_ID_PREFIX):
        value = reader.value(WORKER_ID_PREFIX)
        if value is None:
            raise RuntimeConfigError(f"{WORKER_ID_PREFIX} must not be empty")
        if not value.isascii() or _PREFIX_RE.fullmatch(value) is None:
            raise RuntimeConfigError(
                f"{WORKER_ID_PREFIX} must contain only ASCII letters and digits"
            )
        return value
    derived = derive_worker_id_prefix(module_target)
    if not derived:
        raise RuntimeConfigError(
            f"cannot derive a worker id prefix from module target {module_target!r}; "
            f"set {WORKER_ID_PREFIX}"
        )
    return derived


def _lakefs(reader: _Reader) -> LakeFSConfig | None:
    values = {name: reader.value(name) for name in LAKEFS_VARIABLES}
    missing = [name for name, value in values.items() if value is None]
    if len(missing) == len(LAKEFS_VARIABLES):
        return None
    if missing:
        raise RuntimeConfigError(f"LakeFS config is incomplete; missing {', '.join(missing)}")
    return LakeFSConfig(
        endpoint_url=values[LAKEFS_ENDPOINT_URL] or "",
        access_key_id=values[LAKEFS_ACCESS_KEY_ID] or "",
        secret_access_key=SecretStr(values[LAKEFS_SECRET_ACCESS_KEY] or ""),
        transfer_mode=reader.parsed(TRANSFER_MODE, _parse_transfer_mode, "auto"),
    )


def _parse_transfer_mode(name: str, value: str) -> TransferMode:
    modes: dict[str, TransferMode] = {"auto": "auto", "presign": "presign", "lakefs": "lakefs"}
    mode = modes.get(value.strip().lower())
    if mode is not None:
        return mode
    raise RuntimeConfigError(f"{name} must be one of {', '.join(TRANSFER_MODES)}, got {value!r}")


def _conductor_auth(reader: _Reader) -> ConductorAuth | None:
    key, secret = reader.value(CONDUCTOR_AUTH_KEY), reader.value(CONDUCTOR_AUTH_SECRET)
    if key is None and secret is None:
        return None
    if key is None or secret is None:
        missing = CONDUCTOR_AUTH_KEY if key is None else CONDUCTOR_AUTH_SECRET
        raise RuntimeConfigError(f"Conductor auth config is incomplete; missing {missing}")
    return ConductorAuth(key_id=key, key_secret=SecretStr(secret))


def conductor_auth(environment: Mapping[str, str]) -> ConductorAuth | None:
    """The Conductor key pair in ``environment`` (a merged ``.env`` + environment), if any.

    Same rules as every connection value: blank is unset, ``replace-me`` and a lone key or
    secret are ``RuntimeConfigError``s.
    """
    return _conductor_auth(_Reader(environment))


def _cache(
    reader: _Reader, as_path: Callable[[str, str], Path], workspace_root: Path
) -> CacheConfig | None:
    directory = reader.parsed(CACHE_DIR, as_path, None)
    max_size = reader.parsed(CACHE_MAX_SIZE, _parse_size, DEFAULT_CACHE_MAX_SIZE)
    if directory is None:
        if reader.value(CACHE_MAX_SIZE) is not None:
            raise RuntimeConfigError(
                f"{CACHE_MAX_SIZE} is set but {CACHE_DIR} is not; "
                f"set {CACHE_DIR} to enable the content cache"
            )
        return None
    resolved, root = directory.resolve(), workspace_root.resolve()
    if resolved == root or root in resolved.parents:
        raise RuntimeConfigError(
            f"{CACHE_DIR} must not be inside {WORKSPACE_ROOT} ({root}): "
            "the workspace sweep would remove it"
        )
    return CacheConfig(directory=directory, max_size=max_size)


def _parse_passthrough(name: str, value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if any(_ENV_NAME_RE.fullmatch(item) is None for item in names):
        raise RuntimeConfigError(
            f"{name} must be a comma-separated list of environment variable names"
        )
    return names


def body_environment_removals(
    environment: Mapping[str, str], passthrough: tuple[str, ...] = ()
) -> list[str]:
    """Names of perago's own credentials in ``environment`` that a task body must not inherit.

    That is ``CREDENTIAL_VARIABLES`` and anything else named ``LAKECTL_CREDENTIALS_*`` or
    ``CONDUCTOR_AUTH_*``, except the names the task's operator lists in
    ``PERAGO_BODY_ENV_PASSTHROUGH``.
    """
    keep = set(passthrough)
    credentials = (
        key
        for key in environment
        if key in CREDENTIAL_VARIABLES or key.startswith(_CREDENTIAL_PREFIXES)
    )
    return sorted(key for key in credentials if key not in keep)


def _refuse_unsafe(path: Path, variable: str | None) -> None:
    reason = unsafe_directory_reason(path)
    if reason is None:
        return
    hint = f" (set {variable} to a directory of your own)" if variable else ""
    raise RuntimeConfigError(f"{path} {reason}; refusing to use it{hint}")


def probe_writable_root(
    path: Path, *, variable: str | None = None, parents: tuple[Path, ...] = ()
) -> None:
    """Create ``path`` (new directories 0700) and prove a file can be written inside it.

    ``path`` and the ``parents`` named (the shared ``<tempdir>/perago`` of the default roots)
    must be safe directories: not a symlink, owned by the current user (or root), and not
    writable by others without the sticky bit. Raises ``RuntimeConfigError`` otherwise, or
    ``<path> is not writable: ...`` when it cannot be created or written.
    """
    guarded = (*parents, path)
    for directory in guarded:  # before creating anything inside a directory someone else owns
        _refuse_unsafe(directory, variable)
    try:
        ensure_private_directory(path)
    except OSError as exc:
        raise RuntimeConfigError(f"{path} is not writable: {exc}") from exc
    for directory in guarded:  # and what exists now, in case it changed meanwhile
        _refuse_unsafe(directory, variable)
    try:
        probe = Path(tempfile.mkdtemp(prefix=".perago-check-", dir=path))
        try:
            (probe / "write-test").write_bytes(b"ok")
        finally:
            shutil.rmtree(probe, ignore_errors=True)
    except OSError as exc:
        raise RuntimeConfigError(f"{path} is not writable: {exc}") from exc


def load_runtime_config(
    module_target: str,
    *,
    cwd: str | os.PathLike[str] | None = None,
    process_env: Mapping[str, str] | None = None,
    probe_roots: bool = True,
) -> RuntimeConfig:
    """Load and validate the runtime configuration for the task module ``module_target``.

    Reads ``<cwd>/.env`` (``cwd`` defaults to the current directory), overlays ``process_env``
    (``os.environ`` when ``None``; ``{}`` ignores the real environment) and, with
    ``probe_roots``, creates the workspace and log roots and checks that they are writable.
    Raises ``RuntimeConfigError`` with one message naming the first offending variable.
    """
    base = Path.cwd() if cwd is None else Path(cwd).absolute()
    environment = merged_environment(cwd=base, process_env=process_env)
    reader = _Reader(environment)
    default_base = Path(tempfile.gettempdir()) / "perago"
    as_path = _parse_path(base)

    workspace_root = reader.parsed(WORKSPACE_ROOT, as_path, default_base / "workspaces")
    log_root = reader.parsed(LOG_ROOT, as_path, default_base / "logs")
    log_file_max_size = reader.parsed(LOG_FILE_MAX_SIZE, _parse_size, DEFAULT_LOG_FILE_MAX_SIZE)
    log_retention = reader.parsed(LOG_RETENTION, _parse_retention, DEFAULT_LOG_RETENTION)
    log_format = reader.parsed(LOG_FORMAT, _parse_log_format, "text")
    log_level = reader.parsed(LOG_LEVEL, _parse_log_level, "INFO")
    worker_id_prefix = _worker_id_prefix(reader, module_target)
    execution_mode = reader.parsed(EXECUTION_MODE, _parse_execution_mode, "process")
    gc_ttl = reader.parsed(WORKSPACE_GC_TTL, _parse_duration, DEFAULT_WORKSPACE_GC_TTL)
    gc_interval = reader.parsed(
        WORKSPACE_GC_INTERVAL, _parse_duration, DEFAULT_WORKSPACE_GC_INTERVAL
    )
    force_kill_after = reader.parsed(SHUTDOWN_FORCE_KILL_AFTER, _parse_duration, None)
    failure_reason_max_length = reader.parsed(
        FAILURE_REASON_MAX_LENGTH, _parse_positive_integer, DEFAULT_FAILURE_REASON_MAX_LENGTH
    )
    control_timeout = reader.parsed(CONTROL_TIMEOUT, _parse_duration, DEFAULT_CONTROL_TIMEOUT)
    server_url = reader.value(CONDUCTOR_SERVER_URL)
    conductor = None if server_url is None else ConductorConfig(server_url=server_url)
    lakefs = _lakefs(reader)
    cache = _cache(reader, as_path, workspace_root)
    metrics = load_metrics_config(reader.value)
    _conductor_auth(reader)  # validated here; the SDK configuration reads it from merged_env
    no_passthrough: tuple[str, ...] = ()
    body_env_passthrough = reader.parsed(BODY_ENV_PASSTHROUGH, _parse_passthrough, no_passthrough)

    if probe_roots:
        # The default roots share <tempdir>/perago, which another user could have created.
        for root, variable in ((workspace_root, WORKSPACE_ROOT), (log_root, LOG_ROOT)):
            shared = (default_base,) if root.parent == default_base else ()
            probe_writable_root(root, variable=variable, parents=shared)
        if cache is not None:
            probe_writable_root(cache.directory, variable=CACHE_DIR)

    config = RuntimeConfig(
        workspace_root=workspace_root,
        log_root=log_root,
        log_file_max_size=log_file_max_size,
        log_retention=log_retention,
        log_format=log_format,
        log_level=log_level,
        worker_id_prefix=worker_id_prefix,
        execution_mode=execution_mode,
        workspace_gc_ttl=gc_ttl,
        workspace_gc_interval=gc_interval,
        shutdown_force_kill_after=force_kill_after,
        failure_reason_max_length=failure_reason_max_length,
        control_timeout=control_timeout,
        conductor=conductor,
        lakefs=lakefs,
        cache=cache,
        metrics=metrics,
        body_env_passthrough=body_env_passthrough,
    )
    config._merged_env = environment
    return config
