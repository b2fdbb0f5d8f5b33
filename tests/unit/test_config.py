"""Runtime configuration: every variable's default, accepted forms and exact error text."""

from __future__ import annotations

import os
import pickle
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from perago.config import (
    CacheConfig,
    RuntimeConfig,
    current_worker_id,
    derive_worker_id_prefix,
    host_token,
    load_runtime_config,
    merged_environment,
    parse_dotenv,
    slot_worker_id,
)
from perago.errors import RuntimeConfigError

TARGET = "app.workers.features_build"
SECRET = "s3cr3t-value-that-must-never-leak"
LAKEFS_ENV = {
    "LAKECTL_SERVER_ENDPOINT_URL": "http://127.0.0.1:8000",
    "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": SECRET,
}


def load(tmp_path: Path, env: dict[str, str] | None = None, **kwargs: object) -> RuntimeConfig:
    """Load with an isolated environment and no probes unless a test asks for them."""
    options: dict[str, object] = {"probe_roots": False, **kwargs}
    return load_runtime_config(
        TARGET,
        cwd=tmp_path,
        process_env={} if env is None else env,
        **options,  # type: ignore[arg-type]
    )


def load_error(tmp_path: Path, env: dict[str, str]) -> str:
    with pytest.raises(RuntimeConfigError) as info:
        load(tmp_path, env)
    return str(info.value)


# --- defaults -------------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)
    base = Path(tempfile.gettempdir()) / "perago"
    assert config.workspace_root == base / "workspaces"
    assert config.log_root == base / "logs"
    assert config.log_file_max_size == 100 * 1024 * 1024
    assert config.log_retention == timedelta(days=30)
    assert config.worker_id_prefix == "appworkersfeaturesbuild"
    assert config.execution_mode == "process"
    assert config.workspace_gc_ttl == timedelta(hours=24)
    assert config.workspace_gc_interval == timedelta(hours=1)
    assert config.shutdown_force_kill_after is None
    assert config.failure_reason_max_length == 500
    assert config.control_timeout == timedelta(seconds=60)
    assert config.conductor is None
    assert config.lakefs is None
    assert config.cache is None


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load(tmp_path)
    with pytest.raises(ValueError, match="frozen"):
        config.worker_id_prefix = "other"  # type: ignore[misc]


def test_blank_values_mean_unset(tmp_path: Path) -> None:
    blank = {
        name: "   "
        for name in (
            "PERAGO_WORKSPACE_ROOT",
            "PERAGO_LOG_ROOT",
            "PERAGO_LOG_FILE_MAX_SIZE",
            "PERAGO_LOG_RETENTION",
            "PERAGO_EXECUTION_MODE",
            "PERAGO_WORKSPACE_GC_TTL",
            "PERAGO_WORKSPACE_GC_INTERVAL",
            "PERAGO_SHUTDOWN_FORCE_KILL_AFTER",
            "PERAGO_FAILURE_REASON_MAX_LENGTH",
            "PERAGO_CACHE_DIR",
            "PERAGO_CACHE_MAX_SIZE",
            "CONDUCTOR_SERVER_URL",
            *LAKEFS_ENV,
        )
    }
    assert load(tmp_path, blank).model_dump() == load(tmp_path).model_dump()


# --- roots ----------------------------------------------------------------------------------


def test_roots_absolute_and_relative_to_cwd(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        {"PERAGO_WORKSPACE_ROOT": str(tmp_path / "ws"), "PERAGO_LOG_ROOT": "  rel/logs  "},
    )
    assert config.workspace_root == tmp_path / "ws"
    assert config.log_root == tmp_path / "rel" / "logs"


def test_probe_creates_roots_and_leaves_no_probe_files(tmp_path: Path) -> None:
    env = {"PERAGO_WORKSPACE_ROOT": str(tmp_path / "a/ws"), "PERAGO_LOG_ROOT": str(tmp_path / "l")}
    load(tmp_path, env, probe_roots=True)
    assert (tmp_path / "a/ws").is_dir()
    assert (tmp_path / "l").is_dir()
    assert list((tmp_path / "a/ws").iterdir()) == []
    assert list((tmp_path / "l").iterdir()) == []


