"""conductor-python ``CONDUCTOR_WORKER_*`` settings: which pass through, which perago pins.

perago resolves them from the merged ``.env`` + environment with the SDK's own names and
priorities (checked here against ``conductor.client.worker.worker_config.resolve_worker_config``),
then lets the SDK's ``TaskRunner`` see only the pass-through values.
"""

from __future__ import annotations

import os

import pytest
from conductor.client.automator.task_runner import TaskRunner
from conductor.client.configuration.configuration import Configuration
from conductor.client.worker.worker_config import resolve_worker_config

from perago.conductor.runner import PeragoSdkWorker
from perago.conductor.sdk_config import pin_sdk_worker_environment, sdk_worker_settings

TASK = "t-build.features_v2"


def _clear_sdk_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.lower().startswith(("conductor_worker", "conductor.worker")):
            monkeypatch.delenv(key)


CASES = [
    {},
    {"CONDUCTOR_WORKER_DOMAIN": "global"},
    {"CONDUCTOR_WORKER_DOMAIN": "global", "conductor.worker.all.domain": "all"},
    {"conductor.worker.all.domain": "all", f"CONDUCTOR_WORKER_{TASK.upper()}_DOMAIN": "mine"},
    {f"CONDUCTOR_WORKER_{TASK}_DOMAIN": "mixed", f"conductor_worker_{TASK}_domain": "old"},
    {f"conductor.worker.{TASK}.domain": "new", f"CONDUCTOR_WORKER_{TASK.upper()}_DOMAIN": "x"},
    {"CONDUCTOR_WORKER_ALL_POLL_INTERVAL": "250"},
    {"conductor_worker_polling_interval": "300", "CONDUCTOR_WORKER_POLL_INTERVAL": "400"},
    {
        f"CONDUCTOR_WORKER_{TASK.upper()}_POLLING_INTERVAL": "50",
        "conductor_worker_poll_interval": "7",
    },
    {"conductor.worker.all.polling_interval": "125.5"},
    {"CONDUCTOR_WORKER_POLL_TIMEOUT": "200", f"conductor.worker.{TASK}.poll_timeout": "300"},
]


@pytest.mark.parametrize("env", CASES)
def test_resolution_matches_the_sdk(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    _clear_sdk_variables(monkeypatch)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    expected = resolve_worker_config(TASK, poll_interval=100, poll_timeout=100)
    settings = sdk_worker_settings(TASK, env)
    assert settings.domain == expected["domain"]
    assert settings.poll_interval_ms == expected["poll_interval"]
    assert settings.poll_timeout_ms == expected["poll_timeout"]
    assert settings.ignored == ()


def test_pinned_and_invalid_settings_are_ignored_and_named() -> None:
    env = {
        "CONDUCTOR_WORKER_THREAD_COUNT": "8",
        f"conductor.worker.{TASK}.lease_extend_enabled": "false",
        "conductor.worker.all.paused": "true",
        "CONDUCTOR_WORKER_ALL_REGISTER_TASK_DEF": "true",
        "CONDUCTOR_WORKER_WORKER_ID": "someone-else",
        "CONDUCTOR_WORKER_ALL_POLL_INTERVAL": "-5",
        "CONDUCTOR_WORKER_POLL_TIMEOUT": "soon",
        "CONDUCTOR_WORKER_DOMAIN": "prod",
        "CONDUCTOR_WORKER_OTHER_TASK_THREAD_COUNT": "3",  # another task's: not ours to judge
    }
    settings = sdk_worker_settings(TASK, env)
    assert settings.domain == "prod"
    assert (settings.poll_interval_ms, settings.poll_timeout_ms) == (100.0, 100)
    assert settings.ignored == (
        "CONDUCTOR_WORKER_ALL_POLL_INTERVAL (not a positive number of milliseconds)",
        "CONDUCTOR_WORKER_POLL_TIMEOUT (not a positive integer of milliseconds)",
        "CONDUCTOR_WORKER_THREAD_COUNT",
        f"conductor.worker.{TASK}.lease_extend_enabled",
        "conductor.worker.all.paused",
        "CONDUCTOR_WORKER_ALL_REGISTER_TASK_DEF",
        "CONDUCTOR_WORKER_WORKER_ID",
    )
    warning = settings.ignored_warning()
    assert warning is not None
    assert warning.startswith("ignoring conductor-python worker settings perago manages")
    assert settings.describe() == "domain=prod poll_interval_ms=100 poll_timeout_ms=100"
    assert settings.sources == {"domain": "CONDUCTOR_WORKER_DOMAIN"}


def test_blank_domain_means_no_domain() -> None:
    settings = sdk_worker_settings(TASK, {"CONDUCTOR_WORKER_DOMAIN": "  "})
    assert settings.domain is None
    assert settings.sdk_environment() == {}


def test_task_runner_sees_only_what_perago_lets_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real SDK TaskRunner, built after the pinning, runs with the .env domain and interval
    and perago's own thread count, lease extension and worker id."""
    _clear_sdk_variables(monkeypatch)
    monkeypatch.setenv("CONDUCTOR_WORKER_THREAD_COUNT", "8")  # in the process environment
    monkeypatch.setenv("conductor.worker.all.paused", "true")
    merged = {  # what .env + environment give
        **os.environ,
        f"CONDUCTOR_WORKER_{TASK.upper()}_DOMAIN": "blue",
        "conductor.worker.all.poll_interval": "250",
        "CONDUCTOR_WORKER_ALL_LEASE_EXTEND_ENABLED": "false",
    }
    settings = pin_sdk_worker_environment(TASK, merged)
    assert settings.ignored == (
        "CONDUCTOR_WORKER_THREAD_COUNT",
        "CONDUCTOR_WORKER_ALL_LEASE_EXTEND_ENABLED",
        "conductor.worker.all.paused",
    )
    sdk_keys = {k for k in os.environ if k.lower().startswith(("conductor_worker", "conductor."))}
    assert sdk_keys == {f"conductor.worker.{TASK}.domain", f"conductor.worker.{TASK}.poll_interval"}
    try:
        worker = PeragoSdkWorker(TASK, "w0001", lambda task: task)
        worker.thread_count = 2
        with TaskRunner(
            worker, configuration=Configuration(server_api_url="http://127.0.0.1:9/api")
        ):
            assert worker.get_domain() == "blue"
            assert worker.poll_interval == 250.0
            assert worker.thread_count == 2
            assert worker.lease_extend_enabled is True
            assert worker.paused is False
            assert worker.register_task_def is False
            assert worker.get_identity() == "w0001"
    finally:
        for key in sdk_keys:
            os.environ.pop(key, None)
