"""``perago cache status|prune|verify`` and the content cache line of ``perago check``, run in
process on caches that hold no entries (entries only come from downloads)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from perago.cli.app import app
from perago.cli.cache import describe_size, parse_prune_target
from perago.cli.support import CliError
from perago.engine.cache import ContentCache

GIB = 1024**3
# A fetch's temp file whose fetcher is gone (nothing holds its lock).
ABANDONED = "v1/objects/ab/" + "c" * 62 + ".partial"

TASK_MODULE = """\
from pydantic import BaseModel

from perago import task


class Params(BaseModel):
    text: str


class Result(BaseModel):
    words: int


@task(name="words", owner_email="team@example.com")
def words(params: Params) -> Result:
    return Result(words=len(params.text.split()))
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (its .env is the one read) with no perago or server
    variables of the developer's shell, and roots of its own."""
    for name in list(os.environ):
        if name.startswith(("PERAGO_", "LAKECTL_", "CONDUCTOR_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERAGO_WORKSPACE_ROOT", str(tmp_path / "ws"))
    monkeypatch.setenv("PERAGO_LOG_ROOT", str(tmp_path / "logs"))
    return tmp_path


@pytest.fixture
def cache_dir(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``PERAGO_CACHE_DIR`` set (relative: it is anchored at the working directory)."""
    monkeypatch.setenv("PERAGO_CACHE_DIR", "cache")
    return project / "cache"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def mode_of(directory: Path) -> str:
    return ContentCache(directory, GIB).mode


def assert_error(result: Result, message: str) -> None:
    """Exit 1, nothing on stdout, exactly ``error: <message>`` on stderr."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {message}"]


# --- status ---------------------------------------------------------------------------------


def test_status_of_an_empty_cache(cache_dir: Path) -> None:
    result = invoke("cache", "status")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"directory: {cache_dir}",
        f"clone_mode: {mode_of(cache_dir)}",
        "max_size: 10GB (10737418240 bytes)",
        "entries: 0",
        "size: 0 bytes",
        "temp_files: 0 (0 bytes)",
    ]


def test_status_json_of_an_empty_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERAGO_CACHE_MAX_SIZE", "512MB")
    result = invoke("cache", "status", "--json")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1
    assert json.loads(result.stdout) == {
        "directory": str(cache_dir),
        "clone_mode": mode_of(cache_dir),
        "max_size": 512 * 1024**2,
        "entries": 0,
        "bytes": 0,
        "temp_files": 0,
        "temp_file_bytes": 0,
    }


def test_cache_directory_from_dotenv(project: Path) -> None:
    (project / ".env").write_text("PERAGO_CACHE_DIR=from-dotenv\nPERAGO_CACHE_MAX_SIZE=1TB\n")
    result = invoke("cache", "status")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"directory: {project / 'from-dotenv'}"
    assert result.stdout.splitlines()[2] == "max_size: 1TB (1099511627776 bytes)"


def test_commands_do_not_create_the_workspace_and_log_roots(cache_dir: Path) -> None:
    assert invoke("cache", "status").exit_code == 0
    assert not (cache_dir.parent / "ws").exists()
    assert not (cache_dir.parent / "logs").exists()


# --- prune ----------------------------------------------------------------------------------


def test_prune_to_zero_removes_an_abandoned_temp_file(cache_dir: Path) -> None:
    ContentCache(cache_dir, GIB)
    partial = cache_dir / ABANDONED
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"half an object")
    status = invoke("cache", "status")
    assert status.stdout.splitlines()[-1] == "temp_files: 1 (14 bytes)"

    result = invoke("cache", "prune", "--to", "0")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no progress bar: stderr is not a terminal
    assert result.stdout.splitlines() == [
        "pruned 0 entries (0 bytes), kept 0 (0 bytes); removed 1 abandoned temp file"
    ]
    assert not partial.exists()


@pytest.mark.parametrize("args", [(), ("--to", "0KB"), ("--to", "512MB")])
def test_prune_an_empty_cache(cache_dir: Path, args: tuple[str, ...]) -> None:
    result = invoke("cache", "prune", *args)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "pruned 0 entries (0 bytes), kept 0 (0 bytes); removed 0 abandoned temp files"
    ]