def test_probes_off_touch_nothing(tmp_path: Path) -> None:
    load(tmp_path, {"PERAGO_WORKSPACE_ROOT": str(tmp_path / "ws")})
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("variable", ["PERAGO_WORKSPACE_ROOT", "PERAGO_LOG_ROOT"])
def test_probe_failure_names_the_unwritable_root(tmp_path: Path, variable: str) -> None:
    # A path below a regular file can never be created, whatever the user's privileges are.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    root = blocker / "root"
    env = {"PERAGO_WORKSPACE_ROOT": str(tmp_path / "ws"), "PERAGO_LOG_ROOT": str(tmp_path / "l")}
    env[variable] = str(root)
    with pytest.raises(RuntimeConfigError) as info:
        load(tmp_path, env, probe_roots=True)
    assert str(info.value).startswith(f"{root} is not writable: ")


# --- log size / retention -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("512KB", 512 * 1024),
        ("100MB", 100 * 1024**2),
        ("1.5GB", 3 * 1024**3 // 2),
        ("1.5gb", 3 * 1024**3 // 2),
        ("2 mb", 2 * 1024**2),
        ("0.001KB", 2),  # 1.024 bytes, rounded up
        ("0.5KB", 512),
        ("1TB", 1024**4),
    ],
)
def test_log_file_max_size_forms(tmp_path: Path, value: str, expected: int) -> None:
    config = load(tmp_path, {"PERAGO_LOG_FILE_MAX_SIZE": value})
    assert config.log_file_max_size == expected


@pytest.mark.parametrize("value", ["100", "100B", "1PB", "01MB", "-1MB", ".5MB", "1.MB", "MB"])
def test_log_file_max_size_bad_format(tmp_path: Path, value: str) -> None:
    assert load_error(tmp_path, {"PERAGO_LOG_FILE_MAX_SIZE": value}) == (
        "PERAGO_LOG_FILE_MAX_SIZE must be a positive size such as '512KB', '100MB', or '1.5GB'"
    )


@pytest.mark.parametrize("value", ["0KB", "0.0MB", "0 GB"])
def test_log_file_max_size_zero(tmp_path: Path, value: str) -> None:
    assert load_error(tmp_path, {"PERAGO_LOG_FILE_MAX_SIZE": value}) == (
        "PERAGO_LOG_FILE_MAX_SIZE must be greater than zero"
    )


@pytest.mark.parametrize(("value", "days"), [("7d", 7), ("30D", 30), (" 1d ", 1)])
def test_log_retention_forms(tmp_path: Path, value: str, days: int) -> None:
    assert load(tmp_path, {"PERAGO_LOG_RETENTION": value}).log_retention == timedelta(days=days)


@pytest.mark.parametrize("value", ["0d", "7", "7h", "07d", "-1d", "1.5d"])
def test_log_retention_bad(tmp_path: Path, value: str) -> None:
    assert load_error(tmp_path, {"PERAGO_LOG_RETENTION": value}) == (
        "PERAGO_LOG_RETENTION must be a positive day count such as '7d' or '30d'"
    )


# --- worker ids -----------------------------------------------------------------------------


def test_worker_id_prefix_derived_from_module_target() -> None:
    assert derive_worker_id_prefix("app.workers.features_build") == "appworkersfeaturesbuild"
    assert derive_worker_id_prefix("prod_A.features") == "prodAfeatures"


def test_worker_id_prefix_from_environment(tmp_path: Path) -> None:
    config = load(tmp_path, {"PERAGO_WORKER_ID_PREFIX": " prodAFeaturesBuild "})
    assert config.worker_id_prefix == "prodAFeaturesBuild"


@pytest.mark.parametrize("value", ["", "   "])
def test_worker_id_prefix_present_but_empty(tmp_path: Path, value: str) -> None:
    assert load_error(tmp_path, {"PERAGO_WORKER_ID_PREFIX": value}) == (
        "PERAGO_WORKER_ID_PREFIX must not be empty"
    )


@pytest.mark.parametrize("value", ["prod-a", "prod_a", "prod.a", "prödA", "a b"])
def test_worker_id_prefix_rejects_non_alphanumerics(tmp_path: Path, value: str) -> None:
    assert load_error(tmp_path, {"PERAGO_WORKER_ID_PREFIX": value}) == (
        "PERAGO_WORKER_ID_PREFIX must contain only ASCII letters and digits"
    )


