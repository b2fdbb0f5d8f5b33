"""Pure logic of the dev-server tooling (no servers involved)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from perago.devservers import process
from perago.devservers.envfile import update_env_file
from perago.devservers.errors import DevServerError
from perago.devservers.lakefs import generate_credentials
from perago.devservers.provision import upstream_replaces


def test_env_file_updates_keys_in_place_and_keeps_other_lines(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# my settings\n"
        "PERAGO_WORKSPACE_ROOT=/data\n"
        "export CONDUCTOR_SERVER_URL=http://old/api\n"
        "\n"
        "LAKECTL_SERVER_ENDPOINT_URL = http://old\n"
        "LAKECTL_SERVER_ENDPOINT_URL=http://duplicate\n"
    )
    update_env_file(
        env,
        {
            "CONDUCTOR_SERVER_URL": "http://127.0.0.1:1/api",
            "LAKECTL_SERVER_ENDPOINT_URL": "http://127.0.0.1:2",
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIA",
        },
    )
    assert env.read_text().splitlines() == [
        "# my settings",
        "PERAGO_WORKSPACE_ROOT=/data",
        "CONDUCTOR_SERVER_URL=http://127.0.0.1:1/api",
        "",
        "LAKECTL_SERVER_ENDPOINT_URL=http://127.0.0.1:2",
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID=AKIA",
    ]
    assert stat.S_IMODE(env.stat().st_mode) == 0o600


def test_env_file_is_created_when_missing(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    update_env_file(env, {"A": "1"})
    assert env.read_text() == "A=1\n"


def test_upstream_replaces_reads_single_line_and_block_forms() -> None:
    go_mod = (
        "module github.com/treeverse/lakefs\n"
        "replace github.com/csimplestring/delta-go => github.com/treeverse/delta-go v0.0.1\n"
        "replace (\n"
        "\tgithub.com/a/b v1.0.0 => github.com/c/d v1.2.3 // why\n"
        "\tgithub.com/e/f => ../local\n"
        ")\n"
        "require github.com/x/y v1.0.0\n"
    )
    assert upstream_replaces(go_mod) == [
        "github.com/csimplestring/delta-go=github.com/treeverse/delta-go@v0.0.1",
        "github.com/a/b=github.com/c/d@v1.2.3",
        "github.com/e/f=../local",
    ]


def test_generated_credentials_are_random_and_secret_is_hidden_in_repr() -> None:
    first, second = generate_credentials(), generate_credentials()
    assert first.access_key_id != second.access_key_id
    assert first.secret_access_key != second.secret_access_key
    assert first.secret_access_key not in repr(first)


def test_free_port_is_bindable_on_loopback() -> None:
    port = process.free_port()
    assert not process.port_in_use(port)


def test_wait_healthy_reports_early_exit_with_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    proc = process.spawn(
        ["sh", "-c", "echo boom-line; exit 3"],
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        log_path=log,
    )
    with pytest.raises(DevServerError, match=r"exited with code 3[\s\S]*boom-line"):
        process.wait_healthy("demo", proc, lambda: False, timeout=30, log_path=log)
