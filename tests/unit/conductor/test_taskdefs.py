"""Registered TaskDef checks: drift over the generated keys only, and too short a lease."""

from __future__ import annotations

from perago.conductor.taskdefs import short_lease_warning, taskdef_drift


def test_drift_compares_only_generated_keys() -> None:
    generated = {
        "name": "demo",
        "retryCount": 3,
        "inputSchema": {"name": "demo.input", "version": 1},
    }
    registered = {
        "name": "demo",
        "retryCount": 1,
        "createTime": 5,
        "inputSchema": {"name": "demo.input", "version": 1, "extra": True},
    }
    assert taskdef_drift(generated, registered).keys == ("retryCount",)


def test_short_response_timeouts_warn_that_the_lease_may_lapse() -> None:
    warning = short_lease_warning("render", {"responseTimeoutSeconds": 5})
    assert warning is not None
    assert "responseTimeoutSeconds=5" in warning
    assert "every 4.0s" in warning
    assert "response_seconds=15" in warning
    assert short_lease_warning("render", {"responseTimeoutSeconds": 15}) is None
    assert short_lease_warning("render", {"responseTimeoutSeconds": 600}) is None
    assert short_lease_warning("render", {}) is None