def test_slot_and_fallback_worker_ids(tmp_path: Path) -> None:
    assert slot_worker_id("prodA", 1) == "prodA0001"
    assert slot_worker_id("prodA", 12345) == "prodA12345"
    with pytest.raises(ValueError, match="at least 1"):
        slot_worker_id("prodA", 0)
    config = load(tmp_path, {"PERAGO_WORKER_ID_PREFIX": "prodA"})
    assert current_worker_id(config, {"PERAGO_WORKER_ID": "prodA0003"}) == "prodA0003"
    # Unsupervised: the pid alone is not unique across hosts, so the host token follows it.
    host = host_token({})
    assert current_worker_id(config, {}) == f"prodA-pid-{os.getpid()}-{host}"
    assert current_worker_id(config, {"PERAGO_WORKER_ID": "  "}) == (
        f"prodA-pid-{os.getpid()}-{host}"
    )
    assert current_worker_id(config, {"PERAGO_INSTANCE_ID": "Node-7"}) == (
        f"prodA-pid-{os.getpid()}-node7"
    )


# --- execution mode, durations, failure reason length ---------------------------------------


@pytest.mark.parametrize(("value", "mode"), [("process", "process"), (" THREAD ", "thread")])
def test_execution_mode(tmp_path: Path, value: str, mode: str) -> None:
    assert load(tmp_path, {"PERAGO_EXECUTION_MODE": value}).execution_mode == mode


def test_execution_mode_bad(tmp_path: Path) -> None:
    assert load_error(tmp_path, {"PERAGO_EXECUTION_MODE": "fork"}) == (
        "PERAGO_EXECUTION_MODE must be either 'process' or 'thread'"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1H", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
    ],
)
@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("PERAGO_WORKSPACE_GC_TTL", "workspace_gc_ttl"),
        ("PERAGO_WORKSPACE_GC_INTERVAL", "workspace_gc_interval"),
        ("PERAGO_SHUTDOWN_FORCE_KILL_AFTER", "shutdown_force_kill_after"),
        ("PERAGO_CONTROL_TIMEOUT", "control_timeout"),
    ],
)
def test_durations(
    tmp_path: Path, variable: str, field: str, value: str, expected: timedelta
) -> None:
    assert getattr(load(tmp_path, {variable: value}), field) == expected


@pytest.mark.parametrize("value", ["0s", "10", "1w", "1.5h", "-5m", "01h"])
@pytest.mark.parametrize(
    "variable",
    [
        "PERAGO_WORKSPACE_GC_TTL",
        "PERAGO_WORKSPACE_GC_INTERVAL",
        "PERAGO_SHUTDOWN_FORCE_KILL_AFTER",
        "PERAGO_CONTROL_TIMEOUT",
    ],
)
def test_durations_bad(tmp_path: Path, variable: str, value: str) -> None:
    assert load_error(tmp_path, {variable: value}) == (
        f"{variable} must be a positive duration such as '30s', '5m', '1h', or '24h'"
    )


def test_failure_reason_max_length(tmp_path: Path) -> None:
    env = {"PERAGO_FAILURE_REASON_MAX_LENGTH": " 2000 "}
    assert load(tmp_path, env).failure_reason_max_length == 2000


@pytest.mark.parametrize("value", ["-1", "1.5", "ten", "1e3"])
def test_failure_reason_max_length_not_integer(tmp_path: Path, value: str) -> None:
    assert load_error(tmp_path, {"PERAGO_FAILURE_REASON_MAX_LENGTH": value}) == (
        "PERAGO_FAILURE_REASON_MAX_LENGTH must be a positive integer"
    )


def test_failure_reason_max_length_zero(tmp_path: Path) -> None:
    assert load_error(tmp_path, {"PERAGO_FAILURE_REASON_MAX_LENGTH": "0"}) == (
        "PERAGO_FAILURE_REASON_MAX_LENGTH must be greater than zero"
    )


# --- Conductor and lakeFS -------------------------------------------------------------------


def test_conductor_configured(tmp_path: Path) -> None:
    config = load(tmp_path, {"CONDUCTOR_SERVER_URL": " http://127.0.0.1:8080/api "})
    assert config.conductor is not None
    assert config.conductor.server_url == "http://127.0.0.1:8080/api"


