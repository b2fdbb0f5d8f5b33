"""Issue 12, config and secrets: safe roots, the Conductor key pair, credentials kept from bodies.

* roots: new directories 0700; a root or the shared ``<tempdir>/perago`` that is a symlink, owned
  by another user or writable by others without the sticky bit is refused with one message;
* ``CONDUCTOR_AUTH_KEY``/``SECRET``: validated by the loader, handed to the SDK explicitly from
  the merged ``.env`` + environment (never through ``os.environ``);
* ``PERAGO_BODY_ENV_PASSTHROUGH`` and the names a worker removes from its environment.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from perago.conductor.client import ConductorClient
from perago.conductor.sdk_config import sdk_configuration
from perago.config import (
    RuntimeConfig,
    body_environment_removals,
    conductor_auth,
    load_runtime_config,
)
from perago.errors import RuntimeConfigError
from perago.runtime.worker import _withhold_credentials_from_bodies

TARGET = "app.jobs"
NOBODY = 65534
AUTH_SECRET = "conductor-secret-never-printed"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def load(
    cwd: Path, env: dict[str, str] | None = None, *, probe_roots: bool = False
) -> RuntimeConfig:
    return load_runtime_config(
        TARGET, cwd=cwd, process_env={} if env is None else env, probe_roots=probe_roots
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def system_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private stand-in for the system temp dir, where the default roots go."""
    directory = tmp_path / "systmp"
    directory.mkdir()
    directory.chmod(0o1777)  # like /tmp: world-writable with the sticky bit
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def probe_error(cwd: Path, env: dict[str, str] | None = None) -> str:
    with pytest.raises(RuntimeConfigError) as info:
        load(cwd, env, probe_roots=True)
    return str(info.value)


# --- roots ----------------------------------------------------------------------------------