@pytest.mark.parametrize("value", ["", "10", "-1GB", "1PB", "big"])
def test_prune_bad_target_is_one_line(cache_dir: Path, value: str) -> None:
    assert_error(
        invoke("cache", "prune", "--to", value),
        f"--to must be 0 or a size such as '512MB', '10GB' or '1TB', got {value!r}",
    )
    assert not cache_dir.exists()  # rejected before the cache is opened


# --- verify ---------------------------------------------------------------------------------


def test_verify_an_empty_cache(cache_dir: Path) -> None:
    result = invoke("cache", "verify")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.splitlines() == ["verified 0 entries (0 bytes): none corrupt"]


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [("status",), ("status", "--json"), ("prune",), ("prune", "--to", "0"), ("verify",)]
)
def test_without_a_configured_cache_is_one_line(project: Path, args: tuple[str, ...]) -> None:
    assert_error(
        invoke("cache", *args), "PERAGO_CACHE_DIR is not set: no content cache is configured"
    )


def test_config_errors_are_one_line(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERAGO_CACHE_MAX_SIZE", "1GB")
    assert_error(
        invoke("cache", "status"),
        "PERAGO_CACHE_MAX_SIZE is set but PERAGO_CACHE_DIR is not; "
        "set PERAGO_CACHE_DIR to enable the content cache",
    )


def test_a_directory_that_cannot_hold_a_cache_is_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "file").write_text("not a directory")
    monkeypatch.setenv("PERAGO_CACHE_DIR", "file")
    result = invoke("cache", "verify")
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: content cache {project / 'file'}: ")


# --- perago check ---------------------------------------------------------------------------


@pytest.fixture
def task_module(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A task module in the working directory, forgotten again after the test."""
    name = "cachecheck_" + "".join(ch for ch in project.name if ch.isalnum())
    (project / f"{name}.py").write_text(TASK_MODULE)
    monkeypatch.syspath_prepend(str(project))
    yield name
    sys.modules.pop(name, None)


def check_lines(module: str) -> list[str]:
    result = invoke("check", module)
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.splitlines() if line.startswith("content_cache:")]


def test_check_shows_the_cache_off(task_module: str) -> None:
    assert check_lines(task_module) == ["content_cache: off (set PERAGO_CACHE_DIR to enable)"]
    result = invoke("check", task_module, "--json")
    assert json.loads(result.stdout)["content_cache"] is None


def test_check_shows_the_cache_settings(
    task_module: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERAGO_CACHE_MAX_SIZE", "1.5GB")
    mode = mode_of(cache_dir)
    assert check_lines(task_module) == [
        f"content_cache: {cache_dir} (max_size 1.5GB, clone_mode {mode})"
    ]
    result = invoke("check", task_module, "--json")
    assert json.loads(result.stdout)["content_cache"] == {
        "directory": str(cache_dir),
        "max_size": 3 * GIB // 2,
        "clone_mode": mode,
    }


def test_check_fails_on_a_cache_it_cannot_open(
    task_module: str, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A writable directory whose layout path is taken by a file: the probe passes, opening fails.
    (project / "cache").mkdir()
    (project / "cache" / "v1").write_text("not a directory")
    monkeypatch.setenv("PERAGO_CACHE_DIR", "cache")
    result = invoke("check", task_module)
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: content cache {project / 'cache'}: ")


# --- helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1023 bytes"),
        (1024, "1KB (1024 bytes)"),
        (1536, "1.5KB (1536 bytes)"),
        (10 * GIB, "10GB (10737418240 bytes)"),
        (1024**4, "1TB (1099511627776 bytes)"),
    ],
)
def test_describe_size(size: int, text: str) -> None:
    assert describe_size(size) == text


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 0), ("0KB", 0), ("0.0 gb", 0), (" 512MB ", 512 * 1024**2), ("1TB", 1024**4)],
)
def test_parse_prune_target(text: str, size: int) -> None:
    assert parse_prune_target(text) == size


def test_parse_prune_target_rejects_bad_sizes() -> None:
    with pytest.raises(CliError, match="--to must be 0 or a size"):
        parse_prune_target("00")