def test_lakefs_configured_with_secret(tmp_path: Path) -> None:
    config = load(tmp_path, LAKEFS_ENV)
    assert config.lakefs is not None
    assert config.lakefs.endpoint_url == "http://127.0.0.1:8000"
    assert config.lakefs.access_key_id == "AKIAEXAMPLE"
    assert config.lakefs.secret_access_key.get_secret_value() == SECRET


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        (["LAKECTL_SERVER_ENDPOINT_URL"], "LAKECTL_CREDENTIALS_ACCESS_KEY_ID, "
         "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"),
        (["LAKECTL_CREDENTIALS_ACCESS_KEY_ID", "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"],
         "LAKECTL_SERVER_ENDPOINT_URL"),
        (["LAKECTL_SERVER_ENDPOINT_URL", "LAKECTL_CREDENTIALS_ACCESS_KEY_ID"],
         "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"),
    ],
)  # fmt: skip
def test_lakefs_incomplete(tmp_path: Path, present: list[str], missing: str) -> None:
    env = {name: LAKEFS_ENV[name] for name in present}
    assert load_error(tmp_path, env) == f"LakeFS config is incomplete; missing {missing}"


@pytest.mark.parametrize(
    "variable",
    [
        "CONDUCTOR_SERVER_URL",
        *LAKEFS_ENV,
        "PERAGO_WORKSPACE_ROOT",
        "PERAGO_LOG_ROOT",
        "PERAGO_LOG_FILE_MAX_SIZE",
        "PERAGO_LOG_RETENTION",
        "PERAGO_WORKER_ID_PREFIX",
        "PERAGO_EXECUTION_MODE",
        "PERAGO_WORKSPACE_GC_TTL",
        "PERAGO_WORKSPACE_GC_INTERVAL",
        "PERAGO_SHUTDOWN_FORCE_KILL_AFTER",
        "PERAGO_FAILURE_REASON_MAX_LENGTH",
        "PERAGO_CACHE_DIR",
    ],
)
def test_replace_me_is_rejected(tmp_path: Path, variable: str) -> None:
    env = {**LAKEFS_ENV, variable: " replace-me "}
    assert load_error(tmp_path, env) == f"{variable} must be replaced with a real value"


def test_secret_never_in_repr_str_or_dump(tmp_path: Path) -> None:
    env = {**LAKEFS_ENV, "CONDUCTOR_SERVER_URL": "http://c/api", "CONDUCTOR_AUTH_SECRET": SECRET}
    env["CONDUCTOR_AUTH_KEY"] = "conductor-key-id"
    config = load(tmp_path, env)
    assert config.lakefs is not None
    for text in (
        repr(config),
        str(config),
        repr(config.lakefs),
        str(config.lakefs),
        str(config.model_dump()),
        config.model_dump_json(),
        str(config.lakefs.model_dump()),
        config.lakefs.model_dump_json(),
    ):
        assert SECRET not in text
    assert "**********" in config.model_dump_json()


# --- .env parsing and precedence ------------------------------------------------------------


def test_parse_dotenv_rules() -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            "   ",
            "no equals sign here",
            "PLAIN=value",
            "  SPACED  =  padded value  ",
            "export EXPORTED=yes",
            'DOUBLE="quoted # not a comment"',
            "SINGLE='single'",
            "MISMATCHED=\"half'",
            'ONE_QUOTE="',
            "INLINE=b # c",
            "EQUALS=a=b=c",
            "EMPTY=",
            "=novalue",
            "DUP=first",
            "DUP=second",
        ]
    )
    assert parse_dotenv(text) == {
        "PLAIN": "value",
        "SPACED": "padded value",
        "EXPORTED": "yes",
        "DOUBLE": "quoted # not a comment",
        "SINGLE": "single",
        "MISMATCHED": "\"half'",
        "ONE_QUOTE": '"',
        "INLINE": "b # c",
        "EQUALS": "a=b=c",
        "EMPTY": "",
        "DUP": "second",
    }


def test_dotenv_values_are_used_and_process_env_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "PERAGO_EXECUTION_MODE=thread\n"
        "export PERAGO_LOG_RETENTION='7d'\n"
        'CONDUCTOR_SERVER_URL="http://from-dotenv/api"\n'
    )
    config = load(tmp_path, {"CONDUCTOR_SERVER_URL": "http://from-process/api"})
    assert config.execution_mode == "thread"
    assert config.log_retention == timedelta(days=7)
    assert config.conductor is not None
    assert config.conductor.server_url == "http://from-process/api"