def test_default_roots_and_their_parent_are_created_0700(system_tmp: Path, tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        config = load(tmp_path, probe_roots=True)
    finally:
        os.umask(previous)
    base = system_tmp / "perago"
    assert (config.workspace_root, config.log_root) == (base / "workspaces", base / "logs")
    for path in (base, base / "workspaces", base / "logs"):
        assert mode(path) == 0o700, path


def test_existing_private_roots_are_accepted_as_they_are(system_tmp: Path, tmp_path: Path) -> None:
    base = system_tmp / "perago"
    base.mkdir(mode=0o755)
    (base / "workspaces").mkdir(mode=0o750)
    load(tmp_path, probe_roots=True)
    assert mode(base) == 0o755
    assert mode(base / "workspaces") == 0o750
    assert mode(base / "logs") == 0o700


@needs_root
def test_shared_parent_owned_by_another_user_is_refused(system_tmp: Path, tmp_path: Path) -> None:
    base = system_tmp / "perago"
    base.mkdir(mode=0o755)
    os.chown(base, NOBODY, NOBODY)
    message = probe_error(tmp_path)
    assert message == (
        f"{base} is owned by uid {NOBODY}, not by the current user (uid 0); refusing to use it "
        "(set PERAGO_WORKSPACE_ROOT to a directory of your own)"
    )
    assert not (base / "workspaces").exists()  # nothing was created inside it


@needs_root
def test_root_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir(mode=0o700)
    os.chown(root, NOBODY, NOBODY)
    env = {"PERAGO_WORKSPACE_ROOT": str(tmp_path / "ws"), "PERAGO_LOG_ROOT": str(root)}
    assert probe_error(tmp_path, env) == (
        f"{root} is owned by uid {NOBODY}, not by the current user (uid 0); refusing to use it "
        "(set PERAGO_LOG_ROOT to a directory of your own)"
    )


@pytest.mark.parametrize(("bits", "kind"), [(0o770, "group"), (0o777, "world"), (0o757, "world")])
def test_root_writable_by_others_without_sticky_bit_is_refused(
    tmp_path: Path, bits: int, kind: str
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    root.chmod(bits)
    env = {"PERAGO_WORKSPACE_ROOT": str(root), "PERAGO_LOG_ROOT": str(tmp_path / "logs")}
    assert probe_error(tmp_path, env) == (
        f"{root} is {kind}-writable without the sticky bit (mode {bits:o}); refusing to use it "
        "(set PERAGO_WORKSPACE_ROOT to a directory of your own)"
    )


def test_world_writable_shared_parent_is_refused_unless_sticky(
    system_tmp: Path, tmp_path: Path
) -> None:
    base = system_tmp / "perago"
    base.mkdir()
    base.chmod(0o777)
    assert probe_error(tmp_path).startswith(f"{base} is world-writable without the sticky bit")
    base.chmod(0o1777)  # a shared /tmp-like directory: others cannot swap our entries
    load(tmp_path, probe_roots=True)


def test_symlinked_roots_are_refused(system_tmp: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    env = {"PERAGO_WORKSPACE_ROOT": str(tmp_path / "ws"), "PERAGO_LOG_ROOT": str(link)}
    assert probe_error(tmp_path, env) == (
        f"{link} is a symlink; refusing to use it (set PERAGO_LOG_ROOT to a directory of your own)"
    )
    # The shared parent of the default roots, planted as a link to a directory of the attacker.
    (system_tmp / "perago").symlink_to(real)
    assert probe_error(tmp_path).startswith(f"{system_tmp / 'perago'} is a symlink; ")
    assert list(real.iterdir()) == []


def test_unwritable_root_keeps_its_message(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    env = {"PERAGO_WORKSPACE_ROOT": str(blocker), "PERAGO_LOG_ROOT": str(tmp_path / "logs")}
    assert probe_error(tmp_path, env).startswith(f"{blocker} is not writable: ")


# --- Conductor key pair ---------------------------------------------------------------------


def test_conductor_auth_from_dotenv_is_validated_and_redacted(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"CONDUCTOR_AUTH_KEY=key-id\nCONDUCTOR_AUTH_SECRET='{AUTH_SECRET}'\n"
    )
    config = load(tmp_path)
    auth = conductor_auth(config.merged_env)
    assert auth is not None
    assert auth.key_id == "key-id"
    assert auth.key_secret.get_secret_value() == AUTH_SECRET
    for text in (repr(auth), str(auth), auth.model_dump_json(), repr(config)):
        assert AUTH_SECRET not in text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CONDUCTOR_AUTH_KEY": "k"},
            "Conductor auth config is incomplete; missing CONDUCTOR_AUTH_SECRET",
        ),
        (
            {"CONDUCTOR_AUTH_SECRET": "s", "CONDUCTOR_AUTH_KEY": "  "},
            "Conductor auth config is incomplete; missing CONDUCTOR_AUTH_KEY",
        ),
        (
            {"CONDUCTOR_AUTH_KEY": "k", "CONDUCTOR_AUTH_SECRET": "replace-me"},
            "CONDUCTOR_AUTH_SECRET must be replaced with a real value",
        ),
    ],
)
def test_conductor_auth_errors(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(RuntimeConfigError) as info:
        load(tmp_path, env)
    assert str(info.value) == message


def test_sdk_configuration_takes_the_pair_from_env_not_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONDUCTOR_AUTH_KEY", "from-os-environ")
    monkeypatch.setenv("CONDUCTOR_AUTH_SECRET", "os-secret")
    given = sdk_configuration(
        "http://c/api/", {"CONDUCTOR_AUTH_KEY": "k", "CONDUCTOR_AUTH_SECRET": AUTH_SECRET}
    )
    assert given.host == "http://c/api"
    assert given.authentication_settings.key_id == "k"
    assert given.authentication_settings.key_secret == AUTH_SECRET
    # A merged env without a pair means no authentication, whatever os.environ says.
    assert sdk_configuration("http://c/api", {}).authentication_settings is None
    # env=None: the SDK's own behaviour (it reads os.environ).
    assert sdk_configuration("http://c/api").authentication_settings.key_id == "from-os-environ"


def test_conductor_client_passes_the_pair_to_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The configuration ConductorClient hands to the SDK's ApiClient carries the .env pair."""
    seen = []

    class FakeApiClient:
        def __init__(self, configuration: object) -> None:
            seen.append(configuration)

    monkeypatch.setattr("perago.conductor.client.ApiClient", FakeApiClient)
    monkeypatch.delenv("CONDUCTOR_AUTH_KEY", raising=False)
    env = {"CONDUCTOR_AUTH_KEY": "k", "CONDUCTOR_AUTH_SECRET": AUTH_SECRET}
    client = ConductorClient("http://c/api", env=env)
    (configuration,) = seen
    assert configuration is client.configuration
    assert configuration.authentication_settings.key_id == "k"
    assert "CONDUCTOR_AUTH_KEY" not in os.environ


# --- credentials kept from task bodies ------------------------------------------------------

PERAGO_CREDENTIALS = {
    "LAKECTL_SERVER_ENDPOINT_URL": "http://127.0.0.1:8000",
    "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIA",
    "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": "lakefs-secret",
    "CONDUCTOR_AUTH_KEY": "k",
    "CONDUCTOR_AUTH_SECRET": AUTH_SECRET,
}


def test_body_env_passthrough_parsing(tmp_path: Path) -> None:
    assert load(tmp_path).body_env_passthrough == ()
    config = load(tmp_path, {"PERAGO_BODY_ENV_PASSTHROUGH": " CONDUCTOR_AUTH_KEY, ,A_B,A_B "})
    assert config.body_env_passthrough == ("CONDUCTOR_AUTH_KEY", "A_B")
    with pytest.raises(RuntimeConfigError) as info:
        load(tmp_path, {"PERAGO_BODY_ENV_PASSTHROUGH": "GOOD,not ok"})
    assert str(info.value) == (
        "PERAGO_BODY_ENV_PASSTHROUGH must be a comma-separated list of environment variable names"
    )


def test_body_environment_removals() -> None:
    env = {**PERAGO_CREDENTIALS, "CONDUCTOR_AUTH_TOKEN": "t", "HF_TOKEN": "mine", "PATH": "/bin"}
    assert body_environment_removals(env) == [
        "CONDUCTOR_AUTH_KEY",
        "CONDUCTOR_AUTH_SECRET",
        "CONDUCTOR_AUTH_TOKEN",
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID",
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY",
    ]
    kept = body_environment_removals(env, ("LAKECTL_CREDENTIALS_ACCESS_KEY_ID", "OTHER"))
    assert "LAKECTL_CREDENTIALS_ACCESS_KEY_ID" not in kept
    assert "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY" in kept


def _child_sees(names: list[str]) -> list[str]:
    code = "import os, sys; print(','.join(n for n in sys.argv[1:] if n in os.environ))"
    out = subprocess.run(
        [sys.executable, "-c", code, *names], capture_output=True, text=True, check=True
    )
    return [n for n in out.stdout.strip().split(",") if n]


@pytest.mark.parametrize("passthrough", ["", "CONDUCTOR_AUTH_KEY"])
def test_worker_withholds_its_credentials_from_body_subprocesses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, passthrough: str
) -> None:
    for name, value in PERAGO_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PERAGO_BODY_ENV_PASSTHROUGH", passthrough)
    config = load_runtime_config(TARGET, cwd=tmp_path, probe_roots=False)
    removed = _withhold_credentials_from_bodies(config)
    visible = _child_sees(list(PERAGO_CREDENTIALS))
    expected_visible = ["LAKECTL_SERVER_ENDPOINT_URL"] + ([passthrough] if passthrough else [])
    assert sorted(visible) == sorted(expected_visible)
    assert sorted(removed) == sorted(set(PERAGO_CREDENTIALS) - set(expected_visible))
    # The worker's own clients still have everything, from the config.
    assert config.lakefs is not None
    assert config.lakefs.secret_access_key.get_secret_value() == "lakefs-secret"
    auth = conductor_auth(config.merged_env)
    assert auth is not None
    assert auth.key_secret.get_secret_value() == AUTH_SECRET
