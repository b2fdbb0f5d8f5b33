"""Credential files and logs: atomic 0600 writes, 0700 directories, planted temp files and links.

Covers ``perago.host.secure_files`` and every writer of a secret that uses it: ``.env`` (``perago
dev up``), the dev servers' ``servers.json`` and lakeFS ``credentials.json``, and the JSONL logs.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from perago.devservers import state
from perago.devservers.envfile import update_env_file
from perago.devservers.state import DevState, ServerRecord
from perago.devservers.supervisor import _lakefs_secrets
from perago.host import secure_files
from perago.host.secure_files import (
    ensure_private_directory,
    open_private_append,
    write_private_file,
)
from perago.runtime.logs import JsonlFileSink

SECRET = "s3cr3t-never-world-readable"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Umask 0: whatever perago creates gets exactly the mode it asks for, nothing stricter."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def predictable_temp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """Make the first temporary name ``<dir>/.planted.tmp`` so a test can plant something there;
    later names are fresh. Returns the names handed out."""
    handed: list[Path] = []
    original = secure_files._temp_name

    def name(target: Path) -> Path:
        candidate = target.with_name(".planted.tmp") if not handed else original(target)
        handed.append(candidate)
        return candidate

    monkeypatch.setattr(secure_files, "_temp_name", name)
    return handed


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --- write_private_file ---------------------------------------------------------------------


@pytest.mark.usefixtures("permissive_umask")
def test_new_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    write_private_file(target, f"SECRET={SECRET}\n")
    assert target.read_text() == f"SECRET={SECRET}\n"
    assert mode(target) == 0o600
    assert leftovers(tmp_path) == []


@pytest.mark.usefixtures("permissive_umask")
def test_replacing_a_world_readable_file_makes_it_0600(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_text("OLD=1\n")
    target.chmod(0o644)
    write_private_file(target, b"NEW=2\n")
    assert target.read_bytes() == b"NEW=2\n"
    assert mode(target) == 0o600


@pytest.mark.usefixtures("permissive_umask")
def test_stale_0644_temp_file_is_never_reused(tmp_path: Path, predictable_temp: list[Path]) -> None:
    planted = tmp_path / ".planted.tmp"
    planted.write_text("stale leftover\n")
    planted.chmod(0o644)
    target = tmp_path / ".env"
    write_private_file(target, f"SECRET={SECRET}\n")
    assert mode(target) == 0o600
    assert target.read_text() == f"SECRET={SECRET}\n"
    # O_EXCL refused the planted name; the leftover is untouched and holds no secret.
    assert predictable_temp[0] == planted
    assert len(predictable_temp) == 2
    assert planted.read_text() == "stale leftover\n"
    assert mode(planted) == 0o644


def test_symlink_planted_at_the_temp_path_is_not_written_through(
    tmp_path: Path, predictable_temp: list[Path]
) -> None:
    victim = tmp_path / "elsewhere" / "victim"
    victim.parent.mkdir()
    victim.write_text("original\n")
    victim.chmod(0o644)
    (tmp_path / ".planted.tmp").symlink_to(victim)
    dangling = tmp_path / "project"
    dangling.mkdir()
    (dangling / ".planted.tmp").symlink_to(tmp_path / "does-not-exist")
    for directory in (tmp_path, dangling):
        predictable_temp.clear()
        write_private_file(directory / ".env", f"SECRET={SECRET}\n")
        assert mode(directory / ".env") == 0o600
        assert (directory / ".planted.tmp").is_symlink()
    assert victim.read_text() == "original\n"
    assert mode(victim) == 0o644
    assert not (tmp_path / "does-not-exist").exists()


def test_symlink_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("original\n")
    target = tmp_path / ".env"
    target.symlink_to(victim)
    write_private_file(target, "A=1\n")
    assert not target.is_symlink()
    assert target.read_text() == "A=1\n"
    assert mode(target) == 0o600
    assert victim.read_text() == "original\n"


def test_failed_replace_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / ".env"
    target.write_text("OLD=1\n")

    def broken(_src: object, _dst: object) -> None:
        raise OSError("disk on fire")

    # secure_files calls os.replace through the one shared ``os`` module.
    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk on fire"):
        write_private_file(target, "NEW=2\n")
    assert target.read_text() == "OLD=1\n"
    assert leftovers(tmp_path) == []


def test_gives_up_after_many_taken_temp_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = tmp_path / ".taken.tmp"
    taken.write_text("")
    monkeypatch.setattr(secure_files, "_temp_name", lambda _target: taken)
    with pytest.raises(FileExistsError, match="temporary file"):
        write_private_file(tmp_path / ".env", "A=1\n")
    assert not (tmp_path / ".env").exists()


# --- the writers of secrets -----------------------------------------------------------------


@pytest.mark.usefixtures("permissive_umask")
def test_dev_up_env_file_is_0600_and_ignores_planted_temp_files(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("PERAGO_WORKSPACE_ROOT=/data\n")
    env.chmod(0o644)
    victim = tmp_path / "victim"
    victim.write_text("original\n")
    # The fixed names older versions used: a leftover file and a planted link.
    (tmp_path / ".env.tmp").symlink_to(victim)
    update_env_file(env, {"LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": SECRET})
    assert mode(env) == 0o600
    assert env.read_text() == (
        f"PERAGO_WORKSPACE_ROOT=/data\nLAKECTL_CREDENTIALS_SECRET_ACCESS_KEY={SECRET}\n"
    )
    assert victim.read_text() == "original\n"
    assert leftovers(tmp_path) == [".env.tmp"]  # only the planted link, untouched


@pytest.mark.usefixtures("permissive_umask")
def test_dev_servers_state_and_lakefs_credentials_are_private(tmp_path: Path) -> None:
    record = ServerRecord("lakefs", 1, 2, "http://127.0.0.1:2", "log", "1.0")
    dev_state = DevState(record, record, "http://127.0.0.1:3/api", "AKIA", SECRET)
    state_dir = tmp_path / "state"
    state.save(state_dir, dev_state)
    assert mode(state_dir) == 0o700
    assert mode(state.state_path(state_dir)) == 0o600
    assert state.load(state_dir) == dev_state

    data = tmp_path / "data" / "lakefs"
    creds, encrypt = _lakefs_secrets(data)
    assert mode(data) == 0o700
    assert mode(data.parent) == 0o700
    path = data / "credentials.json"
    assert mode(path) == 0o600
    assert json.loads(path.read_text())["secret_access_key"] == creds.secret_access_key
    assert _lakefs_secrets(data) == (creds, encrypt)  # read back, not regenerated


# --- directories and logs -------------------------------------------------------------------


@pytest.mark.usefixtures("permissive_umask")
def test_private_directories_are_0700_and_existing_ones_kept(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    created = ensure_private_directory(existing / "a" / "b")
    assert created == [existing / "a", existing / "a" / "b"]
    assert mode(existing) == 0o755
    assert mode(existing / "a") == 0o700
    assert mode(existing / "a" / "b") == 0o700
    assert ensure_private_directory(existing / "a" / "b") == []


def test_private_directory_over_a_file_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    with pytest.raises(FileExistsError):
        ensure_private_directory(blocker)
    with pytest.raises(NotADirectoryError):
        ensure_private_directory(blocker / "below")


@pytest.mark.usefixtures("permissive_umask")
def test_log_directories_0700_and_files_0600(tmp_path: Path) -> None:
    module_dir = tmp_path / "logs" / "mod"
    directory = module_dir / "worker_id=w1"
    sink = JsonlFileSink(
        directory, max_bytes=64, retention=timedelta(days=1), module_dir=module_dir
    )
    try:
        first = sink.path
        sink.write_line('{"message": "' + "x" * 60 + '"}')
        sink.write_line('{"message": "rotated"}')
        assert sink.path != first
        for path in (first, sink.path):
            assert mode(path) == 0o600
    finally:
        sink.close()
    for path in (tmp_path / "logs", module_dir, directory):
        assert mode(path) == 0o700


def test_log_file_symlink_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("original\n")
    link = tmp_path / "log.jsonl"
    link.symlink_to(victim)
    with pytest.raises(OSError, match="symbolic links"):  # ELOOP from O_NOFOLLOW
        open_private_append(link)
    assert victim.read_text() == "original\n"