def test_dotenv_errors_use_the_same_messages(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PERAGO_LOG_RETENTION=forever\n")
    assert load_error(tmp_path, {}) == (
        "PERAGO_LOG_RETENTION must be a positive day count such as '7d' or '30d'"
    )


def test_only_the_cwd_dotenv_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PERAGO_EXECUTION_MODE=thread\n")
    child = tmp_path / "child"
    child.mkdir()
    assert load(child).execution_mode == "process"


def test_unreadable_dotenv_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"A=\xff\xfe\n")
    with pytest.raises(RuntimeConfigError, match=r"\.env could not be read: "):
        load(tmp_path)


def test_process_env_none_reads_the_real_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):  # whatever the runner exported must not decide the outcome
        if key.startswith("PERAGO_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PERAGO_EXECUTION_MODE", "thread")
    config = load_runtime_config(TARGET, cwd=tmp_path, probe_roots=False)
    assert config.execution_mode == "thread"
    ignored = load_runtime_config(TARGET, cwd=tmp_path, process_env={}, probe_roots=False)
    assert ignored.execution_mode == "process"


def test_merged_env_exposes_dotenv_values_without_touching_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONDUCTOR_AUTH_KEY", raising=False)  # a runner may export its own
    (tmp_path / ".env").write_text(
        "CONDUCTOR_AUTH_KEY=key-from-dotenv\nCONDUCTOR_AUTH_SECRET=s\nOVERRIDDEN=dotenv\n"
    )
    env = {"OVERRIDDEN": "process", "OTHER": "x"}
    config = load(tmp_path, env)
    assert dict(config.merged_env) == {
        "CONDUCTOR_AUTH_KEY": "key-from-dotenv",
        "CONDUCTOR_AUTH_SECRET": "s",
        "OVERRIDDEN": "process",
        "OTHER": "x",
    }
    assert "CONDUCTOR_AUTH_KEY" not in os.environ
    assert merged_environment(cwd=tmp_path, process_env=env) == dict(config.merged_env)
    with pytest.raises(TypeError):
        config.merged_env["X"] = "y"  # type: ignore[index]
    # The merged environment is not a field: it is in no repr and no dump.
    assert "key-from-dotenv" not in repr(config)
    assert "key-from-dotenv" not in config.model_dump_json()


def test_config_survives_pickling_for_worker_processes(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CONDUCTOR_AUTH_KEY=k\nCONDUCTOR_AUTH_SECRET=s\n")
    config = load(tmp_path, LAKEFS_ENV)
    copy = pickle.loads(pickle.dumps(config))
    assert copy == config
    assert dict(copy.merged_env) == dict(config.merged_env)


def test_first_error_wins_in_documented_order(tmp_path: Path) -> None:
    env = {
        "PERAGO_LOG_FILE_MAX_SIZE": "big",
        "PERAGO_LOG_RETENTION": "forever",
        "PERAGO_EXECUTION_MODE": "fork",
        "PERAGO_FAILURE_REASON_MAX_LENGTH": "0",
        "LAKECTL_SERVER_ENDPOINT_URL": "http://x",
    }
    messages = []
    for name in list(env):
        messages.append(load_error(tmp_path, env))
        del env[name]
    assert [m.split(" ")[0] for m in messages] == [
        "PERAGO_LOG_FILE_MAX_SIZE",
        "PERAGO_LOG_RETENTION",
        "PERAGO_EXECUTION_MODE",
        "PERAGO_FAILURE_REASON_MAX_LENGTH",
        "LakeFS",
    ]


def test_config_errors_come_before_probes(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    env = {"PERAGO_WORKSPACE_ROOT": str(blocker / "x"), "PERAGO_EXECUTION_MODE": "fork"}
    with pytest.raises(RuntimeConfigError, match="PERAGO_EXECUTION_MODE"):
        load(tmp_path, env, probe_roots=True)


# --- transfer mode --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mode"), [(None, "auto"), ("presign", "presign"), (" LakeFS ", "lakefs")]
)
def test_transfer_mode(tmp_path: Path, value: str | None, mode: str) -> None:
    env = dict(LAKEFS_ENV) | ({} if value is None else {"PERAGO_TRANSFER_MODE": value})
    config = load(tmp_path, env)
    assert config.lakefs is not None
    assert config.lakefs.transfer_mode == mode


def test_transfer_mode_bad_value_names_the_choices(tmp_path: Path) -> None:
    message = load_error(tmp_path, LAKEFS_ENV | {"PERAGO_TRANSFER_MODE": "direct"})
    assert message == "PERAGO_TRANSFER_MODE must be one of auto, presign, lakefs, got 'direct'"


# --- content cache --------------------------------------------------------------------------


def test_cache_directory_relative_to_cwd_with_the_default_size(tmp_path: Path) -> None:
    config = load(tmp_path, {"PERAGO_CACHE_DIR": "  rel/cache  "})
    assert config.cache == CacheConfig(directory=tmp_path / "rel" / "cache", max_size=10 * 1024**3)


def test_cache_directory_absolute_and_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"PERAGO_CACHE_DIR={tmp_path / 'c'}\n")
    config = load(tmp_path)
    assert config.cache is not None
    assert config.cache.directory == tmp_path / "c"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("512MB", 512 * 1024**2), ("10GB", 10 * 1024**3), ("1TB", 1024**4), ("1.5 tb", 3 * 2**39)],
)
def test_cache_max_size_forms(tmp_path: Path, value: str, expected: int) -> None:
    config = load(tmp_path, {"PERAGO_CACHE_DIR": "cache", "PERAGO_CACHE_MAX_SIZE": value})
    assert config.cache is not None
    assert config.cache.max_size == expected


def test_cache_max_size_without_directory(tmp_path: Path) -> None:
    assert load_error(tmp_path, {"PERAGO_CACHE_MAX_SIZE": "1GB"}) == (
        "PERAGO_CACHE_MAX_SIZE is set but PERAGO_CACHE_DIR is not; "
        "set PERAGO_CACHE_DIR to enable the content cache"
    )


@pytest.mark.parametrize("value", ["10", "10G", "1PB", "lots"])
def test_cache_max_size_bad_format(tmp_path: Path, value: str) -> None:
    env = {"PERAGO_CACHE_DIR": "cache", "PERAGO_CACHE_MAX_SIZE": value}
    assert load_error(tmp_path, env) == (
        "PERAGO_CACHE_MAX_SIZE must be a positive size such as '512KB', '100MB', or '1.5GB'"
    )


def test_cache_max_size_zero(tmp_path: Path) -> None:
    env = {"PERAGO_CACHE_DIR": "cache", "PERAGO_CACHE_MAX_SIZE": "0GB"}
    assert load_error(tmp_path, env) == "PERAGO_CACHE_MAX_SIZE must be greater than zero"


@pytest.mark.parametrize("inside", ["", "cache", "deeper/cache"])
def test_cache_directory_inside_the_workspace_root(tmp_path: Path, inside: str) -> None:
    root = tmp_path / "ws"
    env = {"PERAGO_WORKSPACE_ROOT": str(root), "PERAGO_CACHE_DIR": str(root / inside)}
    assert load_error(tmp_path, env) == (
        f"PERAGO_CACHE_DIR must not be inside PERAGO_WORKSPACE_ROOT ({root.resolve()}): "
        "the workspace sweep would remove it"
    )


def test_cache_directory_beside_the_workspace_root(tmp_path: Path) -> None:
    env = {"PERAGO_WORKSPACE_ROOT": str(tmp_path / "ws"), "PERAGO_CACHE_DIR": "ws-cache"}
    config = load(tmp_path, env)
    assert config.cache is not None
    assert config.cache.directory == tmp_path / "ws-cache"


def test_cache_directory_probed_with_the_roots(tmp_path: Path) -> None:
    env = {
        "PERAGO_WORKSPACE_ROOT": str(tmp_path / "ws"),
        "PERAGO_LOG_ROOT": str(tmp_path / "l"),
        "PERAGO_CACHE_DIR": "c",
    }
    load(tmp_path, env, probe_roots=True)
    assert (tmp_path / "c").is_dir()
    assert list((tmp_path / "c").iterdir()) == []
    (tmp_path / "blocker").write_text("not a directory")
    env["PERAGO_CACHE_DIR"] = str(tmp_path / "blocker" / "c")
    with pytest.raises(RuntimeConfigError) as info:
        load(tmp_path, env, probe_roots=True)
    assert str(info.value).startswith(f"{tmp_path / 'blocker' / 'c'} is not writable: ")
